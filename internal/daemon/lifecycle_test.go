package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/transport/memnet"
)

// Tests of the runtime's lifecycle policies: close_action and dpd_action,
// rekeys on request and forced collisions through the runtime and the
// userspace data plane, and the metrics and status that report them.

var aliceAddr, bobAddr = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")

// seqStream sends numbered datagrams from one node's tunnel to the other's
// and checks that every one arrives, in order.
type seqStream struct {
	from, to *node
	src, dst string
	n        int
	got      [][]byte
	done     chan struct{}
}

// startStreams starts a receiver for n datagrams at each end of the
// streams; send sends them.
func startStreams(n int, streams ...*seqStream) {
	for _, s := range streams {
		s.n = n
		s.done = make(chan struct{})
		go func() {
			defer close(s.done)
			s.got = s.to.receive(n)
		}()
	}
}

// sendStreams sends datagram i of every stream, for i in [from, to),
// interval apart.
func sendStreams(from, to int, interval time.Duration, streams ...*seqStream) {
	for i := from; i < to; i++ {
		for _, s := range streams {
			s.from.inject(ipv4UDP(s.src, s.dst, fmt.Sprintf("#%05d", i)))
		}
		time.Sleep(interval)
	}
}

// check waits for the receivers and fails on a lost, duplicated or
// reordered datagram.
func checkStreams(t *testing.T, streams ...*seqStream) {
	t.Helper()
	for _, s := range streams {
		<-s.done
		for i, p := range s.got {
			if want := fmt.Sprintf("#%05d", i); !bytes.HasSuffix(p, []byte(want)) {
				t.Fatalf("%s -> %s: datagram %d is %q, want %s (lost or reordered)", s.src, s.dst, i, p[28:], want)
			}
		}
	}
}

// metricInt returns the value of one counter sample.
func (n *node) metricInt(sample string) int {
	n.t.Helper()
	var v int
	if _, err := fmt.Sscan(n.metric(sample), &v); err != nil {
		n.t.Fatalf("%s: %s: %v", n.name, sample, err)
	}
	return v
}

// oneEach is a waitStatus predicate: exactly one IKE SA, ESTABLISHED, with
// exactly one CHILD_SA per name, each INSTALLED.
func oneEach(children ...string) func(*control.Status) bool {
	return func(st *control.Status) bool {
		if len(st.IKESAs) != 1 || st.IKESAs[0].State != control.IKEEstablished || len(st.IKESAs[0].ChildSAs) != len(children) {
			return false
		}
		for i, c := range st.IKESAs[0].ChildSAs {
			if c.Name != children[i] || c.State != control.ChildInstalled || c.InboundOnly {
				return false
			}
		}
		return true
	}
}

// matching checks that a's and b's only CHILD_SAs are the two halves of one
// pair and their IKE SAs the same.
func matching(t *testing.T, a, b *control.Status) {
	t.Helper()
	ia, ib := a.IKESAs[0], b.IKESAs[0]
	if ia.SPIi != ib.SPIi || ia.SPIr != ib.SPIr {
		t.Errorf("IKE SAs differ: %s/%s and %s/%s", ia.SPIi, ia.SPIr, ib.SPIi, ib.SPIr)
	}
	for i := range ia.ChildSAs {
		if ca, cb := ia.ChildSAs[i], ib.ChildSAs[i]; ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn {
			t.Errorf("CHILD_SA %s: %s/%s and %s/%s are not one pair", ca.Name, ca.SPIIn, ca.SPIOut, cb.SPIIn, cb.SPIOut)
		}
	}
}

// TestForcedRekeyCollision has both ends rekey the CHILD_SA, then the IKE
// SA, at the same instant, with 30 ms of latency on the link so that the
// two requests cross (RFC 7296 2.8.1, 2.8.2), while datagrams flow both
// ways through the userspace data plane: one end wins each collision, the
// other loses it, no SA is left twice, and nothing is lost or reordered.
func TestForcedRekeyCollision(t *testing.T) {
	b := userspaceBench(t, func(o *benchOptions) { o.faults = memnet.Faults{Latency: 30 * time.Millisecond} })
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	b.bob.waitStatus("bob's CHILD_SA", established("site", "net"))
	streams := []*seqStream{
		{from: b.alice, to: b.bob, src: "10.1.0.1", dst: "10.2.0.1"},
		{from: b.bob, to: b.alice, src: "10.2.0.1", dst: "10.1.0.1"},
	}
	const perPhase = 150 // 2 ms apart: 300 ms, several round trips
	startStreams(3*perPhase, streams...)
	sendStreams(0, perPhase, 2*time.Millisecond, streams...)

	for i, tc := range []struct {
		kind, child string
	}{{"child", "net"}, {"ike", ""}} {
		before := b.alice.status().IKESAs[0]
		// The same instant: both requests leave before either arrives.
		var wg sync.WaitGroup
		for _, n := range []*node{b.alice, b.bob} {
			wg.Go(func() {
				if err := n.d.Rekey(context.Background(), "site", tc.child); err != nil {
					t.Errorf("%s: Rekey(site, %q): %v", n.name, tc.child, err)
				}
			})
		}
		wg.Wait()
		sendStreams((i+1)*perPhase, (i+2)*perPhase, 2*time.Millisecond, streams...)
		a := b.alice.waitStatus("one "+tc.kind+" SA after the collision", oneEach("net"))
		bs := b.bob.waitStatus("one "+tc.kind+" SA after the collision", oneEach("net"))
		matching(t, a, bs)
		if tc.kind == "child" && a.IKESAs[0].ChildSAs[0].SPIIn == before.ChildSAs[0].SPIIn ||
			tc.kind == "ike" && a.IKESAs[0].SPIi == before.SPIi {
			t.Errorf("%s SA not rekeyed: before %+v, after %+v", tc.kind, before, a.IKESAs[0])
		}
		won, lost := 0, 0
		for _, n := range []*node{b.alice, b.bob} {
			w := n.metricInt(`cygnet_rekey_collisions_total{kind="` + tc.kind + `",outcome="won"}`)
			l := n.metricInt(`cygnet_rekey_collisions_total{kind="` + tc.kind + `",outcome="lost"}`)
			won, lost = won+w, lost+l
			t.Logf("%s SA collision: %s won %d, lost %d", tc.kind, n.name, w, l)
		}
		if won != 1 || lost != 1 {
			t.Errorf("%s SA collision: %d won, %d lost over both ends; want one each", tc.kind, won, lost)
		}
	}
	checkStreams(t, streams...)

	// Status sums the IKE SA's line: the collisions of both phases.
	for _, n := range []*node{b.alice, b.bob} {
		ike := n.status().IKESAs[0]
		if ike.CollisionsWon+ike.CollisionsLost != 2 || ike.Rekeys != 1 || ike.ChildRekeys != 1 {
			t.Errorf("%s's status: %d collisions won, %d lost, %d IKE rekeys, %d CHILD_SA rekeys; want 2 collisions, one rekey each",
				n.name, ike.CollisionsWon, ike.CollisionsLost, ike.Rekeys, ike.ChildRekeys)
		}
	}
}

// TestRekeyCommand: Rekey's errors, and a rekey of each kind.
func TestRekeyCommand(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	ctx := context.Background()
	for _, tc := range []struct{ conn, child, err string }{
		{"nope", "", `daemon: no connection "nope"`},
		{"site", "nope", `daemon: connection "site" has no child "nope"`},
		{"site", "", `daemon: connection "site" has no established IKE SA`},
	} {
		if err := b.alice.d.Rekey(ctx, tc.conn, tc.child); err == nil || err.Error() != tc.err {
			t.Errorf("Rekey(%q, %q) = %v, want %s", tc.conn, tc.child, err, tc.err)
		}
	}
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	if err := b.alice.d.Rekey(ctx, "site", "more"); err == nil || err.Error() != `daemon: connection "site" has no CHILD_SA "more" up` {
		t.Errorf("Rekey of a child that is not up: %v", err)
	}
	before := b.alice.status().IKESAs[0]
	for _, child := range []string{"net", ""} {
		if err := b.alice.d.Rekey(ctx, "site", child); err != nil {
			t.Fatalf("Rekey(site, %q): %v", child, err)
		}
		b.alice.waitStatus("the rekey", oneEach("net"))
	}
	waitUntil(t, "the rekeys counted", func() bool {
		return b.alice.metric(`cygnet_rekeys_total{kind="ike",role="initiator"}`) == "1" &&
			b.alice.metric(`cygnet_rekeys_total{kind="child",role="initiator"}`) == "1" &&
			b.bob.metric(`cygnet_rekeys_total{kind="ike",role="responder"}`) == "1" &&
			b.bob.metric(`cygnet_rekeys_total{kind="child",role="responder"}`) == "1"
	})
	after := b.alice.waitStatus("one IKE SA", oneEach("net")).IKESAs[0]
	if after.SPIi == before.SPIi || after.ChildSAs[0].SPIIn == before.ChildSAs[0].SPIIn || after.Rekeys != 1 || after.ChildRekeys != 1 {
		t.Errorf("before %+v\nafter %+v", before, after)
	}
}

// TestCloseActionStart: the peer deletes the IKE SA; close_action start
// brings the CHILD_SA back with a new IKE SA, and the metrics say why.
func TestCloseActionStart(t *testing.T) {
	o := defaultBenchOptions()
	o.alice.netChild = "close_action: start"
	b := newBench(t, o)
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	first := b.bob.waitStatus("bob's SAs", oneEach("net")).IKESAs[0]
	if err := b.bob.d.Down(context.Background(), "site"); err != nil {
		t.Fatal(err)
	}
	again := b.alice.waitStatus("the SAs again", func(st *control.Status) bool {
		return oneEach("net")(st) && st.IKESAs[0].SPIi != first.SPIi
	})
	b.bob.waitStatus("bob's new SAs", func(st *control.Status) bool {
		return oneEach("net")(st) && st.IKESAs[0].SPIi == again.IKESAs[0].SPIi
	})
	wantMetrics(t, "alice", metricsText(t, b.alice),
		`cygnet_restarts_total{trigger="close_action",action="start"} 1`,
		`cygnet_deletes_total{kind="ike",initiator="remote"} 1`,
		`cygnet_deletes_total{kind="child",initiator="remote"} 1`,
		`cygnet_ike_handshakes_total{role="initiator",outcome="established"} 2`)
	wantMetrics(t, "bob", metricsText(t, b.bob),
		`cygnet_deletes_total{kind="ike",initiator="local"} 1`)
	if !strings.Contains(b.alice.logBuf.String(), "CHILD_SA gone; initiating it again") {
		t.Error("alice did not log the restart")
	}

	// Our own down is no reason to restart.
	if err := b.alice.d.Down(context.Background(), "site"); err != nil {
		t.Fatal(err)
	}
	b.bob.waitStatus("no SAs", noSAs)
	time.Sleep(100 * time.Millisecond)
	if st := b.alice.status(); len(st.IKESAs) != 0 {
		t.Errorf("alice restarted after her own down: %+v", st)
	}
}

// TestCloseActionTrap: close_action trap installs the child's trap policy
// when the peer deletes it; the next packet brings it back.
func TestCloseActionTrap(t *testing.T) {
	b := userspaceBench(t, func(o *benchOptions) { o.alice.netChild = "close_action: trap" })
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	if traps := b.alice.us.Traps(); len(traps) != 0 {
		t.Fatalf("traps before the peer's delete: %v", traps)
	}
	if err := b.bob.d.Down(context.Background(), "site"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the trap policy", func() bool { return len(b.alice.us.Traps()) == 1 })
	if st := b.alice.status(); len(st.IKESAs) != 0 {
		t.Fatalf("SAs before any packet: %+v", st)
	}
	waitUntil(t, "the SAs after a packet hit the trap", func() bool {
		b.alice.inject(ipv4UDP("10.1.0.1", "10.2.0.1", "knock"))
		time.Sleep(10 * time.Millisecond)
		return oneEach("net")(b.alice.status())
	})
	if got := b.alice.metric(`cygnet_restarts_total{trigger="close_action",action="trap"}`); got != "1" {
		t.Errorf("cygnet_restarts_total{close_action,trap} = %s, want 1", got)
	}
}

// TestDeadPeerAction cuts the link in virtual time: the liveness check
// after dpd_delay (10 s) of silence goes unanswered, and dpd_timeout (5 s)
// later the IKE SA and its CHILD_SA are gone, with a log line and the
// metrics saying why; dpd_action start initiates again and, once the link
// is back, succeeds.
func TestDeadPeerAction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := defaultBenchOptions()
		o.retransmit = sa.Retransmit{} // the engine's (4 s, 1.8, 5 tries): dpd_timeout decides
		o.alice.extraConns = ""
		o.alice.dpdDelay = "10s"
		o.alice.connExtra = "dpd_timeout: 5s\n    keyingtries: 0"
		o.alice.netChild = "dpd_action: start"
		b := newBench(t, o)
		if err := b.alice.up("site", "net"); err != nil {
			t.Fatal(err)
		}
		first := b.alice.status().IKESAs[0]
		b.net.Cut(aliceAddr, bobAddr)
		cut := time.Now()

		// Up to the bound the SA stays; at it, it is gone.
		time.Sleep(15*time.Second - time.Millisecond)
		synctest.Wait()
		if st := b.alice.status(); len(st.IKESAs) != 1 || st.IKESAs[0].SPIi != first.SPIi {
			t.Fatalf("%v after the cut: %+v", time.Since(cut), st)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		st := b.alice.status()
		for _, ike := range st.IKESAs {
			if ike.SPIi == first.SPIi {
				t.Fatalf("%v after the cut, with dpd_delay 10s and dpd_timeout 5s, the IKE SA is still there: %+v", time.Since(cut), st)
			}
		}
		log := b.alice.logBuf.String()
		for _, want := range []string{"dead peer: IKE SA and its CHILD_SAs removed", "liveness check", "CHILD_SA gone; initiating it again"} {
			if !strings.Contains(log, want) {
				t.Errorf("alice's log lacks %q", want)
			}
		}
		wantMetrics(t, "alice", metricsText(t, b.alice),
			"cygnet_dead_peers_total 1",
			`cygnet_restarts_total{trigger="dpd_action",action="start"} 1`,
			`cygnet_child_sas{state="INSTALLED"} 0`,
			`cygnet_deletes_total{kind="child",initiator="local"} 0`)

		// The re-initiation retransmits into the cut; once the link is
		// back, a retransmission gets through.
		time.Sleep(5 * time.Second)
		b.net.Restore(aliceAddr, bobAddr)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		st = b.alice.status()
		if !oneEach("net")(st) || st.IKESAs[0].SPIi == first.SPIi {
			t.Fatalf("not re-established 30 s after the link came back: %+v", st)
		}
		// Bob heard INITIAL_CONTACT and dropped the IKE SA alice lost.
		if bst := b.bob.status(); !oneEach("net")(bst) {
			t.Errorf("bob: %+v", bst)
		}
		b.alice.stop()
		b.bob.stop()
	})
}

// TestDownKeepsTrapUninstallRemoves: as in strongSwan, Down (swanctl
// --terminate) leaves a trap that close_action installed, so the next
// packet brings the SAs back; Uninstall (swanctl --uninstall) removes it.
func TestDownKeepsTrapUninstallRemoves(t *testing.T) {
	b := userspaceBench(t, func(o *benchOptions) { o.alice.netChild = "close_action: trap" })
	ctx := context.Background()
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	if err := b.alice.d.Uninstall(ctx, "site", ""); err == nil || err.Error() != `daemon: connection "site" has no trap policy installed` {
		t.Errorf("Uninstall without a trap: %v", err)
	}
	if err := b.bob.d.Down(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "close_action's trap policy", func() bool { return len(b.alice.us.Traps()) == 1 })
	waitUntil(t, "the SAs after a packet hit the trap", func() bool {
		b.alice.inject(ipv4UDP("10.1.0.1", "10.2.0.1", "knock"))
		time.Sleep(10 * time.Millisecond)
		return oneEach("net")(b.alice.status())
	})
	if err := b.alice.d.Down(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	b.alice.waitStatus("down", noSAs)
	if traps := b.alice.us.Traps(); len(traps) != 1 {
		t.Fatalf("traps after Down: %v, want close_action's still there", traps)
	}

	for _, tc := range []struct{ conn, child, err string }{
		{"nope", "", `daemon: no connection "nope"`},
		{"site", "nope", `daemon: connection "site" has no child "nope"`},
		{"site", "more", `daemon: child "more" of connection "site" has no trap policy installed`},
	} {
		if err := b.alice.d.Uninstall(ctx, tc.conn, tc.child); err == nil || err.Error() != tc.err {
			t.Errorf("Uninstall(%q, %q) = %v, want %s", tc.conn, tc.child, err, tc.err)
		}
	}
	if err := b.alice.d.Uninstall(ctx, "site", "net"); err != nil {
		t.Fatal(err)
	}
	if traps := b.alice.us.Traps(); len(traps) != 0 {
		t.Fatalf("traps after Uninstall: %v", traps)
	}
	// A packet now goes nowhere: no acquire, no SA.
	for range 5 {
		b.alice.inject(ipv4UDP("10.1.0.1", "10.2.0.1", "knock"))
		time.Sleep(10 * time.Millisecond)
	}
	if st := b.alice.status(); len(st.IKESAs) != 0 {
		t.Errorf("SAs after Uninstall and a packet: %+v", st)
	}
}
