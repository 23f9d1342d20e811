package sa

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// The responder answers retransmitted requests with the same octets, from
// its cache (RFC 7296 2.1), also IKE_SA_INIT and fragmented responses (RFC
// 7383 2.6.1: only fragment 1 triggers it).
func TestResponseCache(t *testing.T) {
	pk := getPKI()
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	usePubKey(ini, leaf(t, keyBigRSA, "a.example", time.Time{}), pk.root.cert)
	usePubKey(resp, leaf(t, keyBigRSA, "b.example", time.Time{}), pk.root.cert)
	p := newPair(t, 300, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)

	replay := func(d []byte) [][]byte {
		m, err := wire.Parse(d)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, pk := range p.rsa.Handle(p.now, m, addrR, addrI).Packets {
			out = append(out, pk.Data)
		}
		return out
	}
	// IKE_SA_INIT: not cached after IKE_AUTH replaced it (message ID 1
	// answered); the request is simply dropped.
	if got := replay(p.rawSent[0]); len(got) != 0 {
		t.Errorf("IKE_SA_INIT answered after IKE_AUTH")
	}
	var authReq [][]byte
	for _, d := range p.rawSent {
		if m, _ := wire.Parse(d); m.Exchange == wire.IKE_AUTH {
			authReq = append(authReq, d)
		}
	}
	var authResp [][]byte
	for _, d := range p.rawResp {
		if m, _ := wire.Parse(d); m.Exchange == wire.IKE_AUTH {
			authResp = append(authResp, d)
		}
	}
	if len(authReq) < 2 || len(authResp) < 2 {
		t.Fatalf("IKE_AUTH not fragmented: %d/%d", len(authReq), len(authResp))
	}
	got := replay(authReq[0])
	if len(got) != len(authResp) {
		t.Fatalf("fragment 1 answered with %d datagrams, want %d", len(got), len(authResp))
	}
	for i := range got {
		if !bytes.Equal(got[i], authResp[i]) {
			t.Errorf("retransmitted fragment %d differs", i+1)
		}
	}
	if got := replay(authReq[1]); len(got) != 0 {
		t.Errorf("fragment 2 answered")
	}
	if p.rsa.State() != StateEstablished || len(p.r.children) != 1 {
		t.Error("state changed")
	}
}

func TestInitRetransmission(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 301, ini, resp, ResponderOptions{})
	// Only IKE_SA_INIT: the IKE_AUTH request is held back.
	p.tamper = func(toResponder bool, b []byte) []byte {
		if m, _ := wire.Parse(b); toResponder && m.Exchange == wire.IKE_AUTH {
			return nil
		}
		return b
	}
	p.fromInitiator(p.ini.Initiate(p.now))
	p.run(time.Second, func() bool { return false })
	m, _ := wire.Parse(p.rawSent[0])
	out := p.rsa.Handle(p.now, m, addrR, addrI)
	if len(out.Packets) != 1 || !bytes.Equal(out.Packets[0].Data, p.rawResp[0]) {
		t.Fatal("IKE_SA_INIT retransmission not answered with the same response")
	}
	// Another request with the same SPI (a different nonce) is not a
	// retransmission.
	other := NewInitiator(&Env{Rand: seeded(9), NewIKESPI: func() uint64 { return m.SPIi }}, ini, addrI, addrR)
	m2, _ := wire.Parse(other.Initiate(p.now).Packets[0].Data)
	if out := p.rsa.Handle(p.now, m2, addrR, addrI); len(out.Packets) != 0 {
		t.Fatal("a different IKE_SA_INIT answered from the cache")
	}
	if p.resp.HalfOpen() != 1 {
		t.Errorf("half-open %d", p.resp.HalfOpen())
	}
}

func TestHandleMalformed(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	r := NewResponder(testEnv(t, 302), &selector{cfgs: []*Config{resp}}, ResponderOptions{})
	sa := NewInitiator(testEnv(t, 303), ini, addrI, addrR)
	req := bytes.Clone(sa.Initiate(t0).Packets[0].Data)
	req[17] = 0x30 // version 3.0
	_, err := wire.Parse(req)
	out := r.HandleMalformed(t0, req, err, addrR, addrI)
	if len(out.Packets) != 1 {
		t.Fatalf("no answer to version 3: %v", err)
	}
	m, err := wire.Parse(out.Packets[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	n := m.Payloads[0].(*wire.Notify)
	if n.NotifyType != wire.INVALID_MAJOR_VERSION || m.MajorVersion != 2 || !m.IsResponse() || m.SPIr != 0 {
		t.Errorf("answer %v %+v", n.NotifyType, m.Header)
	}
	// Garbage gets nothing.
	for _, d := range [][]byte{nil, {1, 2, 3}, make([]byte, 40)} {
		_, err := wire.Parse(d)
		if out := r.HandleMalformed(t0, d, err, addrR, addrI); len(out.Packets) != 0 {
			t.Errorf("answered %x", d)
		}
	}
	if r.HalfOpen() != 0 {
		t.Error("state kept")
	}
}

// The responder that finds no proposal logs both sides' offers.
func TestNoProposalLog(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	resp.IKEProposals = mustProposals(t, wire.ProtoIKE, "aes128-sha256-modp2048")
	var buf bytes.Buffer
	env := testEnv(t, 304)
	env.Log = slog.New(slog.NewTextHandler(&buf, nil))
	r := NewResponder(env, &selector{cfgs: []*Config{resp}}, ResponderOptions{})
	sa := NewInitiator(testEnv(t, 305), ini, addrI, addrR)
	m, _ := wire.Parse(sa.Initiate(t0).Packets[0].Data)
	r.HandleInit(t0, m, addrR, addrI)
	want := "no proposal chosen: we offered aes128-sha256-modp2048, peer offered aes256gcm16-prfsha256-x25519"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, buf.String())
	}
}

// Classic signature methods (RFC 7296 method 1, RFC 4754 method 9) verify
// too; SHA-1 RSA only where allowed.
func TestClassicAuthMethods(t *testing.T) {
	pk := getPKI()
	for _, tc := range []struct {
		kind      keyKind
		method    wire.AuthMethod
		scheme    auth.Scheme
		allowSHA1 bool
		ok        bool
	}{
		{keyECDSA, wire.AuthECDSA256, auth.ECDSASHA256, false, true},
		{keyRSA, wire.AuthRSASig, auth.RSAPKCS1SHA1, true, true},
		{keyRSA, wire.AuthRSASig, auth.RSAPKCS1SHA1, false, false},
	} {
		ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
		usePubKey(ini, leaf(t, tc.kind, "a.example", time.Time{}), pk.root.cert)
		usePubKey(resp, leaf(t, tc.kind, "b.example", time.Time{}), pk.root.cert)
		ini.Remote.AllowSHA1 = tc.allowSHA1
		p := newPair(t, 306, ini, resp, ResponderOptions{})
		p.handshake()
		p.requireUp(1)
		// Re-sign the responder's AUTH with the classic method and verify
		// it as the initiator would have.
		idr := idPayload(wire.PayloadIDr, mustID(t, "b.example"))
		data, err := auth.Sign(p.rsa.rand, resp.Local.Cred.Key, tc.method, tc.scheme, p.rsa.signedOctets(false, idr))
		if err != nil {
			t.Fatal(err)
		}
		s := payloadSet{idr: idr, auth: &wire.Auth{Method: tc.method, Data: data}}
		for _, c := range resp.Local.Cred.CertsToSend() {
			s.certs = append(s.certs, &wire.Cert{Encoding: wire.CertX509Signature, Data: c.Raw})
		}
		err = p.ini.verifyPeerAuth(ini, &s, mustID(t, "b.example"), p.now)
		if (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.method, err)
		}
	}
}

// Duplicated COOKIE and INVALID_KE_PAYLOAD answers (IKE_SA_INIT keeps
// message ID 0 across retries) must not derail the initiator.
func TestDuplicateInitAnswers(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519-ecp256")
	resp.IKEProposals = mustProposals(t, wire.ProtoIKE, "aes256gcm16-prfsha256-ecp256")
	p := newPair(t, 307, ini, resp, ResponderOptions{CookieThreshold: -1})
	var answers [][]byte
	p.tamper = func(toResponder bool, b []byte) []byte {
		m, _ := wire.Parse(b)
		if !toResponder && m.Exchange == wire.IKE_SA_INIT && m.SPIr == 0 {
			answers = append(answers, b)
		}
		return b
	}
	p.fromInitiator(p.ini.Initiate(p.now))
	for p.rsa == nil {
		f, ok := p.link.next()
		if !ok {
			t.Fatal("stalled")
		}
		p.deliver(f)
		// Replay every stateless answer seen so far to the initiator.
		for _, a := range answers {
			m, _ := wire.Parse(a)
			p.fromInitiator(p.ini.Handle(p.now, m, addrI, addrR))
		}
	}
	p.handshake()
	p.requireUp(1)
	if len(answers) != 2 {
		t.Errorf("%d stateless answers (COOKIE, INVALID_KE_PAYLOAD expected)", len(answers))
	}
}
