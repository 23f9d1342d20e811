package sa

import (
	"testing"

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
