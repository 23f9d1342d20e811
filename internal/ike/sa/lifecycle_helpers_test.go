package sa

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Helpers for the lifecycle tests (rekeys, collisions, deletes): the two
// ends of a pair as "a" and "b" in either role of the IKE SA, messages
// moved one at a time (as strongSwan's exchange_test_helper does), and
// checks of the final state.

// end is one side of a pair: the original initiator's or responder's.
type end struct {
	p   *pair
	ini bool
}

func ends(p *pair, aIsInitiator bool) (a, b end) {
	return end{p, aIsInitiator}, end{p, !aIsInitiator}
}

func role(aIsInitiator bool) string {
	if aIsInitiator {
		return "initiator rekeys"
	}
	return "responder rekeys"
}

func (e end) side() *side {
	if e.ini {
		return e.p.i
	}
	return e.p.r
}

// sa is the end's current IKE SA.
func (e end) sa() *IKESA {
	if e.ini {
		return e.p.ini
	}
	return e.p.rsa
}

func (e end) do(out Output) {
	if e.ini {
		e.p.fromInitiator(out)
	} else {
		e.p.fromResponder(out)
	}
}

// mark is a position in the end's events.
func (e end) mark() int { return len(e.side().events) }

// since renders the events after mark compactly: "up(+r,+d)", "out",
// "down(rekeyed)", "fail(rekey)", "ike+", "ike>", "deleted(rekeyed)".
func (e end) since(mark int) string {
	return eventKinds(e.side().events[mark:])
}

func eventKinds(evs []Event) string {
	var out []string
	for _, ev := range evs {
		switch ev := ev.(type) {
		case ChildUp:
			s := "up"
			if ev.Replaces != nil {
				s += "+r"
			}
			if ev.OutboundDeferred {
				s += "+d"
			}
			out = append(out, s)
		case ChildOutbound:
			out = append(out, "out")
		case ChildDown:
			out = append(out, "down("+ev.Cause.String()+")")
		case ChildFailed:
			if ev.Rekeying != nil {
				out = append(out, "fail(rekey)")
			} else {
				out = append(out, "fail")
			}
		case IKEAdded:
			out = append(out, "ike+")
		case IKERekeyed:
			out = append(out, "ike>")
		case Deleted:
			out = append(out, "deleted("+ev.Cause.String()+")")
		case Failed:
			out = append(out, "failed("+ev.Cause.String()+")")
		case Established:
			out = append(out, "established")
		}
	}
	return strings.Join(out, " ")
}

// only returns the end's single installed CHILD_SA called name (in the
// data plane model).
func (e end) only(name string) *ChildSA {
	e.p.t.Helper()
	var found []*ChildSA
	for _, c := range e.side().children {
		if c.Name == name {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		e.p.t.Fatalf("%s: %d CHILD_SAs %q installed", e.side().name, len(found), name)
	}
	return found[0]
}

// incoming is the direction of the datagrams this end receives.
func (e end) incoming() bool { return !e.ini }

// pending counts the datagrams queued towards the end.
func (e end) pending() int {
	n := 0
	for _, f := range e.p.link.queue {
		if f.toResponder == e.incoming() {
			n++
		}
	}
	return n
}

// take removes the first datagram queued towards the end.
func (e end) take() flight {
	e.p.t.Helper()
	for i, f := range e.p.link.queue {
		if f.toResponder == e.incoming() {
			e.p.link.queue = slices.Delete(e.p.link.queue, i, i+1)
			return f
		}
	}
	e.p.t.Fatalf("no datagram for the %s", e.side().name)
	return flight{}
}

// recv delivers the first datagram queued towards the end and returns the
// events it caused.
func (e end) recv() string {
	e.p.t.Helper()
	m := e.mark()
	e.p.deliver(e.take())
	return e.since(m)
}

// peek describes the first datagram queued towards the end: exchange,
// request/response and its payloads (decrypted with the receiver's keys).
func (e end) peek() string {
	e.p.t.Helper()
	for _, f := range e.p.link.queue {
		if f.toResponder != e.incoming() {
			continue
		}
		m, err := wire.Parse(f.pkt.Data)
		if err != nil {
			return "unparsable"
		}
		sa := e.side().route(m)
		if sa == nil || sa.prot == nil {
			return m.Exchange.String() + " (no SA)"
		}
		ps, err := sa.prot.Open(m)
		if err != nil {
			return m.Exchange.String() + " (undecryptable)"
		}
		kind := "request"
		if m.IsResponse() {
			kind = "response"
		}
		return fmt.Sprintf("%v %s %s", m.Exchange, kind, payloadList(ps))
	}
	return "nothing"
}

// expect checks one step's events.
func expect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: events %q, want %q", what, got, want)
	}
}

// lifecycleConfigs are baseConfigs without lifetimes (rekeys are started
// by the tests), with the given ESP proposals on each side.
func lifecycleConfigs(t testing.TB, iESP, rESP string) (ini, resp *Config) {
	ini, resp = baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	for c, esp := range map[*Config]string{ini: iESP, resp: rESP} {
		c.Children[0].RekeyTime, c.Children[0].LifeTime = 0, 0
		c.Children[0].Proposals = mustProposals(t, wire.ProtoESP, esp)
	}
	return ini, resp
}

// upPair establishes a pair with one CHILD_SA and turns on the
// make-before-break checks.
func upPair(t testing.TB, seed uint64, ini, resp *Config) *pair {
	t.Helper()
	p := newPair(t, seed, ini, resp, ResponderOptions{})
	p.handshake()
	p.settle()
	p.requireUp(len(ini.Children))
	p.checkFlow = true
	return p
}

// requireSettled checks the end state: exactly one live IKE SA on each
// side (the same one), established, holding exactly the CHILD_SAs the data
// plane has, one per child name in names, matching crosswise, each
// carrying its child's outbound traffic; no invariant broke.
func (p *pair) requireSettled(names ...string) {
	p.t.Helper()
	p.requireNoFaults()
	li, lr := p.i.live(), p.r.live()
	if len(li) != 1 || len(lr) != 1 {
		p.t.Fatalf("live IKE SAs: initiator %s, responder %s", describeSAs(li), describeSAs(lr))
	}
	si, sr := li[0], lr[0]
	if si != p.ini || sr != p.rsa {
		p.t.Fatalf("the live IKE SAs are not the current ones")
	}
	if si.State() != StateEstablished || sr.State() != StateEstablished {
		p.t.Fatalf("states %v / %v", si.State(), sr.State())
	}
	ai, bi := si.SPIs()
	ar, br := sr.SPIs()
	if ai != ar || bi != br || si.Initiator() == sr.Initiator() {
		p.t.Fatalf("IKE SAs differ: %016x/%016x (initiator %v) vs %016x/%016x", ai, bi, si.Initiator(), ar, br)
	}
	for _, x := range []struct {
		s  *side
		sa *IKESA
	}{{p.i, si}, {p.r, sr}} {
		if len(x.s.children) != len(names) || len(x.sa.children) != len(names) {
			p.t.Fatalf("%s: %d CHILD_SAs installed, %d in the IKE SA, want %d (%s)", x.s.name,
				len(x.s.children), len(x.sa.children), len(names), describeChildren(x.s))
		}
		for _, c := range x.sa.children {
			if x.s.children[c.sa.InSPI] != c.sa {
				p.t.Fatalf("%s: CHILD_SA %08x of the IKE SA is not installed", x.s.name, c.sa.InSPI)
			}
			if x.s.outbound[c.sa.ReqID] != c.sa.InSPI || c.lin.outbound != c {
				p.t.Fatalf("%s: CHILD_SA %08x does not carry the outbound traffic", x.s.name, c.sa.InSPI)
			}
			if c.pendingOut || c.deleting || c.redundant || c.successor != nil {
				p.t.Fatalf("%s: CHILD_SA %08x in a transitional state", x.s.name, c.sa.InSPI)
			}
		}
	}
	for _, name := range names {
		a, b := end{p, true}.only(name), end{p, false}.only(name)
		checkCrosswise(p.t, a, b)
	}
}

func describeSAs(sas []*IKESA) string {
	var out []string
	for _, sa := range sas {
		out = append(out, fmt.Sprintf("%016x(%v,%d children)", sa.LocalSPI(), sa.State(), len(sa.children)))
	}
	return "[" + strings.Join(out, " ") + "]"
}

func describeChildren(s *side) string {
	var out []string
	for _, c := range s.children {
		out = append(out, fmt.Sprintf("%s:%08x/%08x", c.Name, c.InSPI, c.OutSPI))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// nonces forces the first octets of the CREATE_CHILD_SA nonces the ends
// draw next, in the order each draws them.
func nonces(a, b end, ofA, ofB []byte) {
	a.side().nonces = append([]byte(nil), ofA...)
	b.side().nonces = append([]byte(nil), ofB...)
}

// timeline runs the pair for d, whatever happens.
func (p *pair) timeline(d time.Duration) {
	p.run(d, func() bool { return false })
}
