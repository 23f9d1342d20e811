package dataplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// seqReader yields the given uint32s big-endian, then a seeded stream.
type seqReader struct {
	vals []uint32
	rng  *rand.ChaCha8
}

func (r *seqReader) Read(b []byte) (int, error) {
	if len(r.vals) > 0 && len(b) == 4 {
		binary.BigEndian.PutUint32(b, r.vals[0])
		r.vals = r.vals[1:]
		return 4, nil
	}
	return r.rng.Read(b)
}

func newSeq(vals ...uint32) *seqReader {
	return &seqReader{vals: vals, rng: rand.NewChaCha8([32]byte{1})}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func testSA(in, out uint32) *SA {
	return &SA{
		ReqID: 1, Name: "net", Mode: Tunnel,
		Local:  netip.MustParseAddrPort("192.0.2.1:4500"),
		Remote: netip.MustParseAddrPort("192.0.2.2:4500"),
		InSPI:  in, OutSPI: out,
		Encr: wire.ENCR_AES_GCM_16, EncrKeyLen: 256,
		InEncrKey:  bytes.Repeat([]byte{0xaa}, 36),
		OutEncrKey: bytes.Repeat([]byte{0xbb}, 36),
		LocalTS:    []Selector{{Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.255.255"), EndPort: 0xffff}},
		RemoteTS:   []Selector{{Start: netip.MustParseAddr("10.2.0.0"), End: netip.MustParseAddr("10.2.255.255"), EndPort: 0xffff}},
	}
}

func TestAllocSPISkipsReservedAndUsed(t *testing.T) {
	// 0 and 255 are reserved (RFC 4303 2.1); 0x1000 comes twice.
	n := NewNone(newSeq(0, 255, 0x1000, 0x1000, 0x2000), nil)
	a, err := n.AllocSPI()
	if err != nil || a != 0x1000 {
		t.Fatalf("first AllocSPI = %08x, %v; want 00001000", a, err)
	}
	b, err := n.AllocSPI()
	if err != nil || b != 0x2000 {
		t.Fatalf("second AllocSPI = %08x, %v; want 00002000 (00001000 is reserved)", b, err)
	}
	if err := n.Install(testSA(0x2000, 0x9999), 0); err != nil {
		t.Fatal(err)
	}
	// An installed SPI is never handed out again.
	n.rand = newSeq(0x2000, 0x3000)
	c, err := n.AllocSPI()
	if err != nil || c != 0x3000 {
		t.Fatalf("AllocSPI = %08x, %v; want 00003000", c, err)
	}
}

func TestAllocSPIUnique(t *testing.T) {
	n := NewNone(newSeq(), nil)
	seen := make(map[uint32]bool)
	for range 10000 {
		spi, err := n.AllocSPI()
		if err != nil {
			t.Fatal(err)
		}
		if spi < 256 || seen[spi] {
			t.Fatalf("AllocSPI returned %08x (reserved or twice)", spi)
		}
		seen[spi] = true
	}
}

func TestAllocSPIBrokenRand(t *testing.T) {
	n := NewNone(bytes.NewReader(nil), nil)
	if _, err := n.AllocSPI(); err == nil {
		t.Fatal("AllocSPI with an empty random source succeeded")
	}
	n = NewNone(bytes.NewReader(make([]byte, 4096)), nil) // only zeros
	if _, err := n.AllocSPI(); !errors.Is(err, ErrNoFreeSPI) {
		t.Fatalf("AllocSPI with a source of zeros: %v, want ErrNoFreeSPI", err)
	}
}

func TestLarvalExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	n := NewNone(newSeq(0x1000, 0x1000, 0x2000), clk.now)
	if spi, _ := n.AllocSPI(); spi != 0x1000 {
		t.Fatalf("AllocSPI = %08x", spi)
	}
	// Still reserved: 0x1000 is skipped.
	if spi, _ := n.AllocSPI(); spi != 0x2000 {
		t.Fatalf("AllocSPI = %08x, want 00002000", spi)
	}
	clk.t = clk.t.Add(LarvalTimeout)
	n.rand = newSeq(0x1000)
	if spi, _ := n.AllocSPI(); spi != 0x1000 {
		t.Fatalf("after LarvalTimeout AllocSPI = %08x, want the expired 00001000 again", spi)
	}
	if len(n.larval) != 1 || len(n.larvalQ) != 1 {
		t.Fatalf("larval bookkeeping: %d in map, %d queued; want 1, 1", len(n.larval), len(n.larvalQ))
	}
}

func TestRemoveFreesLarval(t *testing.T) {
	n := NewNone(newSeq(0x1000, 0x1000), nil)
	spi, _ := n.AllocSPI()
	if err := n.Remove(spi); err != nil {
		t.Fatalf("Remove of an allocated SPI: %v", err)
	}
	if again, _ := n.AllocSPI(); again != spi {
		t.Fatalf("AllocSPI = %08x, want the freed %08x", again, spi)
	}
}

func TestInstallRemoveZeroes(t *testing.T) {
	n := NewNone(newSeq(), nil)
	sa := testSA(0x1234, 0x5678)
	in, out := sa.InEncrKey, sa.OutEncrKey
	if err := n.Install(sa, 0); err != nil {
		t.Fatal(err)
	}
	if c, ok := n.Counters(0x1234); !ok || c != (Counters{}) {
		t.Fatalf("Counters = %+v, %v; want zero, true", c, ok)
	}
	if err := n.Install(testSA(0x1234, 0x1111), 0); !errors.Is(err, ErrSPIInUse) {
		t.Fatalf("second Install with the same SPI: %v, want ErrSPIInUse", err)
	}
	if err := n.Remove(0x1234); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, make([]byte, len(in))) || !bytes.Equal(out, make([]byte, len(out))) {
		t.Fatal("keys not zeroed on Remove")
	}
	if _, ok := n.Counters(0x1234); ok {
		t.Fatal("Counters after Remove")
	}
	if err := n.Remove(0x1234); !errors.Is(err, ErrUnknownSPI) {
		t.Fatalf("second Remove: %v, want ErrUnknownSPI", err)
	}
}

func TestInstallInvalid(t *testing.T) {
	n := NewNone(newSeq(), nil)
	v6 := testSA(0x1000, 0x2000)
	v6.Remote = netip.MustParseAddrPort("[2001:db8::2]:4500")
	noAddr := testSA(0x1000, 0x2000)
	noAddr.Local = netip.AddrPort{}
	badMode := testSA(0x1000, 0x2000)
	badMode.Mode = 7
	for name, sa := range map[string]*SA{
		"nil":           nil,
		"reserved in":   testSA(255, 0x2000),
		"zero out":      testSA(0x1000, 0),
		"mixed family":  v6,
		"no local addr": noAddr,
		"bad mode":      badMode,
	} {
		if err := n.Install(sa, 0); !errors.Is(err, ErrInvalidSA) {
			t.Errorf("%s: Install = %v, want ErrInvalidSA", name, err)
		}
	}
	if err := n.Install(testSA(0x1000, 0x2000), 0x4444); !errors.Is(err, ErrUnknownSPI) {
		t.Errorf("Install replacing an unknown SA: %v, want ErrUnknownSPI", err)
	}
	if len(n.Installed()) != 0 {
		t.Errorf("failed installs left SAs behind: %x", n.Installed())
	}
}

func TestMakeBeforeBreak(t *testing.T) {
	n := NewNone(newSeq(), nil)
	if err := n.Install(testSA(0x1000, 0x2000), 0); err != nil {
		t.Fatal(err)
	}
	if err := n.Install(testSA(0x3000, 0x4000), 0x1000); err != nil {
		t.Fatal(err)
	}
	// The old inbound stays live, its outbound no longer carries traffic.
	if inst, out := n.Outbound(0x1000); !inst || out {
		t.Fatalf("old SA: installed %v outbound %v; want true false", inst, out)
	}
	if inst, out := n.Outbound(0x3000); !inst || !out {
		t.Fatalf("new SA: installed %v outbound %v; want true true", inst, out)
	}
	if err := n.Remove(0x1000); err != nil {
		t.Fatal(err)
	}
	if inst, out := n.Outbound(0x3000); !inst || !out {
		t.Fatalf("new SA after removing the old one: installed %v outbound %v", inst, out)
	}
}

// TestDeferredOutbound is the rekey responder's make-before-break: the new
// SA is installed with its outbound deferred, the old one carries traffic
// until ActivateOutbound, which moves the ReqID's traffic in one step.
func TestDeferredOutbound(t *testing.T) {
	n := NewNone(newSeq(), nil)
	if err := n.Install(testSA(0x1000, 0x2000), 0); err != nil {
		t.Fatal(err)
	}
	other := testSA(0x5000, 0x6000)
	other.ReqID = 2
	if err := n.Install(other, 0); err != nil {
		t.Fatal(err)
	}
	next := testSA(0x3000, 0x4000)
	next.DeferOutbound = true
	if err := n.Install(next, 0x1000); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spi           uint32
		inst, outward bool
	}{{0x1000, true, true}, {0x3000, true, false}, {0x5000, true, true}} {
		if inst, out := n.Outbound(c.spi); inst != c.inst || out != c.outward {
			t.Errorf("before ActivateOutbound: %08x installed %v outbound %v; want %v %v", c.spi, inst, out, c.inst, c.outward)
		}
	}
	if err := n.ActivateOutbound(0x3000); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spi           uint32
		inst, outward bool
	}{{0x1000, true, false}, {0x3000, true, true}, {0x5000, true, true}} {
		if inst, out := n.Outbound(c.spi); inst != c.inst || out != c.outward {
			t.Errorf("after ActivateOutbound: %08x installed %v outbound %v; want %v %v", c.spi, inst, out, c.inst, c.outward)
		}
	}
	if err := n.ActivateOutbound(0x3000); err != nil {
		t.Errorf("activating again: %v", err)
	}
	if err := n.ActivateOutbound(0x7777); !errors.Is(err, ErrUnknownSPI) {
		t.Errorf("ActivateOutbound of an unknown SPI: %v", err)
	}
}

func TestNoneTrap(t *testing.T) {
	n := NewNone(newSeq(), nil)
	sa := testSA(0x1000, 0x2000)
	if err := n.Trap(Trap{ReqID: 7, RemoteTS: sa.RemoteTS}); !errors.Is(err, ErrInvalidSA) {
		t.Errorf("Trap without local selectors: %v", err)
	}
	if err := n.Trap(Trap{ReqID: 7, LocalTS: sa.LocalTS, RemoteTS: sa.RemoteTS, IfID: 9}); err != nil {
		t.Fatal(err)
	}
	if l, r, ok := n.Trapped(7); !ok || len(l) != 1 || len(r) != 1 || r[0] != sa.RemoteTS[0] {
		t.Fatalf("Trapped(7) = %v %v %v", l, r, ok)
	}
	if err := n.Untrap(7); err != nil {
		t.Fatal(err)
	}
	if err := n.Untrap(7); !errors.Is(err, ErrUnknownTrap) {
		t.Errorf("second Untrap: %v", err)
	}
	n.Close()
	if err := n.Trap(Trap{ReqID: 7, LocalTS: sa.LocalTS, RemoteTS: sa.RemoteTS}); !errors.Is(err, ErrClosed) {
		t.Errorf("Trap after Close: %v", err)
	}
}

func TestCloseZeroesAndRefuses(t *testing.T) {
	n := NewNone(newSeq(), nil)
	sa := testSA(0x1000, 0x2000)
	key := sa.InEncrKey
	if err := n.Install(sa, 0); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, make([]byte, len(key))) {
		t.Fatal("keys not zeroed on Close")
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := n.AllocSPI(); !errors.Is(err, ErrClosed) {
		t.Errorf("AllocSPI after Close: %v", err)
	}
	if err := n.Install(testSA(0x3000, 0x4000), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Install after Close: %v", err)
	}
	if err := n.Remove(0x1000); !errors.Is(err, ErrClosed) {
		t.Errorf("Remove after Close: %v", err)
	}
}

func TestNoneConcurrent(t *testing.T) {
	n := NewNone(nil, nil)
	n.SetEventHandler(func(Event) {})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				spi, err := n.AllocSPI()
				if err != nil {
					t.Error(err)
					return
				}
				if err := n.Install(testSA(spi, 0x7777), 0); err != nil {
					t.Error(err)
					return
				}
				n.Counters(spi)
				if err := n.Remove(spi); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(n.Installed()) != 0 {
		t.Fatalf("%d SAs left", len(n.Installed()))
	}
}

func TestSAStringHasNoKeys(t *testing.T) {
	sa := testSA(0x1000, 0x2000)
	sa.InEncrKey = []byte("SECRETSECRET")
	for _, s := range []string{sa.String(), sa.GoString(), sa.LogValue().String()} {
		if bytes.Contains([]byte(s), []byte("SECRET")) || bytes.Contains([]byte(s), []byte("aaaa")) {
			t.Errorf("key material in %q", s)
		}
	}
}

func TestSelectorString(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		s    Selector
		want string
	}{
		{Selector{Start: a("10.1.0.0"), End: a("10.1.255.255"), EndPort: 0xffff}, "10.1.0.0/16"},
		{Selector{Start: a("192.0.2.7"), End: a("192.0.2.7"), EndPort: 0xffff}, "192.0.2.7/32"},
		{Selector{Start: a("0.0.0.0"), End: a("255.255.255.255"), EndPort: 0xffff}, "0.0.0.0/0"},
		{Selector{Start: a("10.0.0.1"), End: a("10.0.0.9"), EndPort: 0xffff}, "10.0.0.1-10.0.0.9"},
		{Selector{Start: a("2001:db8::"), End: a("2001:db8::ffff:ffff"), EndPort: 0xffff}, "2001:db8::/96"},
		{Selector{Start: a("10.0.0.0"), End: a("10.0.0.255"), Protocol: 6, StartPort: 443, EndPort: 443}, "10.0.0.0/24[tcp/443]"},
		{Selector{Start: a("10.0.0.0"), End: a("10.0.0.255"), Protocol: 17, StartPort: 1000, EndPort: 2000}, "10.0.0.0/24[udp/1000-2000]"},
		{Selector{Start: a("10.0.0.0"), End: a("10.0.0.255"), Protocol: 1, EndPort: 0xffff}, "10.0.0.0/24[icmp]"},
		{Selector{Start: a("10.0.0.0"), End: a("10.0.0.255"), Protocol: 47, EndPort: 0xffff}, "10.0.0.0/24[47]"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: String() = %q, want %q", tc.s, got, tc.want)
		}
	}
}
