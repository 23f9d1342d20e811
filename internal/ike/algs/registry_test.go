package algs

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// TestRFC4868 runs RFC 4868's PRF_HMAC_SHA2_* and AUTH_HMAC_SHA2_* cases.
func TestRFC4868(t *testing.T) {
	var f struct {
		Vectors []struct {
			Kind, Alg              string
			Key, Data, Output, ICV hexBytes
		}
	}
	loadJSON(t, "hmac_sha2_rfc4868.json", &f)
	prfByName := map[string]wire.PRFID{
		"PRF_HMAC_SHA2_256": wire.PRF_HMAC_SHA2_256,
		"PRF_HMAC_SHA2_384": wire.PRF_HMAC_SHA2_384,
		"PRF_HMAC_SHA2_512": wire.PRF_HMAC_SHA2_512,
	}
	integByName := map[string]wire.IntegID{
		"AUTH_HMAC_SHA2_256_128": wire.AUTH_HMAC_SHA2_256_128,
		"AUTH_HMAC_SHA2_384_192": wire.AUTH_HMAC_SHA2_384_192,
		"AUTH_HMAC_SHA2_512_256": wire.AUTH_HMAC_SHA2_512_256,
	}
	var nprf, ninteg int
	for i, v := range f.Vectors {
		switch v.Kind {
		case "prf":
			p := LookupPRF(prfByName[v.Alg])
			if got := p.Sum(v.Key, v.Data); !bytes.Equal(got, v.Output) {
				t.Errorf("%d %s: %x, want %x", i, v.Alg, got, v.Output)
			}
			if len(v.Output) != p.Size {
				t.Errorf("%s: Size %d, output %d", v.Alg, p.Size, len(v.Output))
			}
			nprf++
		case "integrity":
			in := LookupInteg(integByName[v.Alg])
			if got := in.Sum(v.Key, v.Data); !bytes.Equal(got, v.ICV) {
				t.Errorf("%d %s: %x, want %x", i, v.Alg, got, v.ICV)
			}
			ninteg++
		}
	}
	if nprf != 15 || ninteg != 9 {
		t.Errorf("ran %d PRF and %d integrity cases", nprf, ninteg)
	}
}

// TestRFC4231 runs RFC 4231's HMAC-SHA-256/384/512 cases through the PRFs
// (SHA-224 is no IKE transform).
func TestRFC4231(t *testing.T) {
	var f struct {
		Vectors []struct {
			Hash              string
			TestCase          int `json:"test_case"`
			Key, Data, Output hexBytes
			Truncated         int `json:"truncated_to_bytes"`
		}
	}
	loadJSON(t, "hmac_sha2_rfc4231.json", &f)
	prf := map[string]*PRF{
		"SHA-256": LookupPRF(wire.PRF_HMAC_SHA2_256),
		"SHA-384": LookupPRF(wire.PRF_HMAC_SHA2_384),
		"SHA-512": LookupPRF(wire.PRF_HMAC_SHA2_512),
	}
	n := 0
	for _, v := range f.Vectors {
		p := prf[v.Hash]
		if p == nil {
			continue
		}
		got := p.Sum(v.Key, v.Data)
		if v.Truncated > 0 {
			got = got[:v.Truncated]
		}
		if !bytes.Equal(got, v.Output) {
			t.Errorf("%s case %d: %x, want %x", v.Hash, v.TestCase, got, v.Output)
		}
		n++
	}
	if n != 21 {
		t.Errorf("ran %d cases, want 21", n)
	}
}

// TestHMACSHA1 checks PRF_HMAC_SHA1 and AUTH_HMAC_SHA1_96 (RFC 2404) with
// RFC 2202's HMAC-SHA-1 cases, transcribed from the RFC.
func TestHMACSHA1(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rep := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	cases := []struct {
		key, data []byte
		digest    string
	}{
		{rep(0x0b, 20), []byte("Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"},
		{[]byte("Jefe"), []byte("what do ya want for nothing?"), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{rep(0xaa, 20), rep(0xdd, 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
		{h("0102030405060708090a0b0c0d0e0f10111213141516171819"), rep(0xcd, 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da"},
		{rep(0x0c, 20), []byte("Test With Truncation"), "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
		{rep(0xaa, 80), []byte("Test Using Larger Than Block-Size Key - Hash Key First"), "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
		{rep(0xaa, 80), []byte("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"), "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
	}
	prf := LookupPRF(wire.PRF_HMAC_SHA1)
	integ := LookupInteg(wire.AUTH_HMAC_SHA1_96)
	for i, c := range cases {
		want := h(c.digest)
		if got := prf.Sum(c.key, c.data); !bytes.Equal(got, want) {
			t.Errorf("case %d: PRF %x, want %x", i+1, got, want)
		}
		if got := integ.Sum(c.key, c.data); !bytes.Equal(got, want[:12]) {
			t.Errorf("case %d: ICV %x, want %x", i+1, got, want[:12])
		}
	}
	// RFC 2202 case 5 lists the 96-bit truncation itself.
	if got := integ.Sum(cases[4].key, cases[4].data); !bytes.Equal(got, h("4c1a03424b55e07fe7f27be1")) {
		t.Errorf("HMAC-SHA-1-96 case 5: %x", got)
	}
}

// TestWycheproofHMACSHA256 runs Wycheproof's HMAC-SHA256 cases (full and
// 128-bit tags) through PRF_HMAC_SHA2_256 and AUTH_HMAC_SHA2_256_128.
func TestWycheproofHMACSHA256(t *testing.T) {
	var f struct {
		TestGroups []struct {
			KeySize, TagSize int
			Tests            []struct {
				TcID          int
				Key, Msg, Tag hexBytes
				Result        string
			}
		}
	}
	loadJSON(t, "hmac_sha256_test.json", &f)
	prf := LookupPRF(wire.PRF_HMAC_SHA2_256)
	integ := LookupInteg(wire.AUTH_HMAC_SHA2_256_128)
	n := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			var got []byte
			switch g.TagSize {
			case 256:
				got = prf.Sum(tc.Key, tc.Msg)
			case 128:
				got = integ.Sum(tc.Key, tc.Msg)
			default:
				continue
			}
			if bytes.Equal(got, tc.Tag) != (tc.Result == "valid") {
				t.Errorf("tc %d (%d-bit tag): got %x, tag %x, %s", tc.TcID, g.TagSize, got, tc.Tag, tc.Result)
			}
			n++
		}
	}
	if n != 174 {
		t.Errorf("ran %d cases", n)
	}
}

// TestIntegLengths checks key and ICV lengths against RFC 2404 and RFC
// 4868 2.1.1, and the PRFs' key lengths against RFC 7296 2.13.
func TestIntegLengths(t *testing.T) {
	for _, c := range []struct {
		id             wire.IntegID
		keyLen, icvLen int
		prf            wire.PRFID
	}{
		{wire.AUTH_HMAC_SHA1_96, 20, 12, wire.PRF_HMAC_SHA1},
		{wire.AUTH_HMAC_SHA2_256_128, 32, 16, wire.PRF_HMAC_SHA2_256},
		{wire.AUTH_HMAC_SHA2_384_192, 48, 24, wire.PRF_HMAC_SHA2_384},
		{wire.AUTH_HMAC_SHA2_512_256, 64, 32, wire.PRF_HMAC_SHA2_512},
	} {
		i := LookupInteg(c.id)
		if i.KeyLen != c.keyLen || i.ICVLen != c.icvLen || i.PRF != c.prf {
			t.Errorf("%s: key %d ICV %d PRF %d", i.Keyword, i.KeyLen, i.ICVLen, i.PRF)
		}
		if n := len(i.Sum(make([]byte, i.KeyLen), []byte("x"))); n != c.icvLen {
			t.Errorf("%s: Sum gives %d bytes", i.Keyword, n)
		}
		p := LookupPRF(c.prf)
		if p.KeyLen != p.Size || p.Size != len(p.Sum(nil)) || !strings.HasPrefix(p.Keyword, "prf") {
			t.Errorf("%s: Size %d KeyLen %d", p.Keyword, p.Size, p.KeyLen)
		}
	}
	if LookupPRF(wire.PRF_HMAC_MD5) != nil || LookupInteg(wire.AUTH_HMAC_MD5_96) != nil || LookupEncr(wire.ENCR_3DES) != nil {
		t.Error("MD5 or 3DES in the registry")
	}
}
