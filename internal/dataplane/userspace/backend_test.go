package userspace

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/transport/memnet"
)

type memTunnel struct {
	a, b     *memPeer
	saA, saB *dataplane.SA
	innerA   netip.Addr // an address of A's side
	innerB   netip.Addr
}

// newMemTunnel joins two backends over memnet with one SA pair.
func newMemTunnel(t testing.TB, s suite, v6outer, v6inner bool, mode dataplane.Mode) *memTunnel {
	n := memnet.New(memnet.Config{Seed: 1})
	oa, ob := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	if v6outer {
		oa, ob = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	}
	a, b := newMemPeer(t, n, oa, 0), newMemPeer(t, n, ob, 0)
	tsA, tsB := []dataplane.Selector{sel("10.1.0.0/16")}, []dataplane.Selector{sel("10.2.0.0/16")}
	ia, ib := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")
	if v6inner {
		tsA, tsB = []dataplane.Selector{sel("fd01::/64")}, []dataplane.Selector{sel("fd02::/64")}
		ia, ib = netip.MustParseAddr("fd01::1"), netip.MustParseAddr("fd02::1")
	}
	if mode == dataplane.Transport {
		tsA = []dataplane.Selector{sel(netip.PrefixFrom(oa, oa.BitLen()).String())}
		tsB = []dataplane.Selector{sel(netip.PrefixFrom(ob, ob.BitLen()).String())}
		ia, ib = oa, ob
	}
	forA, forB := makeSAs(s,
		peerSpec{outer: a.natAddr(), ts: tsA, spi: 0x1000},
		peerSpec{outer: b.natAddr(), ts: tsB, spi: 0x2000},
		mode, true, 1, 7)
	if err := a.b.Install(forA, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.b.Install(forB, 0); err != nil {
		t.Fatal(err)
	}
	return &memTunnel{a: a, b: b, saA: forA, saB: forB, innerA: ia, innerB: ib}
}

func l4(pkt []byte) []byte {
	if pkt[0]>>4 == 4 {
		return pkt[int(pkt[0]&0xf)*4:]
	}
	return pkt[40:]
}

func TestMemTunnel(t *testing.T) {
	for _, s := range suites {
		for _, mode := range []dataplane.Mode{dataplane.Tunnel, dataplane.Transport} {
			for _, fam := range []struct{ v6o, v6i bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
				if mode == dataplane.Transport && fam.v6o != fam.v6i {
					continue
				}
				name := fmt.Sprintf("%s/%v/outer-v6=%v/inner-v6=%v", s.name, mode, fam.v6o, fam.v6i)
				t.Run(name, func(t *testing.T) {
					tn := newMemTunnel(t, s, fam.v6o, fam.v6i, mode)
					for dir := range 2 {
						from, to, src, dst := tn.a, tn.b, tn.innerA, tn.innerB
						if dir == 1 {
							from, to, src, dst = tn.b, tn.a, tn.innerB, tn.innerA
						}
						var sent [][]byte
						for i := range 50 {
							sent = append(sent, udpPacket(src, dst, 1000, 2000, bytes.Repeat([]byte{byte(i)}, 10+i*20)))
						}
						from.send(t, sent...)
						got := to.recv(t, len(sent))
						for i := range sent {
							if mode == dataplane.Tunnel && !bytes.Equal(got[i], sent[i]) {
								t.Fatalf("dir %d packet %d: got %x, want %x", dir, i, got[i], sent[i])
							}
							if mode == dataplane.Transport && !bytes.Equal(l4(got[i]), l4(sent[i])) {
								t.Fatalf("dir %d packet %d: got %x, want %x", dir, i, got[i], sent[i])
							}
						}
					}
					ca, _ := tn.a.b.Counters(tn.saA.InSPI)
					if ca.PacketsOut != 50 || ca.PacketsIn != 50 || ca.BytesOut == 0 || ca.LastIn.IsZero() || ca.LastOut.IsZero() {
						t.Errorf("counters of A: %+v", ca)
					}
				})
			}
		}
	}
}

func TestInboundPolicyDrop(t *testing.T) {
	tn := newMemTunnel(t, suites[0], false, false, dataplane.Tunnel)
	// A's SA claims 10.1.0.0/16, but B accepts only 10.1.0.0/24 from it.
	n := memnet.New(memnet.Config{})
	_ = n
	if err := tn.b.b.Remove(tn.saB.InSPI); err != nil {
		t.Fatal(err)
	}
	_, forB := makeSAs(suites[0],
		peerSpec{outer: tn.a.natAddr(), ts: []dataplane.Selector{sel("10.1.0.0/24")}, spi: 0x1000},
		peerSpec{outer: tn.b.natAddr(), ts: []dataplane.Selector{sel("10.2.0.0/16")}, spi: 0x2000},
		dataplane.Tunnel, true, 1, 7)
	if err := tn.b.b.Install(forB, 0); err != nil {
		t.Fatal(err)
	}
	tn.a.send(t,
		udpPacket(netip.MustParseAddr("10.1.1.5"), tn.innerB, 1, 2, []byte("outside")),
		udpPacket(netip.MustParseAddr("10.1.0.5"), tn.innerB, 1, 2, []byte("inside")))
	got := tn.b.recv(t, 1)
	if !bytes.Contains(got[0], []byte("inside")) {
		t.Fatalf("got %x", got[0])
	}
	waitFor(t, func() bool {
		c, _ := tn.b.b.Counters(0x2000)
		return c.Drops[dataplane.DropPolicy] == 1 && c.PacketsIn == 2
	})
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNoPolicyAndTrap(t *testing.T) {
	tn := newMemTunnel(t, suites[0], false, false, dataplane.Tunnel)
	var mu sync.Mutex
	var events []dataplane.Event
	tn.a.b.SetEventHandler(func(ev dataplane.Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	other := netip.MustParseAddr("10.9.0.1")
	tn.a.send(t, udpPacket(tn.innerA, other, 1, 2, nil))
	waitFor(t, func() bool { return tn.a.b.Stats().NoPolicyOut == 1 })
	if err := tn.a.b.Trap(dataplane.Trap{ReqID: 42, LocalTS: []dataplane.Selector{sel("10.1.0.0/16")}, RemoteTS: []dataplane.Selector{sel("10.9.0.0/16")}}); err != nil {
		t.Fatal(err)
	}
	// A trap for the installed SA's selectors ranks after the SA.
	if err := tn.a.b.Trap(dataplane.Trap{ReqID: 1, LocalTS: []dataplane.Selector{sel("10.1.0.0/16")}, RemoteTS: []dataplane.Selector{sel("10.2.0.0/16")}}); err != nil {
		t.Fatal(err)
	}
	tn.a.send(t, udpPacket(tn.innerA, other, 1, 2, nil), udpPacket(tn.innerA, other, 1, 2, nil))
	tn.a.send(t, udpPacket(tn.innerA, tn.innerB, 1, 2, nil))
	tn.b.recv(t, 1)
	waitFor(t, func() bool { return tn.a.b.Stats().TrapDrops == 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 {
		t.Fatalf("events %+v, want one acquire", events)
	}
	ev := events[0]
	if ev.Kind != dataplane.Acquire || ev.ReqID != 42 || ev.Packet.Start != tn.innerA || ev.Packet.End != other || ev.Packet.Protocol != 17 || ev.Packet.StartPort != 1 || ev.Packet.EndPort != 2 {
		t.Fatalf("event %+v", ev)
	}
	if err := tn.a.b.Untrap(42); err != nil {
		t.Fatal(err)
	}
	if err := tn.a.b.Untrap(42); !errors.Is(err, ErrUnknownTrap) {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	tn := newMemTunnel(t, suites[0], false, false, dataplane.Tunnel)
	evs := make(chan dataplane.Event, 10)
	tn.a.b.SetEventHandler(func(ev dataplane.Event) { evs <- ev })
	tn.a.b.Remove(tn.saA.InSPI)
	forA, _ := makeSAs(suites[0],
		peerSpec{outer: tn.a.natAddr(), ts: []dataplane.Selector{sel("10.1.0.0/16")}, spi: 0x1000},
		peerSpec{outer: tn.b.natAddr(), ts: []dataplane.Selector{sel("10.2.0.0/16")}, spi: 0x2000},
		dataplane.Tunnel, true, 1, 7)
	forA.SoftPackets, forA.HardPackets = 3, 5
	if err := tn.a.b.Install(forA, 0); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		tn.a.send(t, udpPacket(tn.innerA, tn.innerB, 1, 2, nil))
		time.Sleep(2 * time.Millisecond)
	}
	tn.b.recv(t, 5)
	if ev := <-evs; ev.Kind != dataplane.SoftExpire || ev.InSPI != 0x1000 || ev.ReqID != 1 {
		t.Fatalf("%+v", ev)
	}
	if ev := <-evs; ev.Kind != dataplane.HardExpire || ev.InSPI != 0x1000 {
		t.Fatalf("%+v", ev)
	}
	waitFor(t, func() bool {
		c, _ := tn.a.b.Counters(0x1000)
		return c.PacketsOut == 5 && c.Drops[dataplane.DropExpired] == 3
	})
}

// TestRekeyNoLoss replaces the SA pair on both sides while a stream runs,
// make-before-break: nothing may be lost.
func TestRekeyNoLoss(t *testing.T) {
	tn := newMemTunnel(t, suites[0], false, false, dataplane.Tunnel)
	const total = 3000
	var got [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = tn.b.recv(t, total)
	}()
	oldA, oldB := tn.saA.InSPI, tn.saB.InSPI
	for i := range total {
		tn.a.send(t, udpPacket(tn.innerA, tn.innerB, 1, 2, []byte(fmt.Sprint(i))))
		if i == total/3 {
			// The responder installs first, then the initiator switches
			// (RFC 7296 2.8), each make-before-break.
			newA, newB := makeSAs(suites[1],
				peerSpec{outer: tn.a.natAddr(), ts: tn.saA.LocalTS, spi: 0x1001},
				peerSpec{outer: tn.b.natAddr(), ts: tn.saB.LocalTS, spi: 0x2001},
				dataplane.Tunnel, true, 1, 8)
			if err := tn.b.b.Install(newB, oldB); err != nil {
				t.Fatal(err)
			}
			if err := tn.a.b.Install(newA, oldA); err != nil {
				t.Fatal(err)
			}
		}
		if i == 2*total/3 {
			if err := tn.a.b.Remove(oldA); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-done
	for i := range got {
		if !bytes.HasSuffix(got[i], []byte(fmt.Sprint(i))) {
			t.Fatalf("packet %d out of order or lost", i)
		}
	}
	if err := tn.b.b.Remove(oldB); err != nil {
		t.Fatal(err)
	}
	c, _ := tn.b.b.Counters(0x2001)
	if c.PacketsIn == 0 {
		t.Fatal("new SA carried nothing")
	}
	if _, ok := tn.b.b.Counters(oldB); ok {
		t.Fatal("old SA still there")
	}
}

func TestControlPlane(t *testing.T) {
	tn := newMemTunnel(t, suites[0], false, false, dataplane.Tunnel)
	b := tn.a.b
	spi, err := b.AllocSPI()
	if err != nil || spi < 256 {
		t.Fatal(spi, err)
	}
	if err := b.Remove(spi); err != nil {
		t.Fatal("larval remove:", err)
	}
	if err := b.Remove(12345); !errors.Is(err, dataplane.ErrUnknownSPI) {
		t.Fatal(err)
	}
	if err := b.Install(tn.saA, 0); !errors.Is(err, dataplane.ErrSPIInUse) {
		t.Fatal(err)
	}
	// XFRM interfaces are the kernel's.
	withIfID := *tn.saA
	withIfID.InSPI, withIfID.IfID = 0x4242, 42
	if err := b.Install(&withIfID, 0); !errors.Is(err, dataplane.ErrInvalidSA) {
		t.Fatalf("SA with an if_id: %v", err)
	}
	if err := b.Trap(dataplane.Trap{ReqID: 9, LocalTS: tn.saA.LocalTS, RemoteTS: tn.saA.RemoteTS, IfID: 42}); !errors.Is(err, dataplane.ErrInvalidSA) {
		t.Fatalf("trap with an if_id: %v", err)
	}
	keys := tn.saA.OutEncrKey
	if err := b.Remove(tn.saA.InSPI); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys, make([]byte, len(keys))) {
		t.Fatal("keys not zeroed")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AllocSPI(); !errors.Is(err, dataplane.ErrClosed) {
		t.Fatal(err)
	}
	if !bytes.Equal(tn.saB.InEncrKey, tn.saB.InEncrKey) {
		t.Fatal()
	}
}

// TestRekeyResponderDeferred is the rekey responder's make-before-break
// (RFC 7296 2.8): B answers A's rekey, installs the new SA with its outbound
// deferred, and keeps sending on the old SA until ActivateOutbound, which
// happens here in the middle of a stream. Nothing is lost or reordered, and
// each SA carries exactly its share.
func TestRekeyResponderDeferred(t *testing.T) {
	tn := newMemTunnel(t, suites[0], false, false, dataplane.Tunnel)
	oldA, oldB := tn.saA.InSPI, tn.saB.InSPI
	seq := 0
	stream := func(n int, during func(i int)) {
		t.Helper()
		var got [][]byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			got = tn.a.recv(t, n)
		}()
		first := seq
		for i := range n {
			tn.b.send(t, udpPacket(tn.innerB, tn.innerA, 1, 2, []byte(fmt.Sprintf("#%d", seq))))
			seq++
			if during != nil {
				during(i)
			}
		}
		<-done
		for i := range got {
			if want := fmt.Sprintf("#%d", first+i); !bytes.HasSuffix(got[i], []byte(want)) {
				t.Fatalf("packet %d: got %q, want %s (lost or reordered)", first+i, got[i][28:], want)
			}
		}
	}
	outOf := func(b *Backend, spi uint32) uint64 { c, _ := b.Counters(spi); return c.PacketsOut }
	inOf := func(b *Backend, spi uint32) uint64 { c, _ := b.Counters(spi); return c.PacketsIn }

	stream(500, nil)
	newA, newB := makeSAs(suites[2],
		peerSpec{outer: tn.a.natAddr(), ts: tn.saA.LocalTS, spi: 0x1001},
		peerSpec{outer: tn.b.natAddr(), ts: tn.saB.LocalTS, spi: 0x2001},
		dataplane.Tunnel, true, 1, 9)
	newB.DeferOutbound = true
	if err := tn.b.b.Install(newB, oldB); err != nil {
		t.Fatal(err)
	}
	// Deferred: B goes on sending on the old SA, which A still holds
	// alone (its half of the rekey is not done yet).
	stream(500, nil)
	if n := outOf(tn.b.b, 0x2001); n != 0 {
		t.Fatalf("the deferred SA sent %d packets before ActivateOutbound", n)
	}
	if n := outOf(tn.b.b, oldB); n != 1000 {
		t.Fatalf("the old SA sent %d packets, want 1000", n)
	}
	// A completes the exchange and switches at once (the initiator).
	if err := tn.a.b.Install(newA, oldA); err != nil {
		t.Fatal(err)
	}
	stream(1000, func(i int) {
		if i == 300 {
			if err := tn.b.b.ActivateOutbound(0x2001); err != nil {
				t.Fatal(err)
			}
		}
	})
	stream(100, nil)
	oldOut, newOut := outOf(tn.b.b, oldB), outOf(tn.b.b, 0x2001)
	if oldOut+newOut != 2100 || oldOut < 1000 || newOut < 100 {
		t.Fatalf("B sent %d on the old SA and %d on the new one, want 2100 in all, at least 1000 and 100", oldOut, newOut)
	}
	if in := inOf(tn.a.b, oldA) + inOf(tn.a.b, 0x1001); in != 2100 {
		t.Fatalf("A received %d packets, want 2100", in)
	}
	// ActivateOutbound again is a no-op; the old SA goes with Remove.
	if err := tn.b.b.ActivateOutbound(0x2001); err != nil {
		t.Fatal(err)
	}
	if err := tn.b.b.Remove(oldB); err != nil {
		t.Fatal(err)
	}
	stream(10, nil)
	if err := tn.b.b.ActivateOutbound(oldB); !errors.Is(err, dataplane.ErrUnknownSPI) {
		t.Fatalf("ActivateOutbound of a removed SA: %v", err)
	}
}

// TestTotals: the backend's totals count every SA it held, removed ones
// included, and the packets that belonged to none.
func TestTotals(t *testing.T) {
	tn := newMemTunnel(t, suites[0], false, false, dataplane.Tunnel)
	for range 5 {
		tn.a.send(t, udpPacket(tn.innerA, tn.innerB, 1, 2, []byte("abc")))
	}
	tn.b.recv(t, 5)
	tn.a.send(t, udpPacket(tn.innerA, netip.MustParseAddr("10.9.0.1"), 1, 2, nil)) // no policy
	waitFor(t, func() bool { return tn.a.b.Stats().NoPolicyOut == 1 })
	before := tn.a.b.Totals()
	if before.PacketsOut != 5 || before.BytesOut != 5*31 || before.Drops[dataplane.DropNoPolicy] != 1 {
		t.Fatalf("totals of A: %+v", before)
	}
	if err := tn.a.b.Remove(tn.saA.InSPI); err != nil {
		t.Fatal(err)
	}
	if after := tn.a.b.Totals(); after != before {
		t.Fatalf("totals changed with the SA's removal: %+v, then %+v", before, after)
	}
	if got := tn.b.b.Totals(); got.PacketsIn != 5 || got.BytesIn != 5*31 {
		t.Fatalf("totals of B: %+v", got)
	}
}
