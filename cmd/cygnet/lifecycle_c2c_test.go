package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// Lifecycle tests between two `cygnet daemon` processes in namespaces
// (root): a rekey both sides start at the same instant, and a dead peer.

// lifecyclePair is two daemons, left 192.0.2.1 with 10.1.0.1 inside, right
// 192.0.2.2 with 10.2.0.1, each with its metrics on 127.0.0.1:9134 of its
// namespace.
type lifecyclePair struct {
	leftNS, rightNS     *testbed.Netns
	leftIf              string
	left, right         *daemonProc
	leftProc, rightProc *testbed.Process
}

// One side's configuration: name, address, peer name, peer address,
// socket, more settings of connection site (YAML lines indented by 4), more
// settings of its child net (YAML flow mapping entries).
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

func startLifecyclePair(t *testing.T, leftConn, leftChild, rightConn, rightChild string) *lifecyclePair {
	t.Helper()
	testbed.Require(t, "root", "ip", "tun", "ping")
	bin := cygnetBinary(t)
	p := &lifecyclePair{leftNS: testbed.NewNetns(t, "lcl"), rightNS: testbed.NewNetns(t, "lcr")}
	p.leftIf, _ = testbed.Link(t, p.leftNS, p.rightNS,
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")})
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
	p.left, p.leftProc = start(p.leftNS, "left", "192.0.2.1", "right", "192.0.2.2", leftConn, "10.1.0.0/16", "10.2.0.0/16", leftChild)
	p.right, p.rightProc = start(p.rightNS, "right", "192.0.2.2", "left", "192.0.2.1", rightConn, "10.2.0.0/16", "10.1.0.0/16", rightChild)
	return p
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
// instant (`cygnet rekey` through both control sockets, released
// together), the CHILD_SA, then the IKE SA, with a UDP stream each way:
// the two CREATE_CHILD_SA requests cross (RFC 7296 2.8.1, 2.8.2), one end
// wins, no SA is left twice, and nothing is lost. The instant is shared as
// closely as two processes allow (tens of microseconds); an attempt whose
// requests did not cross (one end saw the other's answer first: a plain
// rekey, or a collision only one end noticed) is repeated.
func TestCygnetRekeyCollision(t *testing.T) {
	p := startLifecyclePair(t, "", "", "", "")
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
	const attempts = 20
	for _, kind := range []string{"child", "ike"} {
		child := map[string]string{"child": "net", "ike": ""}[kind]
		crossed := 0
		for attempt := 1; attempt <= attempts && crossed == 0; attempt++ {
			before := []*control.Status{p.left.status(), p.right.status()}
			go1 := make(chan struct{})
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Go(func() {
					<-go1
					if err := c.Rekey(context.Background(), "site", child); err != nil {
						t.Errorf("%s: rekey site %s: %v", []string{"left", "right"}[i], child, err)
					}
				})
			}
			time.Sleep(10 * time.Millisecond) // both waiting on go1
			close(go1)
			wg.Wait()
			l, r := p.bothOne("one "+kind+" SA after the rekeys", func(l, r *control.Status) bool {
				if kind == "child" {
					return l.IKESAs[0].ChildSAs[0].SPIIn != before[0].IKESAs[0].ChildSAs[0].SPIIn
				}
				return l.IKESAs[0].SPIi != before[0].IKESAs[0].SPIi
			})
			// Outcomes at each end: the collisions it won and lost since.
			var won, lost [2]uint64
			for i, st := range []*control.Status{l, r} {
				won[i] = st.IKESAs[0].CollisionsWon - before[i].IKESAs[0].CollisionsWon
				lost[i] = st.IKESAs[0].CollisionsLost - before[i].IKESAs[0].CollisionsLost
			}
			t.Logf("%s rekey, attempt %d: left won %d lost %d, right won %d lost %d", kind, attempt, won[0], lost[0], won[1], lost[1])
			time.Sleep(250 * time.Millisecond) // traffic on the new SAs before the next
			switch {
			case won[0]+won[1] == 1 && lost[0]+lost[1] == 1 && won[0] == lost[1]:
				crossed = attempt // both saw it; one won, the other lost
			case won[0]+won[1] > 1 || lost[0]+lost[1] > 1 || won[0]+won[1] == 1 && lost[0]+lost[1] != 1:
				t.Errorf("%s rekey: collisions counted won %v, lost %v (left, right)", kind, won, lost)
			}
		}
		if crossed == 0 {
			t.Errorf("%s rekey: the requests never crossed in %d attempts", kind, attempts)
		}
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
	p := startLifecyclePair(t, "    dpd_delay: 2s\n    dpd_timeout: 3s\n    keyingtries: 0", ", dpd_action: start",
		"    dpd_delay: 0s", "")
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
