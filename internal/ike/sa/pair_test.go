package sa

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestHandshakePSK(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 1, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	e := p.i.established()
	if e.SA.Proposal != "aes256gcm16-prfsha256-x25519" || e.SA.LocalID != "a.example" || e.SA.RemoteID != "b.example" {
		t.Errorf("snapshot: %+v", e.SA)
	}
	if e.KeyLog == "" {
		t.Error("no key log record")
	}
	if p.resp.HalfOpen() != 0 {
		t.Errorf("half-open count %d after IKE_AUTH", p.resp.HalfOpen())
	}
	c := p.i.children
	for _, ch := range c {
		if got := tsListString(ch.LocalTS) + " === " + tsListString(ch.RemoteTS); got != "10.1.0.0/16 === 10.2.0.0/16" {
			t.Errorf("initiator TS %s", got)
		}
		if ch.Encap || ch.Mode != ModeTunnel || ch.ReqID != 1 {
			t.Errorf("child %+v", ch)
		}
		// The rekey time is jittered by up to a tenth (RFC 7296 2.8.1).
		if ch.RekeyAt.After(ch.Created.Add(time.Hour)) || ch.RekeyAt.Before(ch.Created.Add(54*time.Minute)) ||
			!ch.ExpireAt.Equal(ch.Created.Add(66*time.Minute)) {
			t.Errorf("lifetimes %v %v", ch.RekeyAt, ch.ExpireAt)
		}
	}
	snap := p.ini.Snapshot()
	if len(snap.Children) != 1 || snap.Children[0].State != ChildInstalled || snap.Children[0].LocalTS[0] != "10.1.0.0/16" {
		t.Errorf("snapshot children %+v", snap.Children)
	}
	// Two exchanges, four messages, no retransmissions.
	if len(p.rawSent) != 2 || len(p.rawResp) != 2 {
		t.Errorf("%d datagrams sent, %d received", len(p.rawSent), len(p.rawResp))
	}
}

func TestHandshakeProposals(t *testing.T) {
	for i, prop := range []string{
		"aes256gcm16-prfsha256-x25519",
		"aes128-sha256-modp2048",
		"chacha20poly1305-prfsha256-ecp256",
		"aes256-sha384-ecp384",
		"aes128gcm16-prfsha512-ecp521",
		"aes256gcm16-prfsha384-mlkem768",
	} {
		t.Run(prop, func(t *testing.T) {
			ini, resp := baseConfigs(t, prop)
			esp := "aes128-sha256"
			if i%2 == 0 {
				esp = "chacha20poly1305"
			}
			ini.Children[0].Proposals = mustProposals(t, wire.ProtoESP, esp)
			resp.Children[0].Proposals = mustProposals(t, wire.ProtoESP, esp)
			p := newPair(t, uint64(10+i), ini, resp, ResponderOptions{})
			p.handshake()
			p.requireUp(1)
			if got := p.i.established().SA.Proposal; got != prop {
				t.Errorf("IKE proposal %q, want %q", got, prop)
			}
			for _, c := range p.i.children {
				if c.Suite.String() != esp {
					t.Errorf("ESP suite %s, want %s", c.Suite, esp)
				}
			}
		})
	}
}

func TestHandshakeCertificates(t *testing.T) {
	p := getPKI()
	for i, tc := range []struct {
		name       string
		kind       keyKind
		pss        bool
		wantScheme wire.AuthMethod
	}{
		{"rsa-pkcs1", keyRSA, false, wire.AuthDigitalSignature},
		{"rsa-pss", keyRSA, true, wire.AuthDigitalSignature},
		{"ecdsa-p256", keyECDSA, false, wire.AuthDigitalSignature},
		{"ed25519", keyEd25519, false, wire.AuthDigitalSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
			usePubKey(ini, leaf(t, tc.kind, "a.example", time.Time{}), p.root.cert)
			usePubKey(resp, leaf(t, tc.kind, "b.example", time.Time{}), p.root.cert)
			ini.Local.PreferPSS, resp.Local.PreferPSS = tc.pss, tc.pss
			pr := newPair(t, uint64(20+i), ini, resp, ResponderOptions{})
			pr.handshake()
			pr.requireUp(1)
			// The initiator's IKE_AUTH carried CERT (leaf and
			// intermediate, not the root) and CERTREQ.
			m := decryptSent(t, pr, 1)
			s := collect(m)
			if len(s.certs) != 2 || len(s.certReqs) != 1 || s.auth.Method != tc.wantScheme {
				t.Errorf("IKE_AUTH: %d certs, %d certreqs, auth method %v", len(s.certs), len(s.certReqs), s.auth.Method)
			}
		})
	}
}

// decryptSent decrypts the initiator's request with message ID msgID
// (reassembling fragments) with the responder's keys.
func decryptSent(t testing.TB, p *pair, msgID uint32) []wire.Payload {
	t.Helper()
	return decryptFrom(t, p.rprot, p.rawSent, msgID)
}

func decryptFrom(t testing.TB, prot *keys.Protector, datagrams [][]byte, msgID uint32) []wire.Payload {
	t.Helper()
	var frags []keys.Fragment
	seen := map[uint16]bool{}
	for _, d := range datagrams {
		m, err := wire.Parse(d)
		if err != nil || m.MessageID != msgID || m.Exchange == wire.IKE_SA_INIT {
			continue
		}
		switch m.Payloads[len(m.Payloads)-1].(type) {
		case *wire.Encrypted:
			ps, err := prot.Open(m)
			if err != nil {
				t.Fatal(err)
			}
			return ps
		case *wire.EncryptedFragment:
			f, err := prot.OpenFragment(m)
			if err != nil {
				t.Fatal(err)
			}
			if !seen[f.Number] {
				seen[f.Number] = true
				frags = append(frags, f)
			}
		}
	}
	if len(frags) == 0 {
		t.Fatalf("no message %d", msgID)
	}
	ps, err := keys.ReassembleFragments(frags)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestCookies(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 30, ini, resp, ResponderOptions{CookieThreshold: -1})
	p.handshake()
	p.requireUp(1)
	// Request without cookie, COOKIE answer, request with it, response.
	first, err := wire.Parse(p.rawSent[0])
	if err != nil {
		t.Fatal(err)
	}
	if collect(first.Payloads).notify(wire.COOKIE) != nil {
		t.Error("first request carried a COOKIE")
	}
	answer, _ := wire.Parse(p.rawResp[0])
	if len(answer.Payloads) != 1 || answer.Payloads[0].(*wire.Notify).NotifyType != wire.COOKIE || answer.SPIr != 0 {
		t.Fatalf("answer to the first request: %+v", answer)
	}
	retry, _ := wire.Parse(p.rawSent[1])
	n, ok := retry.Payloads[0].(*wire.Notify)
	if !ok || n.NotifyType != wire.COOKIE || retry.SPIi != first.SPIi || retry.MessageID != 0 {
		t.Fatalf("retry does not start with the COOKIE: %+v", retry.Payloads[0])
	}
	// RFC 7296 2.6: all other payloads unchanged.
	if payloadList(retry.Payloads[1:]) != payloadList(first.Payloads) ||
		!bytesEqual(collect(retry.Payloads).nonce.Data, collect(first.Payloads).nonce.Data) {
		t.Error("retry changed the other payloads")
	}
	// AUTH signed the request with the cookie: both sides verified it.
	if !bytesEqual(p.ini.initReq, p.rawSent[1]) {
		t.Error("initiator's signed IKE_SA_INIT is not the last request")
	}
}

func TestCookieThreshold(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	r := NewResponder(testEnv(t, 31), &selector{cfgs: []*Config{resp}}, ResponderOptions{CookieThreshold: 2, MaxHalfOpen: 3})
	// Two half-open SAs without cookies, then cookies are demanded; a
	// request with a valid cookie gets the third; the fourth is dropped.
	var sas []*IKESA
	for i := range 3 {
		sa := NewInitiator(testEnv(t, uint64(40+i)), ini, addrI, addrR)
		out := sa.Initiate(t0)
		m, _ := wire.Parse(out.Packets[0].Data)
		rsa, rout := r.HandleInit(t0, m, addrR, addrI)
		if i < 2 {
			if rsa == nil {
				t.Fatalf("request %d: no SA", i)
			}
			sas = append(sas, rsa)
			continue
		}
		if rsa != nil || len(rout.Packets) != 1 {
			t.Fatalf("request %d above the threshold got an SA", i)
		}
		cm, _ := wire.Parse(rout.Packets[0].Data)
		out = sa.Handle(t0, cm, addrI, addrR)
		m, _ = wire.Parse(out.Packets[0].Data)
		rsa, rout = r.HandleInit(t0.Add(time.Second), m, addrR, addrI)
		if rsa == nil {
			t.Fatalf("request with cookie refused: %v", rout)
		}
		sas = append(sas, rsa)
	}
	if r.HalfOpen() != 3 {
		t.Fatalf("half-open %d", r.HalfOpen())
	}
	sa := NewInitiator(testEnv(t, 50), ini, addrI, addrR)
	m, _ := wire.Parse(sa.Initiate(t0).Packets[0].Data)
	if rsa, out := r.HandleInit(t0, m, addrR, addrI); rsa != nil || len(out.Packets) != 0 {
		t.Fatal("request above MaxHalfOpen not dropped")
	}
	// Half-open SAs time out and stop counting.
	for _, s := range sas {
		if d := s.NextDeadline(); !d.Equal(t0.Add(defaultHalfOpenTimeout)) && !d.Equal(t0.Add(time.Second+defaultHalfOpenTimeout)) {
			t.Errorf("half-open deadline %v", d)
		}
		out := s.Tick(t0.Add(time.Minute))
		if len(out.Events) != 1 {
			t.Fatalf("events %v", out.Events)
		}
		if f, ok := out.Events[0].(Failed); !ok || !errors.Is(f.Err, ErrNoAnswer) {
			t.Errorf("half-open timeout: %v", out.Events)
		}
	}
	if r.HalfOpen() != 0 {
		t.Errorf("half-open %d after timeouts", r.HalfOpen())
	}
}

func TestInvalidKE(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519-ecp256")
	// The responder prefers ecp256; the initiator's KE is x25519.
	resp.IKEProposals = mustProposals(t, wire.ProtoIKE, "aes256gcm16-prfsha256-ecp256")
	p := newPair(t, 32, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	if got := p.i.established().SA.Proposal; got != "aes256gcm16-prfsha256-ecp256" {
		t.Errorf("proposal %s", got)
	}
	first, _ := wire.Parse(p.rawSent[0])
	retry, _ := wire.Parse(p.rawSent[1])
	ans, _ := wire.Parse(p.rawResp[0])
	n := ans.Payloads[0].(*wire.Notify)
	if n.NotifyType != wire.INVALID_KE_PAYLOAD || !bytesEqual(n.Data, []byte{0, 19}) {
		t.Fatalf("answer %v %x", n.NotifyType, n.Data)
	}
	a, b := collect(first.Payloads), collect(retry.Payloads)
	if a.ke.Group != wire.KE_CURVE25519 || b.ke.Group != wire.KE_ECP256 || retry.SPIi != first.SPIi ||
		!bytesEqual(a.nonce.Data, b.nonce.Data) {
		t.Errorf("retry: KE %v -> %v, same SPI %v, same nonce %v", a.ke.Group, b.ke.Group, retry.SPIi == first.SPIi,
			bytesEqual(a.nonce.Data, b.nonce.Data))
	}
}

func TestInvalidKENotOffered(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 33, ini, resp, ResponderOptions{})
	// A responder that asks for a group we never offered (forged answer).
	p.tamper = func(toResponder bool, b []byte) []byte {
		m, _ := wire.Parse(b)
		if toResponder || m == nil || m.Exchange != wire.IKE_SA_INIT {
			return b
		}
		out := statelessTo(wire.Header{SPIi: m.SPIi}, addrR, addrI,
			&wire.Notify{NotifyType: wire.INVALID_KE_PAYLOAD, Data: []byte{0, 20}})
		return out.Packets[0].Data
	}
	p.handshake()
	err := p.i.failed()
	var ne *NotifyError
	if !errors.As(err, &ne) || ne.Type != wire.INVALID_KE_PAYLOAD || !ne.Remote ||
		!strings.Contains(err.Error(), "ECP_384") && !strings.Contains(err.Error(), "ecp384") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func TestFragmentation(t *testing.T) {
	pk := getPKI()
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	usePubKey(ini, leaf(t, keyBigRSA, "a.example", time.Time{}), pk.root.cert)
	usePubKey(resp, leaf(t, keyBigRSA, "b.example", time.Time{}), pk.root.cert)
	ini.FragmentSize, resp.FragmentSize = 1280, 1280
	p := newPair(t, 34, ini, resp, ResponderOptions{})
	p.faults(34, 0, 0.3, 0.5) // duplicates and reordering, no loss
	p.handshake()
	p.requireUp(1)
	fragsI, fragsR := 0, 0
	for _, d := range p.rawSent {
		if len(d)+28 > 1280 {
			t.Errorf("initiator sent %d octets", len(d))
		}
		if m, _ := wire.Parse(d); m != nil && m.NextPayload == wire.PayloadSKF {
			fragsI++
		}
	}
	for _, d := range p.rawResp {
		if len(d)+28 > 1280 {
			t.Errorf("responder sent %d octets", len(d))
		}
		if m, _ := wire.Parse(d); m != nil && m.NextPayload == wire.PayloadSKF {
			fragsR++
		}
	}
	if fragsI < 3 || fragsR < 3 {
		t.Errorf("fragments: %d from the initiator, %d from the responder", fragsI, fragsR)
	}
	if s := collect(decryptSent(t, p, 1)); len(s.certs) != 2 || s.auth == nil {
		t.Errorf("reassembled IKE_AUTH: %d certs", len(s.certs))
	}
}

func TestFragmentRetransmission(t *testing.T) {
	pk := getPKI()
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	usePubKey(ini, leaf(t, keyBigRSA, "a.example", time.Time{}), pk.root.cert)
	usePubKey(resp, leaf(t, keyBigRSA, "b.example", time.Time{}), pk.root.cert)
	p := newPair(t, 35, ini, resp, ResponderOptions{})
	// Lose every fragment but the first of the first IKE_AUTH response, and
	// the second fragment of the first IKE_AUTH request.
	seen := map[string]int{}
	p.tamper = func(toResponder bool, b []byte) []byte {
		m, _ := wire.Parse(b)
		if m == nil || m.Exchange != wire.IKE_AUTH {
			return b
		}
		f, ok := m.Payloads[len(m.Payloads)-1].(*wire.EncryptedFragment)
		if !ok {
			return b
		}
		key := fmt.Sprint(toResponder, f.Number)
		seen[key]++
		if seen[key] == 1 && ((toResponder && f.Number == 2) || (!toResponder && f.Number > 1)) {
			return nil
		}
		return b
	}
	p.handshake()
	p.requireUp(1)
}

func TestHandshakeIPv6(t *testing.T) {
	pk := getPKI()
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	usePubKey(ini, leaf(t, keyBigRSA, "a.example", time.Time{}), pk.root.cert)
	usePubKey(resp, leaf(t, keyBigRSA, "b.example", time.Time{}), pk.root.cert)
	ini.Children[0].LocalTS, ini.Children[0].RemoteTS = []TrafficSelector{DynamicTS()}, []TrafficSelector{PrefixTS(netipPrefix("2001:db8:2::/48"))}
	resp.Children[0].LocalTS, resp.Children[0].RemoteTS = []TrafficSelector{PrefixTS(netipPrefix("2001:db8::/32"))}, []TrafficSelector{DynamicTS()}
	ai, ar := netip.MustParseAddrPort("[2001:db8:1::1]:500"), netip.MustParseAddrPort("[2001:db8:ffff::2]:500")
	p := newPairAt(t, 150, ini, resp, ResponderOptions{}, ai, ar)
	p.handshake()
	p.requireUp(1)
	for _, c := range p.i.children {
		if l, r := tsListString(c.LocalTS), tsListString(c.RemoteTS); l != "2001:db8:1::1/128" || r != "2001:db8:2::/48" {
			t.Errorf("TS %s === %s", l, r)
		}
	}
	for _, d := range append(p.rawSent, p.rawResp...) {
		if len(d)+48 > 1280 {
			t.Errorf("datagram of %d octets exceeds 1280 with IPv6 and UDP headers", len(d))
		}
	}
}
