package memnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

var (
	hostA = netip.MustParseAddr("192.0.2.1")
	hostB = netip.MustParseAddr("192.0.2.2")
	hostC = netip.MustParseAddr("2001:db8::3")
)

type arrival struct {
	p   transport.Packet
	ike bool
	at  time.Time
}

// recorder keeps copies of what its endpoint delivers, with arrival times.
type recorder struct {
	mu       sync.Mutex
	got      []arrival
	espCalls int
	keep     [][]byte // ESP Data kept past the call, to check the contract
}

func (r *recorder) HandleIKE(p transport.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, arrival{p, true, time.Now()})
}

func (r *recorder) HandleESP(batch []transport.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.espCalls++
	for _, p := range batch {
		r.keep = append(r.keep, p.Data)
		p.Data = bytes.Clone(p.Data)
		r.got = append(r.got, arrival{p, false, time.Now()})
	}
}

func (r *recorder) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func ike(n int) []byte {
	b := make([]byte, n)
	b[0], b[7], b[17] = 0x11, 0x22, 0x20
	return b
}

func esp(spi, seq uint32, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, spi)
	binary.BigEndian.PutUint32(b[4:], seq)
	return b
}

func listen(t *testing.T, n *Network, a netip.Addr) (*Endpoint, *recorder) {
	t.Helper()
	rec := &recorder{}
	e, err := n.Listen(transport.Config{Addrs: []netip.Addr{a}, Port: 500, NATPort: 4500}, rec)
	if err != nil {
		t.Fatal(err)
	}
	return e, rec
}

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func TestDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 1})
		a, _ := listen(t, n, hostA)
		defer a.Close()
		b, rec := listen(t, n, hostB)
		defer b.Close()

		msg := ike(40)
		must(t, a.SendIKE(transport.Packet{Local: ap(hostA, 500), Remote: ap(hostB, 500), Data: msg}))
		must(t, a.SendIKE(transport.Packet{Local: ap(hostA, 4500), Remote: ap(hostB, 4500), Data: msg}))
		var batch []transport.Packet
		for i := range 5 {
			batch = append(batch, transport.Packet{Local: ap(hostA, 4500), Remote: ap(hostB, 4500), Data: esp(0x100, uint32(i+1), 64)})
		}
		must(t, a.SendESP(batch))
		must(t, a.SendKeepalive(ap(hostA, 4500), ap(hostB, 4500)))
		synctest.Wait()

		got := rec.arrivals()
		if len(got) != 7 {
			t.Fatalf("%d arrivals, want 7", len(got))
		}
		for i, g := range got[:2] {
			want := transport.Packet{Local: ap(hostB, []uint16{500, 4500}[i]), Remote: ap(hostA, []uint16{500, 4500}[i]), Data: msg}
			if !g.ike || g.p.Local != want.Local || g.p.Remote != want.Remote || !bytes.Equal(g.p.Data, msg) {
				t.Errorf("IKE %d: %+v, want %+v", i, g.p, want)
			}
		}
		for i, g := range got[2:] {
			if g.ike || !bytes.Equal(g.p.Data, batch[i].Data) || g.p.Local != ap(hostB, 4500) {
				t.Errorf("ESP %d: %+v", i, g.p)
			}
		}
		if rec.espCalls != 1 {
			t.Errorf("%d HandleESP calls for one batch sent at once, want 1", rec.espCalls)
		}
		// Data kept past HandleESP is spoiled, as the contract warns.
		if !bytes.Equal(rec.keep[0], bytes.Repeat([]byte{0xA5}, 64)) {
			t.Errorf("ESP buffer after the call: %x", rec.keep[0][:8])
		}
		st := b.Stats()
		if st.IKEIn != (transport.Counter{Packets: 2, Bytes: 80}) || st.ESPIn != (transport.Counter{Packets: 5, Bytes: 320}) ||
			st.Drops[transport.DropKeepalive] != 1 {
			t.Errorf("receiver stats %+v", st)
		}
		st = a.Stats()
		if st.IKEOut.Packets != 2 || st.ESPOut.Packets != 5 || st.KeepalivesOut != 1 || st.SendErrors != 0 {
			t.Errorf("sender stats %+v", st)
		}
		if ns := n.Stats(); ns.Sent != 8 || ns.Delivered != 8 {
			t.Errorf("network stats %+v", ns)
		}
	})
}

func TestSendErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		a, _ := listen(t, n, hostA)
		defer a.Close()
		to := ap(hostB, 4500)
		for _, tt := range []struct {
			name string
			err  error
			send func() error
		}{
			{"foreign local", transport.ErrNoSocket, func() error {
				return a.SendIKE(transport.Packet{Local: ap(hostB, 500), Remote: to, Data: ike(28)})
			}},
			{"ESP from the IKE port", transport.ErrNotNATPort, func() error {
				return a.SendESP([]transport.Packet{{Local: ap(hostA, 500), Remote: to, Data: esp(1, 1, 20)}})
			}},
			{"ESP with SPI 0", transport.ErrBadESP, func() error {
				return a.SendESP([]transport.Packet{{Local: ap(hostA, 4500), Remote: to, Data: esp(0, 1, 20)}})
			}},
			{"keepalive from the IKE port", transport.ErrNotNATPort, func() error {
				return a.SendKeepalive(ap(hostA, 500), to)
			}},
		} {
			if err := tt.send(); !errors.Is(err, tt.err) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
			}
		}
		if st := a.Stats(); st.SendErrors != 4 {
			t.Errorf("SendErrors = %d", st.SendErrors)
		}
		// Nobody listens: lost silently, as with UDP.
		must(t, a.SendIKE(transport.Packet{Local: ap(hostA, 500), Remote: ap(hostB, 500), Data: ike(28)}))
		if ns := n.Stats(); ns.NoListener != 1 {
			t.Errorf("NoListener = %d", ns.NoListener)
		}
		a.Close()
		if err := a.SendIKE(transport.Packet{Local: ap(hostA, 500), Remote: to, Data: ike(28)}); !errors.Is(err, transport.ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	})
}

func TestListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		h := &recorder{}
		for _, cfg := range []transport.Config{
			{},
			{Addrs: []netip.Addr{netip.IPv4Unspecified()}},
			{Addrs: []netip.Addr{hostA}, Port: 500, NATPort: 500},
			{Addrs: []netip.Addr{hostA}, Port: -1},
		} {
			if e, err := n.Listen(cfg, h); err == nil {
				e.Close()
				t.Errorf("Listen(%+v) succeeded", cfg)
			}
		}
		if _, err := n.Listen(transport.Config{Addrs: []netip.Addr{hostA}}, nil); err == nil {
			t.Error("nil handler accepted")
		}
		a, err := n.Listen(transport.Config{Addrs: []netip.Addr{hostA, hostC}}, h)
		must(t, err)
		defer a.Close()
		ike, nat := a.Ports()
		if ike == 0 || nat == 0 || ike == nat {
			t.Errorf("ports %d, %d", ike, nat)
		}
		if got := a.LocalAddrs(); len(got) != 4 || !slices.Contains(got, ap(hostC, nat)) {
			t.Errorf("LocalAddrs = %v", got)
		}
		if _, err := n.Listen(transport.Config{Addrs: []netip.Addr{hostC}, Port: int(nat), NATPort: 4500}, h); err == nil {
			t.Error("address in use accepted")
		}
		b, err := n.Listen(transport.Config{Addrs: []netip.Addr{hostC}}, h)
		must(t, err)
		defer b.Close()
		if i, _ := b.Ports(); i == ike || i == nat {
			t.Errorf("second endpoint got port %d again", i)
		}
	})
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Faults: Faults{Latency: 30 * time.Millisecond}})
		a, _ := listen(t, n, hostA)
		defer a.Close()
		b, rec := listen(t, n, hostB)
		defer b.Close()
		start := time.Now()
		must(t, a.SendIKE(transport.Packet{Local: ap(hostA, 500), Remote: ap(hostB, 500), Data: ike(28)}))
		synctest.Wait()
		if got := rec.arrivals(); len(got) != 0 {
			t.Fatal("delivered before the latency")
		}
		time.Sleep(time.Second)
		got := rec.arrivals()
		if len(got) != 1 || got[0].at.Sub(start) != 30*time.Millisecond {
			t.Fatalf("arrivals %v, want one after 30ms", got)
		}
	})
}

func TestCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 3})
		a, recA := listen(t, n, hostA)
		defer a.Close()
		b, recB := listen(t, n, hostB)
		defer b.Close()
		c, recC := listen(t, n, hostC)
		defer c.Close()
		send := func(from *Endpoint, f, to netip.Addr) {
			must(t, from.SendIKE(transport.Packet{Local: ap(f, 500), Remote: ap(to, 500), Data: ike(28)}))
		}

		n.Cut(hostA, hostB)
		send(a, hostA, hostB)
		send(b, hostB, hostA)
		send(c, hostC, hostB) // other links still work
		synctest.Wait()
		if len(recA.arrivals()) != 0 || len(recB.arrivals()) != 1 {
			t.Fatalf("across a cut link: A got %d, B got %d", len(recA.arrivals()), len(recB.arrivals()))
		}
		if ns := n.Stats(); ns.Cut != 2 {
			t.Errorf("Cut = %d, want 2", ns.Cut)
		}

		n.Restore(hostA, hostB)
		send(a, hostA, hostB)
		send(b, hostB, hostA)
		synctest.Wait()
		if len(recA.arrivals()) != 1 || len(recB.arrivals()) != 2 {
			t.Fatalf("after Restore: A got %d, B got %d", len(recA.arrivals()), len(recB.arrivals()))
		}

		// A link's own faults: everything between A and C is lost.
		n.SetLinkFaults(hostA, hostC, Faults{Loss: 1})
		send(a, hostA, hostC)
		send(c, hostC, hostA)
		send(a, hostA, hostB)
		synctest.Wait()
		if len(recC.arrivals()) != 0 || len(recA.arrivals()) != 1 || len(recB.arrivals()) != 3 {
			t.Errorf("with A-C loss 1: A %d, B %d, C %d", len(recA.arrivals()), len(recB.arrivals()), len(recC.arrivals()))
		}
	})
}

// run sends count ESP packets from A to B, one at a time and a millisecond
// apart, under faults; it returns what B got and the network's counters.
func run(t *testing.T, seed uint64, faults Faults, count int) ([]arrival, Stats) {
	var got []arrival
	var st Stats
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: seed, Faults: faults})
		a, _ := listen(t, n, hostA)
		defer a.Close()
		b, rec := listen(t, n, hostB)
		defer b.Close()
		for i := range count {
			must(t, a.SendESP([]transport.Packet{{Local: ap(hostA, 4500), Remote: ap(hostB, 4500), Data: esp(0x200, uint32(i), 16)}}))
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second) // let the held-back ones arrive
		got, st = rec.arrivals(), n.Stats()
	})
	return got, st
}

func TestFaultStatistics(t *testing.T) {
	const count = 20000
	faults := Faults{Loss: 0.1, Duplicate: 0.05, Reorder: 0.1, ReorderDelay: 5 * time.Millisecond}
	got, st := run(t, 42, faults, count)

	near := func(what string, n, of uint64, p float64) {
		t.Helper()
		if r := float64(n) / float64(of); math.Abs(r-p) > 0.01 {
			t.Errorf("%s: %d of %d = %.4f, configured %.2f", what, n, of, r, p)
		} else {
			t.Logf("%s: %d of %d = %.4f (configured %.2f)", what, n, of, r, p)
		}
	}
	near("lost", st.Lost, st.Sent, faults.Loss)
	near("duplicated", st.Duplicated, st.Sent-st.Lost, faults.Duplicate)
	near("held back", st.Reordered, st.Sent-st.Lost+st.Duplicated, faults.Reorder)
	if st.Sent != count || uint64(len(got)) != st.Delivered || st.Delivered != st.Sent-st.Lost+st.Duplicated {
		t.Errorf("stats %+v, %d arrivals", st, len(got))
	}

	// What B saw: duplicates and sequence numbers out of order.
	seen := map[uint32]int{}
	var dups, late int
	var highest uint32
	for i, g := range got {
		seq := binary.BigEndian.Uint32(g.p.Data[4:])
		seen[seq]++
		if seen[seq] > 1 {
			dups++
		}
		if i > 0 && seq < highest {
			late++
		}
		highest = max(highest, seq)
	}
	if uint64(dups) != st.Duplicated {
		t.Errorf("B saw %d duplicates, network made %d", dups, st.Duplicated)
	}
	if uint64(len(seen)) != st.Sent-st.Lost {
		t.Errorf("B saw %d distinct packets, want %d", len(seen), st.Sent-st.Lost)
	}
	// A held-back packet arrives after those sent in the next 5ms; its
	// duplicate may not have been held back, so count at most.
	if late == 0 || uint64(late) > st.Reordered {
		t.Errorf("%d packets arrived late, %d were held back", late, st.Reordered)
	}
}

func TestDeterministic(t *testing.T) {
	faults := Faults{Loss: 0.2, Duplicate: 0.1, Reorder: 0.2, Latency: 3 * time.Millisecond}
	seqs := func(got []arrival) (s []uint32) {
		for _, g := range got {
			s = append(s, binary.BigEndian.Uint32(g.p.Data[4:]))
		}
		return s
	}
	first, st1 := run(t, 7, faults, 500)
	again, st2 := run(t, 7, faults, 500)
	other, _ := run(t, 8, faults, 500)
	if !slices.Equal(seqs(first), seqs(again)) || st1 != st2 {
		t.Error("same seed, different outcome")
	}
	for i := range first {
		if !first[i].at.Equal(again[i].at) {
			t.Fatalf("arrival %d at %v, then at %v", i, first[i].at, again[i].at)
		}
	}
	if slices.Equal(seqs(first), seqs(other)) {
		t.Error("different seeds, same outcome")
	}
}

func TestCloseDropsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Faults: Faults{Latency: time.Second}})
		a, _ := listen(t, n, hostA)
		defer a.Close()
		b, rec := listen(t, n, hostB)
		must(t, a.SendIKE(transport.Packet{Local: ap(hostA, 500), Remote: ap(hostB, 500), Data: ike(28)}))
		b.Close()
		time.Sleep(2 * time.Second)
		if len(rec.arrivals()) != 0 {
			t.Error("delivered to a closed endpoint")
		}
		// Its addresses are free again.
		c, _ := listen(t, n, hostB)
		c.Close()
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
