package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// Tests of `cygnet daemon` with its default data plane, userspace ESP over a
// TUN device, between network namespaces (root). TestCygnetToCygnet joins
// two Cygnets; interop_test.go has strongSwan.

// cygnetPair is two `cygnet daemon` processes in two namespaces joined by a
// veth pair: left 192.0.2.1, right 192.0.2.2.
type cygnetPair struct {
	leftNS, rightNS *testbed.Netns
	left, right     *daemonProc
	leftProc        *testbed.Process
	rightProc       *testbed.Process
}

// Cygnet-to-Cygnet configuration: name, address, peer name, peer address,
// socket, children.
const c2cConf = `daemon:
  listen: [%[2]s]
  socket: %[5]s
  log: {level: debug}
secrets:
  - ids: [%[1]s.test, %[3]s.test]
    psk: "cygnet to cygnet, a long enough secret"
connections:
  site:
    local_addrs: [%[2]s]
    remote_addrs: [%[4]s]
    proposals: [aes256gcm16-prfsha256-x25519]
    dpd_delay: 1s
    local: {auth: psk, id: %[1]s.test}
    remote: {auth: psk, id: %[3]s.test}
    children:
%[6]s`

// startCygnetPair starts the pair with inner addresses on each side's lo
// (before the daemons, which pick route sources from them) and the children
// of each side's connection "site" (YAML, indented by 6).
func startCygnetPair(t *testing.T, leftInner, rightInner []string, leftChildren, rightChildren string) *cygnetPair {
	t.Helper()
	testbed.Require(t, "root", "ip", "tun", "ping")
	bin := cygnetBinary(t)
	p := &cygnetPair{leftNS: testbed.NewNetns(t, "c2cl"), rightNS: testbed.NewNetns(t, "c2cr")}
	testbed.Link(t, p.leftNS, p.rightNS,
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")})
	for _, a := range leftInner {
		p.leftNS.AddAddr(t, "lo", netip.MustParsePrefix(a))
	}
	for _, a := range rightInner {
		p.rightNS.AddAddr(t, "lo", netip.MustParsePrefix(a))
	}
	start := func(ns *testbed.Netns, name, addr, peer, peerAddr, children string) (*daemonProc, *testbed.Process) {
		socket := filepath.Join(ns.Dir(), "cygnet.sock")
		cfg := filepath.Join(ns.Dir(), "cygnet.yaml")
		writeFile(t, cfg, fmt.Sprintf(c2cConf, name, addr, peer, peerAddr, socket, children))
		proc := ns.Start(t, "cygnet-"+name, testbed.StartOptions{}, bin, "daemon", "-c", cfg)
		d := &daemonProc{t: t, name: name, socket: socket}
		waitSocket(t, d, proc)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's log:\n%s", name, proc.Output())
			}
		})
		return d, proc
	}
	p.left, p.leftProc = start(p.leftNS, "left", "192.0.2.1", "right", "192.0.2.2", leftChildren)
	p.right, p.rightProc = start(p.rightNS, "right", "192.0.2.2", "left", "192.0.2.1", rightChildren)
	return p
}

// child returns the status of child in conn, or false.
func child(st *control.Status, conn, name string) (control.ChildSA, bool) {
	for _, ike := range st.IKESAs {
		if ike.Connection != conn {
			continue
		}
		for _, c := range ike.ChildSAs {
			if c.Name == name {
				return c, true
			}
		}
	}
	return control.ChildSA{}, false
}

// ping pings dst from src in ns and fails unless count replies came.
func ping(t *testing.T, ns *testbed.Netns, src, dst string, count int) {
	t.Helper()
	sent, recv := ns.Ping(t, netip.MustParseAddr(src), netip.MustParseAddr(dst), count, 50*time.Millisecond)
	if recv < count {
		t.Fatalf("ping %s -> %s in %s: %d replies to %d requests", src, dst, ns.Name, recv, sent)
	}
}

// TestCygnetToCygnet runs two `cygnet daemon` processes with the userspace
// data plane in two namespaces: a tunnel-mode CHILD_SA with ping both ways,
// its routes and their removal; transport mode between the outer addresses
// (the peer itself is routed into the tunnel); a 0.0.0.0/0 remote selector
// that covers the peer's outer address (IKE, DPD and ESP must not loop into
// the tunnel); and start_action trap (the first packet starts the IKE SA).
func TestCygnetToCygnet(t *testing.T) {
	p := startCygnetPair(t, []string{"10.1.0.1/32", "10.3.0.1/32", "10.5.0.1/32"}, []string{"10.2.0.1/32", "10.6.0.1/32"}, `      net: {local_ts: [10.1.0.0/16], remote_ts: [10.2.0.0/16]}
      tm: {mode: transport}
      all: {local_ts: [10.3.0.0/16], remote_ts: [0.0.0.0/0]}
      trapped: {local_ts: [10.5.0.0/16], remote_ts: [10.6.0.0/16], start_action: trap}
`, `      net: {local_ts: [10.2.0.0/16], remote_ts: [10.1.0.0/16]}
      tm: {mode: transport}
      all: {local_ts: [0.0.0.0/0], remote_ts: [10.3.0.0/16]}
      trapped: {local_ts: [10.6.0.0/16], remote_ts: [10.5.0.0/16]}
`)
	table := func(ns *testbed.Netns) string { return ns.Run(t, "ip", "route", "show", "table", "221") }
	up := func(children ...string) {
		t.Helper()
		for _, c := range children {
			if code, out, errOut := p.left.cli("up", "site", c); code != 0 {
				t.Fatalf("cygnet up site %s: exit %d\n%s%s", c, code, out, errOut)
			}
		}
		p.right.waitStatus("the CHILD_SAs", 5*time.Second, ikeUp("site", children...))
	}
	down := func() {
		t.Helper()
		if code, _, errOut := p.left.cli("down", "site"); code != 0 {
			t.Fatalf("cygnet down site: exit %d: %s", code, errOut)
		}
		p.right.waitStatus("no SAs", 5*time.Second, noIKESAs)
	}

	t.Run("tunnel", func(t *testing.T) {
		up("net")
		if routes := table(p.leftNS); !strings.Contains(routes, "10.2.0.0/16 dev cygnet0 proto 199 scope link src 10.1.0.1") {
			t.Errorf("left's routes in table 221:\n%s", routes)
		}
		ping(t, p.leftNS, "10.1.0.1", "10.2.0.1", 3)
		ping(t, p.rightNS, "10.2.0.1", "10.1.0.1", 3)
		c, _ := child(p.left.status(), "site", "net")
		if c.PacketsOut < 6 || c.PacketsIn < 6 || c.BytesOut == 0 {
			t.Errorf("left's counters of net: %+v; want 6 packets each way at least", c)
		}
		down()
		if routes := table(p.leftNS); strings.Contains(routes, "10.2.0.0/16") {
			t.Errorf("route of the deleted SA left in table 221:\n%s", routes)
		}
	})

	t.Run("transport mode", func(t *testing.T) {
		up("tm")
		c, _ := child(p.left.status(), "site", "tm")
		if c.Mode != "transport" || c.Encap {
			t.Fatalf("tm: %+v; want transport mode, plain ESP", c)
		}
		if routes := table(p.leftNS); !strings.Contains(routes, "192.0.2.2 dev cygnet0") {
			t.Errorf("left's routes in table 221 lack the peer:\n%s", routes)
		}
		ping(t, p.leftNS, "192.0.2.1", "192.0.2.2", 3)
		ping(t, p.rightNS, "192.0.2.2", "192.0.2.1", 3)
		if c, _ := child(p.left.status(), "site", "tm"); c.PacketsOut < 6 || c.PacketsIn < 6 {
			t.Errorf("left's counters of tm: %+v; the pings did not go through the SA", c)
		}
		down()
	})

	t.Run("0.0.0.0/0 covers the peer", func(t *testing.T) {
		up("all")
		if routes := table(p.leftNS); !strings.Contains(routes, "default dev cygnet0 proto 199 scope link src 10.3.0.1") {
			t.Errorf("left's routes in table 221:\n%s", routes)
		}
		// To the peer's inner and outer addresses, both through the SA.
		ping(t, p.leftNS, "10.3.0.1", "10.2.0.1", 3)
		ping(t, p.leftNS, "10.3.0.1", "192.0.2.2", 3)
		if c, _ := child(p.left.status(), "site", "all"); c.PacketsOut < 6 || c.PacketsIn < 6 {
			t.Errorf("left's counters of all: %+v", c)
		}
		// IKE still reaches the peer: DPD (1 s) keeps the SA, a
		// CREATE_CHILD_SA succeeds, and the delete is answered.
		time.Sleep(1500 * time.Millisecond)
		up("net")
		down()
	})

	t.Run("trap", func(t *testing.T) {
		if routes := table(p.leftNS); !strings.Contains(routes, "10.6.0.0/16 dev cygnet0 proto 199 scope link src 10.5.0.1") {
			t.Errorf("the trap's route is not in table 221:\n%s", routes)
		}
		if st := p.left.status(); len(st.IKESAs) != 0 {
			t.Fatalf("SAs before the first packet: %+v", st)
		}
		// The first request hits the trap, is dropped and starts IKE;
		// the later ones go through.
		ping(t, p.leftNS, "10.5.0.1", "10.6.0.1", 3)
		st := p.left.status()
		if c, ok := child(st, "site", "trapped"); !ok || c.PacketsOut < 3 {
			t.Fatalf("after the trap: %+v", st)
		}
		down()
		// down deletes SAs, not the trap (swanctl --terminate);
		// uninstall removes it (swanctl --uninstall).
		if routes := table(p.leftNS); !strings.Contains(routes, "10.6.0.0/16 dev cygnet0") {
			t.Errorf("the trap's route went with down:\n%s", routes)
		}
		if code, out, errOut := p.left.cli("uninstall", "site", "trapped"); code != 0 || out != "site/trapped: trap policies removed\n" {
			t.Fatalf("cygnet uninstall site trapped: exit %d: %q %s", code, out, errOut)
		}
		if routes := table(p.leftNS); strings.Contains(routes, "10.6.0.0/16") {
			t.Errorf("the trap's route is still in table 221 after uninstall:\n%s", routes)
		}
		if code, _, errOut := p.left.cli("uninstall", "site", "trapped"); code != 1 || !strings.Contains(errOut, "has no trap policy installed") {
			t.Errorf("a second uninstall: exit %d: %s", code, errOut)
		}
		if out, err := p.leftNS.Exec("ping", "-c", "1", "-W", "1", "-I", "10.5.0.1", "10.6.0.1"); err == nil {
			t.Errorf("a ping went through after uninstall: %s", out)
		}
		if st := p.left.status(); len(st.IKESAs) != 0 {
			t.Errorf("a packet after uninstall started IKE: %+v", st)
		}
	})

	// SIGTERM: the daemons delete their SAs, remove routes, rules and the
	// device, and exit 0.
	for _, d := range []struct {
		proc *testbed.Process
		ns   *testbed.Netns
	}{{p.leftProc, p.leftNS}, {p.rightProc, p.rightNS}} {
		if err := d.proc.Stop(); err != nil {
			t.Error(err)
		}
		if err := d.proc.Wait(5 * time.Second); err != nil {
			t.Errorf("%s: %v", d.proc.Name, err)
		}
		if out, err := d.ns.Exec("ip", "link", "show", "cygnet0"); err == nil {
			t.Errorf("cygnet0 left in %s: %s", d.ns.Name, out)
		}
		if out := d.ns.Run(t, "ip", "rule", "show"); strings.Contains(out, "proto 199") {
			t.Errorf("rules left in %s:\n%s", d.ns.Name, out)
		}
	}
}
