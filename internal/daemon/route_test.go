package daemon

import (
	crand "crypto/rand"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

func TestRouteMessage(t *testing.T) {
	d := newShards(5)
	peer := netip.MustParseAddrPort("192.0.2.2:500")
	for _, tc := range []struct {
		name string
		h    wire.Header
		ok   bool
		spi  uint64
		init bool
	}{
		{"IKE_SA_INIT request", wire.Header{SPIi: 0x1111, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator}, true, 0, true},
		{"IKE_SA_INIT request with SPIr", wire.Header{SPIi: 0x1111, SPIr: 0x2222, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator}, true, 0x2222, false},
		{"IKE_AUTH request to us as responder", wire.Header{SPIi: 0x1111, SPIr: 0x2222, Exchange: wire.IKE_AUTH, Flags: wire.FlagInitiator, MessageID: 1}, true, 0x2222, false},
		{"IKE_SA_INIT response to our request", wire.Header{SPIi: 0x3333, SPIr: 0x4444, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagResponse}, true, 0x3333, false},
		{"NO_PROPOSAL_CHOSEN response without SPIr", wire.Header{SPIi: 0x3333, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagResponse}, true, 0x3333, false},
		{"request from the responder of an SA we initiated", wire.Header{SPIi: 0x3333, SPIr: 0x4444, Exchange: wire.INFORMATIONAL, MessageID: 3}, true, 0x3333, false},
		{"zero SPIr on IKE_AUTH", wire.Header{SPIi: 0x1111, Exchange: wire.IKE_AUTH, Flags: wire.FlagInitiator, MessageID: 1}, false, 0, false},
		{"zero SPIr, response flag", wire.Header{SPIi: 0x1111, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator | wire.FlagResponse}, false, 0, false},
		{"zero SPIr, message ID 1", wire.Header{SPIi: 0x1111, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator, MessageID: 1}, false, 0, false},
		{"all zero", wire.Header{Exchange: wire.IKE_SA_INIT}, false, 0, false},
		{"zero SPIi, initiator flag", wire.Header{Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator}, false, 0, false},
	} {
		r, ok := d.routeMessage(tc.h, peer)
		if ok != tc.ok || r.spi != tc.spi || r.initReq != tc.init {
			t.Errorf("%s: route %+v ok %v; want spi %x init %v ok %v", tc.name, r, ok, tc.spi, tc.init, tc.ok)
			continue
		}
		if ok && !r.initReq && r.worker != int(r.spi%5) {
			t.Errorf("%s: worker %d for SPI %x, want %d", tc.name, r.worker, r.spi, r.spi%5)
		}
	}
}

func TestInitWorkerStable(t *testing.T) {
	d := newShards(7)
	a := netip.MustParseAddr("192.0.2.2")
	w := d.initWorker(a, 0xabcdef)
	for range 10 {
		if d.initWorker(a, 0xabcdef) != w {
			t.Fatal("initWorker not deterministic")
		}
	}
	// The v4-mapped form of an address is the same peer.
	if d.initWorker(netip.AddrFrom16(a.As16()), 0xabcdef) != w {
		t.Fatal("v4-mapped address routes elsewhere")
	}
	// Keys spread over the workers.
	seen := map[int]bool{}
	for i := range uint64(200) {
		seen[d.initWorker(a, i)] = true
	}
	if len(seen) != 7 {
		t.Fatalf("200 SPIs reached %d of 7 workers", len(seen))
	}
}

func TestNewSPIRoutesToWorker(t *testing.T) {
	for _, n := range []int{1, 2, 3, 8, 13} {
		d := newShards(n)
		for w := range n {
			for range 100 {
				spi, err := d.newSPI(crand.Reader, w, func(uint64) bool { return false })
				if err != nil {
					t.Fatal(err)
				}
				if spi == 0 || d.spiWorker(spi) != w {
					t.Fatalf("n=%d: SPI %x for worker %d routes to %d", n, spi, w, d.spiWorker(spi))
				}
			}
		}
	}
}

// maxReader returns 0xff octets: the largest SPI, which must not wrap.
type maxReader struct{ calls int }

func (m *maxReader) Read(b []byte) (int, error) {
	m.calls++
	for i := range b {
		b[i] = 0xff
		if m.calls > 1 {
			b[i] = byte(i + 1)
		}
	}
	return len(b), nil
}

func TestNewSPIEdges(t *testing.T) {
	d := newShards(3)
	spi, err := d.newSPI(&maxReader{}, 2, func(uint64) bool { return false })
	if err != nil || spi%3 != 2 || spi < 0x0102030405060708-3 {
		t.Fatalf("newSPI near the top = %x, %v", spi, err)
	}
	// Taken SPIs are skipped: the same stream, with its first SPI taken.
	first, _ := d.newSPI(rand.NewChaCha8([32]byte{9}), 1, func(uint64) bool { return false })
	second, _ := d.newSPI(rand.NewChaCha8([32]byte{9}), 1, func(s uint64) bool { return s == first })
	if second == first || second%3 != 1 {
		t.Fatalf("newSPI returned %x, taken %x", second, first)
	}
}

func TestTimerHeap(t *testing.T) {
	var h timerHeap
	base := time.Unix(1000, 0)
	items := make([]*timerItem, 5)
	for i := range items {
		items[i] = &timerItem{index: -1, owner: i}
	}
	h.set(items[0], base.Add(5*time.Second))
	h.set(items[1], base.Add(1*time.Second))
	h.set(items[2], base.Add(3*time.Second))
	h.set(items[3], time.Time{}) // not armed
	if h.Len() != 3 || !h.next().Equal(base.Add(time.Second)) {
		t.Fatalf("len %d next %v", h.Len(), h.next())
	}
	h.set(items[1], base.Add(10*time.Second)) // moved later
	h.set(items[2], time.Time{})              // disarmed
	if h.Len() != 2 || !h.next().Equal(base.Add(5*time.Second)) {
		t.Fatalf("after changes: len %d next %v", h.Len(), h.next())
	}
	due := h.popDue(base.Add(5*time.Second), nil)
	if len(due) != 1 || due[0] != items[0] || items[0].index != -1 {
		t.Fatalf("popDue = %v", due)
	}
	if due := h.popDue(base.Add(9*time.Second), nil); len(due) != 0 {
		t.Fatalf("popDue early = %v", due)
	}
	h.set(items[0], base.Add(20*time.Second))
	due = h.popDue(base.Add(time.Hour), nil)
	if len(due) != 2 || due[0] != items[1] || due[1] != items[0] {
		t.Fatalf("popDue order = %v", due)
	}
	if !h.next().IsZero() {
		t.Fatal("empty heap has a deadline")
	}
}
