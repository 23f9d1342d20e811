package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// methodScheme is one way a key can sign.
type methodScheme struct {
	method wire.AuthMethod
	scheme Scheme
}

// combos lists every method/scheme combination a key kind supports.
func combos(kind string) []methodScheme {
	switch kind {
	case "RSA-2048", "RSA-3072":
		return []methodScheme{
			{wire.AuthRSASig, RSAPKCS1SHA1},
			{wire.AuthDigitalSignature, RSAPKCS1SHA256},
			{wire.AuthDigitalSignature, RSAPKCS1SHA384},
			{wire.AuthDigitalSignature, RSAPKCS1SHA512},
			{wire.AuthDigitalSignature, RSAPSSSHA256},
			{wire.AuthDigitalSignature, RSAPSSSHA384},
			{wire.AuthDigitalSignature, RSAPSSSHA512},
		}
	case "P-256", "P-384", "P-521":
		classic := map[string]methodScheme{
			"P-256": {wire.AuthECDSA256, ECDSASHA256},
			"P-384": {wire.AuthECDSA384, ECDSASHA384},
			"P-521": {wire.AuthECDSA521, ECDSASHA512},
		}[kind]
		return []methodScheme{
			classic,
			{wire.AuthDigitalSignature, ECDSASHA256},
			{wire.AuthDigitalSignature, ECDSASHA384},
			{wire.AuthDigitalSignature, ECDSASHA512},
		}
	case "Ed25519":
		return []methodScheme{{wire.AuthDigitalSignature, Ed25519}}
	}
	return nil
}

var allHashes = []wire.HashAlgorithm{wire.HashSHA1, wire.HashSHA2_256, wire.HashSHA2_384, wire.HashSHA2_512, wire.HashIdentity}

// keyBytesRE finds long hex or base64 runs that could be key material in an
// error message.
var keyBytesRE = regexp.MustCompile(`[0-9a-fA-F]{32,}|[A-Za-z0-9+/]{40,}`)

// checkAuthErr requires an authentication failure whose text contains want.
func checkAuthErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("verification succeeded, want failure %q", want)
	}
	if !errors.Is(err, ErrAuthenticationFailed) {
		t.Errorf("error %q does not match ErrAuthenticationFailed", err)
	}
	if !strings.HasPrefix(err.Error(), "auth: ") {
		t.Errorf("error %q does not start with the package name", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if keyBytesRE.MatchString(err.Error()) {
		t.Errorf("error %q looks like it contains key material", err)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	octets := []byte("RealMessage1 | Nr | prf(SK_pi, IDi') -- stand-in signed octets")
	for _, kind := range keyKinds {
		p := newTestPKI(t, kind)
		other := testKey(t, kind, 3)
		for _, c := range combos(kind) {
			t.Run(fmt.Sprintf("%s/method%d/%v", kind, c.method, c.scheme), func(t *testing.T) {
				auth, err := Sign(rand.Reader, p.leafKey, c.method, c.scheme, octets)
				if err != nil {
					t.Fatal(err)
				}
				// Structure of the AUTH data.
				switch c.method {
				case wire.AuthECDSA256, wire.AuthECDSA384, wire.AuthECDSA521:
					want := map[wire.AuthMethod]int{wire.AuthECDSA256: 64, wire.AuthECDSA384: 96, wire.AuthECDSA521: 132}[c.method]
					if len(auth) != want {
						t.Errorf("RFC 4754 signature of %d octets, want %d", len(auth), want)
					}
				case wire.AuthDigitalSignature:
					algID := c.scheme.AlgorithmIdentifier()
					if int(auth[0]) != len(algID) || !bytes.Equal(auth[1:1+len(algID)], algID) {
						t.Errorf("AUTH data does not start with length+AlgorithmIdentifier: %x", auth[:1+len(algID)])
					}
				case wire.AuthRSASig:
					if len(auth) != p.leafKey.Public().(*rsa.PublicKey).Size() {
						t.Errorf("RSA signature of %d octets", len(auth))
					}
				}
				if s, err := AuthScheme(c.method, auth); err != nil || s != c.scheme {
					t.Errorf("AuthScheme = %v, %v; want %v", s, err, c.scheme)
				}
				allowed := SupportedHashes()
				if c.method == wire.AuthRSASig {
					allowed = append(allowed, wire.HashSHA1)
				}
				if err := Verify(p.leafKey.Public(), c.method, auth, octets, allowed); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if err := VerifyWithCertificate(p.leaf, c.method, auth, octets, allowed); err != nil {
					t.Fatalf("VerifyWithCertificate: %v", err)
				}

				// Wrong key.
				err = VerifyWithCertificate(issue(t, leafTemplate(), p.inter, other.Public(), p.interKey), c.method, auth, octets, allowed)
				checkAuthErr(t, err, `does not verify with the key of "C=CH, O=Cygnet Test, CN=gw-a"`)
				// Wrong octets.
				checkAuthErr(t, Verify(p.leafKey.Public(), c.method, auth, append(bytes.Clone(octets), 0), allowed), "does not verify")
				// Tampered signature: last octet, and first octet of the signature proper.
				bad := bytes.Clone(auth)
				bad[len(bad)-1] ^= 0x01
				checkAuthErr(t, Verify(p.leafKey.Public(), c.method, bad, octets, allowed), "")
				bad = bytes.Clone(auth)
				bad[len(bad)-len(bad)/3] ^= 0x80
				checkAuthErr(t, Verify(p.leafKey.Public(), c.method, bad, octets, allowed), "")
				// Truncated.
				checkAuthErr(t, Verify(p.leafKey.Public(), c.method, auth[:len(auth)-1], octets, allowed), "")
				// Scheme not allowed: drop the scheme's hash from the list.
				notAllowed := slices.DeleteFunc(slices.Clone(allHashes), func(h wire.HashAlgorithm) bool { return h == c.scheme.Hash() })
				checkAuthErr(t, Verify(p.leafKey.Public(), c.method, auth, octets, notAllowed), "do not allow")
			})
		}
	}
}

// TestKeyMethodMismatch: a signature made correctly but presented with a
// method or key that does not fit must fail, and Sign must refuse it.
func TestKeyMethodMismatch(t *testing.T) {
	octets := []byte("signed octets")
	p256 := testKey(t, "P-256", 0)
	p384 := testKey(t, "P-384", 0)
	rsaKey := testKey(t, "RSA-2048", 0)
	edKey := testKey(t, "Ed25519", 0)

	sig384, err := Sign(rand.Reader, p384, wire.AuthECDSA384, ECDSASHA384, octets)
	if err != nil {
		t.Fatal(err)
	}
	// An ECDSA-P384 key with method 9, even over an r|s of the P-256 size.
	checkAuthErr(t, Verify(p384.Public(), wire.AuthECDSA256, sig384[:64], octets, nil), "does not fit an ECDSA P-384 key")
	sig256, _ := Sign(rand.Reader, p256, wire.AuthECDSA256, ECDSASHA256, octets)
	checkAuthErr(t, Verify(p384.Public(), wire.AuthECDSA256, sig256, octets, nil), "does not fit an ECDSA P-384 key")
	checkAuthErr(t, Verify(p256.Public(), wire.AuthECDSA384, sig384, octets, nil), "does not fit an ECDSA P-256 key")

	// RSA AUTH data against an ECDSA or Ed25519 key and vice versa.
	sigRSA, _ := Sign(rand.Reader, rsaKey, wire.AuthDigitalSignature, RSAPSSSHA256, octets)
	checkAuthErr(t, Verify(p256.Public(), wire.AuthDigitalSignature, sigRSA, octets, nil), "scheme RSA-PSS-SHA256 does not fit an ECDSA P-256 key")
	checkAuthErr(t, Verify(edKey.Public(), wire.AuthDigitalSignature, sigRSA, octets, nil), "does not fit an Ed25519 key")
	sigEd, _ := Sign(rand.Reader, edKey, wire.AuthDigitalSignature, Ed25519, octets)
	checkAuthErr(t, Verify(rsaKey.Public(), wire.AuthDigitalSignature, sigEd, octets, nil), "scheme Ed25519 does not fit an RSA-2048 key")
	checkAuthErr(t, Verify(edKey.Public(), wire.AuthRSASig, sigRSA, octets, allHashes), "does not fit an Ed25519 key")
	checkAuthErr(t, Verify(rsaKey.Public(), wire.AuthECDSA256, sig256, octets, nil), "does not fit an RSA-2048 key")
	// A PSS signature relabelled as PKCS#1 v1.5 with the same hash.
	relabelled := append([]byte{byte(len(RSAPKCS1SHA256.AlgorithmIdentifier()))}, RSAPKCS1SHA256.AlgorithmIdentifier()...)
	relabelled = append(relabelled, sigRSA[1+len(RSAPSSSHA256.AlgorithmIdentifier()):]...)
	checkAuthErr(t, Verify(rsaKey.Public(), wire.AuthDigitalSignature, relabelled, octets, nil), "RSA-PKCS1-SHA256 signature (auth method 14) does not verify")
	// An ECDSA DER signature relabelled with another hash.
	sigE, _ := Sign(rand.Reader, p256, wire.AuthDigitalSignature, ECDSASHA256, octets)
	relabelled = append([]byte{byte(len(ECDSASHA384.AlgorithmIdentifier()))}, ECDSASHA384.AlgorithmIdentifier()...)
	relabelled = append(relabelled, sigE[1+len(ECDSASHA256.AlgorithmIdentifier()):]...)
	checkAuthErr(t, Verify(p256.Public(), wire.AuthDigitalSignature, relabelled, octets, nil), "ECDSA-SHA384 signature")

	// Shared key and unknown methods are not signatures.
	checkAuthErr(t, Verify(rsaKey.Public(), wire.AuthSharedKey, sigRSA, octets, nil), "VerifyPSK")
	checkAuthErr(t, Verify(rsaKey.Public(), wire.AuthDSSSig, sigRSA, octets, nil), "unsupported auth method 3")

	// Sign refuses what does not fit.
	for _, tc := range []struct {
		key    crypto.Signer
		method wire.AuthMethod
		s      Scheme
	}{
		{p384, wire.AuthECDSA256, ECDSASHA256},
		{p256, wire.AuthECDSA256, ECDSASHA384},
		{p256, wire.AuthDigitalSignature, RSAPSSSHA256},
		{rsaKey, wire.AuthRSASig, RSAPKCS1SHA256},
		{rsaKey, wire.AuthDigitalSignature, RSAPKCS1SHA1},
		{rsaKey, wire.AuthDigitalSignature, Ed25519},
		{edKey, wire.AuthRSASig, RSAPKCS1SHA1},
		{edKey, wire.AuthSharedKey, Ed25519},
		{rsaKey, wire.AuthDigitalSignature, SchemeUnknown},
	} {
		if _, err := Sign(rand.Reader, tc.key, tc.method, tc.s, octets); err == nil {
			t.Errorf("Sign(%s, method %d, %v) succeeded", keyDesc(tc.key.Public()), tc.method, tc.s)
		}
	}
}

// TestSHA1Policy: SHA-1 only in method 1, only if allowed.
func TestSHA1Policy(t *testing.T) {
	octets := []byte("signed octets")
	key := testKey(t, "RSA-2048", 0)
	sig, err := Sign(rand.Reader, key, wire.AuthRSASig, RSAPKCS1SHA1, octets)
	if err != nil {
		t.Fatal(err)
	}
	checkAuthErr(t, Verify(key.Public(), wire.AuthRSASig, sig, octets, nil), "RSA-PKCS1-SHA1 (auth method 1), whose hash we do not allow")
	if err := Verify(key.Public(), wire.AuthRSASig, sig, octets, append(SupportedHashes(), wire.HashSHA1)); err != nil {
		t.Fatal(err)
	}
	// The same PKCS#1 v1.5 SHA-1 signature inside method 14, labelled
	// sha1WithRSAEncryption (RFC 7427 A.1.1): refused even with SHA-1 allowed.
	algID := mustHex("300d06092a864886f70d0101050500")
	auth14 := append(append([]byte{byte(len(algID))}, algID...), sig...)
	checkAuthErr(t, Verify(key.Public(), wire.AuthDigitalSignature, auth14, octets, allHashes), "SHA-1 is not accepted")
	// ecdsa-with-SHA1 (RFC 7427 A.3.1) and RSASSA-PSS with default (SHA-1)
	// parameters likewise.
	for _, h := range []string{"300906072a8648ce3d0401", "300d06092a864886f70d01010a3000", "300b06092a864886f70d01010a"} {
		algID := mustHex(h)
		auth := append(append([]byte{byte(len(algID))}, algID...), sig...)
		checkAuthErr(t, Verify(key.Public(), wire.AuthDigitalSignature, auth, octets, allHashes), "SHA-1 is not accepted")
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

// TestAlgorithmIdentifierRFC7427 compares our AlgorithmIdentifiers with the
// hex of RFC 7427 appendix A (and RFC 8420 for Ed25519).
func TestAlgorithmIdentifierRFC7427(t *testing.T) {
	for _, tc := range []struct {
		s    Scheme
		want string
		src  string
	}{
		{RSAPKCS1SHA256, "300d 0609 2a86 4886 f70d 0101 0b05 00", "RFC 7427 A.1.2 sha256WithRSAEncryption"},
		{RSAPKCS1SHA384, "300d 0609 2a86 4886 f70d 0101 0c05 00", "RFC 7427 A.1.3 sha384WithRSAEncryption"},
		{RSAPKCS1SHA512, "300d 0609 2a86 4886 f70d 0101 0d05 00", "RFC 7427 A.1.4 sha512WithRSAEncryption"},
		{ECDSASHA256, "300a 0608 2a86 48ce 3d04 0302", "RFC 7427 A.3.2 ecdsa-with-sha256"},
		{ECDSASHA384, "300a 0608 2a86 48ce 3d04 0303", "RFC 7427 A.3.3 ecdsa-with-sha384"},
		{ECDSASHA512, "300a 0608 2a86 48ce 3d04 0304", "RFC 7427 A.3.4 ecdsa-with-sha512"},
		// RFC 7427 A.4.3 with its erratum applied: the published text also
		// encodes the DEFAULT trailerField (a3 03 02 01 01) and says length
		// 0x46; the corrected form is what strongSwan sends (its
		// test_signature_params.c: "from RFC 7427, SHA-256 (errata, without
		// trailer, with len corrections)").
		{RSAPSSSHA256, `3041 0609 2a86 4886 f70d 0101 0a30 34a0
			0f30 0d06 0960 8648 0165 0304 0201 0500
			a11c 301a 0609 2a86 4886 f70d 0101 0830
			0d06 0960 8648 0165 0304 0201 0500 a203
			0201 20`, "RFC 7427 A.4.3 (errata) RSASSA-PSS with SHA-256"},
		// No RFC vector: strongSwan's test_signature_params.c "SHA-512".
		{RSAPSSSHA512, `3041 0609 2a86 4886 f70d 0101 0a30 34a0
			0f30 0d06 0960 8648 0165 0304 0203 0500
			a11c 301a 0609 2a86 4886 f70d 0101 0830
			0d06 0960 8648 0165 0304 0203 0500 a203
			0201 40`, "strongSwan RSASSA-PSS SHA-512"},
		// Same shape, SHA-384 OID (…0202) and salt 48 (0x30).
		{RSAPSSSHA384, `3041 0609 2a86 4886 f70d 0101 0a30 34a0
			0f30 0d06 0960 8648 0165 0304 0202 0500
			a11c 301a 0609 2a86 4886 f70d 0101 0830
			0d06 0960 8648 0165 0304 0202 0500 a203
			0201 30`, "RSASSA-PSS SHA-384 by analogy"},
		{Ed25519, "3005 0603 2b65 70", "RFC 8420 3 / RFC 8410 3 id-Ed25519"},
	} {
		got := tc.s.AlgorithmIdentifier()
		if want := mustHex(tc.want); !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, want %x", tc.src, got, want)
		}
		alg, err := parseAlgorithmIdentifier(got)
		if err != nil || alg.scheme != tc.s {
			t.Errorf("%s: parses as %v, %v", tc.src, alg.scheme, err)
		}
		if tc.s.isPSS() && alg.saltLen != tc.s.cryptoHash().Size() {
			t.Errorf("%s: salt length %d", tc.src, alg.saltLen)
		}
	}
	if RSAPKCS1SHA1.AlgorithmIdentifier() != nil {
		t.Error("SHA-1 has an RFC 7427 AlgorithmIdentifier")
	}
}

// TestParseAlgorithmIdentifier covers encodings others may send.
func TestParseAlgorithmIdentifier(t *testing.T) {
	for _, tc := range []struct {
		name, hex string
		scheme    Scheme
		salt      int
		err       string
	}{
		// RFC 7427 A.4.3 as published, with the explicit default trailerField
		// (transcribed in strongSwan's test_signature_params.c).
		{"RFC 7427 A.4.3 published", `3046 0609 2a86 4886 f70d 0101 0a30 39a0 0f30 0d06 0960 8648 0165 0304 0201 0500
			a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203 0201 20a3 0302 0101`,
			RSAPSSSHA256, 32, ""},
		// RFC 7427 A.4.2 "default parameters" (SHA-1, explicit): SHA-1 refused.
		{"RFC 7427 A.4.2 default (SHA-1)", `303e 0609 2a86 4886 f70d 0101 0a30 31a0 0b30 0906 052b 0e03 021a 0500 a118 3016
			0609 2a86 4886 f70d 0101 0830 0906 052b 0e03 021a 0500 a203 0201 14a3 0302 0101`, 0, 0, "SHA-1"},
		{"RFC 7427 A.4.1 empty parameters", "300d 0609 2a86 4886 f70d 0101 0a30 00", 0, 0, "SHA-1"},
		// Hash AlgorithmIdentifiers without NULL (RFC 4055 2.1 allows it).
		{"PSS SHA-256 hash params absent", `303d 0609 2a86 4886 f70d 0101 0a30 30a0 0d30 0b06 0960 8648 0165 0304 0201
			a11a 3018 0609 2a86 4886 f70d 0101 0830 0b06 0960 8648 0165 0304 0201 a203 0201 20`, RSAPSSSHA256, 32, ""},
		{"PSS SHA-256 salt 0", `3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0201 0500
			a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203 0201 00`, RSAPSSSHA256, 0, ""},
		{"PSS only hash (MGF1-SHA1 default)", `301e 0609 2a86 4886 f70d 0101 0a30 11a0 0f30 0d06 0960 8648 0165 0304 0201 0500`,
			0, 0, "MGF1 hash different"},
		{"PSS bad trailer", `3012 0609 2a86 4886 f70d 0101 0a30 05a3 0302 0102`, 0, 0, "malformed RSASSA-PSS"},
		{"PSS unknown MGF", `302b 0609 2a86 4886 f70d 0101 0a30 1ea1 1c30 1a06 092a 8648 86f7 0d01 0100 300d 0609 6086 4801 6503 0402 0105 00`,
			0, 0, "mask generation"},
		{"PSS trailing garbage", `3043 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0201 0500
			a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203 0201 2000 00`, 0, 0, "malformed"},
		{"sha256WithRSA without NULL", "300b 0609 2a86 4886 f70d 0101 0b", RSAPKCS1SHA256, 0, ""},
		{"ecdsa-with-SHA256 with NULL", "300c 0608 2a86 48ce 3d04 0302 0500", ECDSASHA256, 0, ""},
		{"ecdsa-with-SHA256 with junk params", "300d 0608 2a86 48ce 3d04 0302 0201 00", 0, 0, "unexpected parameters"},
		{"Ed448", "3005 0603 2b65 71", 0, 0, "Ed448"},
		{"unknown OID", "3005 0603 2a03 04", 0, 0, "unsupported signature algorithm 1.2.3.4"},
		{"not a SEQUENCE", "0603 2b65 70", 0, 0, "malformed"},
		{"trailing data", "3005 0603 2b65 7000", 0, 0, "malformed"},
	} {
		alg, err := parseAlgorithmIdentifier(mustHex(tc.hex))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v, %v; want error %q", tc.name, alg.scheme, err, tc.err)
			}
			continue
		}
		if err != nil || alg.scheme != tc.scheme || alg.saltLen != tc.salt {
			t.Errorf("%s: got %v salt %d, %v; want %v salt %d", tc.name, alg.scheme, alg.saltLen, err, tc.scheme, tc.salt)
		}
	}
}

// TestVerifyForeignEncodings: signatures whose AlgorithmIdentifier is not
// the one we would send, but legal, verify (RFC 7427 A.4.3 as published,
// with an explicit trailerField, which strongSwan also accepts).
func TestVerifyForeignEncodings(t *testing.T) {
	key := testKey(t, "RSA-2048", 0)
	octets := []byte("signed octets")
	h := crypto.SHA256.New()
	h.Write(octets)
	sig, err := rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h.Sum(nil), &rsa.PSSOptions{SaltLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	algID := mustHex(`3046 0609 2a86 4886 f70d 0101 0a30 39a0 0f30 0d06 0960 8648 0165 0304 0201 0500
		a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203 0201 20a3 0302 0101`)
	auth := append(append([]byte{byte(len(algID))}, algID...), sig...)
	if err := Verify(key.Public(), wire.AuthDigitalSignature, auth, octets, nil); err != nil {
		t.Fatal(err)
	}
	// The declared salt length is enforced: the same signature declared with
	// salt 20 fails.
	algID20 := bytes.Clone(algID)
	algID20[len(algID20)-6] = 20
	auth = append(append([]byte{byte(len(algID20))}, algID20...), sig...)
	checkAuthErr(t, Verify(key.Public(), wire.AuthDigitalSignature, auth, octets, nil), "does not verify")

	// Malformed method 14 framing.
	for _, bad := range [][]byte{nil, {0}, {20, 0x30}, {5, 0x30, 0x03, 0x06, 0x01, 0x00}} {
		checkAuthErr(t, Verify(key.Public(), wire.AuthDigitalSignature, bad, octets, nil), "")
	}
}

func TestChooseScheme(t *testing.T) {
	all := SupportedHashes()
	for _, tc := range []struct {
		kind   string
		peer   []wire.HashAlgorithm
		pss    bool
		method wire.AuthMethod
		scheme Scheme
		err    string
	}{
		{"RSA-2048", all, false, wire.AuthDigitalSignature, RSAPKCS1SHA256, ""},
		{"RSA-2048", all, true, wire.AuthDigitalSignature, RSAPSSSHA256, ""},
		{"RSA-3072", []wire.HashAlgorithm{wire.HashSHA2_512, wire.HashSHA2_384}, true, wire.AuthDigitalSignature, RSAPSSSHA384, ""},
		{"RSA-2048", []wire.HashAlgorithm{wire.HashSHA2_512}, false, wire.AuthDigitalSignature, RSAPKCS1SHA512, ""},
		{"RSA-2048", nil, false, wire.AuthRSASig, RSAPKCS1SHA1, ""},
		{"RSA-2048", nil, true, wire.AuthRSASig, RSAPKCS1SHA1, ""},
		{"RSA-2048", []wire.HashAlgorithm{wire.HashSHA1, wire.HashIdentity}, true, wire.AuthRSASig, RSAPKCS1SHA1, ""},
		{"P-256", all, false, wire.AuthDigitalSignature, ECDSASHA256, ""},
		{"P-256", []wire.HashAlgorithm{wire.HashSHA2_512}, false, wire.AuthDigitalSignature, ECDSASHA512, ""},
		{"P-256", nil, false, wire.AuthECDSA256, ECDSASHA256, ""},
		{"P-384", all, false, wire.AuthDigitalSignature, ECDSASHA384, ""},
		{"P-384", []wire.HashAlgorithm{wire.HashSHA2_256}, false, wire.AuthECDSA384, ECDSASHA384, ""},
		{"P-384", []wire.HashAlgorithm{wire.HashSHA2_256, wire.HashSHA2_512}, false, wire.AuthDigitalSignature, ECDSASHA512, ""},
		{"P-521", all, false, wire.AuthDigitalSignature, ECDSASHA512, ""},
		{"P-521", []wire.HashAlgorithm{wire.HashSHA2_256, wire.HashSHA2_384}, false, wire.AuthECDSA521, ECDSASHA512, ""},
		{"P-521", nil, false, wire.AuthECDSA521, ECDSASHA512, ""},
		{"Ed25519", all, false, wire.AuthDigitalSignature, Ed25519, ""},
		{"Ed25519", []wire.HashAlgorithm{wire.HashSHA2_256}, false, 0, 0, "Identity hash"},
		{"Ed25519", nil, false, 0, 0, "RFC 8420"},
	} {
		m, s, err := ChooseScheme(testKey(t, tc.kind, 0), tc.peer, tc.pss)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %v pss=%v: got %d %v %v, want error %q", tc.kind, tc.peer, tc.pss, m, s, err, tc.err)
			}
			continue
		}
		if err != nil || m != tc.method || s != tc.scheme {
			t.Errorf("%s %v pss=%v: got %d %v %v, want %d %v", tc.kind, tc.peer, tc.pss, m, s, err, tc.method, tc.scheme)
		}
	}
	// A P-224 key has no method.
	if _, _, err := ChooseScheme(p224Key(t), SupportedHashes(), false); err == nil {
		t.Error("ChooseScheme accepted a P-224 key")
	}
}

func p224Key(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSchemeStrings: every scheme has a name and a hash.
func TestSchemeStrings(t *testing.T) {
	for s := RSAPKCS1SHA1; s <= Ed25519; s++ {
		if strings.HasPrefix(s.String(), "Scheme(") || s.String() == "unknown" || s.Hash() == 0 {
			t.Errorf("scheme %d: %q hash %d", s, s, s.Hash())
		}
	}
	if Scheme(200).String() != "Scheme(200)" {
		t.Error(Scheme(200).String())
	}
}

func TestVerifyPSK(t *testing.T) {
	expected := sha1.Sum([]byte("stand-in for prf(prf(PSK, pad), octets)"))
	if err := VerifyPSK(expected[:], bytes.Clone(expected[:])); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(expected[:])
	bad[0] ^= 1
	checkAuthErr(t, VerifyPSK(expected[:], bad), "shared-key AUTH does not match")
	checkAuthErr(t, VerifyPSK(expected[:], expected[:10]), "does not match")
	checkAuthErr(t, VerifyPSK(expected[:], nil), "does not match")
	checkAuthErr(t, VerifyPSK(nil, nil), "no expected")
}

// TestEd25519BadKey: a malformed Ed25519 public key fails instead of
// panicking in crypto/ed25519.
func TestEd25519BadKey(t *testing.T) {
	key := testKey(t, "Ed25519", 0)
	auth, _ := Sign(rand.Reader, key, wire.AuthDigitalSignature, Ed25519, []byte("x"))
	checkAuthErr(t, Verify(ed25519.PublicKey(make([]byte, 31)), wire.AuthDigitalSignature, auth, []byte("x"), nil), "does not fit")
}
