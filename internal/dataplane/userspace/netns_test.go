package userspace

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

var (
	esppeerOnce sync.Once
	esppeerPath string
	esppeerErr  error
)

// buildEsppeer builds bench/esppeer, the fixed-key tunnel end the netns
// tests run in each namespace.
func buildEsppeer(t *testing.T) string {
	esppeerOnce.Do(func() {
		dir, err := mkdirTemp()
		if err != nil {
			esppeerErr = err
			return
		}
		esppeerPath = filepath.Join(dir, "esppeer")
		out, err := exec.Command("go", "build", "-o", esppeerPath, "github.com/cygnet-ipsec/cygnet/bench/esppeer").CombinedOutput()
		if err != nil {
			esppeerErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if esppeerErr != nil {
		t.Fatal(esppeerErr)
	}
	return esppeerPath
}

type netnsCase struct {
	suite string
	encap bool
	// transport: transport mode, between the outer addresses. allRemote:
	// the left side's remote selector is 0.0.0.0/0 (or ::/0), which covers
	// the right side's outer address: its own ESP must not loop into the
	// tunnel (the bypass rules).
	transport, allRemote bool
	// secondary: the left side's SA uses a secondary address of its
	// interface, not the one the kernel would choose as the source.
	secondary bool
	v6outer   bool
	v6inner   bool
	offload   bool
}

type netnsTunnel struct {
	left, right *testbed.Netns
	leftIf      string
	outerL      netip.Addr
	pl, pr      *testbed.Process
	innerL      netip.Addr
	innerR      netip.Addr
}

func startNetnsTunnel(t *testing.T, c netnsCase) *netnsTunnel {
	testbed.Require(t, "root", "ip", "tun", "ping")
	bin := buildEsppeer(t)
	left, right := testbed.NewNetns(t, "usl"), testbed.NewNetns(t, "usr")
	lif, _ := testbed.Link(t, left, right,
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")},
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("2001:db8::2/64")})
	left.AddAddr(t, "lo", netip.MustParsePrefix("10.1.0.1/32"))
	left.AddAddr(t, "lo", netip.MustParsePrefix("fd01::1/128"))
	right.AddAddr(t, "lo", netip.MustParsePrefix("10.2.0.1/32"))
	right.AddAddr(t, "lo", netip.MustParsePrefix("fd02::1/128"))
	ol, or := "192.0.2.1", "192.0.2.2"
	if c.v6outer {
		ol, or = "2001:db8::1", "2001:db8::2"
	}
	if c.secondary {
		ol = "192.0.2.11"
		if c.v6outer {
			ol = "2001:db8::11"
		}
		bits := 24
		if c.v6outer {
			bits = 64
		}
		left.AddAddr(t, lif, netip.PrefixFrom(netip.MustParseAddr(ol), bits))
	}
	tsl, tsr := "10.1.0.0/16", "10.2.0.0/16"
	tn := &netnsTunnel{left: left, right: right, leftIf: lif, outerL: netip.MustParseAddr(ol), innerL: netip.MustParseAddr("10.1.0.1"), innerR: netip.MustParseAddr("10.2.0.1")}
	if c.v6inner {
		tsl, tsr = "fd01::/64", "fd02::/64"
		tn.innerL, tn.innerR = netip.MustParseAddr("fd01::1"), netip.MustParseAddr("fd02::1")
	}
	mode := "tunnel"
	if c.transport {
		mode = "transport"
		tn.innerL, tn.innerR = netip.MustParseAddr(ol), netip.MustParseAddr(or)
		tsl, tsr = netip.PrefixFrom(tn.innerL, tn.innerL.BitLen()).String(), netip.PrefixFrom(tn.innerR, tn.innerR.BitLen()).String()
	}
	// What the left side routes (the right side's local selector).
	tsrLeft, routeWant := tsr, tsr
	if c.allRemote {
		tsrLeft, routeWant = "0.0.0.0/0", "default"
		if c.v6inner {
			tsrLeft = "::/0"
		}
	}
	args := func(side, local, remote, lts, rts string) []string {
		return []string{bin, "-side", side, "-local", local, "-remote", remote, "-local-ts", lts, "-remote-ts", rts,
			"-suite", c.suite, "-mode", mode, fmt.Sprintf("-encap=%v", c.encap), fmt.Sprintf("-offload=%v", c.offload)}
	}
	tn.pl = left.Start(t, "esppeer[left]", testbed.StartOptions{}, args("a", ol, or, tsl, tsrLeft)...)
	tn.pr = right.Start(t, "esppeer[right]", testbed.StartOptions{}, args("b", or, ol, tsrLeft, tsl)...)
	tn.pl.WaitOutput(t, "ready", 10*time.Second)
	tn.pr.WaitOutput(t, "ready", 10*time.Second)
	// CONTRACT.md: a route per remote selector through the TUN device,
	// from the local selector's address configured here.
	fam := "-4"
	if c.v6inner || c.transport && c.v6outer {
		fam = "-6"
	}
	routes := left.Run(t, "ip", fam, "route", "show", "table", fmt.Sprint(DefaultRouteTable), "dev", "cygnet0")
	if !strings.Contains(routes, strings.TrimSuffix(strings.TrimSuffix(routeWant, "/32"), "/128")) || !strings.Contains(routes, "src "+tn.innerL.String()) {
		t.Fatalf("routes in left: %q, want %s with src %v", routes, routeWant, tn.innerL)
	}
	// The rules that consult the table and keep the tunnel's own packets
	// out of it.
	rules := left.Run(t, "ip", fam, "rule", "show")
	for _, want := range []string{
		fmt.Sprintf("%d:\tfrom all ipproto udp sport 4500 goto %d proto 199", DefaultRulePriority, DefaultRulePriority+2),
		fmt.Sprintf("%d:\tfrom all ipproto esp goto %d proto 199", DefaultRulePriority, DefaultRulePriority+2),
		fmt.Sprintf("%d:\tfrom all lookup %d proto 199", DefaultRulePriority+1, DefaultRouteTable),
		fmt.Sprintf("%d:\tfrom all nop proto 199", DefaultRulePriority+2),
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules in left lack %q:\n%s", want, rules)
		}
	}
	return tn
}

// stop closes both data planes and checks that the traffic went through
// them and that the device, its routes and rules are gone.
func (tn *netnsTunnel) stop(t *testing.T) {
	for _, p := range []*testbed.Process{tn.pl, tn.pr} {
		if err := p.Stop(); err != nil {
			t.Errorf("%s: %v\n%s", p.Name, err, p.Output())
		}
		var in, out int
		for line := range strings.SplitSeq(p.Output(), "\n") {
			if _, err := fmt.Sscanf(line, "counters: in %d packets", &in); err == nil {
				fmt.Sscanf(line[strings.Index(line, "out "):], "out %d packets", &out)
			}
		}
		if in == 0 || out == 0 {
			t.Errorf("%s: ESP packets in %d, out %d: the traffic did not go through the tunnel", p.Name, in, out)
		}
	}
	for _, ns := range []*testbed.Netns{tn.left, tn.right} {
		if out, err := ns.Exec("ip", "link", "show", "cygnet0"); err == nil {
			t.Errorf("cygnet0 still there in %s: %s", ns.Name, out)
		}
		for _, fam := range []string{"-4", "-6"} {
			out, _ := ns.Exec("ip", fam, "route", "show", "table", "all")
			if strings.Contains(out, "cygnet0") {
				t.Errorf("routes left in %s: %s", ns.Name, out)
			}
			if out, _ := ns.Exec("ip", fam, "rule", "show"); strings.Contains(out, "proto 199") {
				t.Errorf("rules left in %s: %s", ns.Name, out)
			}
		}
	}
}

// checkOuterSource captures on the left side's link during a ping and
// requires the ESP it sends to come from the SA's local address.
func (tn *netnsTunnel) checkOuterSource(t *testing.T) {
	capture := testbed.StartCapture(t, tn.left, tn.leftIf)
	tn.left.Ping(t, tn.innerL, tn.innerR, 2, 20*time.Millisecond)
	capture.Stop(t)
	n := 0
	for _, p := range capture.Packets() {
		if !p.Outgoing || len(p.Data) < 14+40 {
			continue
		}
		ip := p.Data[14:]
		var proto uint8
		var src netip.Addr
		switch ip[0] >> 4 {
		case 4:
			proto, src = ip[9], netip.AddrFrom4([4]byte(ip[12:16]))
		case 6:
			proto, src = ip[6], netip.AddrFrom16([16]byte(ip[8:24]))
		}
		if proto != 50 {
			continue
		}
		n++
		if src != tn.outerL {
			t.Errorf("ESP sent from %v, want the SA's local address %v", src, tn.outerL)
		}
	}
	if n == 0 {
		t.Error("no ESP captured")
	}
}

func TestNetnsTunnel(t *testing.T) {
	var cases []netnsCase
	for _, s := range suites {
		for _, encap := range []bool{true, false} {
			cases = append(cases, netnsCase{suite: s.name, encap: encap})
		}
	}
	cases = append(cases,
		netnsCase{suite: "aes256gcm16", encap: true, v6outer: true, v6inner: true},
		netnsCase{suite: "aes256gcm16", encap: false, v6outer: true, v6inner: false},
		netnsCase{suite: "aes256gcm16", encap: true, v6outer: false, v6inner: true},
		netnsCase{suite: "aes256gcm16", encap: true, offload: true},
		netnsCase{suite: "chacha20poly1305", encap: false, v6outer: true, v6inner: true, offload: true},
		netnsCase{suite: "aes256-sha256", encap: true, v6outer: true, v6inner: true, offload: true},
		// The bypass rules: a peer reached through its own tunnel.
		netnsCase{suite: "aes256gcm16", encap: false, transport: true},
		netnsCase{suite: "aes256gcm16", encap: true, transport: true, v6outer: true},
		netnsCase{suite: "aes256gcm16", encap: true, allRemote: true},
		netnsCase{suite: "chacha20poly1305", encap: false, allRemote: true, v6outer: true, v6inner: true},
		// Plain ESP leaves from the SA's address, not the route's source.
		netnsCase{suite: "aes256gcm16", encap: false, secondary: true},
		netnsCase{suite: "aes256gcm16", encap: false, secondary: true, v6outer: true, v6inner: true},
	)
	for _, c := range cases {
		name := fmt.Sprintf("%s/encap=%v/outer6=%v/inner6=%v/offload=%v", c.suite, c.encap, c.v6outer, c.v6inner, c.offload)
		if c.transport {
			name += "/transport"
		}
		if c.allRemote {
			name += "/all-remote"
		}
		if c.secondary {
			name += "/secondary-address"
		}
		t.Run(name, func(t *testing.T) {
			tn := startNetnsTunnel(t, c)
			for _, dir := range []struct {
				ns       *testbed.Netns
				src, dst netip.Addr
			}{{tn.left, tn.innerL, tn.innerR}, {tn.right, tn.innerR, tn.innerL}} {
				sent, recv := dir.ns.Ping(t, dir.src, dir.dst, 3, 20*time.Millisecond)
				if recv < 3 {
					t.Fatalf("ping %v -> %v: %d of %d\nleft: %s\nright: %s", dir.src, dir.dst, recv, sent, tn.pl.Output(), tn.pr.Output())
				}
			}
			switch {
			case c.secondary:
				tn.checkOuterSource(t)
			case c.transport || c.allRemote:
				// The bypass cases: the pings show that the tunnel works
				// and nothing loops; no throughput run.
			default:
				if _, err := exec.LookPath("iperf3"); err == nil || testbed.Strict() {
					bps := testbed.Iperf3(t, tn.right, tn.left, tn.innerR, 1, false)
					t.Logf("TCP left -> right: %s", testbed.FormatBits(bps))
					bps = testbed.Iperf3(t, tn.left, tn.right, tn.innerL, 1, false)
					t.Logf("TCP right -> left: %s", testbed.FormatBits(bps))
				}
			}
			tn.stop(t)
		})
	}
}
