package sa

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// establishedPair returns a pair after a PSK handshake. It is deterministic:
// the same keys every time, so that encrypted fuzz seeds stay valid.
func establishedPair(t testing.TB) *pair {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 7, ini, resp, ResponderOptions{})
	p.handshake()
	return p
}

// FuzzResponder sends arbitrary datagrams to a Responder and to both sides
// of an established IKE SA: nothing may panic, garbage leaves no half-open
// state, and an established SA stays established unless the datagram was an
// authentic request or response.
func FuzzResponder(f *testing.F) {
	p := establishedPair(f)
	for _, d := range p.rawSent {
		f.Add(d)
	}
	for _, d := range p.rawResp {
		f.Add(d)
	}
	// Authentic requests of the initiator with message ID 2.
	h := p.ini.header(wire.INFORMATIONAL, 2, false)
	for _, ps := range [][]wire.Payload{
		nil,
		{&wire.Delete{Protocol: wire.ProtoIKE}},
		{&wire.Delete{Protocol: wire.ProtoESP, SPIs: [][]byte{{0, 0, 0x10, 1}}}},
		{&wire.Notify{NotifyType: wire.AUTHENTICATION_FAILED}},
	} {
		b, err := p.ini.prot.Seal(h, ps, p.ini.rand)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, pk := range p.ini.CreateChild(p.now, "net").Packets {
		f.Add(pk.Data)
	}
	f.Add(make([]byte, 28))
	f.Add([]byte("garbage"))

	f.Fuzz(func(t *testing.T, data []byte) {
		// A fresh Responder: garbage must leave no state.
		ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
		_ = ini
		r := NewResponder(testEnv(t, 1), &selector{cfgs: []*Config{resp}}, ResponderOptions{})
		m, err := wire.Parse(data)
		if err != nil {
			r.HandleMalformed(t0, data, err, addrR, addrI)
			if r.HalfOpen() != 0 {
				t.Fatal("half-open state for an unparsable datagram")
			}
			return
		}
		sa, _ := r.HandleInit(t0, m, addrR, addrI)
		if sa == nil && r.HalfOpen() != 0 {
			t.Fatal("half-open state without an SA")
		}
		if sa != nil {
			s := collect(m.Payloads)
			if r.HalfOpen() != 1 || m.Exchange != wire.IKE_SA_INIT || s.sa == nil || s.ke == nil || s.nonce == nil {
				t.Fatalf("SA for %v %s", m.Exchange, payloadList(m.Payloads))
			}
			sa.Handle(t0, m, addrR, addrI) // its own retransmission
		}

		p := establishedPair(t)
		p.ini.Handle(p.now, m, addrI, addrR)
		p.rsa.Handle(p.now, m, addrR, addrI)
		p.ini.Tick(p.now.Add(5 * 60e9))
		p.rsa.Tick(p.now.Add(5 * 60e9))
		_ = p.ini.Snapshot()
		_ = p.rsa.Snapshot()
	})
}

// rekeyingPair returns a pair in the middle of lifecycle work: the
// responder answered a CHILD_SA rekey (its new SA waits for the outbound
// switch; the answer is still on the link) and both ends have an IKE SA
// rekey in flight. It is deterministic, like establishedPair.
func rekeyingPair(t testing.TB) *pair {
	ini, resp := lifecycleConfigs(t, "aes256gcm16-x25519", "aes256gcm16-x25519")
	p := newPair(t, 8, ini, resp, ResponderOptions{})
	p.handshake()
	p.settle()
	a, b := ends(p, true)
	a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
	p.deliver(b.take())
	b.do(b.sa().Rekey(p.now))
	return p
}

// fingerprint is what garbage must not change in an IKE SA.
func fingerprint(sa *IKESA) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %d %d q%d d%d r%v p%v", sa.state, sa.nextID, sa.peerID, len(sa.queue), len(sa.delayed),
		sa.rekeyedTo != nil, sa.peerRekey != nil)
	if sa.active != nil {
		fmt.Fprintf(&b, " a%d/%d", sa.active.msgID, sa.active.sent)
	}
	for _, c := range sa.children {
		fmt.Fprintf(&b, " %08x:%v%v%v%v", c.sa.InSPI, c.pendingOut, c.deleting, c.successor != nil, c.peerNew != nil)
	}
	return b.String()
}

// authentic reports whether m passes sa's integrity check (whole message or
// fragment).
func authentic(sa *IKESA, m *wire.Message) bool {
	if sa.prot == nil || len(m.Payloads) == 0 {
		return false
	}
	switch m.Payloads[len(m.Payloads)-1].(type) {
	case *wire.Encrypted:
		// An authentic but malformed message counts as authentic: it is
		// answered (INVALID_SYNTAX).
		_, err := sa.prot.Open(m)
		return !errors.Is(err, keys.ErrIntegrity)
	case *wire.EncryptedFragment:
		_, err := sa.prot.OpenFragment(m)
		return err == nil
	}
	return false
}

// FuzzEstablished feeds arbitrary datagrams to both ends of an IKE SA in
// the middle of a CHILD_SA rekey (one side's new SA waiting for its
// outbound switch) and of colliding IKE SA rekeys: nothing may panic, and
// a datagram that does not pass the integrity check of the SA it reaches
// changes nothing and gets no answer. Seeds: every datagram of the same
// scenario played to its end.
func FuzzEstablished(f *testing.F) {
	p := rekeyingPair(f)
	p.quiesce(10 * time.Minute)
	for _, pk := range p.trace {
		f.Add(pk.Data)
	}
	f.Add(make([]byte, 28))
	f.Add([]byte("garbage"))

	f.Fuzz(func(t *testing.T, data []byte) {
		p := rekeyingPair(t)
		m, err := wire.Parse(data)
		if err != nil {
			return // the runtime drops it (Responder.HandleMalformed is for IKE_SA_INIT)
		}
		for _, x := range []struct {
			sa    *IKESA
			local netip.AddrPort
		}{{p.ini, addrI}, {p.rsa, addrR}} {
			sa := x.sa
			before := fingerprint(sa)
			genuine := authentic(sa, m)
			out := sa.Handle(p.now, m, x.local, addrI)
			if !genuine {
				if got := fingerprint(sa); got != before {
					t.Fatalf("state changed by an unauthentic datagram:\n%s\n%s", before, got)
				}
				if len(out.Packets)+len(out.Events) != 0 {
					t.Fatalf("answered an unauthentic datagram: %+v", out)
				}
			}
			sa.Tick(p.now.Add(10 * time.Minute))
			_ = sa.Snapshot()
		}
	})
}
