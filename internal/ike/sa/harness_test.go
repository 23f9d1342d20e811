package sa

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// The sans-IO pair harness: an initiator IKESA and a Responder (with the
// IKESA it creates) exchange datagrams through wire.Parse over a link that
// may lose, duplicate and reorder them, with a fake clock.

var (
	addrI = netip.MustParseAddrPort("192.0.2.1:500")
	addrR = netip.MustParseAddrPort("192.0.2.2:500")
	t0    = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
)

// seeded returns a deterministic random source.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	s[2], s[3] = byte(seed>>16), byte(seed>>24)
	return rand.NewChaCha8(s)
}

// testEnv returns an Env with seeded randomness and counting SPI allocators.
func testEnv(t testing.TB, seed uint64) *Env {
	var ike uint64 = seed << 32
	var child uint32 = 0x1000 + uint32(seed&0xff)<<16
	return &Env{
		Rand:        seeded(seed),
		Log:         testLogger(t),
		NewIKESPI:   func() uint64 { ike++; return ike*0x9e3779b97f4a7c15 | 1 },
		NewChildSPI: func() (uint32, error) { child++; return child, nil },
	}
}

// testLogger logs to the test when CYGNET_SA_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CYGNET_SA_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// selector is a ConfigSelector over a fixed list.
type selector struct{ cfgs []*Config }

func (s *selector) ForInit(local, remote netip.AddrPort) []*Config { return s.cfgs }

func (s *selector) ForAuth(local, remote netip.AddrPort, peer auth.Identity, hint *auth.Identity, suite algs.Suite) (*Config, error) {
	for _, c := range s.cfgs {
		if c.Remote.ID.Matches(peer) && (hint == nil || c.Local.ID.Any() || c.Local.ID.Equal(*hint)) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no connection matches %s", peer)
}

// link carries datagrams between the two sides, with faults.
type link struct {
	rng                *rand.Rand
	loss, dup, reorder float64
	queue              []flight
	sent, dropped      int
}

type flight struct {
	toResponder bool
	pkt         Packet
}

func (l *link) send(toResponder bool, pkts []Packet) {
	for _, p := range pkts {
		l.sent++
		if l.rng != nil && l.rng.Float64() < l.loss {
			l.dropped++
			continue
		}
		f := flight{toResponder, Packet{Local: p.Local, Remote: p.Remote, Data: bytes.Clone(p.Data)}}
		l.queue = append(l.queue, f)
		if l.rng != nil && l.rng.Float64() < l.dup {
			l.queue = append(l.queue, f)
		}
	}
}

func (l *link) next() (flight, bool) {
	if len(l.queue) == 0 {
		return flight{}, false
	}
	i := 0
	if l.rng != nil && len(l.queue) > 1 && l.rng.Float64() < l.reorder {
		i = l.rng.IntN(len(l.queue))
	}
	f := l.queue[i]
	l.queue = slices.Delete(l.queue, i, i+1)
	return f, true
}

// side collects what one side reported.
type side struct {
	events   []Event
	children map[uint32]*ChildSA // by inbound SPI, as the data plane holds them
}

func (s *side) apply(out Output) {
	for _, e := range out.Events {
		s.events = append(s.events, e)
		switch e := e.(type) {
		case ChildUp:
			s.children[e.Child.InSPI] = e.Child
		case ChildDown:
			delete(s.children, e.Child.InSPI)
		case ChildFailed:
			delete(s.children, e.SPI) // after ChildInstallFailed
		}
	}
}

func (s *side) established() *Established {
	for _, e := range s.events {
		if e, ok := e.(Established); ok {
			return &e
		}
	}
	return nil
}

func (s *side) failed() error {
	for _, e := range s.events {
		if e, ok := e.(Failed); ok {
			return e.Err
		}
	}
	return nil
}

func (s *side) childFailures() []ChildFailed {
	var out []ChildFailed
	for _, e := range s.events {
		if e, ok := e.(ChildFailed); ok {
			out = append(out, e)
		}
	}
	return out
}

func (s *side) deleted() *Deleted {
	for _, e := range s.events {
		if e, ok := e.(Deleted); ok {
			return &e
		}
	}
	return nil
}

// pair is an initiator and a responder joined by a link.
type pair struct {
	t       testing.TB
	now     time.Time
	ini     *IKESA
	resp    *Responder
	rsa     *IKESA // created by resp
	link    *link
	i, r    side
	rawSent [][]byte // every datagram the initiator sent, for inspection
	rawResp [][]byte // every datagram the responder side sent
	trace   []Packet // every datagram in the order sent
	// The protectors of both sides, kept after the SAs drop them.
	iprot, rprot *keys.Protector
	// nat, if set, rewrites the initiator's source address on the way to
	// the responder (and back).
	nat func(netip.AddrPort) netip.AddrPort
	// tamper, if set, may rewrite a datagram before it is parsed.
	tamper func(toResponder bool, b []byte) []byte
}

func newPair(t testing.TB, seed uint64, ini, resp *Config, opts ResponderOptions) *pair {
	return newPairAt(t, seed, ini, resp, opts, addrI, addrR)
}

// newPairAt is newPair with the initiator at ai and the responder at ar.
func newPairAt(t testing.TB, seed uint64, ini, resp *Config, opts ResponderOptions, ai, ar netip.AddrPort) *pair {
	p := &pair{
		t:    t,
		now:  t0,
		link: &link{},
		i:    side{children: map[uint32]*ChildSA{}},
		r:    side{children: map[uint32]*ChildSA{}},
	}
	p.ini = NewInitiator(testEnv(t, seed), ini, ai, ar)
	p.resp = NewResponder(testEnv(t, seed+1000), &selector{cfgs: []*Config{resp}}, opts)
	return p
}

func (p *pair) faults(seed uint64, loss, dup, reorder float64) {
	p.link.rng = rand.New(seeded(seed))
	p.link.loss, p.link.dup, p.link.reorder = loss, dup, reorder
}

func (p *pair) fromInitiator(out Output) {
	if p.ini.prot != nil {
		p.iprot = p.ini.prot
	}
	p.i.apply(out)
	for _, pk := range out.Packets {
		p.rawSent = append(p.rawSent, pk.Data)
		p.trace = append(p.trace, pk)
	}
	p.link.send(true, out.Packets)
}

func (p *pair) fromResponder(out Output) {
	if p.rsa != nil && p.rsa.prot != nil {
		p.rprot = p.rsa.prot
	}
	p.r.apply(out)
	for _, pk := range out.Packets {
		p.rawResp = append(p.rawResp, pk.Data)
		p.trace = append(p.trace, pk)
	}
	p.link.send(false, out.Packets)
}

// deliver hands one datagram to its side, routing as the runtime does.
func (p *pair) deliver(f flight) {
	data := f.pkt.Data
	if p.tamper != nil {
		data = p.tamper(f.toResponder, data)
		if data == nil {
			return
		}
	}
	m, err := wire.Parse(data)
	if !f.toResponder {
		if err != nil {
			return
		}
		dst := f.pkt.Remote
		if p.nat != nil {
			// Undo the NAT's mapping: to the initiator's own address.
			for _, port := range []uint16{500, 4500} {
				if priv := netip.AddrPortFrom(addrI.Addr(), port); p.nat(priv) == dst {
					dst = priv
				}
			}
		}
		p.fromInitiator(p.ini.Handle(p.now, m, dst, f.pkt.Local))
		return
	}
	if p.nat != nil {
		f.pkt.Local = p.nat(f.pkt.Local)
	}
	if err != nil {
		p.fromResponder(p.resp.HandleMalformed(p.now, data, err, f.pkt.Remote, f.pkt.Local))
		return
	}
	if p.rsa != nil && !p.rsa.Done() && m.SPIi == p.rsa.spii && (m.SPIr == p.rsa.spir || m.SPIr == 0) {
		p.fromResponder(p.rsa.Handle(p.now, m, f.pkt.Remote, f.pkt.Local))
		return
	}
	if m.SPIr == 0 {
		sa, out := p.resp.HandleInit(p.now, m, f.pkt.Remote, f.pkt.Local)
		if sa != nil {
			p.rsa = sa
		}
		p.fromResponder(out)
	}
}

// run shuttles datagrams and advances the clock to the next deadline until
// until() holds, nothing is left to do, or limit passes.
func (p *pair) run(limit time.Duration, until func() bool) {
	end := p.now.Add(limit)
	for !until() {
		if f, ok := p.link.next(); ok {
			p.deliver(f)
			continue
		}
		next := p.ini.NextDeadline()
		if p.rsa != nil {
			if d := p.rsa.NextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if next.IsZero() || next.After(end) {
			return
		}
		if next.After(p.now) {
			p.now = next
		}
		p.fromInitiator(p.ini.Tick(p.now))
		if p.rsa != nil {
			p.fromResponder(p.rsa.Tick(p.now))
		}
	}
}

// handshake initiates and runs until both sides are established or one
// failed.
func (p *pair) handshake(children ...string) {
	p.fromInitiator(p.ini.Initiate(p.now, children...))
	p.run(10*time.Minute, func() bool {
		bothUp := p.i.established() != nil && p.r.established() != nil
		return (bothUp && p.ini.active == nil && len(p.ini.queue) == 0) || p.ini.Done() || (p.rsa != nil && p.rsa.Done())
	})
}

// settle runs until no datagram is in flight and nothing is pending.
func (p *pair) settle() {
	p.run(10*time.Minute, func() bool {
		return len(p.link.queue) == 0 && p.ini.active == nil && len(p.ini.queue) == 0 &&
			(p.rsa == nil || (p.rsa.active == nil && len(p.rsa.queue) == 0))
	})
}

// requireUp fails unless both sides are established with matching CHILD_SAs.
func (p *pair) requireUp(children int) {
	p.t.Helper()
	if err := p.i.failed(); err != nil {
		p.t.Fatalf("initiator failed: %v", err)
	}
	if err := p.r.failed(); err != nil {
		p.t.Fatalf("responder failed: %v", err)
	}
	if p.i.established() == nil || p.r.established() == nil {
		p.t.Fatalf("not established: initiator %v, responder %v", p.ini.State(), p.rsa)
	}
	if p.ini.State() != StateEstablished || p.rsa.State() != StateEstablished {
		p.t.Fatalf("states %v / %v", p.ini.State(), p.rsa.State())
	}
	if len(p.i.children) != children || len(p.r.children) != children {
		p.t.Fatalf("children: initiator %d, responder %d, want %d (failures %v / %v)",
			len(p.i.children), len(p.r.children), children, p.i.childFailures(), p.r.childFailures())
	}
	for spi, a := range p.i.children {
		b := p.r.children[a.OutSPI]
		if b == nil {
			p.t.Fatalf("initiator child %08x: responder has no inbound SPI %08x", spi, a.OutSPI)
		}
		checkCrosswise(p.t, a, b)
	}
	ei, er := p.i.established().SA, p.r.established().SA
	if ei.SPIi != er.SPIi || ei.SPIr != er.SPIr || ei.Proposal != er.Proposal {
		p.t.Fatalf("IKE SAs differ: %+v / %+v", ei, er)
	}
}

// checkCrosswise checks that two sides' views of a CHILD_SA pair match.
func checkCrosswise(t testing.TB, a, b *ChildSA) {
	t.Helper()
	switch {
	case a.InSPI != b.OutSPI || a.OutSPI != b.InSPI:
		t.Fatalf("SPIs: %08x/%08x vs %08x/%08x", a.InSPI, a.OutSPI, b.InSPI, b.OutSPI)
	case !bytes.Equal(a.InEncr, b.OutEncr) || !bytes.Equal(a.OutEncr, b.InEncr):
		t.Fatalf("encryption keys differ")
	case !bytes.Equal(a.InInteg, b.OutInteg) || !bytes.Equal(a.OutInteg, b.InInteg):
		t.Fatalf("integrity keys differ")
	case len(a.InEncr) == 0:
		t.Fatalf("no keys")
	case bytes.Equal(a.InEncr, a.OutEncr):
		t.Fatalf("both directions share a key")
	case a.Suite.String() != b.Suite.String():
		t.Fatalf("suites %s / %s", a.Suite, b.Suite)
	case a.Mode != b.Mode || a.Encap != b.Encap:
		t.Fatalf("mode/encap %v %v / %v %v", a.Mode, a.Encap, b.Mode, b.Encap)
	case tsListString(a.LocalTS) != tsListString(b.RemoteTS) || tsListString(a.RemoteTS) != tsListString(b.LocalTS):
		t.Fatalf("traffic selectors %s === %s vs %s === %s", tsListString(a.LocalTS), tsListString(a.RemoteTS),
			tsListString(b.LocalTS), tsListString(b.RemoteTS))
	case a.Name != b.Name:
		t.Fatalf("names %q / %q", a.Name, b.Name)
	}
}
