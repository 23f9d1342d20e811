package algs

import (
	"bytes"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// testRand is a deterministic random source for tests.
func testRand(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func fromPrivate(t testing.TB, m *KEMethod, priv []byte) KeyExchange {
	t.Helper()
	k, err := m.impl.fromPrivate(m, priv)
	if err != nil {
		t.Fatalf("%s: %v", m.Keyword, err)
	}
	return k
}

func TestKERegistry(t *testing.T) {
	for _, c := range []struct {
		id                     wire.KEID
		keyword                string
		public, response, secr int
	}{
		{wire.KE_MODP2048, "modp2048", 256, 256, 256},
		{wire.KE_MODP3072, "modp3072", 384, 384, 384},
		{wire.KE_MODP4096, "modp4096", 512, 512, 512},
		{wire.KE_MODP6144, "modp6144", 768, 768, 768},
		{wire.KE_MODP8192, "modp8192", 1024, 1024, 1024},
		{wire.KE_ECP256, "ecp256", 64, 64, 32},
		{wire.KE_ECP384, "ecp384", 96, 96, 48},
		{wire.KE_ECP521, "ecp521", 132, 132, 66},
		{wire.KE_CURVE25519, "x25519", 32, 32, 32},
		{wire.KE_MLKEM768, "mlkem768", 1184, 1088, 32},
		{wire.KE_MLKEM1024, "mlkem1024", 1568, 1568, 32},
	} {
		m := LookupKE(c.id)
		if m == nil {
			t.Errorf("no method %d", c.id)
			continue
		}
		if m.Keyword != c.keyword || m.PublicLen != c.public || m.ResponseLen != c.response || m.SecretLen != c.secr {
			t.Errorf("%d: %+v", c.id, m)
		}
	}
	for _, id := range []wire.KEID{wire.KE_NONE, wire.KE_MODP1024, wire.KE_MLKEM512, wire.KE_CURVE448, 999} {
		if LookupKE(id) != nil {
			t.Errorf("LookupKE(%d) is not nil", id)
		}
	}
}

// TestMODPPrimes checks the RFC 3526 primes: their fixed top and bottom 64
// bits, that they are safe primes, and that they equal strongSwan's copy.
func TestMODPPrimes(t *testing.T) {
	var params map[string]struct{ P, G hexBytes }
	loadJSON(t, "modp_group_params.json", &params)
	ones := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1))
	for _, c := range []struct {
		id   wire.KEID
		name string
	}{
		{wire.KE_MODP2048, "MODP_2048_BIT"}, {wire.KE_MODP3072, "MODP_3072_BIT"},
		{wire.KE_MODP4096, "MODP_4096_BIT"}, {wire.KE_MODP6144, "MODP_6144_BIT"},
		{wire.KE_MODP8192, "MODP_8192_BIT"},
	} {
		grp := LookupKE(c.id).impl.(*modpGroup)
		p := grp.p
		n := uint(p.BitLen())
		if n != uint(grp.size*8) {
			t.Errorf("%s: %d bits", c.name, n)
		}
		if new(big.Int).And(p, ones).Cmp(ones) != 0 || new(big.Int).Rsh(p, n-64).Cmp(ones) != 0 {
			t.Errorf("%s: top or bottom 64 bits are not all ones", c.name)
		}
		want := params[c.name]
		if !bytes.Equal(p.Bytes(), want.P) || !bytes.Equal(grp.g.Bytes(), want.G) {
			t.Errorf("%s differs from strongSwan's", c.name)
		}
		// Primality of the larger ones takes seconds; their values are
		// covered by the comparison above and strongSwan's vectors.
		q := new(big.Int).Rsh(p, 1)
		if n <= 4096 && (!p.ProbablyPrime(0) || !q.ProbablyPrime(0)) {
			t.Errorf("%s: not a safe prime", c.name)
		}
	}
}

// TestMODPVectors runs strongSwan's MODP vectors (their private values,
// both directions).
func TestMODPVectors(t *testing.T) {
	var f struct {
		Vectors []struct {
			Method   string
			PrivateI hexBytes `json:"private_i"`
			PrivateR hexBytes `json:"private_r"`
			PublicI  hexBytes `json:"public_i"`
			PublicR  hexBytes `json:"public_r"`
			Shared   hexBytes
		}
	}
	loadJSON(t, "strongswan_modp_generated.json", &f)
	ids := map[string]wire.KEID{
		"MODP_2048_BIT": wire.KE_MODP2048, "MODP_3072_BIT": wire.KE_MODP3072,
		"MODP_4096_BIT": wire.KE_MODP4096, "MODP_6144_BIT": wire.KE_MODP6144,
		"MODP_8192_BIT": wire.KE_MODP8192,
	}
	n := 0
	for _, v := range f.Vectors {
		id, ok := ids[v.Method]
		if !ok {
			continue // groups 1, 2, 5: not supported
		}
		m := LookupKE(id)
		checkDH(t, m, v.PrivateI, v.PrivateR, v.PublicI, v.PublicR, v.Shared)
		n++
	}
	if n != 5 {
		t.Errorf("ran %d groups", n)
	}
}

// checkDH runs a known-answer Diffie-Hellman exchange in both directions.
func checkDH(t *testing.T, m *KEMethod, privI, privR, pubI, pubR, shared []byte) {
	t.Helper()
	i := fromPrivate(t, m, privI)
	r := fromPrivate(t, m, privR)
	if !bytes.Equal(i.Public(), pubI) || !bytes.Equal(r.Public(), pubR) {
		t.Errorf("%s: public values differ:\n%x\n%x", m.Keyword, i.Public(), pubI)
	}
	si, err := i.SharedSecret(pubR)
	if err != nil || !bytes.Equal(si, shared) {
		t.Errorf("%s: initiator's secret %x, %v", m.Keyword, si, err)
	}
	sr, err := r.SharedSecret(pubI)
	if err != nil || !bytes.Equal(sr, shared) {
		t.Errorf("%s: responder's secret %x, %v", m.Keyword, sr, err)
	}
}

// TestRFC5903 runs RFC 5903 section 8: KE payloads are x | y, the shared
// secret is x.
func TestRFC5903(t *testing.T) {
	var f struct {
		Vectors []struct {
			Group        string
			I, R         hexBytes
			KEPayloadI   hexBytes `json:"ke_payload_i"`
			KEPayloadR   hexBytes `json:"ke_payload_r"`
			SharedSecret hexBytes `json:"shared_secret"`
		}
	}
	loadJSON(t, "ecp_dh_rfc5903.json", &f)
	if len(f.Vectors) != 3 {
		t.Fatalf("%d vectors", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		var id wire.KEID
		switch {
		case strings.HasPrefix(v.Group, "P-256"):
			id = wire.KE_ECP256
		case strings.HasPrefix(v.Group, "P-384"):
			id = wire.KE_ECP384
		case strings.HasPrefix(v.Group, "P-521"):
			id = wire.KE_ECP521
		}
		checkDH(t, LookupKE(id), v.I, v.R, v.KEPayloadI, v.KEPayloadR, v.SharedSecret)
	}
}

// TestX25519Vectors runs RFC 7748 6.1 and RFC 8031 appendix A.
func TestX25519Vectors(t *testing.T) {
	var f struct {
		Vectors []struct {
			PrivateI hexBytes `json:"private_i"`
			PrivateR hexBytes `json:"private_r"`
			PublicI  hexBytes `json:"public_i"`
			PublicR  hexBytes `json:"public_r"`
			Shared   hexBytes
		}
	}
	loadJSON(t, "x25519_rfc7748_rfc8031.json", &f)
	if len(f.Vectors) != 2 {
		t.Fatalf("%d vectors", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		checkDH(t, LookupKE(wire.KE_CURVE25519), v.PrivateI, v.PrivateR, v.PublicI, v.PublicR, v.Shared)
	}
}

// TestWycheproofX25519 checks every Wycheproof X25519 case; those giving an
// all-zero secret (low-order points) must be rejected (RFC 8031 2).
func TestWycheproofX25519(t *testing.T) {
	var f struct {
		TestGroups []struct {
			Tests []struct {
				TcID                    int
				Public, Private, Shared hexBytes
				Result                  string
				Flags                   []string
			}
		}
	}
	loadJSON(t, "x25519_test.json", &f)
	m := LookupKE(wire.KE_CURVE25519)
	n, rejected := 0, 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			k := fromPrivate(t, m, tc.Private)
			got, err := k.SharedSecret(tc.Public)
			zero := bytes.Equal(tc.Shared, make([]byte, 32))
			switch {
			case zero:
				if !errors.Is(err, ErrInvalidKEData) {
					t.Errorf("tc %d %v: all-zero secret accepted (%v)", tc.TcID, tc.Flags, err)
				}
				rejected++
			case err != nil || !bytes.Equal(got, tc.Shared):
				t.Errorf("tc %d %v: %x, %v; want %x", tc.TcID, tc.Flags, got, err, tc.Shared)
			}
			n++
		}
	}
	if n != 518 || rejected == 0 {
		t.Errorf("ran %d cases, %d rejected", n, rejected)
	}
}

// TestWycheproofP256 checks Wycheproof's ECDH P-256 cases with
// uncompressed points, which are 0x04 | x | y; our KE data is x | y.
// Invalid points (off the curve, wrong curve, compressed) must be rejected.
func TestWycheproofP256(t *testing.T) {
	var f struct {
		TestGroups []struct {
			Tests []struct {
				TcID                    int
				Public, Private, Shared hexBytes
				Result                  string
				Flags                   []string
			}
		}
	}
	loadJSON(t, "ecdh_secp256r1_ecpoint_test.json", &f)
	m := LookupKE(wire.KE_ECP256)
	n, invalid := 0, 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			// Wycheproof's private keys are big-endian integers, at times
			// with a leading zero or shorter than 32 bytes.
			priv := new(big.Int).SetBytes(tc.Private).FillBytes(make([]byte, 32))
			k := fromPrivate(t, m, priv)
			peer := []byte(tc.Public)
			if len(peer) == 65 && peer[0] == 4 {
				peer = peer[1:]
			}
			got, err := k.SharedSecret(peer)
			switch tc.Result {
			case "valid", "acceptable":
				if len(tc.Public) != 65 {
					// An acceptable compressed point: IKE has no
					// compressed form, so the wrong length is rejected.
					if err == nil {
						t.Errorf("tc %d: accepted a %d-byte point", tc.TcID, len(tc.Public))
					}
					continue
				}
				if err != nil || !bytes.Equal(got, tc.Shared) {
					t.Errorf("tc %d %v: %x, %v", tc.TcID, tc.Flags, got, err)
				}
			case "invalid":
				if !errors.Is(err, ErrInvalidKEData) {
					t.Errorf("tc %d %v: invalid point accepted (%v)", tc.TcID, tc.Flags, err)
				}
				invalid++
			}
			n++
		}
	}
	if n < 350 || invalid != 24 {
		t.Errorf("ran %d cases, %d invalid", n, invalid)
	}
}

// TestWycheproofMLKEM768 derives ML-KEM-768 keys from Wycheproof's seeds
// and decapsulates their ciphertexts; and checks that Respond rejects
// invalid encapsulation keys (modulus overflow, wrong length).
func TestWycheproofMLKEM768(t *testing.T) {
	m := LookupKE(wire.KE_MLKEM768)
	var f struct {
		TestGroups []struct {
			Tests []struct {
				TcID           int
				Seed, EK, C, K hexBytes
				Result         string
				Comment        string
			}
		}
	}
	loadJSON(t, "mlkem_768_test.json", &f)
	n := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			k, err := m.impl.fromPrivate(m, tc.Seed)
			if err != nil {
				if tc.Result == "valid" || len(tc.Seed) == 64 {
					t.Errorf("tc %d: %v", tc.TcID, err)
				}
				continue
			}
			got, err := k.SharedSecret(tc.C)
			switch tc.Result {
			case "valid":
				if !bytes.Equal(k.Public(), tc.EK) || err != nil || !bytes.Equal(got, tc.K) {
					t.Errorf("tc %d (%s): %x, %v", tc.TcID, tc.Comment, got, err)
				}
			default:
				if !errors.Is(err, ErrInvalidKEData) {
					t.Errorf("tc %d (%s): accepted (%v)", tc.TcID, tc.Comment, err)
				}
			}
			n++
		}
	}
	if n < 150 {
		t.Errorf("ran %d decapsulation cases", n)
	}

	var e struct {
		TestGroups []struct {
			Tests []struct {
				TcID    int
				EK      hexBytes
				Result  string
				Comment string
			}
		}
	}
	loadJSON(t, "mlkem_768_encaps_test.json", &e)
	n = 0
	for _, g := range e.TestGroups {
		for _, tc := range g.Tests {
			ct, secret, err := m.Respond(nil, tc.EK)
			switch tc.Result {
			case "valid":
				if err != nil || len(ct) != m.ResponseLen || len(secret) != m.SecretLen {
					t.Errorf("tc %d (%s): %d, %d, %v", tc.TcID, tc.Comment, len(ct), len(secret), err)
				}
			default:
				if !errors.Is(err, ErrInvalidKEData) {
					t.Errorf("tc %d (%s): invalid key accepted (%v)", tc.TcID, tc.Comment, err)
				}
			}
			n++
		}
	}
	if n != 265 {
		t.Errorf("ran %d encapsulation cases", n)
	}
}

// TestKEHandshake runs a full exchange for every method.
func TestKEHandshake(t *testing.T) {
	r := testRand(1)
	for _, m := range keMethods {
		if testing.Short() && m.ID == wire.KE_MODP8192 {
			continue
		}
		i, err := m.Generate(r)
		if err != nil {
			t.Fatal(err)
		}
		if i.Method() != m || len(i.Public()) != m.PublicLen {
			t.Fatalf("%s: public value of %d bytes", m, len(i.Public()))
		}
		pub, secretR, err := m.Respond(r, i.Public())
		if err != nil {
			t.Fatalf("%s: Respond: %v", m, err)
		}
		secretI, err := i.SharedSecret(pub)
		if err != nil {
			t.Fatalf("%s: SharedSecret: %v", m, err)
		}
		if len(pub) != m.ResponseLen || len(secretI) != m.SecretLen || !bytes.Equal(secretI, secretR) {
			t.Errorf("%s: response %d bytes, secrets %x / %x", m, len(pub), secretI, secretR)
		}
		i.Destroy()
		if _, err := i.SharedSecret(pub); err == nil {
			t.Errorf("%s: SharedSecret works after Destroy", m)
		}
	}
}

// TestKEDeterministic checks that Generate draws its key from rand only.
func TestKEDeterministic(t *testing.T) {
	for _, m := range keMethods {
		if m.ID == wire.KE_MODP8192 || m.ID == wire.KE_MODP6144 {
			continue
		}
		a, err := m.Generate(testRand(7))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := m.Generate(testRand(7))
		c, _ := m.Generate(testRand(8))
		if !bytes.Equal(a.Public(), b.Public()) || bytes.Equal(a.Public(), c.Public()) {
			t.Errorf("%s: Generate is not a function of rand", m)
		}
	}
	if _, err := LookupKE(wire.KE_CURVE25519).Generate(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("Generate succeeded with a short random source")
	}
}

// TestKELeadingZeros runs handshakes until public values and shared
// secrets with leading zero octets have turned up, checking every length:
// fixed-length KE data is what RFC 7296 3.4 and 2.14 require, and a lost
// zero breaks one exchange in 256.
func TestKELeadingZeros(t *testing.T) {
	for _, c := range []struct {
		id  wire.KEID
		max int
	}{
		{wire.KE_CURVE25519, 20000},
		{wire.KE_ECP256, 20000},
		{wire.KE_ECP521, 20000},
		{wire.KE_MODP2048, 5000},
	} {
		m := LookupKE(c.id)
		r := testRand(uint64(c.id))
		var zeroPub, zeroSecret int
		runs := 0
		for ; runs < c.max && (zeroPub == 0 || zeroSecret == 0); runs++ {
			i, err := m.Generate(r)
			if err != nil {
				t.Fatal(err)
			}
			pub, secretR, err := m.Respond(r, i.Public())
			if err != nil {
				t.Fatal(err)
			}
			secretI, err := i.SharedSecret(pub)
			if err != nil {
				t.Fatal(err)
			}
			if len(i.Public()) != m.PublicLen || len(pub) != m.ResponseLen ||
				len(secretI) != m.SecretLen || !bytes.Equal(secretI, secretR) {
				t.Fatalf("%s run %d: lengths %d %d %d", m, runs, len(i.Public()), len(pub), len(secretI))
			}
			if i.Public()[0] == 0 || pub[0] == 0 {
				zeroPub++
			}
			if secretI[0] == 0 {
				zeroSecret++
			}
		}
		t.Logf("%s: %d runs, %d public values and %d secrets with a leading zero", m, runs, zeroPub, zeroSecret)
		if zeroPub == 0 || zeroSecret == 0 {
			t.Errorf("%s: no leading zeros in %d runs", m, runs)
		}
	}
}

// TestKEInvalidPeer checks the validation of peer values.
func TestKEInvalidPeer(t *testing.T) {
	r := testRand(3)
	for _, m := range keMethods {
		if m.ID == wire.KE_MODP8192 || m.ID == wire.KE_MODP6144 {
			continue
		}
		k, err := m.Generate(r)
		if err != nil {
			t.Fatal(err)
		}
		pub, _, err := m.Respond(r, k.Public())
		if err != nil {
			t.Fatal(err)
		}
		bad := map[string][]byte{
			"empty":     nil,
			"short":     pub[:len(pub)-1],
			"long":      append(bytes.Clone(pub), 0),
			"all zero":  make([]byte, m.ResponseLen),
			"all 0xff":  bytes.Repeat([]byte{0xff}, m.ResponseLen),
			"shortpeer": k.Public()[:len(k.Public())-1],
		}
		switch g := m.impl.(type) {
		case *modpGroup:
			one := make([]byte, g.size)
			one[g.size-1] = 1
			bad["one"] = one
			bad["p-1"] = g.pMinus1.FillBytes(make([]byte, g.size))
			bad["p"] = g.p.FillBytes(make([]byte, g.size))
		case *ecGroup:
			if g.nist {
				offCurve := bytes.Clone(pub)
				offCurve[len(offCurve)-1] ^= 1
				bad["off curve"] = offCurve
			} else {
				// Non-canonical values are fine (RFC 7748 5), but
				// low-order points are not: 1 and the order-8 point.
				delete(bad, "all 0xff")
				one := make([]byte, 32)
				one[0] = 1
				bad["one"] = one
				bad["order 8"] = []byte{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}
			}
		case *mlkemKEM:
			// All-zero and all-0xff ciphertexts are well-formed: implicit
			// rejection yields some key, not an error.
			delete(bad, "all zero")
			delete(bad, "all 0xff")
		}
		for name, v := range bad {
			if name == "shortpeer" {
				if _, _, err := m.Respond(r, v); !errors.Is(err, ErrInvalidKEData) {
					t.Errorf("%s: Respond accepted a short value (%v)", m, err)
				}
				continue
			}
			if _, err := k.SharedSecret(v); !errors.Is(err, ErrInvalidKEData) {
				t.Errorf("%s: %s value accepted (%v)", m, name, err)
			} else if !strings.HasPrefix(err.Error(), "algs: ") {
				t.Errorf("%s: error %q", m, err)
			}
			if !m.KEM && len(v) == m.PublicLen {
				if _, _, err := m.Respond(r, v); !errors.Is(err, ErrInvalidKEData) {
					t.Errorf("%s: Respond accepted the %s value (%v)", m, name, err)
				}
			}
		}
	}
}
