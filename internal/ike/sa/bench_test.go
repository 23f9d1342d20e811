package sa

import (
	"testing"
	"time"
)

// benchHandshake runs complete handshakes (IKE_SA_INIT, IKE_AUTH with one
// CHILD_SA), both sides in memory, without faults.
func benchHandshake(b *testing.B, ini, resp *Config) {
	b.ReportAllocs()
	sel := &selector{cfgs: []*Config{resp}}
	for i := 0; b.Loop(); i++ {
		ienv, renv := &Env{}, &Env{}
		p := &pair{t: b, now: t0, link: &link{}, i: newSide("initiator", ienv), r: newSide("responder", renv)}
		p.ini = NewInitiator(ienv, ini, addrI, addrR)
		p.i.register(p.ini)
		p.resp = NewResponder(renv, sel, ResponderOptions{})
		p.handshake()
		if p.i.established() == nil || p.r.established() == nil || len(p.i.children) != 1 {
			b.Fatal("handshake failed")
		}
	}
}

func BenchmarkHandshakePSK(b *testing.B) {
	ini, resp := baseConfigs(b, "aes256gcm16-prfsha256-x25519")
	benchHandshake(b, ini, resp)
}

func BenchmarkHandshakeECDSA(b *testing.B) {
	pk := getPKI()
	ini, resp := baseConfigs(b, "aes256gcm16-prfsha256-x25519")
	usePubKey(ini, leaf(b, keyECDSA, "a.example", time.Time{}), pk.root.cert)
	usePubKey(resp, leaf(b, keyECDSA, "b.example", time.Time{}), pk.root.cert)
	ini.Children[0].Proposals = mustProposals(b, 3, "aes256gcm16")
	// The certificates' validity is checked against the fake clock t0.
	benchHandshake(b, ini, resp)
}
