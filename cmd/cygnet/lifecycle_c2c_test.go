package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// Lifecycle tests between two `cygnet daemon` processes in namespaces
// (root): a rekey both sides start at the same instant, and a dead peer.

// lifecyclePair is two daemons, left with 10.1.0.1 inside, right with
// 10.2.0.1, each with its metrics on 127.0.0.1:9134 of its namespace:
// joined by a veth pair (left 192.0.2.1, right 192.0.2.2), or through a
// namespace in the middle where a UDP proxy forwards between them (left
// 192.0.2.1 talks to 192.0.2.254, right 198.51.100.2 to 198.51.100.254:
// a NAT to both).
type lifecyclePair struct {
	leftNS, rightNS     *testbed.Netns
	leftIf              string
	left, right         *daemonProc
	leftProc, rightProc *testbed.Process
	proxy               *delayProxy
}

// pairOptions configure startLifecyclePair: more settings of connection
// site (YAML lines indented by 4) and of child net (YAML flow mapping
// entries) on each side; with proxyDelay, the proxy in the middle holds
// CREATE_CHILD_SA requests that long.
type pairOptions struct {
	leftConn, leftChild, rightConn, rightChild string
	proxyDelay                                 time.Duration
}

// One side's configuration: name, address, peer name, peer address,
// socket, more settings of connection site, local and remote selectors of
// child net, more settings of it.
const lifecycleConf = `daemon:
  listen: [%[2]s]
  socket: %[5]s
  metrics: 127.0.0.1:9134
  log: {level: debug}
secrets:
  - ids: [%[1]s.test, %[3]s.test]
    psk: "cygnet lifecycle, a long enough secret"
connections:
  site:
    local_addrs: [%[2]s]
    remote_addrs: [%[4]s]
    proposals: [aes256gcm16-prfsha256-x25519]
    rekey_time: 1h
%[6]s
    local: {auth: psk, id: %[1]s.test}
    remote: {auth: psk, id: %[3]s.test}
    children:
      net: {local_ts: [%[7]s], remote_ts: [%[8]s], rekey_time: 1h%[9]s}
`

func startLifecyclePair(t *testing.T, o pairOptions) *lifecyclePair {
	t.Helper()
	testbed.Require(t, "root", "ip", "tun", "ping")
	bin := cygnetBinary(t)
	p := &lifecyclePair{leftNS: testbed.NewNetns(t, "lcl"), rightNS: testbed.NewNetns(t, "lcr")}
	leftAddr, leftPeer, rightAddr, rightPeer := "192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.1"
	if o.proxyDelay == 0 {
		p.leftIf, _ = testbed.Link(t, p.leftNS, p.rightNS,
			[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
			[]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")})
	} else {
		mid := testbed.NewNetns(t, "lcm")
		p.leftIf, _ = testbed.Link(t, p.leftNS, mid,
			[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
			[]netip.Prefix{netip.MustParsePrefix("192.0.2.254/24")})
		testbed.Link(t, mid, p.rightNS,
			[]netip.Prefix{netip.MustParsePrefix("198.51.100.254/24")},
			[]netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")})
		leftPeer, rightAddr, rightPeer = "192.0.2.254", "198.51.100.2", "198.51.100.254"
		p.proxy = startDelayProxy(t, mid,
			netip.AddrPortFrom(netip.MustParseAddr("192.0.2.254"), 0), netip.MustParseAddr("192.0.2.1"),
			netip.AddrPortFrom(netip.MustParseAddr("198.51.100.254"), 0), netip.MustParseAddr("198.51.100.2"),
			o.proxyDelay)
	}
	p.leftNS.AddAddr(t, "lo", netip.MustParsePrefix("10.1.0.1/32"))
	p.rightNS.AddAddr(t, "lo", netip.MustParsePrefix("10.2.0.1/32"))
	start := func(ns *testbed.Netns, name, addr, peer, peerAddr, conn, local, remote, child string) (*daemonProc, *testbed.Process) {
		socket := filepath.Join(ns.Dir(), "cygnet.sock")
		cfg := filepath.Join(ns.Dir(), "cygnet.yaml")
		writeFile(t, cfg, fmt.Sprintf(lifecycleConf, name, addr, peer, peerAddr, socket, conn, local, remote, child))
		proc := ns.Start(t, "cygnet-"+name, testbed.StartOptions{}, bin, "daemon", "-c", cfg)
		d := &daemonProc{t: t, name: name, socket: socket}
		waitSocket(t, d, proc)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's log (tail):\n%s", name, lastLines(proc.Output(), 120))
			}
		})
		return d, proc
	}
	p.left, p.leftProc = start(p.leftNS, "left", leftAddr, "right", leftPeer, o.leftConn, "10.1.0.0/16", "10.2.0.0/16", o.leftChild)
	p.right, p.rightProc = start(p.rightNS, "right", rightAddr, "left", rightPeer, o.rightConn, "10.2.0.0/16", "10.1.0.0/16", o.rightChild)
	return p
}

// delayProxy forwards UDP between two networks on ports 500 and 4500, as a
// NAT would (a's side talks to aAddr, b's side to bAddr, each port to the
// same port), and holds CREATE_CHILD_SA requests back until the other end's
// request arrives too (or for delay): two rekeys started within that time of
// each other are sure to cross (RFC 7296 2.8.1). ESP, the other IKE messages and NAT-keepalives pass at once.
// (The kernel here has no netem qdisc to delay packets.)
type delayProxy struct {
	delay   time.Duration
	held    atomic.Int64
	wg      sync.WaitGroup
	sockets []net.PacketConn

	mu      sync.Mutex
	pending []func() // held requests, released together
}

// hold keeps a CREATE_CHILD_SA request back. Held requests are released
// together: as soon as a second one is held (two rekeys, one from each end),
// or after the delay. Releasing each one a fixed time after its own arrival
// would let the first request be answered before the second one reaches its
// peer when the two rekeys start a few milliseconds apart: then the second
// end sees no crossing, only a finished rekey, and there is no collision.
func (p *delayProxy) hold(send func()) {
	p.held.Add(1)
	p.mu.Lock()
	p.pending = append(p.pending, send)
	n := len(p.pending)
	p.mu.Unlock()
	if n >= 2 {
		p.release()
		return
	}
	time.AfterFunc(p.delay, p.release)
}

func (p *delayProxy) release() {
	p.mu.Lock()
	sends := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, send := range sends {
		send()
	}
}

func startDelayProxy(t *testing.T, ns *testbed.Netns, aAddr netip.AddrPort, aPeer netip.Addr, bAddr netip.AddrPort, bPeer netip.Addr, delay time.Duration) *delayProxy {
	t.Helper()
	p := &delayProxy{delay: delay}
	for _, port := range []uint16{500, 4500} {
		var a, b net.PacketConn
		if err := inNetns(ns.Name, func() (err error) {
			if a, err = net.ListenPacket("udp4", netip.AddrPortFrom(aAddr.Addr(), port).String()); err != nil {
				return err
			}
			b, err = net.ListenPacket("udp4", netip.AddrPortFrom(bAddr.Addr(), port).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		p.sockets = append(p.sockets, a, b)
		p.forward(a, b, net.UDPAddrFromAddrPort(netip.AddrPortFrom(bPeer, port)), port == 4500)
		p.forward(b, a, net.UDPAddrFromAddrPort(netip.AddrPortFrom(aPeer, port)), port == 4500)
	}
	t.Cleanup(func() {
		for _, c := range p.sockets {
			c.Close()
		}
		p.wg.Wait()
	})
	return p
}

// forward reads datagrams on in and sends them out of out to to.
func (p *delayProxy) forward(in, out net.PacketConn, to net.Addr, natt bool) {
	p.wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := in.ReadFrom(buf)
			if err != nil {
				return
			}
			d := bytes.Clone(buf[:n])
			ike := d
			if natt {
				// RFC 3948 2.2: IKE on the NAT-T port has a zero non-ESP
				// marker; anything else there is ESP or a keepalive.
				if len(d) < 4 || binary.BigEndian.Uint32(d) != 0 {
					ike = nil
				} else {
					ike = d[4:]
				}
			}
			// RFC 7296 3.1: the exchange type at octet 18 (36:
			// CREATE_CHILD_SA), the flags at 19 (0x20: response).
			if len(ike) >= 28 && ike[18] == 36 && ike[19]&0x20 == 0 {
				p.hold(func() { out.WriteTo(d, to) })
				continue
			}
			out.WriteTo(d, to)
		}
	})
}

// bothOne waits until both daemons hold exactly one IKE SA with one
// CHILD_SA net, the same pair, for which changed (if set) holds.
func (p *lifecyclePair) bothOne(what string, changed func(l, r *control.Status) bool) (*control.Status, *control.Status) {
	t := p.left.t
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, r := p.left.status(), p.right.status()
		if oneSA(l, "site", "net") && oneSA(r, "site", "net") && (changed == nil || changed(l, r)) {
			li, ri := l.IKESAs[0], r.IKESAs[0]
			lc, rc := li.ChildSAs[0], ri.ChildSAs[0]
			if li.SPIi == ri.SPIi && li.SPIr == ri.SPIr && lc.SPIIn == rc.SPIOut && lc.SPIOut == rc.SPIIn {
				return l, r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\nleft: %+v\nright: %+v", what, l, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCygnetRekeyCollision has two daemons rekey the same SA at the same
// instant (`cygnet rekey` through both control sockets at once): the
// CHILD_SA, then the IKE SA, then the CHILD_SA again (on the new IKE SA),
// with a UDP stream each way. A NAT in the middle holds CREATE_CHILD_SA
// requests for 200 ms, so the two requests cross (RFC 7296 2.8.1, 2.8.2)
// however the two processes are scheduled: each end answers the other's
// request, compares the nonces when its own answer comes, one end wins
// and the other loses, no SA is left twice, and nothing is lost.
func TestCygnetRekeyCollision(t *testing.T) {
	p := startLifecyclePair(t, pairOptions{proxyDelay: 200 * time.Millisecond})
	if code, out, errOut := p.left.cli("up", "site", "net"); code != 0 {
		t.Fatalf("cygnet up: exit %d\n%s%s", code, out, errOut)
	}
	p.bothOne("the SAs", nil)
	toRight := startUDPStream(t, "left -> right", p.leftNS, p.rightNS, "10.1.0.1", "10.2.0.1", 7001, 10*time.Millisecond)
	toLeft := startUDPStream(t, "right -> left", p.rightNS, p.leftNS, "10.2.0.1", "10.1.0.1", 7002, 10*time.Millisecond)

	clients := make([]*control.Client, 2)
	for i, d := range []*daemonProc{p.left, p.right} {
		c, err := control.Dial(d.socket)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	for _, kind := range []string{"child", "ike", "child"} {
		child := map[string]string{"child": "net", "ike": ""}[kind]
		before := []*control.Status{p.left.status(), p.right.status()}
		held := p.proxy.held.Load()
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				if err := c.Rekey(context.Background(), "site", child); err != nil {
					t.Errorf("%s: rekey site %s: %v", []string{"left", "right"}[i], child, err)
				}
			})
		}
		wg.Wait()
		l, r := p.bothOne("one "+kind+" SA after the collision", func(l, r *control.Status) bool {
			if kind == "child" {
				return l.IKESAs[0].ChildSAs[0].SPIIn != before[0].IKESAs[0].ChildSAs[0].SPIIn
			}
			return l.IKESAs[0].SPIi != before[0].IKESAs[0].SPIi
		})
		var won, lost [2]uint64
		for i, st := range []*control.Status{l, r} {
			won[i] = st.IKESAs[0].CollisionsWon - before[i].IKESAs[0].CollisionsWon
			lost[i] = st.IKESAs[0].CollisionsLost - before[i].IKESAs[0].CollisionsLost
		}
		t.Logf("%s SA collision: left won %d lost %d, right won %d lost %d (%d requests held)",
			kind, won[0], lost[0], won[1], lost[1], p.proxy.held.Load()-held)
		if won[0]+won[1] != 1 || lost[0]+lost[1] != 1 || won[0] != lost[1] {
			t.Errorf("%s SA collision: won %v, lost %v (left, right); want one end to win, the other to lose", kind, won, lost)
		}
		if rekeyed := l.IKESAs[0].ChildRekeys + l.IKESAs[0].Rekeys - before[0].IKESAs[0].ChildRekeys - before[0].IKESAs[0].Rekeys; rekeyed != 1 {
			t.Errorf("%s SA collision: left counted %d rekeys, want 1", kind, rekeyed)
		}
		time.Sleep(500 * time.Millisecond) // traffic on the new SAs
	}
	for _, s := range []*udpStream{toRight, toLeft} {
		r := s.finish()
		t.Logf("%s: %s", s.name, r)
		if r.Lost != 0 || r.Duplicates != 0 || r.Reordered != 0 {
			t.Errorf("%s: %s; lost ones sent at %v", s.name, r, r.LostAt)
		}
	}
	l, r := p.bothOne("one SA at the end", nil)
	for i, st := range []*control.Status{l, r} {
		ike, ns := st.IKESAs[0], []*testbed.Netns{p.leftNS, p.rightNS}[i]
		var counts []string
		for _, kind := range []string{"child", "ike"} {
			for _, outcome := range []string{"won", "lost"} {
				counts = append(counts, kind+" "+outcome+" "+cygMetric(t, ns, `cygnet_rekey_collisions_total{kind="`+kind+`",outcome="`+outcome+`"}`))
			}
		}
		t.Logf("%s: IKE SA rekeyed %d times, CHILD_SA %d times; status: collisions won %d, lost %d; metrics: %s",
			[]string{"left", "right"}[i], ike.Rekeys, ike.ChildRekeys, ike.CollisionsWon, ike.CollisionsLost, strings.Join(counts, ", "))
	}
}

// TestCygnetDeadPeer cuts the veth under an IKE SA between two daemons:
// left, with dpd_delay 2s and dpd_timeout 3s, removes its SAs within 5 s
// and says why (log, status, metrics); with dpd_action start and
// keyingtries 0 it initiates again and succeeds once the link is back.
func TestCygnetDeadPeer(t *testing.T) {
	p := startLifecyclePair(t, pairOptions{
		leftConn: "    dpd_delay: 2s\n    dpd_timeout: 3s\n    keyingtries: 0", leftChild: ", dpd_action: start",
		rightConn: "    dpd_delay: 0s",
	})
	if code, out, errOut := p.left.cli("up", "site", "net"); code != 0 {
		t.Fatalf("cygnet up: exit %d\n%s%s", code, out, errOut)
	}
	first, _ := p.bothOne("the SAs", nil)
	ping(t, p.leftNS, "10.1.0.1", "10.2.0.1", 2)

	p.leftNS.Run(t, "ip", "link", "set", p.leftIf, "down")
	cut := time.Now()
	deadline := cut.Add(15 * time.Second)
	for {
		st := p.left.status()
		if len(st.IKESAs) == 0 || st.IKESAs[0].SPIi != first.IKESAs[0].SPIi {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left still has its IKE SA 15 s after the cut: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	gone := time.Since(cut)
	t.Logf("left removed its SAs %v after the cut (dpd_delay 2s + dpd_timeout 3s)", gone.Round(10*time.Millisecond))
	// The bound, with a second for scheduling on a loaded machine.
	if gone > 6*time.Second {
		t.Errorf("SAs removed %v after the cut; the bound is 5 s", gone)
	}
	p.leftProc.WaitOutput(t, "dead peer: IKE SA and its CHILD_SAs removed", 2*time.Second)
	for _, line := range strings.Split(p.leftProc.Output(), "\n") {
		if strings.Contains(line, "dead peer:") || strings.Contains(line, "msg=\"IKE SA failed\"") {
			t.Logf("left's log: %s", line)
		}
	}
	for _, m := range []string{"cygnet_dead_peers_total", `cygnet_restarts_total{trigger="dpd_action",action="start"}`} {
		if got := cygMetric(t, p.leftNS, m); got != "1" {
			t.Errorf("%s = %s, want 1", m, got)
		}
	}

	time.Sleep(time.Second)
	p.leftNS.Run(t, "ip", "link", "set", p.leftIf, "up")
	back := time.Now()
	// Right still holds the old IKE SA (no DPD there); left's
	// INITIAL_CONTACT makes it drop it.
	p.bothOne("the SAs again", func(l, r *control.Status) bool { return l.IKESAs[0].SPIi != first.IKESAs[0].SPIi })
	t.Logf("re-established %v after the link came back", time.Since(back).Round(10*time.Millisecond))
	ping(t, p.leftNS, "10.1.0.1", "10.2.0.1", 2)
}
