package keys

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// testRand is a deterministic randomness source for tests.
func testRand(seed uint64) io.Reader {
	return rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1, 2, 3})
}

// ikeSuites returns every IKE suite Cygnet can protect messages with: each
// encryption algorithm at each key length, AES-CBC with each integrity
// algorithm.
func ikeSuites() map[string]algs.Suite {
	out := map[string]algs.Suite{}
	for _, bits := range []uint16{128, 192, 256} {
		for _, integ := range []wire.IntegID{wire.AUTH_HMAC_SHA1_96, wire.AUTH_HMAC_SHA2_256_128, wire.AUTH_HMAC_SHA2_384_192, wire.AUTH_HMAC_SHA2_512_256} {
			s := suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, bits, wire.PRF_HMAC_SHA2_256, integ)
			out[s.String()] = s
		}
		for _, gcm := range []wire.EncrID{wire.ENCR_AES_GCM_8, wire.ENCR_AES_GCM_12, wire.ENCR_AES_GCM_16} {
			s := suiteFor(wire.ProtoIKE, gcm, bits, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE)
			out[s.String()] = s
		}
	}
	s := suiteFor(wire.ProtoIKE, wire.ENCR_CHACHA20_POLY1305, 0, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE)
	out[s.String()] = s
	return out
}

// protectorPair derives keys for s and returns the initiator's and the
// responder's Protector.
func protectorPair(t testing.TB, s algs.Suite) (ini, resp *Protector, k *IKEKeys) {
	t.Helper()
	prf := s.PRFAlg()
	skeyseed := SKEYSEED(prf, []byte("initiator nonce!"), []byte("responder nonce!"), bytes.Repeat([]byte{0x5a}, 32))
	k, err := DeriveIKEKeys(s, skeyseed, []byte("initiator nonce!"), []byte("responder nonce!"), 0x1111, 0x2222)
	if err != nil {
		t.Fatal(err)
	}
	if ini, err = NewProtector(s, k, true); err != nil {
		t.Fatal(err)
	}
	if resp, err = NewProtector(s, k, false); err != nil {
		t.Fatal(err)
	}
	return ini, resp, k
}

func authHeader() wire.Header {
	return wire.Header{
		SPIi: 0x0102030405060708, SPIr: 0x1112131415161718,
		MajorVersion: 2, Exchange: wire.IKE_AUTH, Flags: wire.FlagInitiator, MessageID: 1,
	}
}

// authPayloads is an IKE_AUTH request's content, about certLen octets more
// than 200.
func authPayloads(certLen int) []wire.Payload {
	ps := []wire.Payload{
		&wire.ID{Kind: wire.PayloadIDi, IDType: wire.IDFQDN, Data: []byte("carol.strongswan.org")},
	}
	if certLen > 0 {
		cert := make([]byte, certLen)
		for i := range cert {
			cert[i] = byte(i * 7)
		}
		ps = append(ps, &wire.Cert{Encoding: wire.CertX509Signature, Data: cert})
	}
	ps = append(ps,
		&wire.Notify{NotifyType: wire.INITIAL_CONTACT},
		&wire.Auth{Method: wire.AuthSharedKey, Data: bytes.Repeat([]byte{0xa5}, 32)},
		&wire.SA{Proposals: []wire.Proposal{{
			Num: 1, Protocol: wire.ProtoESP, SPI: []byte{0xc0, 0xff, 0xee, 0x01},
			Transforms: []wire.Transform{
				{Type: wire.TransformENCR, ID: uint16(wire.ENCR_AES_GCM_16), KeyLen: 256},
				{Type: wire.TransformESN, ID: uint16(wire.ESN_NO)},
			},
		}}},
		&wire.TS{Kind: wire.PayloadTSi, Selectors: []wire.TrafficSelector{{
			Type: wire.TSIPv4AddrRange, EndPort: 65535,
			Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.255.255"),
		}}},
		&wire.TS{Kind: wire.PayloadTSr, Selectors: []wire.TrafficSelector{{
			Type: wire.TSIPv4AddrRange, EndPort: 65535,
			Start: netip.MustParseAddr("10.2.0.0"), End: netip.MustParseAddr("10.2.255.255"),
		}}},
	)
	return ps
}

func marshalled(t testing.TB, ps []wire.Payload) []byte {
	t.Helper()
	_, b, err := wire.MarshalPayloads(ps)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpenAllSuites(t *testing.T) {
	for name, s := range ikeSuites() {
		t.Run(name, func(t *testing.T) {
			ini, resp, _ := protectorPair(t, s)
			r := testRand(1)
			for _, certLen := range []int{0, 1, 15, 16, 17, 1000} {
				ps := authPayloads(certLen)
				want := marshalled(t, ps)
				b, err := ini.Seal(authHeader(), ps, r)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) != ini.SealedLen(len(want)) {
					t.Errorf("sealed %d octets, SealedLen says %d", len(b), ini.SealedLen(len(want)))
				}
				m, err := wire.Parse(b)
				if err != nil {
					t.Fatalf("parse sealed message: %v", err)
				}
				if m.NextPayload != wire.PayloadSK || m.Exchange != wire.IKE_AUTH || m.MessageID != 1 {
					t.Errorf("header %+v", m.Header)
				}
				got, err := resp.Open(m)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if !bytes.Equal(marshalled(t, got), want) {
					t.Error("opened payloads differ from the sealed ones")
				}
				// The same side cannot open its own messages: the
				// directions use different keys.
				if _, err := ini.Open(m); !errors.Is(err, ErrIntegrity) {
					t.Errorf("initiator opened its own message: %v", err)
				}
				// And the responder's messages go the other way.
				rb, err := resp.Seal(authHeader(), ps, r)
				if err != nil {
					t.Fatal(err)
				}
				rm, err := wire.Parse(rb)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := ini.Open(rm); err != nil || !bytes.Equal(marshalled(t, got), want) {
					t.Errorf("initiator open of the response: %v", err)
				}
			}
		})
	}
}

// TestEmptyInformational seals and opens an SK payload with no payloads in
// it, the liveness check of RFC 7296 1.4.
func TestEmptyInformational(t *testing.T) {
	for name, s := range ikeSuites() {
		ini, resp, _ := protectorPair(t, s)
		h := authHeader()
		h.Exchange = wire.INFORMATIONAL
		b, err := ini.Seal(h, nil, testRand(2))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m, err := wire.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if sk := m.Payloads[0].(*wire.Encrypted); sk.NextPayload != wire.PayloadNone {
			t.Errorf("%s: SK Next Payload %v, want none", name, sk.NextPayload)
		}
		ps, err := resp.Open(m)
		if err != nil || len(ps) != 0 {
			t.Errorf("%s: open: %v, %d payloads", name, err, len(ps))
		}
	}
}

// TestPadding checks the CBC padding Seal chooses (minimal, RFC 7296 3.14)
// and that the AEADs add none (RFC 5282 3, RFC 7634 3).
func TestPadding(t *testing.T) {
	cbc, _, _ := protectorPair(t, suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128))
	gcm, _, _ := protectorPair(t, suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE))
	for n := 0; n < 40; n++ {
		if got, want := cbc.paddedLen(n), (n/16+1)*16; got != want {
			t.Errorf("CBC: %d octets pad to %d, want %d", n, got, want)
		}
		if got := gcm.paddedLen(n); got != n+1 {
			t.Errorf("GCM: %d octets pad to %d, want %d", n, got, n+1)
		}
		// 28 header + 4 SK header + 16 IV + padded + 16 ICV
		if got, want := cbc.SealedLen(n), 28+4+16+(n/16+1)*16+16; got != want {
			t.Errorf("CBC SealedLen(%d) = %d, want %d", n, got, want)
		}
		// 28 + 4 + 8 IV + n + 1 + 16 ICV
		if got, want := gcm.SealedLen(n), 28+4+8+n+1+16; got != want {
			t.Errorf("GCM SealedLen(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestOpenPadding opens authentic messages with unusual or wrong padding:
// more padding than needed must be accepted (RFC 7296 3.14: "the recipient
// MUST accept any length that results in proper alignment"); a Pad Length
// that reaches past the plaintext is INVALID_SYNTAX.
func TestOpenPadding(t *testing.T) {
	body := marshalled(t, authPayloads(0))
	invalidSyntax := &wire.Error{Notify: wire.INVALID_SYNTAX}
	for name, s := range ikeSuites() {
		ini, resp, _ := protectorPair(t, s)
		block := ini.block
		open := func(ctLen int, fill func(pt []byte)) error {
			t.Helper()
			b, err := ini.sealPadded(authHeader(), skParams{next: wire.PayloadIDi}, ctLen, testRand(3), fill)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			m, err := wire.Parse(b)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			_, err = resp.Open(m)
			return err
		}
		withPadding := func(padLen int) func(pt []byte) {
			return func(pt []byte) {
				copy(pt, body)
				for i := len(body); i < len(pt)-1; i++ {
					pt[i] = byte(i) // any content (RFC 7296 3.14)
				}
				pt[len(pt)-1] = byte(padLen)
			}
		}
		minimal := ini.paddedLen(len(body))
		if err := open(minimal, withPadding(minimal-len(body)-1)); err != nil {
			t.Errorf("%s: minimal padding: %v", name, err)
		}
		extra := minimal + 4*16 // aligned for every cipher
		if err := open(extra, withPadding(extra-len(body)-1)); err != nil {
			t.Errorf("%s: %d octets of padding: %v", name, extra-len(body)-1, err)
		}
		// Pad Length one past the plaintext, and 255 in a short one.
		short := max(block, 16)
		if err := open(short, func(pt []byte) { pt[len(pt)-1] = byte(len(pt)) }); !errors.Is(err, invalidSyntax) {
			t.Errorf("%s: Pad Length one past the plaintext: %v, want INVALID_SYNTAX", name, err)
		}
		if err := open(short, func(pt []byte) { pt[len(pt)-1] = 255 }); !errors.Is(err, invalidSyntax) {
			t.Errorf("%s: Pad Length 255: %v, want INVALID_SYNTAX", name, err)
		}
		// Padding that takes the whole plaintext leaves no payloads, yet
		// the SK's Next Payload names one.
		if err := open(short, func(pt []byte) { pt[len(pt)-1] = byte(len(pt) - 1) }); !errors.Is(err, invalidSyntax) {
			t.Errorf("%s: empty plaintext with Next Payload IDi: %v, want INVALID_SYNTAX", name, err)
		}
		// Payloads that do not parse.
		if err := open(short, func(pt []byte) { pt[3] = 200; pt[len(pt)-1] = 0 }); !errors.Is(err, invalidSyntax) {
			t.Errorf("%s: garbage payloads: %v, want INVALID_SYNTAX", name, err)
		}
	}
}

// TestTamper flips every bit of a sealed message: the result either fails
// to parse or fails the integrity check, and never panics.
func TestTamper(t *testing.T) {
	for name, s := range ikeSuites() {
		ini, resp, _ := protectorPair(t, s)
		b, err := ini.Seal(authHeader(), authPayloads(20), testRand(4))
		if err != nil {
			t.Fatal(err)
		}
		parsed := 0
		for i := range b {
			for bit := 0; bit < 8; bit++ {
				c := bytes.Clone(b)
				c[i] ^= 1 << bit
				m, err := wire.Parse(c)
				if err != nil {
					continue
				}
				parsed++
				if _, err := resp.Open(m); !errors.Is(err, ErrIntegrity) {
					t.Fatalf("%s: flipped bit %d of octet %d: %v, want ErrIntegrity", name, bit, i, err)
				}
			}
		}
		if parsed < len(b)*8/2 {
			t.Errorf("%s: only %d of %d tampered messages parsed; the test checks too little", name, parsed, len(b)*8)
		}
	}
}

// TestTruncate cuts the SK payload's content short, fixing up the lengths so
// that the message parses: every cut must fail the integrity check.
func TestTruncate(t *testing.T) {
	for name, s := range ikeSuites() {
		ini, resp, _ := protectorPair(t, s)
		b, err := ini.Seal(authHeader(), authPayloads(20), testRand(5))
		if err != nil {
			t.Fatal(err)
		}
		for n := wire.HeaderLen + skHeaderLen; n < len(b); n++ {
			c := bytes.Clone(b[:n])
			binary.BigEndian.PutUint32(c[24:], uint32(n))
			binary.BigEndian.PutUint16(c[wire.HeaderLen+2:], uint16(n-wire.HeaderLen))
			m, err := wire.Parse(c)
			if err != nil {
				t.Fatalf("%s: truncated to %d: %v", name, n, err)
			}
			if _, err := resp.Open(m); !errors.Is(err, ErrIntegrity) {
				t.Fatalf("%s: truncated to %d: %v, want ErrIntegrity", name, n, err)
			}
			if _, err := resp.OpenFragment(m); err == nil {
				t.Fatalf("%s: OpenFragment of an SK message succeeded", name)
			}
		}
	}
}

// TestOpenNotEncrypted gives Open messages without an SK payload.
func TestOpenNotEncrypted(t *testing.T) {
	ini, _, _ := protectorPair(t, suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE))
	m := &wire.Message{Header: authHeader(), Payloads: []wire.Payload{&wire.Notify{NotifyType: wire.INITIAL_CONTACT}}}
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err = wire.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*wire.Message{nil, {}, m} {
		if _, err := ini.Open(m); err == nil || errors.Is(err, ErrIntegrity) {
			t.Errorf("Open(%v): %v", m, err)
		}
		if _, err := ini.OpenFragment(m); err == nil || errors.Is(err, ErrIntegrity) {
			t.Errorf("OpenFragment(%v): %v", m, err)
		}
	}
}

// TestRFC7634AppendixB seals and opens the IKEv2 example of RFC 7634
// appendix B: an INFORMATIONAL request with a Notify, under
// ChaCha20-Poly1305.
func TestRFC7634AppendixB(t *testing.T) {
	raw, err := os.ReadFile("testdata/chacha20poly1305_rfc7539_rfc8439_rfc7634.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct {
			Reference                                      string
			Key, Salt, IV, AAD, Plaintext, Ciphertext, Tag hexBytes
		}
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range file.Vectors {
		if v.Reference != "IKEv2 example from RFC 7634" {
			continue
		}
		found = true
		s := suiteFor(wire.ProtoIKE, wire.ENCR_CHACHA20_POLY1305, 0, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE)
		keymat := append(bytes.Clone(v.Key), v.Salt...)
		// The example gives one key; use it for both directions so that
		// the same Protector seals and opens.
		k := &IKEKeys{SKei: keymat, SKer: keymat}
		p, err := NewProtector(s, k, true)
		if err != nil {
			t.Fatal(err)
		}
		h, err := wire.ParseHeader(append(bytes.Clone(v.AAD[:wire.HeaderLen]), make([]byte, int(binary.BigEndian.Uint32(v.AAD[24:28]))-wire.HeaderLen)...))
		if err != nil {
			t.Fatal(err)
		}
		next := wire.PayloadType(v.AAD[wire.HeaderLen])
		inner := v.Plaintext[:len(v.Plaintext)-1-int(v.Plaintext[len(v.Plaintext)-1])]
		got, err := p.seal(h, skParams{next: next}, inner, bytes.NewReader(v.IV), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Join([][]byte{v.AAD, v.IV, v.Ciphertext, v.Tag}, nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("sealed\n got %x\nwant %x", got, want)
		}
		m, err := wire.Parse(want)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := p.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := ps[0].(*wire.Notify)
		if len(ps) != 1 || !ok || n.NotifyType != wire.SET_WINDOW_SIZE || !bytes.Equal(n.Data, []byte{0, 0, 0, 10}) {
			t.Errorf("payloads %+v, want one SET_WINDOW_SIZE notify with window 10", ps)
		}
	}
	if !found {
		t.Fatal("RFC 7634 appendix B vector not found")
	}
}

// TestAEADIVs checks that AEAD IVs do not repeat and that the first is the
// random mask.
func TestAEADIVs(t *testing.T) {
	ini, _, _ := protectorPair(t, suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 256, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE))
	seen := map[string]bool{}
	mask := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for i := 0; i < 1000; i++ {
		b, err := ini.Seal(authHeader(), nil, bytes.NewReader(mask))
		if err != nil {
			t.Fatal(err)
		}
		iv := string(b[wire.HeaderLen+skHeaderLen : wire.HeaderLen+skHeaderLen+8])
		if i == 0 && iv != string(mask) {
			t.Errorf("first IV %x, want the mask %x", iv, mask)
		}
		if seen[iv] {
			t.Fatalf("IV %x repeated", iv)
		}
		seen[iv] = true
	}
}

// TestCBCIVs checks that each CBC message takes a fresh IV from rand.
func TestCBCIVs(t *testing.T) {
	ini, _, _ := protectorPair(t, suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 256, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128))
	ivs := bytes.Repeat([]byte{0xee}, 16)
	ivs = append(ivs, bytes.Repeat([]byte{0x77}, 16)...)
	r := bytes.NewReader(ivs)
	for i, want := range [][]byte{ivs[:16], ivs[16:]} {
		b, err := ini.Seal(authHeader(), nil, r)
		if err != nil {
			t.Fatal(err)
		}
		if iv := b[32:48]; !bytes.Equal(iv, want) {
			t.Errorf("message %d: IV %x, want %x", i, iv, want)
		}
	}
	if _, err := ini.Seal(authHeader(), nil, r); err == nil {
		t.Error("Seal with an exhausted rand succeeded")
	}
}

func TestFragments(t *testing.T) {
	for name, s := range ikeSuites() {
		t.Run(name, func(t *testing.T) {
			ini, resp, _ := protectorPair(t, s)
			ps := authPayloads(3000)
			want := marshalled(t, ps)
			h := authHeader()
			h.MessageID = 7
			for _, maxLen := range []int{100, 101, 576 - 28, 1280 - 48, 1472, 10000} {
				dgrams, err := ini.SealFragments(h, ps, testRand(6), maxLen)
				if err != nil {
					t.Fatalf("maxLen %d: %v", maxLen, err)
				}
				if maxLen >= ini.SealedLen(len(want)) {
					// It fits: one ordinary SK message.
					if len(dgrams) != 1 {
						t.Fatalf("maxLen %d: %d datagrams for a message that fits", maxLen, len(dgrams))
					}
					m, err := wire.Parse(dgrams[0])
					if err != nil || m.NextPayload != wire.PayloadSK {
						t.Fatalf("maxLen %d: %v, next payload %v", maxLen, err, m.NextPayload)
					}
					continue
				}
				frags := make([]Fragment, 0, len(dgrams))
				for i, d := range dgrams {
					if len(d) > maxLen {
						t.Errorf("maxLen %d: fragment %d is %d octets", maxLen, i+1, len(d))
					}
					m, err := wire.Parse(d)
					if err != nil {
						t.Fatalf("maxLen %d: fragment %d: %v", maxLen, i+1, err)
					}
					if m.NextPayload != wire.PayloadSKF || m.MessageID != 7 || m.Exchange != wire.IKE_AUTH {
						t.Errorf("fragment %d header %+v", i+1, m.Header)
					}
					skf := m.Payloads[0].(*wire.EncryptedFragment)
					if int(skf.Number) != i+1 || int(skf.Total) != len(dgrams) {
						t.Errorf("fragment %d numbered %d/%d", i+1, skf.Number, skf.Total)
					}
					if (i == 0) != (skf.NextPayload != wire.PayloadNone) {
						t.Errorf("fragment %d has Next Payload %v", i+1, skf.NextPayload)
					}
					f, err := resp.OpenFragment(m)
					if err != nil {
						t.Fatalf("maxLen %d: open fragment %d: %v", maxLen, i+1, err)
					}
					if _, err := resp.Open(m); err == nil {
						t.Error("Open accepted an SKF message")
					}
					frags = append(frags, f)
				}
				// Reassemble in reverse order: the order must not matter.
				for i, j := 0, len(frags)-1; i < j; i, j = i+1, j-1 {
					frags[i], frags[j] = frags[j], frags[i]
				}
				got, err := ReassembleFragments(frags)
				if err != nil {
					t.Fatalf("maxLen %d: reassemble: %v", maxLen, err)
				}
				if !bytes.Equal(marshalled(t, got), want) {
					t.Errorf("maxLen %d: reassembled payloads differ", maxLen)
				}
			}
		})
	}
}

func TestFragmentErrors(t *testing.T) {
	ini, resp, _ := protectorPair(t, suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128))
	ps := authPayloads(500)
	if _, err := ini.SealFragments(authHeader(), ps, testRand(7), 28+8+16+16+15); err == nil {
		t.Error("maxLen without room for one block: no error")
	}
	// More than one SK payload can carry (its Length is 16 bits): Seal
	// fails, SealFragments fragments even though maxLen is larger.
	huge := authPayloads(65400)
	if _, err := ini.Seal(authHeader(), huge, testRand(7)); err == nil {
		t.Error("Seal of more than 65535 octets: no error")
	}
	dgrams, err := ini.SealFragments(authHeader(), huge, testRand(7), 100000)
	if err != nil || len(dgrams) != 2 {
		t.Errorf("SealFragments of more than 65535 octets: %d fragments, %v", len(dgrams), err)
	}
	dgrams, err = ini.SealFragments(authHeader(), ps, testRand(7), 200)
	if err != nil {
		t.Fatal(err)
	}
	var frags []Fragment
	for _, d := range dgrams {
		m, _ := wire.Parse(d)
		f, err := resp.OpenFragment(m)
		if err != nil {
			t.Fatal(err)
		}
		frags = append(frags, f)
	}
	if _, err := ReassembleFragments(nil); err == nil {
		t.Error("no fragments: no error")
	}
	if _, err := ReassembleFragments(frags[1:]); err == nil {
		t.Error("missing fragment: no error")
	}
	dup := append([]Fragment{frags[0]}, frags[:len(frags)-1]...)
	if _, err := ReassembleFragments(dup); err == nil {
		t.Error("duplicate fragment: no error")
	}
	bad := append([]Fragment{}, frags...)
	bad[1].Total++
	if _, err := ReassembleFragments(bad); err == nil {
		t.Error("inconsistent totals: no error")
	}
	// Tampering with a fragment's number or total fails its ICV: they are
	// covered (RFC 7383 2.5).
	c := bytes.Clone(dgrams[1])
	c[wire.HeaderLen+5] ^= 3 // Fragment Number 2 -> 1
	if m, err := wire.Parse(c); err == nil {
		if _, err := resp.OpenFragment(m); !errors.Is(err, ErrIntegrity) {
			t.Errorf("renumbered fragment: %v, want ErrIntegrity", err)
		}
	}
}

// TestConcurrentSeal seals from several goroutines at once (run with -race).
func TestConcurrentSeal(t *testing.T) {
	for _, s := range []algs.Suite{
		suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128),
		suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 256, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE),
	} {
		ini, resp, _ := protectorPair(t, s)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				r := testRand(uint64(g))
				for i := 0; i < 50; i++ {
					b, err := ini.Seal(authHeader(), authPayloads(g), r)
					if err != nil {
						errs <- err
						return
					}
					m, err := wire.Parse(b)
					if err != nil {
						errs <- err
						return
					}
					if _, err := resp.Open(m); err != nil {
						errs <- fmt.Errorf("goroutine %d message %d: %w", g, i, err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

func TestNewProtectorErrors(t *testing.T) {
	s := suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128)
	_, _, k := protectorPair(t, s)
	if _, err := NewProtector(s, nil, true); err == nil {
		t.Error("nil keys: no error")
	}
	short := *k
	short.SKer = short.SKer[:8]
	if _, err := NewProtector(s, &short, true); err == nil {
		t.Error("short SK_er: no error")
	}
	short = *k
	short.SKai = nil
	if _, err := NewProtector(s, &short, true); err == nil {
		t.Error("missing SK_ai: no error")
	}
	if _, err := NewProtector(suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE), k, true); err == nil {
		t.Error("CBC keys for a GCM suite: no error")
	}
}
