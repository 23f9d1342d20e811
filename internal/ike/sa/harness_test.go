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
		KeyLog:      true,
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

// side is one end: the IKE SAs registered with it (by LocalSPI, as the
// runtime routes), what they reported, and a model of its data plane.
type side struct {
	name   string
	env    *Env
	events []Event
	sas    map[uint64]*IKESA
	// children are the installed CHILD_SAs by inbound SPI, as the data
	// plane holds them; outbound is the SA (by inbound SPI) whose outbound
	// half carries each child's traffic, by ReqID.
	children map[uint32]*ChildSA
	outbound map[uint32]uint32
	// rekeyed marks SAs that took over traffic from another (make-before-
	// break is checked for them).
	rekeyed map[uint32]bool
	// nonces are first octets forced onto the CREATE_CHILD_SA nonces this
	// side draws next (RFC 7296 2.8.1 collision outcomes).
	nonces []byte
	// faults: invariant violations seen.
	faults []string
	ikeUp  int // IKE SAs registered over time
}

func newSide(name string, env *Env) *side {
	s := &side{name: name, env: env, sas: map[uint64]*IKESA{}, children: map[uint32]*ChildSA{},
		outbound: map[uint32]uint32{}, rekeyed: map[uint32]bool{}}
	env.nonceHook = func(n []byte) {
		if len(s.nonces) > 0 {
			n[0] = s.nonces[0]
			s.nonces = s.nonces[1:]
		}
	}
	return s
}

func (s *side) register(sa *IKESA) {
	if sa == nil {
		return
	}
	if _, ok := s.sas[sa.LocalSPI()]; !ok {
		s.ikeUp++
	}
	s.sas[sa.LocalSPI()] = sa
}

func (s *side) fault(format string, args ...any) {
	s.faults = append(s.faults, s.name+": "+fmt.Sprintf(format, args...))
}

// apply plays the runtime's part for one Output: events first.
func (s *side) apply(out Output) {
	for _, e := range out.Events {
		s.events = append(s.events, e)
		switch e := e.(type) {
		case ChildUp:
			c := e.Child
			if _, ok := s.children[c.InSPI]; ok {
				s.fault("ChildUp for installed SPI %08x", c.InSPI)
			}
			s.children[c.InSPI] = c
			if e.Replaces != nil {
				s.rekeyed[c.InSPI] = true
				if _, ok := s.children[e.Replaces.InSPI]; !ok {
					s.fault("ChildUp %08x replaces %08x, which is not installed", c.InSPI, e.Replaces.InSPI)
				}
			}
			if !e.OutboundDeferred {
				s.outbound[c.ReqID] = c.InSPI
			}
		case ChildOutbound:
			c := e.Child
			if _, ok := s.children[c.InSPI]; !ok {
				s.fault("ChildOutbound for %08x, which is not installed", c.InSPI)
			}
			s.outbound[c.ReqID] = c.InSPI
			s.rekeyed[c.InSPI] = true
		case ChildDown:
			c := e.Child
			if _, ok := s.children[c.InSPI]; !ok {
				s.fault("ChildDown for %08x, which is not installed", c.InSPI)
			}
			delete(s.children, c.InSPI)
			delete(s.rekeyed, c.InSPI)
			if s.outbound[c.ReqID] == c.InSPI {
				delete(s.outbound, c.ReqID)
			}
		case ChildFailed:
			// After ChildInstallFailed, or an SPI released.
			if _, ok := s.children[e.SPI]; ok {
				delete(s.children, e.SPI)
				if s.outbound[s.reqIDOf(e)] == e.SPI {
					delete(s.outbound, s.reqIDOf(e))
					if e.Rekeying != nil {
						s.outbound[e.Rekeying.ReqID] = e.Rekeying.InSPI
					}
				}
			}
		case IKEAdded:
			s.register(e.SA)
		case IKERekeyed:
			s.register(e.New)
		}
	}
}

func (s *side) reqIDOf(e ChildFailed) uint32 {
	if e.Rekeying != nil {
		return e.Rekeying.ReqID
	}
	for id, spi := range s.outbound {
		if spi == e.SPI {
			return id
		}
	}
	return 0
}

// live returns the registered IKE SAs that are not done, by SPI order.
func (s *side) live() []*IKESA {
	var out []*IKESA
	for _, sa := range s.sas {
		if !sa.Done() {
			out = append(out, sa)
		}
	}
	slices.SortFunc(out, func(a, b *IKESA) int {
		if a.LocalSPI() < b.LocalSPI() {
			return -1
		}
		return 1
	})
	return out
}

// established returns the live IKE SAs in StateEstablished.
func (s *side) establishedSAs() []*IKESA {
	var out []*IKESA
	for _, sa := range s.live() {
		if sa.State() == StateEstablished {
			out = append(out, sa)
		}
	}
	return out
}

// route finds the IKE SA a message is for by our SPI in it: SPIr if the
// sender set the I flag (it is the original initiator), else SPIi.
func (s *side) route(m *wire.Message) *IKESA {
	own := m.SPIi
	if m.IsInitiator() {
		own = m.SPIr
	}
	if sa := s.sas[own]; sa != nil && !sa.Done() {
		return sa
	}
	if m.Exchange == wire.IKE_SA_INIT && m.SPIr == 0 && m.IsInitiator() {
		// A retransmitted IKE_SA_INIT: the half-open SA by SPIi.
		for _, sa := range s.sas {
			if !sa.Done() && !sa.Initiator() && sa.spii == m.SPIi {
				return sa
			}
		}
	}
	return nil
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
		if e, ok := e.(ChildFailed); ok && e.Rekeying == nil {
			out = append(out, e)
		}
	}
	return out
}

func (s *side) deleted() *Deleted {
	for _, e := range s.events {
		if e, ok := e.(Deleted); ok && e.Cause != CauseRekeyed && e.Cause != CauseRedundant {
			return &e
		}
	}
	return nil
}

// pair is an initiator and a responder joined by a link.
type pair struct {
	t       testing.TB
	now     time.Time
	ini     *IKESA // the initiator side's current IKE SA (follows rekeys)
	resp    *Responder
	rsa     *IKESA // the responder side's current IKE SA (follows rekeys)
	link    *link
	i, r    *side
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
	// checkFlow checks make-before-break after every step: a child with
	// SAs has an outbound SA, and (after a rekey) the peer has its inbound
	// half.
	checkFlow bool
}

func newPair(t testing.TB, seed uint64, ini, resp *Config, opts ResponderOptions) *pair {
	return newPairAt(t, seed, ini, resp, opts, addrI, addrR)
}

// newPairAt is newPair with the initiator at ai and the responder at ar.
func newPairAt(t testing.TB, seed uint64, ini, resp *Config, opts ResponderOptions, ai, ar netip.AddrPort) *pair {
	ienv, renv := testEnv(t, seed), testEnv(t, seed+1000)
	p := &pair{
		t:    t,
		now:  t0,
		link: &link{},
		i:    newSide("initiator", ienv),
		r:    newSide("responder", renv),
	}
	p.ini = NewInitiator(ienv, ini, ai, ar)
	p.i.register(p.ini)
	p.resp = NewResponder(renv, &selector{cfgs: []*Config{resp}}, opts)
	return p
}

func (p *pair) faults(seed uint64, loss, dup, reorder float64) {
	p.link.rng = rand.New(seeded(seed))
	p.link.loss, p.link.dup, p.link.reorder = loss, dup, reorder
}

func (p *pair) fromInitiator(out Output) {
	if p.ini.prot != nil && p.iprot == nil {
		p.iprot = p.ini.prot
	}
	p.i.apply(out)
	p.follow()
	for _, pk := range out.Packets {
		p.rawSent = append(p.rawSent, pk.Data)
		p.trace = append(p.trace, pk)
	}
	p.link.send(true, out.Packets)
	p.verify()
}

func (p *pair) fromResponder(out Output) {
	if p.rsa != nil && p.rsa.prot != nil && p.rprot == nil {
		p.rprot = p.rsa.prot
	}
	p.r.apply(out)
	p.follow()
	for _, pk := range out.Packets {
		p.rawResp = append(p.rawResp, pk.Data)
		p.trace = append(p.trace, pk)
	}
	p.link.send(false, out.Packets)
	p.verify()
}

// follow moves p.ini and p.rsa to the IKE SAs that replaced them.
func (p *pair) follow() {
	for p.ini != nil && p.ini.rekeyedTo != nil {
		p.ini = p.ini.rekeyedTo
	}
	for p.rsa != nil && p.rsa.rekeyedTo != nil {
		p.rsa = p.rsa.rekeyedTo
	}
}

// verify checks make-before-break on both sides (with checkFlow).
func (p *pair) verify() {
	if !p.checkFlow {
		return
	}
	for _, x := range []struct{ me, peer *side }{{p.i, p.r}, {p.r, p.i}} {
		have := map[uint32]bool{}
		for _, c := range x.me.children {
			have[c.ReqID] = true
		}
		for id := range have {
			spi, ok := x.me.outbound[id]
			if !ok {
				x.me.fault("at %v: child %d has SAs but no outbound SA", p.now.Sub(t0), id)
				continue
			}
			c := x.me.children[spi]
			if c == nil {
				x.me.fault("at %v: child %d: outbound SA %08x not installed", p.now.Sub(t0), id, spi)
				continue
			}
			if x.me.rekeyed[spi] && !x.me.closing(spi) {
				if _, ok := x.peer.children[c.OutSPI]; !ok {
					x.me.fault("at %v: child %d sends on SPI %08x, which the peer does not have", p.now.Sub(t0), id, c.OutSPI)
				}
			}
		}
	}
}

// closing reports whether the engine is deleting the CHILD_SA with inbound
// SPI spi without a replacement (traffic stops on purpose).
func (s *side) closing(spi uint32) bool {
	for _, sa := range s.sas {
		if c := sa.childByInSPI(spi); c != nil {
			return (c.deleting && c.successor == nil) || (sa.deleteRequested && sa.rekeyedTo == nil)
		}
	}
	return false
}

// requireNoFaults fails the test if an invariant broke.
func (p *pair) requireNoFaults() {
	p.t.Helper()
	for _, f := range append(p.i.faults, p.r.faults...) {
		p.t.Error(f)
	}
	if p.t.Failed() {
		p.t.FailNow()
	}
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
		if sa := p.i.route(m); sa != nil {
			p.fromInitiator(sa.Handle(p.now, m, dst, f.pkt.Local))
		}
		return
	}
	if p.nat != nil {
		f.pkt.Local = p.nat(f.pkt.Local)
	}
	if err != nil {
		p.fromResponder(p.resp.HandleMalformed(p.now, data, err, f.pkt.Remote, f.pkt.Local))
		return
	}
	if sa := p.r.route(m); sa != nil {
		p.fromResponder(sa.Handle(p.now, m, f.pkt.Remote, f.pkt.Local))
		return
	}
	if m.SPIr == 0 {
		sa, out := p.resp.HandleInit(p.now, m, f.pkt.Remote, f.pkt.Local)
		if sa != nil {
			p.rsa = sa
			p.r.register(sa)
		}
		p.fromResponder(out)
	}
}

// nextDeadline is the earliest timer of all live IKE SAs.
func (p *pair) nextDeadline() time.Time {
	var next time.Time
	for _, s := range []*side{p.i, p.r} {
		for _, sa := range s.live() {
			if d := sa.NextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
	}
	return next
}

// tick runs the timers of every live IKE SA at p.now.
func (p *pair) tick() {
	for _, sa := range p.i.live() {
		if d := sa.NextDeadline(); !d.IsZero() && !d.After(p.now) {
			p.fromInitiator(sa.Tick(p.now))
		}
	}
	for _, sa := range p.r.live() {
		if d := sa.NextDeadline(); !d.IsZero() && !d.After(p.now) {
			p.fromResponder(sa.Tick(p.now))
		}
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
		next := p.nextDeadline()
		if next.IsZero() || next.After(end) {
			return
		}
		if next.After(p.now) {
			p.now = next
		}
		p.tick()
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

// quiet reports whether an IKE SA has nothing left to do but wait for its
// lifetimes: no exchange in flight or queued, no retry pending, no
// deferred outbound switch, no deletion pending.
func (sa *IKESA) quiet() bool {
	if sa.Done() {
		return true
	}
	if sa.State() != StateEstablished || sa.active != nil || len(sa.queue) > 0 || len(sa.delayed) > 0 ||
		!sa.selfDeleteAt.IsZero() || sa.peerRekey != nil {
		return false
	}
	for _, c := range sa.children {
		if c.pendingOut || c.deleting || c.redundant || c.successor != nil || c.rekeying != nil {
			return false
		}
	}
	return true
}

// quiesce runs until the link is empty and every IKE SA on both sides is
// done or quiet (lingering SAs run out), within limit.
func (p *pair) quiesce(limit time.Duration) {
	p.run(limit, func() bool {
		if len(p.link.queue) > 0 {
			return false
		}
		for _, s := range []*side{p.i, p.r} {
			for _, sa := range s.live() {
				if !sa.quiet() {
					return false
				}
			}
		}
		return true
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
