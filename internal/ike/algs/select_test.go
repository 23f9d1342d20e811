package algs

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

var espSPI = []byte{0xc1, 0xa2, 0xb3, 0xc4}

func parseAll(t testing.TB, proto wire.ProtocolID, ss ...string) []Proposal {
	t.Helper()
	ps, err := ParseProposals(ss, proto)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// offer builds a peer's SA payload from proposal strings, numbered 1, 2...
func offer(t testing.TB, proto wire.ProtocolID, ss ...string) []wire.Proposal {
	t.Helper()
	var spi []byte
	if proto == esp {
		spi = espSPI
	}
	var ws []wire.Proposal
	for i, p := range parseAll(t, proto, ss...) {
		ws = append(ws, p.Wire(uint8(i+1), spi))
	}
	return ws
}

func tr(typ wire.TransformType, id uint16, keyLen uint16) wire.Transform {
	return wire.Transform{Type: typ, ID: id, KeyLen: keyLen}
}

// strongSwanIKEDefault is the IKE offer of strongSwan 5.9/6.0's default AEAD
// proposal, with the algorithms Cygnet lacks (AES-CCM, Brainpool, Curve448,
// AES-XCBC/CMAC PRFs) that it includes.
func strongSwanIKEDefault() []wire.Proposal {
	var ts []wire.Transform
	for _, id := range []wire.EncrID{wire.ENCR_AES_GCM_16, wire.ENCR_AES_CCM_16} {
		for _, kl := range []uint16{128, 192, 256} {
			ts = append(ts, tr(wire.TransformENCR, uint16(id), kl))
		}
	}
	ts = append(ts, tr(wire.TransformENCR, uint16(wire.ENCR_CHACHA20_POLY1305), 0))
	for _, id := range []wire.PRFID{wire.PRF_HMAC_SHA2_256, wire.PRF_HMAC_SHA2_384, wire.PRF_HMAC_SHA2_512, wire.PRF_AES128_XCBC, wire.PRF_AES128_CMAC, wire.PRF_HMAC_SHA1} {
		ts = append(ts, tr(wire.TransformPRF, uint16(id), 0))
	}
	for _, id := range []wire.KEID{wire.KE_ECP256, wire.KE_ECP384, wire.KE_ECP521, 28, 29, 30, wire.KE_CURVE25519, wire.KE_CURVE448, wire.KE_MODP3072, wire.KE_MODP4096, wire.KE_MODP6144, wire.KE_MODP8192, wire.KE_MODP2048} {
		ts = append(ts, tr(wire.TransformKE, uint16(id), 0))
	}
	return []wire.Proposal{{Num: 1, Protocol: ike, Transforms: ts}}
}

func TestSelect(t *testing.T) {
	for _, c := range []struct {
		name     string
		proto    wire.ProtocolID
		ours     []string
		theirs   []wire.Proposal
		preferKE wire.KEID
		want     string // the suite; "" for NO_PROPOSAL_CHOSEN
		num      uint8  // the peer proposal chosen
	}{
		// The ESP proposals of the interop matrix, against strongSwan
		// configured the same way.
		{name: "esp aes256gcm16", proto: esp, ours: []string{"aes256gcm16"}, want: "aes256gcm16", num: 1},
		{name: "esp aes128-sha256", proto: esp, ours: []string{"aes128-sha256"}, want: "aes128-sha256", num: 1},
		{name: "esp chacha20poly1305", proto: esp, ours: []string{"chacha20poly1305"}, want: "chacha20poly1305", num: 1},
		{name: "esp aes256gcm16-x25519", proto: esp, ours: []string{"aes256gcm16-x25519"}, want: "aes256gcm16-x25519", num: 1},
		// The contract's IKE examples.
		{name: "ike aes256gcm16-prfsha384-ecp384", proto: ike, ours: []string{"aes256gcm16-prfsha384-ecp384"}, want: "aes256gcm16-prfsha384-ecp384", num: 1},
		{name: "ike aes128-sha256-modp2048", proto: ike, ours: []string{"aes128-sha256-modp2048"}, want: "aes128-sha256-modp2048", num: 1},
		{name: "ike chacha", proto: ike, ours: []string{"chacha20poly1305-prfsha256-x25519"}, want: "chacha20poly1305-prfsha256-x25519", num: 1},
		{name: "ike hybrid", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519-ke1_mlkem768"}, want: "aes256gcm16-prfsha256-x25519-ke1_mlkem768", num: 1},
		{name: "esp hybrid", proto: esp, ours: []string{"aes256gcm16-x25519-ke1_mlkem768"}, want: "aes256gcm16-x25519-ke1_mlkem768", num: 1},
	} {
		if c.theirs == nil {
			c.theirs = offer(t, c.proto, c.ours...)
		}
		checkSelect(t, c.name, parseAll(t, c.proto, c.ours...), c.theirs, c.preferKE, c.want, c.num)
	}
}

// checkSelect runs Select, and Confirm on the answer it implies.
func checkSelect(t *testing.T, name string, ours []Proposal, theirs []wire.Proposal, preferKE wire.KEID, want string, num uint8) {
	t.Helper()
	s, w, err := Select(ours, theirs, preferKE)
	if want == "" {
		var npe *NoProposalError
		if !errors.As(err, &npe) {
			t.Errorf("%s: got %v, %v; want no proposal chosen", name, s, err)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if got := s.String(); got != want {
		t.Errorf("%s: selected %s, want %s", name, got, want)
	}
	if w.Num != num {
		t.Errorf("%s: from peer proposal %d, want %d", name, w.Num, num)
	}
	if s.EncrAlg() == nil || (s.Protocol == ike) != (s.PRFAlg() != nil) || s.EncrAlg().AEAD == (s.IntegAlg() != nil) {
		t.Errorf("%s: lookups %v %v %v", name, s.EncrAlg(), s.PRFAlg(), s.IntegAlg())
	}
	if s.KE.Type != 0 && s.KEMethod() == nil {
		t.Errorf("%s: no KEMethod", name)
	}
	// The initiator's side: find which of ours the answer refers to.
	answer := s.Wire(0, w.SPI)
	for i := range ours {
		answer.Num = uint8(i + 1)
		if got, err := Confirm(ours, answer); err == nil {
			if !reflect.DeepEqual(got, s) {
				t.Errorf("%s: Confirm = %+v, want %+v", name, got, s)
			}
			return
		}
	}
	t.Errorf("%s: Confirm rejects the answer %+v", name, answer)
}

func TestSelectRules(t *testing.T) {
	gcm256 := tr(wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 256)
	prf256 := tr(wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_256), 0)
	x25519 := tr(wire.TransformKE, uint16(wire.KE_CURVE25519), 0)
	noESN := tr(wire.TransformESN, 0, 0)
	ikeP := func(ts ...wire.Transform) []wire.Proposal {
		return []wire.Proposal{{Num: 1, Protocol: ike, Transforms: ts}}
	}
	espP := func(ts ...wire.Transform) []wire.Proposal {
		return []wire.Proposal{{Num: 1, Protocol: esp, SPI: espSPI, Transforms: ts}}
	}
	withAttr := gcm256
	withAttr.Attrs = []wire.Attribute{{Type: 17, TV: true, Value: []byte{0, 1}}}

	for _, c := range []struct {
		name     string
		proto    wire.ProtocolID
		ours     []string
		theirs   []wire.Proposal
		preferKE wire.KEID
		want     string
		num      uint8
	}{
		// Our order wins, within and across proposals.
		{name: "our encr order", proto: esp, ours: []string{"aes128gcm16-aes256gcm16"},
			theirs: offer(t, esp, "aes256gcm16-aes128gcm16"), want: "aes128gcm16", num: 1},
		{name: "our proposal order", proto: esp, ours: []string{"aes256gcm16", "aes128-sha256"},
			theirs: offer(t, esp, "aes128-sha256", "aes256gcm16"), want: "aes256gcm16", num: 2},
		{name: "our default vs strongSwan default", proto: ike, ours: []string{"default"},
			theirs: strongSwanIKEDefault(), want: "aes256gcm16-prfsha256-x25519", num: 1},
		// preferKE: the peer's KE payload group, if both allow it.
		{name: "preferKE", proto: ike, ours: []string{"default"},
			theirs: strongSwanIKEDefault(), preferKE: wire.KE_ECP256, want: "aes256gcm16-prfsha256-ecp256", num: 1},
		{name: "preferKE not ours", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519-ecp384"},
			theirs: strongSwanIKEDefault(), preferKE: wire.KE_ECP256, want: "aes256gcm16-prfsha256-x25519", num: 1},
		{name: "preferKE not theirs", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519-ecp384"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-ecp384-x25519"), preferKE: wire.KE_ECP521, want: "aes256gcm16-prfsha256-x25519", num: 1},
		// Unknown IDs, key lengths, attributes: the transform is skipped.
		{name: "unknown encr skipped", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(tr(wire.TransformENCR, 99, 0), gcm256, prf256, x25519), want: "aes256gcm16-prfsha256-x25519", num: 1},
		{name: "only unknown encr", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(tr(wire.TransformENCR, 99, 0), prf256, x25519)},
		{name: "wrong key length", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(tr(wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 255), prf256, x25519)},
		{name: "missing key length", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(tr(wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 0), prf256, x25519)},
		{name: "chacha with key length", proto: ike, ours: []string{"chacha20poly1305-prfsha256-x25519"},
			theirs: ikeP(tr(wire.TransformENCR, uint16(wire.ENCR_CHACHA20_POLY1305), 256), prf256, x25519)},
		{name: "unknown attribute", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(withAttr, prf256, x25519)},
		{name: "unknown attribute skipped", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(withAttr, gcm256, prf256, x25519), want: "aes256gcm16-prfsha256-x25519", num: 1},
		// Unknown transform type: the whole proposal is unacceptable.
		{name: "unknown type", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(gcm256, prf256, x25519, tr(13, 1, 0))},
		// Missing mandatory types.
		{name: "IKE without KE", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(gcm256, prf256)},
		{name: "IKE with only KE none", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(gcm256, prf256, tr(wire.TransformKE, 0, 0))},
		{name: "IKE without PRF", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(gcm256, x25519)},
		{name: "IKE classic without integrity", proto: ike, ours: []string{"aes128-sha256-x25519"},
			theirs: ikeP(tr(wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 128), prf256, x25519)},
		{name: "ESP without ESN", proto: esp, ours: []string{"aes256gcm16"},
			theirs: espP(gcm256)},
		{name: "ESP with ESN only", proto: esp, ours: []string{"aes256gcm16"},
			theirs: espP(gcm256, tr(wire.TransformESN, 1, 0))},
		{name: "ESP esn preferred", proto: esp, ours: []string{"aes256gcm16-esn-noesn"},
			theirs: espP(gcm256, noESN, tr(wire.TransformESN, 1, 0)), want: "aes256gcm16-esn", num: 1},
		// Types that do not belong.
		{name: "ESP with a PRF", proto: esp, ours: []string{"aes256gcm16"},
			theirs: espP(gcm256, prf256, noESN)},
		{name: "IKE with ESN", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(gcm256, prf256, x25519, noESN)},
		// AEAD: integrity NONE (or anything) from the peer is ignored.
		{name: "AEAD with integ none", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: ikeP(gcm256, prf256, tr(wire.TransformINTEG, 0, 0), x25519), want: "aes256gcm16-prfsha256-x25519", num: 1},
		// Protocol and SPI size.
		{name: "wrong protocol", proto: esp, ours: []string{"aes256gcm16"},
			theirs: []wire.Proposal{{Num: 1, Protocol: wire.ProtoAH, SPI: espSPI, Transforms: []wire.Transform{gcm256, noESN}}}},
		{name: "IKE offer for ESP", proto: esp, ours: []string{"aes256gcm16"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-x25519")},
		{name: "ESP SPI of 8", proto: esp, ours: []string{"aes256gcm16"},
			theirs: []wire.Proposal{{Num: 1, Protocol: esp, SPI: make([]byte, 8), Transforms: []wire.Transform{gcm256, noESN}}}},
		{name: "ESP without SPI", proto: esp, ours: []string{"aes256gcm16"},
			theirs: []wire.Proposal{{Num: 1, Protocol: esp, Transforms: []wire.Transform{gcm256, noESN}}}},
		{name: "IKE rekey SPI", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: []wire.Proposal{{Num: 3, Protocol: ike, SPI: make([]byte, 8), Transforms: []wire.Transform{gcm256, prf256, x25519}}},
			want:   "aes256gcm16-prfsha256-x25519", num: 3},
		{name: "IKE SPI of 4", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: []wire.Proposal{{Num: 1, Protocol: ike, SPI: make([]byte, 4), Transforms: []wire.Transform{gcm256, prf256, x25519}}}},
		// ESP key exchange is optional, NONE making it so on either side.
		{name: "PFS required, peer none", proto: esp, ours: []string{"aes256gcm16-x25519"}, theirs: offer(t, esp, "aes256gcm16")},
		{name: "PFS optional, peer none", proto: esp, ours: []string{"aes256gcm16-x25519-none"}, theirs: offer(t, esp, "aes256gcm16"), want: "aes256gcm16", num: 1},
		{name: "PFS optional, peer PFS", proto: esp, ours: []string{"aes256gcm16-x25519-none"}, theirs: offer(t, esp, "aes256gcm16-x25519"), want: "aes256gcm16-x25519", num: 1},
		{name: "no PFS, peer PFS", proto: esp, ours: []string{"aes256gcm16"}, theirs: offer(t, esp, "aes256gcm16-x25519")},
		{name: "no PFS, peer optional", proto: esp, ours: []string{"aes256gcm16"}, theirs: offer(t, esp, "aes256gcm16-x25519-none"), want: "aes256gcm16", num: 1},
		{name: "PFS group mismatch", proto: esp, ours: []string{"aes256gcm16-ecp256"}, theirs: offer(t, esp, "aes256gcm16-x25519")},
		{name: "IKE_AUTH child", proto: esp, ours: []string{"aes256gcm16-x25519"}, theirs: offer(t, esp, "aes256gcm16"), want: "", num: 0},
		// RFC 9370 additional key exchanges.
		{name: "ADDKE required, peer none", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519-ke1_mlkem768"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-x25519")},
		{name: "ADDKE optional, peer none", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-x25519"), want: "aes256gcm16-prfsha256-x25519", num: 1},
		{name: "ADDKE offered, we none", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-x25519-ke1_mlkem768")},
		{name: "ADDKE offered optional, we none", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none"), want: "aes256gcm16-prfsha256-x25519", num: 1},
		{name: "ADDKE two", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024-ke2_none"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024"), want: "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024", num: 1},
		{name: "ADDKE gap", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519-ke1_none-ke1_mlkem768-ke2_mlkem1024"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-x25519-ke1_none-ke2_mlkem1024"), want: "aes256gcm16-prfsha256-x25519-ke2_mlkem1024", num: 1},
		{name: "no method twice", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519-ke1_x25519-ke1_mlkem768"},
			theirs: offer(t, ike, "aes256gcm16-prfsha256-x25519-ke1_x25519-ke1_mlkem768"), want: "aes256gcm16-prfsha256-x25519-ke1_mlkem768", num: 1},
		{name: "nothing offered", proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"}, theirs: []wire.Proposal{}},
	} {
		checkSelect(t, c.name, parseAll(t, c.proto, c.ours...), c.theirs, c.preferKE, c.want, c.num)
	}
}

// TestSelectIKEAuthChild: in IKE_AUTH, ESP proposals carry no KE
// transforms (RFC 7296 1.2); both sides strip them with WithoutKE.
func TestSelectIKEAuthChild(t *testing.T) {
	ours := parseAll(t, esp, "aes256gcm16-x25519", "aes128-sha256-ecp256")
	for i := range ours {
		ours[i] = ours[i].WithoutKE()
	}
	theirs := offer(t, esp, "aes128-sha256")
	checkSelect(t, "IKE_AUTH child", ours, theirs, 0, "aes128-sha256", 1)
}

func TestSelectReturnsPeerProposal(t *testing.T) {
	ours := parseAll(t, esp, "aes256gcm16")
	theirs := offer(t, esp, "aes128gcm16", "aes256gcm16")
	theirs[1].SPI = []byte{9, 9, 9, 9}
	_, w, err := Select(ours, theirs, 0)
	if err != nil || w != &theirs[1] {
		t.Fatalf("got %p, %v; want %p", w, err, &theirs[1])
	}
}

func TestNoProposalError(t *testing.T) {
	withAttr := tr(wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 128)
	withAttr.Attrs = []wire.Attribute{{Type: 17, TV: true, Value: []byte{0, 1}}}
	for _, c := range []struct {
		proto  wire.ProtocolID
		ours   []string
		theirs []wire.Proposal
		want   string
	}{
		{ // CONTRACT.md / STYLE.md's example.
			proto: ike, ours: []string{"aes256gcm16-prfsha256-x25519"},
			theirs: []wire.Proposal{{Num: 1, Protocol: ike, Transforms: []wire.Transform{
				tr(wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 128),
				tr(wire.TransformPRF, uint16(wire.PRF_HMAC_SHA1), 0),
				tr(wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA1_96), 0),
				tr(wire.TransformKE, uint16(wire.KE_MODP1024), 0),
			}}},
			want: "no proposal chosen: we offered aes256gcm16-prfsha256-x25519, peer offered aes128-sha1-modp1024",
		},
		{
			proto: esp, ours: []string{"aes256gcm16", "aes128-sha256"},
			theirs: []wire.Proposal{
				{Num: 1, Protocol: esp, SPI: espSPI, Transforms: []wire.Transform{tr(wire.TransformENCR, uint16(wire.ENCR_CHACHA20_POLY1305), 0), tr(wire.TransformESN, 1, 0)}},
				{Num: 2, Protocol: esp, SPI: espSPI, Transforms: []wire.Transform{tr(wire.TransformENCR, uint16(wire.ENCR_3DES), 0), tr(wire.TransformINTEG, uint16(wire.AUTH_HMAC_MD5_96), 0), tr(wire.TransformESN, 0, 0)}},
			},
			want: "no proposal chosen: we offered aes256gcm16, aes128-sha256, peer offered chacha20poly1305-esn, 3des-md5",
		},
		{
			proto: esp, ours: []string{"aes256gcm16"},
			theirs: []wire.Proposal{
				{Num: 1, Protocol: esp, SPI: espSPI, Transforms: []wire.Transform{withAttr, tr(99, 3, 0), tr(wire.TransformENCR, 77, 128), tr(wire.TransformESN, 0, 0)}},
				{Num: 2, Protocol: wire.ProtoAH, SPI: espSPI, Transforms: []wire.Transform{tr(wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_256_128), 0)}},
				{Num: 3, Protocol: esp, SPI: espSPI},
			},
			want: "no proposal chosen: we offered aes256gcm16, peer offered aes128gcm16+attr-ENCR(77)_128-TRANSFORM99(3), AH:sha256, (empty)",
		},
		{proto: ike, ours: []string{"aes128-sha256-modp2048"}, theirs: nil,
			want: "no proposal chosen: we offered aes128-sha256-modp2048, peer offered nothing"},
	} {
		_, _, err := Select(parseAll(t, c.proto, c.ours...), c.theirs, 0)
		var npe *NoProposalError
		if !errors.As(err, &npe) || err.Error() != c.want {
			t.Errorf("got  %v\nwant %s", err, c.want)
		}
	}
}

func TestConfirm(t *testing.T) {
	ikeOurs := parseAll(t, ike, "aes256gcm16-prfsha256-x25519-ecp256", "aes128-sha256-modp2048")
	espOurs := parseAll(t, esp, "aes256gcm16-esn-noesn", "aes128-sha256-x25519-none")
	addOurs := parseAll(t, ike, "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none")
	gcm256 := tr(wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 256)
	cbc128 := tr(wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 128)
	prf256 := tr(wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_256), 0)
	sha256 := tr(wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_256_128), 0)
	x25519 := tr(wire.TransformKE, uint16(wire.KE_CURVE25519), 0)
	noESN := tr(wire.TransformESN, 0, 0)
	withAttr := gcm256
	withAttr.Attrs = []wire.Attribute{{Type: 17, TV: true, Value: []byte{0, 1}}}
	answer := func(num uint8, proto wire.ProtocolID, ts ...wire.Transform) wire.Proposal {
		w := wire.Proposal{Num: num, Protocol: proto, Transforms: ts}
		if proto == esp {
			w.SPI = espSPI
		}
		return w
	}
	for _, c := range []struct {
		name   string
		ours   []Proposal
		answer wire.Proposal
		want   string // the suite; "" for an error
	}{
		{"ike aead", ikeOurs, answer(1, ike, gcm256, prf256, x25519), "aes256gcm16-prfsha256-x25519"},
		{"ike second", ikeOurs, answer(2, ike, cbc128, prf256, sha256, tr(wire.TransformKE, uint16(wire.KE_MODP2048), 0)), "aes128-sha256-modp2048"},
		{"ike aead integ none", ikeOurs, answer(1, ike, gcm256, prf256, tr(wire.TransformINTEG, 0, 0), x25519), "aes256gcm16-prfsha256-x25519"},
		{"esp esn", espOurs, answer(1, esp, gcm256, tr(wire.TransformESN, 1, 0)), "aes256gcm16-esn"},
		{"esp pfs", espOurs, answer(2, esp, cbc128, sha256, x25519, noESN), "aes128-sha256-x25519"},
		{"esp pfs none", espOurs, answer(2, esp, cbc128, sha256, noESN), "aes128-sha256"},
		{"esp pfs NONE transform", espOurs, answer(2, esp, cbc128, sha256, tr(wire.TransformKE, 0, 0), noESN), "aes128-sha256"},
		{"addke", addOurs, answer(1, ike, gcm256, prf256, x25519, tr(wire.TransformADDKE1, uint16(wire.KE_MLKEM768), 0)), "aes256gcm16-prfsha256-x25519-ke1_mlkem768"},
		{"addke none", addOurs, answer(1, ike, gcm256, prf256, x25519), "aes256gcm16-prfsha256-x25519"},

		{"num 0", ikeOurs, answer(0, ike, gcm256, prf256, x25519), ""},
		{"num too big", ikeOurs, answer(3, ike, gcm256, prf256, x25519), ""},
		{"other proposal's transforms", ikeOurs, answer(2, ike, gcm256, prf256, x25519), ""},
		{"wrong protocol", ikeOurs, answer(1, esp, gcm256, noESN), ""},
		{"ike SPI 4", ikeOurs, wire.Proposal{Num: 1, Protocol: ike, SPI: espSPI, Transforms: []wire.Transform{gcm256, prf256, x25519}}, ""},
		{"esp no SPI", espOurs, wire.Proposal{Num: 1, Protocol: esp, Transforms: []wire.Transform{gcm256, noESN}}, ""},
		{"two encr", ikeOurs, answer(1, ike, gcm256, gcm256, prf256, x25519), ""},
		{"not offered", ikeOurs, answer(1, ike, gcm256, prf256, tr(wire.TransformKE, uint16(wire.KE_ECP384), 0)), ""},
		{"attribute", ikeOurs, answer(1, ike, withAttr, prf256, x25519), ""},
		{"unknown type", ikeOurs, answer(1, ike, gcm256, prf256, x25519, tr(13, 1, 0)), ""},
		{"missing PRF", ikeOurs, answer(1, ike, gcm256, x25519), ""},
		{"missing KE", ikeOurs, answer(1, ike, gcm256, prf256), ""},
		{"KE none in IKE", ikeOurs, answer(1, ike, gcm256, prf256, tr(wire.TransformKE, 0, 0)), ""},
		{"missing integ", ikeOurs, answer(2, ike, cbc128, prf256, tr(wire.TransformKE, uint16(wire.KE_MODP2048), 0)), ""},
		{"integ with aead", ikeOurs, answer(1, ike, gcm256, prf256, sha256, x25519), ""},
		{"ESN in IKE", ikeOurs, answer(1, ike, gcm256, prf256, x25519, noESN), ""},
		{"PRF in ESP", espOurs, answer(1, esp, gcm256, prf256, noESN), ""},
		{"missing ESN", espOurs, answer(1, esp, gcm256), ""},
		{"esp KE not offered", espOurs, answer(1, esp, gcm256, x25519, noESN), ""},
		{"addke not offered", ikeOurs, answer(1, ike, gcm256, prf256, x25519, tr(wire.TransformADDKE1, uint16(wire.KE_MLKEM768), 0)), ""},
		{"addke twice", parseAll(t, ike, "aes256gcm16-prfsha256-x25519-ke1_x25519"), answer(1, ike, gcm256, prf256, x25519, tr(wire.TransformADDKE1, uint16(wire.KE_CURVE25519), 0)), ""},
		{"addke required", parseAll(t, ike, "aes256gcm16-prfsha256-x25519-ke1_mlkem768"), answer(1, ike, gcm256, prf256, x25519), ""},
	} {
		s, err := Confirm(c.ours, c.answer)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%s: accepted as %s", c.name, s)
		case c.want == "" && (!errors.Is(err, ErrInvalidAnswer) || !strings.HasPrefix(err.Error(), "algs: ")):
			t.Errorf("%s: error %v", c.name, err)
		case c.want != "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && s.String() != c.want:
			t.Errorf("%s: %s, want %s", c.name, s, c.want)
		}
	}
}

func TestSuiteWire(t *testing.T) {
	s := Suite{
		Protocol: esp,
		Encr:     Transform{wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 128},
		Integ:    Transform{wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_256_128), 0},
		KE:       Transform{wire.TransformKE, uint16(wire.KE_CURVE25519), 0},
		ESN:      true,
		AddKE:    []Transform{{wire.TransformADDKE1 + 1, uint16(wire.KE_MLKEM768), 0}},
	}
	w := s.Wire(4, espSPI)
	want := []wire.Transform{
		tr(wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 128),
		tr(wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_256_128), 0),
		tr(wire.TransformKE, uint16(wire.KE_CURVE25519), 0),
		tr(wire.TransformESN, 1, 0),
		tr(wire.TransformADDKE1+1, uint16(wire.KE_MLKEM768), 0),
	}
	if w.Num != 4 || w.Protocol != esp || !reflect.DeepEqual(w.Transforms, want) {
		t.Errorf("%+v", w)
	}
	if got := s.String(); got != "aes128-sha256-x25519-ke2_mlkem768-esn" {
		t.Errorf("String: %s", got)
	}
	if s.EncrKeyLen() != 128 || s.PRFAlg() != nil || s.KEMethod().ID != wire.KE_CURVE25519 {
		t.Error("accessors")
	}
	ikeSuite := Suite{
		Protocol: ike,
		Encr:     Transform{wire.TransformENCR, uint16(wire.ENCR_CHACHA20_POLY1305), 0},
		PRF:      Transform{wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_384), 0},
		KE:       Transform{wire.TransformKE, uint16(wire.KE_ECP384), 0},
	}
	if got := ikeSuite.String(); got != "chacha20poly1305-prfsha384-ecp384" || ikeSuite.EncrKeyLen() != 256 || ikeSuite.IntegAlg() != nil {
		t.Errorf("IKE suite: %s", got)
	}
	// A PRF that differs from the integrity algorithm's hash is spelled out.
	other := Suite{Protocol: ike, Encr: s.Encr, Integ: s.Integ, KE: s.KE,
		PRF: Transform{wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_512), 0}}
	if got := other.String(); got != "aes128-sha256-prfsha512-x25519" {
		t.Errorf("String: %s", got)
	}
	if (Suite{}).EncrAlg() != nil || (Suite{}).KEMethod() != nil {
		t.Error("zero suite lookups")
	}
}
