package algs

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

const (
	ike = wire.ProtoIKE
	esp = wire.ProtoESP
)

func mustParse(t testing.TB, s string, proto wire.ProtocolID) Proposal {
	t.Helper()
	p, err := ParseProposal(s, proto)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseProposal(t *testing.T) {
	for _, c := range []struct {
		in    string
		proto wire.ProtocolID
		want  string // canonical String(); "" for an error
		ts    string // the transforms, when worth spelling out
		err   string
	}{
		// CONTRACT.md's examples.
		{in: "aes256gcm16-prfsha384-ecp384", proto: ike, want: "aes256gcm16-prfsha384-ecp384"},
		{in: "aes128-sha256-modp2048", proto: ike, want: "aes128-sha256-modp2048", ts: "aes128 sha256 prfsha256 modp2048"},
		{in: "aes128-sha256-modp2048", proto: esp, want: "aes128-sha256-modp2048", ts: "aes128 sha256 modp2048 noesn"},
		{in: "chacha20poly1305-prfsha256-x25519", proto: ike, want: "chacha20poly1305-prfsha256-x25519"},
		{in: "aes256gcm16", proto: esp, want: "aes256gcm16", ts: "aes256gcm16 noesn"},
		{in: "aes256gcm16-x25519-ke1_mlkem768", proto: esp, want: "aes256gcm16-x25519-ke1_mlkem768"},
		{in: "aes256gcm16-prfsha256-x25519-ke1_mlkem768", proto: ike, want: "aes256gcm16-prfsha256-x25519-ke1_mlkem768"},
		// Every keyword of the contract.
		{in: "aes128-aes192-aes256-sha1-sha256-sha384-sha512-prfsha1-prfsha256-prfsha384-prfsha512-" +
			"modp2048-modp3072-modp4096-modp6144-modp8192-ecp256-ecp384-ecp521-x25519-mlkem768-mlkem1024",
			proto: ike, want: "aes128-aes192-aes256-sha1-sha256-sha384-sha512-" + // the PRFs mirror the integrity algorithms
				"modp2048-modp3072-modp4096-modp6144-modp8192-ecp256-ecp384-ecp521-x25519-mlkem768-mlkem1024"},
		{in: "aes128gcm8-aes192gcm8-aes256gcm8-aes128gcm12-aes192gcm12-aes256gcm12-aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-esn-noesn",
			proto: esp, want: "aes128gcm8-aes192gcm8-aes256gcm8-aes128gcm12-aes192gcm12-aes256gcm12-aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-esn-noesn"},
		// Types in any order; strongSwan's aliases.
		{in: "x25519-prfsha256-aes256gcm16", proto: ike, want: "aes256gcm16-prfsha256-x25519"},
		{in: "aes-sha-curve25519", proto: ike, want: "aes128-sha1-x25519"},
		{in: "aes128gcm64-aes192gcm96-aes256gcm128-aes256gcm", proto: esp, want: "aes128gcm8-aes192gcm12-aes256gcm16"},
		{in: "aes256-sha2_256-sha2_384-sha2_512", proto: esp, want: "aes256-sha256-sha384-sha512"},
		{in: " aes256gcm16 - x25519 ", proto: esp, want: "aes256gcm16-x25519"},
		// Duplicates are kept once.
		{in: "aes128-aes-sha256-sha256", proto: esp, want: "aes128-sha256"},
		// IKE: PRFs from integrity algorithms, in order; an explicit PRF wins.
		{in: "aes256-sha512-sha1-ecp384", proto: ike, want: "aes256-sha512-sha1-ecp384", ts: "aes256 sha512 sha1 prfsha512 prfsha1 ecp384"},
		{in: "aes256-sha512-prfsha256-ecp384", proto: ike, want: "aes256-sha512-prfsha256-ecp384"},
		{in: "aes256-sha256-sha384-prfsha384-prfsha256-ecp384", proto: ike, want: "aes256-sha256-sha384-prfsha384-prfsha256-ecp384"},
		// AEAD: integrity dropped, but in IKE it first supplies the PRF.
		{in: "aes256gcm16-sha256-x25519", proto: ike, want: "aes256gcm16-prfsha256-x25519"},
		{in: "aes256gcm16-sha256", proto: esp, want: "aes256gcm16"},
		// IKE drops KE "none"; ESP keeps it (PFS optional).
		{in: "aes256gcm16-prfsha256-x25519-none", proto: ike, want: "aes256gcm16-prfsha256-x25519"},
		{in: "aes256gcm16-x25519-none", proto: esp, want: "aes256gcm16-x25519-none"},
		{in: "aes256gcm16-modpnone", proto: esp, want: "aes256gcm16-none"},
		{in: "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none-ke2_mlkem1024", proto: ike,
			want: "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none-ke2_mlkem1024"},
		// ESP ignores PRFs.
		{in: "aes256gcm16-prfsha256", proto: esp, want: "aes256gcm16"},
		// "default".
		{in: "default", proto: ike, want: "aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-ecp521-modp3072-modp4096-modp2048"},
		{in: "default", proto: esp, want: "aes256gcm16-aes128gcm16-chacha20poly1305"},

		// Errors.
		{in: "", proto: ike, err: "empty IKE proposal"},
		{in: "aes256gcm16-prfsha256-foo", proto: ike, err: `unknown algorithm "foo"`},
		{in: "aes256gcm16-prfsha256-X25519", proto: ike, err: `unknown algorithm "X25519"`},
		{in: "aes128-sha1-modp1024", proto: ike, err: `algorithm "modp1024" is not supported (a weak key exchange method)`},
		{in: "3des-sha1-modp2048", proto: ike, err: `algorithm "3des" is not supported`},
		{in: "aes256gcm16-mlkem512", proto: esp, err: `"mlkem512" is not supported (Go's crypto/mlkem has no ML-KEM-512)`},
		{in: "aes256gcm16-prfsha256-x25519-ke1_aes128", proto: ike, err: `"ke1_aes128": ke1_ takes a key exchange method`},
		{in: "aes256gcm16-prfsha256-x25519-ke8_x25519", proto: ike, err: `unknown algorithm "ke8_x25519"`},
		{in: "aes256gcm16-prfsha256-x25519-ke0_x25519", proto: ike, err: `unknown algorithm "ke0_x25519"`},
		{in: "aes256gcm16--x25519", proto: esp, err: "empty algorithm"},
		{in: "aes256gcm16-", proto: esp, err: "empty algorithm"},
		{in: "default-x25519", proto: esp, err: `"default" must stand alone`},
		{in: "aes256gcm16-x25519", proto: ike, err: "an IKE proposal needs a PRF"},
		{in: "aes256gcm16-prfsha256", proto: ike, err: "an IKE proposal needs a key exchange method"},
		{in: "aes256gcm16-prfsha256-none", proto: ike, err: "an IKE proposal needs a key exchange method"},
		{in: "sha256-x25519", proto: ike, err: "needs an encryption algorithm"},
		{in: "x25519", proto: esp, err: "needs an encryption algorithm"},
		{in: "aes256gcm16-aes256-sha256-x25519", proto: ike, err: "AEAD and classic encryption algorithms cannot share a proposal"},
		{in: "aes256-prfsha256-x25519", proto: ike, err: "classic encryption needs an integrity algorithm"},
		{in: "aes256", proto: esp, err: "classic encryption needs an integrity algorithm"},
		{in: "aes256gcm16-prfsha256-x25519-esn", proto: ike, err: "esn/noesn apply to ESP proposals only"},
		{in: "sha256", proto: wire.ProtoAH, err: "AH proposals are not supported"},
	} {
		p, err := ParseProposal(c.in, c.proto)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "algs: ") {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := p.String(); got != c.want {
			t.Errorf("%q: String() = %q, want %q", c.in, got, c.want)
		}
		if c.ts != "" {
			var names []string
			for _, tr := range p.Transforms {
				names = append(names, tr.String())
			}
			if got := strings.Join(names, " "); got != c.ts {
				t.Errorf("%q: transforms %s, want %s", c.in, got, c.ts)
			}
		}
		if p.Protocol != c.proto {
			t.Errorf("%q: protocol %d", c.in, p.Protocol)
		}
		again, err := ParseProposal(p.String(), c.proto)
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Errorf("%q: does not round-trip: %v, %v", c.in, again, err)
		}
	}
}

func TestParseProposals(t *testing.T) {
	ps, err := ParseProposals([]string{"aes256gcm16-x25519", "default"}, esp)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatProposals(ps); got != "aes256gcm16-x25519, aes256gcm16-aes128gcm16-chacha20poly1305, aes256-aes128-sha256-sha384-sha512" {
		t.Errorf("got %s", got)
	}
	ps, err = ParseProposals([]string{"default"}, ike)
	if err != nil || len(ps) != 2 || ps[1].String() != "aes256-aes128-sha256-sha384-sha512-x25519-ecp256-ecp384-ecp521-modp3072-modp4096-modp2048" {
		t.Errorf("IKE default: %v, %v", ps, err)
	}
	if _, err := ParseProposals(nil, esp); err == nil {
		t.Error("empty list accepted")
	}
	if _, err := ParseProposals([]string{"aes256gcm16", "bogus"}, esp); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("error %v", err)
	}
}

func TestTransformString(t *testing.T) {
	for _, c := range []struct {
		t    Transform
		want string
	}{
		{Transform{wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 256}, "aes256gcm16"},
		{Transform{wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 128}, "aes128"},
		{Transform{wire.TransformENCR, uint16(wire.ENCR_CHACHA20_POLY1305), 0}, "chacha20poly1305"},
		{Transform{wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_256), 0}, "prfsha256"},
		{Transform{wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_512_256), 0}, "sha512"},
		{Transform{wire.TransformKE, uint16(wire.KE_CURVE25519), 0}, "x25519"},
		{Transform{wire.TransformKE, 0, 0}, "none"},
		{Transform{wire.TransformADDKE1, uint16(wire.KE_MLKEM768), 0}, "ke1_mlkem768"},
		{Transform{wire.TransformADDKE7, 0, 0}, "ke7_none"},
		{Transform{wire.TransformESN, 1, 0}, "esn"},
		{Transform{wire.TransformESN, 0, 0}, "noesn"},
		// Known to strongSwan, not implemented here.
		{Transform{wire.TransformENCR, uint16(wire.ENCR_3DES), 0}, "3des"},
		{Transform{wire.TransformENCR, uint16(wire.ENCR_AES_CTR), 192}, "aes192ctr"},
		{Transform{wire.TransformINTEG, uint16(wire.AUTH_AES_XCBC_96), 0}, "aesxcbc"},
		{Transform{wire.TransformKE, uint16(wire.KE_MODP1024), 0}, "modp1024"},
		{Transform{wire.TransformADDKE1 + 1, uint16(wire.KE_MLKEM512), 0}, "ke2_mlkem512"},
		// Unknown to both.
		{Transform{wire.TransformENCR, 99, 0}, "ENCR(99)"},
		{Transform{wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 100}, "ENCR(12)_100"},
		{Transform{wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 0}, "ENCR(12)"},
		{Transform{wire.TransformENCR, uint16(wire.ENCR_CHACHA20_POLY1305), 256}, "ENCR(28)_256"},
		{Transform{wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_256), 256}, "PRF(5)_256"},
		{Transform{wire.TransformINTEG, 0, 0}, "INTEG(0)"},
		{Transform{wire.TransformKE, 1000, 0}, "KE(1000)"},
		{Transform{wire.TransformADDKE1 + 2, 1000, 0}, "ke3_KE(1000)"},
		{Transform{wire.TransformESN, 2, 0}, "ESN(2)"},
		{Transform{13, 1, 0}, "TRANSFORM13(1)"},
	} {
		if got := c.t.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}

func TestProposalWire(t *testing.T) {
	p := mustParse(t, "aes256gcm16-aes128gcm16-x25519-none-ke1_mlkem768-esn-noesn", esp)
	w := p.Wire(2, []byte{1, 2, 3, 4})
	if w.Num != 2 || w.Protocol != esp || string(w.SPI) != "\x01\x02\x03\x04" {
		t.Errorf("header %+v", w)
	}
	want := []wire.Transform{
		{Type: wire.TransformENCR, ID: uint16(wire.ENCR_AES_GCM_16), KeyLen: 256},
		{Type: wire.TransformENCR, ID: uint16(wire.ENCR_AES_GCM_16), KeyLen: 128},
		{Type: wire.TransformKE, ID: uint16(wire.KE_CURVE25519)},
		{Type: wire.TransformKE, ID: 0},
		{Type: wire.TransformESN, ID: 1},
		{Type: wire.TransformESN, ID: 0},
		{Type: wire.TransformADDKE1, ID: uint16(wire.KE_MLKEM768)},
	}
	if !reflect.DeepEqual(w.Transforms, want) {
		t.Errorf("transforms\n%+v\nwant\n%+v", w.Transforms, want)
	}
	q := mustParse(t, "aes128-sha256-modp2048", ike)
	if got := q.Wire(1, nil).Transforms; !reflect.DeepEqual(got, []wire.Transform{
		{Type: wire.TransformENCR, ID: uint16(wire.ENCR_AES_CBC), KeyLen: 128},
		{Type: wire.TransformPRF, ID: uint16(wire.PRF_HMAC_SHA2_256)},
		{Type: wire.TransformINTEG, ID: uint16(wire.AUTH_HMAC_SHA2_256_128)},
		{Type: wire.TransformKE, ID: uint16(wire.KE_MODP2048)},
	}) {
		t.Errorf("IKE transforms %+v", got)
	}
	if got := p.WithoutKE().String(); got != "aes256gcm16-aes128gcm16-esn-noesn" {
		t.Errorf("WithoutKE: %s", got)
	}
	if got := len(p.Of(wire.TransformKE)); got != 2 {
		t.Errorf("Of(KE): %d", got)
	}
}

func TestDefaultProposals(t *testing.T) {
	for _, proto := range []wire.ProtocolID{ike, esp} {
		ps := DefaultProposals(proto)
		if len(ps) != 2 {
			t.Fatalf("%d: %d proposals", proto, len(ps))
		}
		for _, p := range ps {
			for _, tr := range p.Transforms {
				if _, ok := tr.name(); !ok || foreignNames[tr] != "" {
					t.Errorf("default has %v", tr)
				}
			}
		}
	}
}
