package sa

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// requireNotifyErr checks that err is a NotifyError of type typ, sent by
// the peer (remote) or by us, whose text contains each of want.
func requireNotifyErr(t *testing.T, who string, err error, typ wire.NotifyType, remote bool, want ...string) {
	t.Helper()
	var ne *NotifyError
	if !errors.As(err, &ne) {
		t.Fatalf("%s: error %v is not a NotifyError", who, err)
	}
	if ne.Type != typ || ne.Remote != remote || !errors.Is(err, &NotifyError{Type: typ}) {
		t.Fatalf("%s: %v (type %v remote %v), want %v remote %v", who, err, ne.Type, ne.Remote, typ, remote)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not mention %q", who, err, w)
		}
	}
	t.Logf("%s: %v", who, err)
}

// sentNotify reports whether a response of the responder carried notify typ
// (decrypting with the initiator's keys where needed).
func respNotify(t *testing.T, p *pair, msgID uint32, typ wire.NotifyType) bool {
	t.Helper()
	var ps []wire.Payload
	if msgID == 0 {
		m, err := wire.Parse(p.rawResp[len(p.rawResp)-1])
		if err != nil {
			t.Fatal(err)
		}
		ps = m.Payloads
	} else {
		ps = decryptFrom(t, p.iprot, p.rawResp, msgID)
	}
	return collect(ps).notify(typ) != nil
}

func TestFailWrongPSK(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	resp.PSK = pskFunc("another key")
	p := newPair(t, 60, ini, resp, ResponderOptions{})
	p.handshake()
	requireNotifyErr(t, "responder", p.r.failed(), wire.AUTHENTICATION_FAILED, false, "pre-shared key", "a.example")
	requireNotifyErr(t, "initiator", p.i.failed(), wire.AUTHENTICATION_FAILED, true, "rejected our authentication", "a.example")
	if !respNotify(t, p, 1, wire.AUTHENTICATION_FAILED) {
		t.Error("no AUTHENTICATION_FAILED in the IKE_AUTH response")
	}
	if len(p.r.children) != 0 || len(p.i.children) != 0 || p.r.established() != nil {
		t.Error("state created for an unauthenticated peer")
	}
	if p.resp.HalfOpen() != 0 {
		t.Errorf("half-open %d", p.resp.HalfOpen())
	}
	// The responder lingers to answer retransmissions, then is done.
	if p.rsa.Done() || p.rsa.State() != StateDead {
		t.Errorf("responder done %v state %v", p.rsa.Done(), p.rsa.State())
	}
	p.rsa.Tick(p.now.Add(time.Minute))
	if !p.rsa.Done() || !p.ini.Done() {
		t.Error("not done")
	}
}

func TestFailCertificates(t *testing.T) {
	pk := getPKI()
	for i, tc := range []struct {
		name  string
		setup func(ini, resp *Config)
		// which side detects it: the responder checks the initiator.
		respErr []string
	}{
		{"untrusted", func(ini, resp *Config) {
			resp.Remote.Roots = rootPool(pk.other.cert)
			resp.Remote.CACerts = nil
		}, []string{"a.example"}},
		{"expired", func(ini, resp *Config) {
			ini.Local.Cred = leaf(t, keyECDSA, "a.example", t0.Add(-time.Hour))
		}, []string{"expired"}},
		{"identity not in certificate", func(ini, resp *Config) {
			ini.Local.ID = mustID(t, "x.example")
			resp.Remote.ID = auth.Identity{} // %any: the certificate must prove it
		}, []string{"x.example"}},
		{"identity not configured", func(ini, resp *Config) {
			resp.Remote.ID = mustID(t, "c.example")
		}, []string{"no connection for peer identity a.example"}},
		{"psk instead of certificate", func(ini, resp *Config) {
			ini.Local.Method = AuthPSK
			ini.PSK = pskFunc(testPSK)
		}, []string{"requires a certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
			usePubKey(ini, leaf(t, keyECDSA, "a.example", time.Time{}), pk.root.cert)
			usePubKey(resp, leaf(t, keyECDSA, "b.example", time.Time{}), pk.root.cert)
			tc.setup(ini, resp)
			p := newPair(t, uint64(61+i), ini, resp, ResponderOptions{})
			p.handshake()
			requireNotifyErr(t, "responder", p.r.failed(), wire.AUTHENTICATION_FAILED, false, tc.respErr...)
			requireNotifyErr(t, "initiator", p.i.failed(), wire.AUTHENTICATION_FAILED, true)
			if !respNotify(t, p, 1, wire.AUTHENTICATION_FAILED) {
				t.Error("no AUTHENTICATION_FAILED in the IKE_AUTH response")
			}
		})
	}
}

// The initiator rejects the responder: it fails, and tells the responder
// in an INFORMATIONAL (RFC 7296 2.21.2), which fails too.
func TestFailResponderIdentity(t *testing.T) {
	pk := getPKI()
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	usePubKey(ini, leaf(t, keyECDSA, "a.example", time.Time{}), pk.root.cert)
	usePubKey(resp, leaf(t, keyECDSA, "c.example", time.Time{}), pk.root.cert)
	resp.Local.ID = mustID(t, "c.example")
	ini.Remote.ID = mustID(t, "*.example")     // accepts c.example as such...
	ini.Remote.Roots = rootPool(pk.other.cert) // ...but not its certificate
	p := newPair(t, 70, ini, resp, ResponderOptions{})
	p.handshake()
	p.settle()
	requireNotifyErr(t, "initiator", p.i.failed(), wire.AUTHENTICATION_FAILED, false, "c.example")
	requireNotifyErr(t, "responder", p.r.failed(), wire.AUTHENTICATION_FAILED, true, "rejected our authentication")
	if len(p.r.children) != 0 {
		t.Error("responder's CHILD_SA still up")
	}
	// The responder's CHILD_SA was reported down.
	downs := 0
	for _, e := range p.r.events {
		if _, ok := e.(ChildDown); ok {
			downs++
		}
	}
	if downs != 1 {
		t.Errorf("%d ChildDown events", downs)
	}
}

func TestFailNoProposal(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	resp.IKEProposals = mustProposals(t, wire.ProtoIKE, "aes128-sha1-modp2048")
	p := newPair(t, 71, ini, resp, ResponderOptions{})
	p.handshake()
	requireNotifyErr(t, "initiator", p.i.failed(), wire.NO_PROPOSAL_CHOSEN, true,
		"peer rejected our proposals aes256gcm16-prfsha256-x25519")
	if p.rsa != nil || p.resp.HalfOpen() != 0 {
		t.Error("responder kept state")
	}
	if !respNotify(t, p, 0, wire.NO_PROPOSAL_CHOSEN) {
		t.Error("no NO_PROPOSAL_CHOSEN")
	}
	if !p.ini.Done() {
		t.Error("initiator not done")
	}
}

func TestFailChild(t *testing.T) {
	for i, tc := range []struct {
		name  string
		setup func(ini, resp *Config)
		typ   wire.NotifyType
		want  []string
	}{
		{"no ESP proposal", func(ini, resp *Config) {
			resp.Children[0].Proposals = mustProposals(t, wire.ProtoESP, "aes128-sha1")
		}, wire.NO_PROPOSAL_CHOSEN, []string{"aes256gcm16"}},
		{"TS mismatch", func(ini, resp *Config) {
			resp.Children[0].RemoteTS = []TrafficSelector{PrefixTS(netipPrefix("10.9.0.0/16"))}
		}, wire.TS_UNACCEPTABLE, []string{"10.1.0.0/16"}},
		{"transport declined", func(ini, resp *Config) {
			ini.Children[0].Mode = ModeTransport
		}, 0, []string{"declined transport mode"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
			tc.setup(ini, resp)
			p := newPair(t, uint64(72+i), ini, resp, ResponderOptions{})
			p.handshake()
			p.settle()
			p.requireUp(0)
			fi := p.i.childFailures()
			if len(fi) != 1 || fi[0].Name != "net" || fi[0].SPI == 0 {
				t.Fatalf("initiator child failures %+v", fi)
			}
			if tc.typ == 0 {
				// We rejected the answer: the peer's CHILD_SA was
				// deleted with an INFORMATIONAL.
				if !strings.Contains(fi[0].Err.Error(), tc.want[0]) {
					t.Errorf("reason %v", fi[0].Err)
				}
				if len(p.r.childFailures()) != 0 || len(p.r.children) != 0 {
					t.Errorf("responder: %v, %d children", p.r.childFailures(), len(p.r.children))
				}
				return
			}
			requireNotifyErr(t, "initiator", fi[0].Err, tc.typ, true, tc.want...)
			fr := p.r.childFailures()
			if len(fr) != 1 {
				t.Fatalf("responder child failures %+v", fr)
			}
			requireNotifyErr(t, "responder", fr[0].Err, tc.typ, false, tc.want...)
			if !respNotify(t, p, 1, tc.typ) {
				t.Errorf("no %v in the IKE_AUTH response", tc.typ)
			}
		})
	}
}

func TestFailMalformedInsideSK(t *testing.T) {
	for i, tc := range []struct {
		name  string
		first wire.PayloadType
		inner []byte
		typ   wire.NotifyType
	}{
		{"bad IDi", wire.PayloadIDi, rawPayload([]byte{1, 0, 0, 0, 10}), wire.INVALID_SYNTAX},
		{"truncated chain", wire.PayloadIDi, []byte{0, 0, 0, 40, 2}, wire.INVALID_SYNTAX},
		{"critical unknown", 200, append([]byte{0, 0x80, 0, 5}, 1), wire.UNSUPPORTED_CRITICAL_PAYLOAD},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
			p := newPair(t, uint64(80+i), ini, resp, ResponderOptions{})
			p.tamper = func(toResponder bool, b []byte) []byte {
				m, _ := wire.Parse(b)
				if !toResponder || m == nil || m.Exchange != wire.IKE_AUTH {
					return b
				}
				return sealRaw(t, p.ini.keys.SKei, m.Header, tc.first, tc.inner)
			}
			p.handshake()
			requireNotifyErr(t, "responder", p.r.failed(), tc.typ, false, "malformed IKE_AUTH request")
			requireNotifyErr(t, "initiator", p.i.failed(), tc.typ, true)
			if !respNotify(t, p, 1, tc.typ) {
				t.Errorf("no %v sent", tc.typ)
			}
		})
	}
}

// An established SA answers a malformed request with INVALID_SYNTAX and
// stays up; a request that fails integrity is dropped without an answer.
func TestMalformedKeepsEstablished(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 90, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	h := p.ini.header(wire.INFORMATIONAL, p.ini.nextID, false)
	bad := sealRaw(t, p.ini.keys.SKei, h, wire.PayloadDelete, rawPayload([]byte{3}))
	m, _ := wire.Parse(bad)
	out := p.rsa.Handle(p.now, m, addrR, addrI)
	if len(out.Packets) != 1 || len(out.Events) != 0 || p.rsa.State() != StateEstablished {
		t.Fatalf("answer %+v, state %v", out, p.rsa.State())
	}
	rm, _ := wire.Parse(out.Packets[0].Data)
	ps, err := p.ini.prot.Open(rm)
	if err != nil || collect(ps).notify(wire.INVALID_SYNTAX) == nil {
		t.Fatalf("response %v %v", payloadList(ps), err)
	}
	// Corrupt the ICV of the next request: dropped silently.
	p.ini.nextID++
	h = p.ini.header(wire.INFORMATIONAL, p.ini.nextID, false)
	good, _ := p.ini.prot.Seal(h, nil, p.ini.rand)
	good[len(good)-1] ^= 1
	m, _ = wire.Parse(good)
	if out := p.rsa.Handle(p.now, m, addrR, addrI); len(out.Packets) != 0 || len(out.Events) != 0 {
		t.Fatalf("answered a forged request: %+v", out)
	}
	if p.rsa.State() != StateEstablished || len(p.rsa.children) != 1 {
		t.Fatal("state changed")
	}
}

func TestFailTimeout(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 91, ini, resp, ResponderOptions{})
	p.tamper = func(toResponder bool, b []byte) []byte { return nil } // a black hole
	p.handshake()
	err := p.i.failed()
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "IKE_SA_INIT request 0 after 5 retransmissions") {
		t.Fatalf("err = %v", err)
	}
	// strongSwan's schedule: 4 + 7.2 + 13 + 23.3 + 42 + 75.6 s.
	if d := p.now.Sub(t0); d < 165*time.Second || d > 166*time.Second {
		t.Errorf("gave up after %v", d)
	}
	if len(p.rawSent) != 6 {
		t.Errorf("%d transmissions", len(p.rawSent))
	}
	for _, d := range p.rawSent[1:] {
		if !bytesEqual(d, p.rawSent[0]) {
			t.Error("retransmission differs from the original")
		}
	}
}
