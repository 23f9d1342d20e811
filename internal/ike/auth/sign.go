package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"

	_ "crypto/sha1" // registers crypto.SHA1 for method 1
	_ "crypto/sha256"
	_ "crypto/sha512"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Scheme is a concrete signature scheme: a signature algorithm with its
// hash. For ECDSA the curve is the key's; the classic methods 9, 10, 11
// (RFC 4754) fix it to P-256, P-384, P-521 with SHA-256, -384, -512.
type Scheme uint8

const (
	SchemeUnknown  Scheme = iota
	RSAPKCS1SHA1          // RSASSA-PKCS1-v1_5 with SHA-1: auth method 1 only
	RSAPKCS1SHA256        // sha256WithRSAEncryption
	RSAPKCS1SHA384
	RSAPKCS1SHA512
	RSAPSSSHA256 // RSASSA-PSS, MGF1 with the same hash, salt of the hash's length
	RSAPSSSHA384
	RSAPSSSHA512
	ECDSASHA256 // ecdsa-with-SHA256 (any curve in method 14; P-256 in method 9)
	ECDSASHA384
	ECDSASHA512
	Ed25519 // RFC 8420: PureEdDSA, signed octets not hashed (hash "Identity")
)

var schemeNames = [...]string{
	SchemeUnknown:  "unknown",
	RSAPKCS1SHA1:   "RSA-PKCS1-SHA1",
	RSAPKCS1SHA256: "RSA-PKCS1-SHA256",
	RSAPKCS1SHA384: "RSA-PKCS1-SHA384",
	RSAPKCS1SHA512: "RSA-PKCS1-SHA512",
	RSAPSSSHA256:   "RSA-PSS-SHA256",
	RSAPSSSHA384:   "RSA-PSS-SHA384",
	RSAPSSSHA512:   "RSA-PSS-SHA512",
	ECDSASHA256:    "ECDSA-SHA256",
	ECDSASHA384:    "ECDSA-SHA384",
	ECDSASHA512:    "ECDSA-SHA512",
	Ed25519:        "Ed25519",
}

func (s Scheme) String() string {
	if int(s) < len(schemeNames) {
		return schemeNames[s]
	}
	return fmt.Sprintf("Scheme(%d)", uint8(s))
}

// Hash is the RFC 7427 hash algorithm of the scheme (HashIdentity for
// Ed25519).
func (s Scheme) Hash() wire.HashAlgorithm {
	switch s {
	case RSAPKCS1SHA1:
		return wire.HashSHA1
	case RSAPKCS1SHA256, RSAPSSSHA256, ECDSASHA256:
		return wire.HashSHA2_256
	case RSAPKCS1SHA384, RSAPSSSHA384, ECDSASHA384:
		return wire.HashSHA2_384
	case RSAPKCS1SHA512, RSAPSSSHA512, ECDSASHA512:
		return wire.HashSHA2_512
	case Ed25519:
		return wire.HashIdentity
	}
	return 0
}

func (s Scheme) cryptoHash() crypto.Hash {
	switch s.Hash() {
	case wire.HashSHA1:
		return crypto.SHA1
	case wire.HashSHA2_256:
		return crypto.SHA256
	case wire.HashSHA2_384:
		return crypto.SHA384
	case wire.HashSHA2_512:
		return crypto.SHA512
	}
	return 0 // Ed25519: no pre-hash
}

func (s Scheme) isRSA() bool   { return s >= RSAPKCS1SHA1 && s <= RSAPSSSHA512 }
func (s Scheme) isPSS() bool   { return s >= RSAPSSSHA256 && s <= RSAPSSSHA512 }
func (s Scheme) isECDSA() bool { return s >= ECDSASHA256 && s <= ECDSASHA512 }

// AlgorithmIdentifier returns the DER AlgorithmIdentifier that introduces
// a method 14 signature of this scheme (RFC 7427 3), or nil if the scheme
// has none (RSAPKCS1SHA1: SHA-1 is not used with method 14).
func (s Scheme) AlgorithmIdentifier() []byte { return algorithmIdentifier(s) }

// SupportedHashes is what we announce in SIGNATURE_HASH_ALGORITHMS (RFC
// 7427 4) and accept by default: SHA2-256, SHA2-384, SHA2-512 and Identity
// (RFC 8420, for Ed25519). SHA-1 is not announced (RFC 8247 3.2.2: MUST NOT).
func SupportedHashes() []wire.HashAlgorithm {
	return []wire.HashAlgorithm{wire.HashSHA2_256, wire.HashSHA2_384, wire.HashSHA2_512, wire.HashIdentity}
}

// classicECDSA maps a curve to its RFC 4754 method and scheme.
func classicECDSA(c elliptic.Curve) (wire.AuthMethod, Scheme, int) {
	switch c {
	case elliptic.P256():
		return wire.AuthECDSA256, ECDSASHA256, 32
	case elliptic.P384():
		return wire.AuthECDSA384, ECDSASHA384, 48
	case elliptic.P521():
		return wire.AuthECDSA521, ECDSASHA512, 66
	}
	return 0, SchemeUnknown, 0
}

// ChooseScheme picks the AUTH method and scheme we sign with.
//
// When the peer announced SIGNATURE_HASH_ALGORITHMS (RFC 7427 4; peerHashes
// is that list, nil if it sent none) and one of them suits our key, we use
// method 14 (Digital Signature): RSA with the first of SHA-256, -384, -512 the
// peer lists, in PKCS#1 v1.5 or, with preferPSS (strongSwan's "rsa/pss"),
// RSASSA-PSS; ECDSA with the hash matching the curve's strength or a stronger
// one (SHA-256 for P-256, ...), as strongSwan does; Ed25519 with Identity
// (RFC 8420). Otherwise the classic method for the key: 1 (RSA, PKCS#1 v1.5
// with SHA-1, also when preferPSS: there is no classic PSS method) or 9, 10,
// 11 by curve (RFC 4754). Ed25519 has no classic method: without Identity in
// peerHashes ChooseScheme fails.
func ChooseScheme(key crypto.Signer, peerHashes []wire.HashAlgorithm, preferPSS bool) (wire.AuthMethod, Scheme, error) {
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		for _, h := range []wire.HashAlgorithm{wire.HashSHA2_256, wire.HashSHA2_384, wire.HashSHA2_512} {
			if !slices.Contains(peerHashes, h) {
				continue
			}
			s := map[wire.HashAlgorithm]Scheme{wire.HashSHA2_256: RSAPKCS1SHA256, wire.HashSHA2_384: RSAPKCS1SHA384, wire.HashSHA2_512: RSAPKCS1SHA512}[h]
			if preferPSS {
				s += RSAPSSSHA256 - RSAPKCS1SHA256
			}
			return wire.AuthDigitalSignature, s, nil
		}
		return wire.AuthRSASig, RSAPKCS1SHA1, nil
	case *ecdsa.PublicKey:
		method, classic, _ := classicECDSA(pub.Curve)
		if method == 0 {
			return 0, SchemeUnknown, fmt.Errorf("auth: ECDSA curve %s is not supported", pub.Curve.Params().Name)
		}
		for s := classic; s <= ECDSASHA512; s++ {
			if slices.Contains(peerHashes, s.Hash()) {
				return wire.AuthDigitalSignature, s, nil
			}
		}
		return method, classic, nil
	case ed25519.PublicKey:
		if slices.Contains(peerHashes, wire.HashIdentity) {
			return wire.AuthDigitalSignature, Ed25519, nil
		}
		return 0, SchemeUnknown, errors.New("auth: an Ed25519 key needs RFC 7427 signatures with the Identity hash (RFC 8420), which the peer did not announce")
	default:
		return 0, SchemeUnknown, fmt.Errorf("auth: %T keys are not supported", pub)
	}
}

// keyFits checks that the method and scheme can be used with the public key.
// It returns the classic ECDSA signature size (r|s), if any.
func keyFits(pub crypto.PublicKey, method wire.AuthMethod, s Scheme) (rsLen int, err error) {
	switch method {
	case wire.AuthRSASig:
		if s != RSAPKCS1SHA1 {
			return 0, fmt.Errorf("auth method 1 (RSA signature) is RSA-PKCS1-SHA1, not %v", s)
		}
		if _, ok := pub.(*rsa.PublicKey); !ok {
			return 0, fmt.Errorf("auth method 1 (RSA signature) does not fit an %s", keyDesc(pub))
		}
		return 0, nil
	case wire.AuthECDSA256, wire.AuthECDSA384, wire.AuthECDSA521:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil {
			return 0, fmt.Errorf("auth method %d (RFC 4754 ECDSA) does not fit an %s", method, keyDesc(pub))
		}
		m, cs, n := classicECDSA(k.Curve)
		if m != method {
			return 0, fmt.Errorf("auth method %d (RFC 4754 ECDSA) does not fit an %s", method, keyDesc(pub))
		}
		if s != cs {
			return 0, fmt.Errorf("auth method %d (RFC 4754 ECDSA) is %v, not %v", method, cs, s)
		}
		return n, nil
	case wire.AuthDigitalSignature:
		var ok bool
		switch {
		case s.isRSA() && s != RSAPKCS1SHA1:
			_, ok = pub.(*rsa.PublicKey)
		case s.isECDSA():
			k, isECDSA := pub.(*ecdsa.PublicKey)
			if isECDSA && k != nil {
				m, _, _ := classicECDSA(k.Curve)
				ok = m != 0
			}
		case s == Ed25519:
			var k ed25519.PublicKey
			k, ok = pub.(ed25519.PublicKey)
			ok = ok && len(k) == ed25519.PublicKeySize
		case s == RSAPKCS1SHA1:
			return 0, errSHA1In7427
		default:
			return 0, fmt.Errorf("unknown scheme %v", s)
		}
		if !ok {
			return 0, fmt.Errorf("scheme %v does not fit an %s", s, keyDesc(pub))
		}
		return 0, nil
	case wire.AuthSharedKey:
		return 0, errors.New("auth method 2 (shared key) is not a signature")
	}
	return 0, fmt.Errorf("unsupported auth method %d", method)
}

// keyDesc names a public key's type and size, never its value.
func keyDesc(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "invalid RSA key"
		}
		return fmt.Sprintf("RSA-%d key", k.N.BitLen())
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "invalid ECDSA key"
		}
		return "ECDSA " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "Ed25519 key"
	}
	return fmt.Sprintf("%T key", pub)
}

// Sign computes AUTH payload data (RFC 7296 3.8) over the signed octets
// (RFC 7296 2.15) with method and scheme as ChooseScheme returned them:
// method 1 a PKCS#1 v1.5 SHA-1 signature; methods 9-11 the raw r|s of fixed
// size (RFC 4754 7, not DER); method 14 a one-octet length, the
// AlgorithmIdentifier and the signature (RFC 7427 3), where an ECDSA
// signature is the DER Ecdsa-Sig-Value (RFC 7427 3, RFC 3279 2.2.3).
func Sign(rand io.Reader, key crypto.Signer, method wire.AuthMethod, s Scheme, signedOctets []byte) ([]byte, error) {
	rsLen, err := keyFits(key.Public(), method, s)
	if err != nil {
		return nil, fmt.Errorf("auth: cannot sign: %v", err)
	}
	var digest []byte
	var opts crypto.SignerOpts = s.cryptoHash()
	if h := s.cryptoHash(); h != 0 {
		hh := h.New()
		hh.Write(signedOctets)
		digest = hh.Sum(nil)
	} else {
		digest = signedOctets // Ed25519 signs the message itself
	}
	if s.isPSS() {
		opts = &rsa.PSSOptions{SaltLength: s.cryptoHash().Size(), Hash: s.cryptoHash()}
	}
	sig, err := key.Sign(rand, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("auth: signing with %v: %v", s, err)
	}
	switch method {
	case wire.AuthECDSA256, wire.AuthECDSA384, wire.AuthECDSA521:
		return derToRS(sig, rsLen)
	case wire.AuthDigitalSignature:
		algID := algorithmIdentifier(s)
		out := make([]byte, 0, 1+len(algID)+len(sig))
		out = append(out, byte(len(algID))) // all ours are < 256 octets
		out = append(out, algID...)
		return append(out, sig...), nil
	}
	return sig, nil
}

// derToRS converts a DER Ecdsa-Sig-Value (RFC 3279 2.2.3) into r|s, each
// left-padded to n octets (RFC 4754 7).
func derToRS(der []byte, n int) ([]byte, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var r, s []byte
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() ||
		len(r) > n || len(s) > n {
		return nil, errors.New("auth: the signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 2*n)
	copy(out[n-len(r):n], r)
	copy(out[2*n-len(s):], s)
	return out, nil
}

// rsToDER converts r|s (two n-octet unsigned integers) into a DER
// Ecdsa-Sig-Value for crypto/ecdsa.
func rsToDER(sig []byte, n int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, x := range [][]byte{sig[:n], sig[n:]} {
			for len(x) > 1 && x[0] == 0 {
				x = x[1:]
			}
			b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) {
				if x[0]&0x80 != 0 {
					b.AddUint8(0)
				}
				b.AddBytes(x)
			})
		}
	})
	der, err := b.Bytes()
	if err != nil {
		return nil // does not verify
	}
	return der
}

// AuthScheme decodes which scheme AUTH data of a signature method claims,
// without verifying anything: for logs ("peer authenticated with
// RSA-PSS-SHA256") and for the checks of Verify.
func AuthScheme(method wire.AuthMethod, authData []byte) (Scheme, error) {
	alg, _, err := splitAuthData(method, authData)
	return alg.scheme, err
}

// splitAuthData returns the scheme and the signature proper.
func splitAuthData(method wire.AuthMethod, authData []byte) (signatureAlgorithm, []byte, error) {
	switch method {
	case wire.AuthRSASig:
		return signatureAlgorithm{scheme: RSAPKCS1SHA1}, authData, nil
	case wire.AuthECDSA256:
		return signatureAlgorithm{scheme: ECDSASHA256}, authData, nil
	case wire.AuthECDSA384:
		return signatureAlgorithm{scheme: ECDSASHA384}, authData, nil
	case wire.AuthECDSA521:
		return signatureAlgorithm{scheme: ECDSASHA512}, authData, nil
	case wire.AuthDigitalSignature:
		// RFC 7427 3: ASN.1 Length (1 octet), AlgorithmIdentifier ASN.1
		// object, Signature Value.
		if len(authData) < 1 {
			return signatureAlgorithm{}, nil, failf("empty Digital Signature AUTH data")
		}
		n := int(authData[0])
		if len(authData) < 1+n {
			return signatureAlgorithm{}, nil, failf("Digital Signature AUTH data of %d octets is shorter than its AlgorithmIdentifier length %d", len(authData), n)
		}
		alg, err := parseAlgorithmIdentifier(authData[1 : 1+n])
		if err != nil {
			return signatureAlgorithm{}, nil, failWrap(err, "Digital Signature AUTH: %v", err)
		}
		return alg, authData[1+n:], nil
	case wire.AuthSharedKey:
		return signatureAlgorithm{}, nil, failf("auth method 2 (shared key) is not a signature: use VerifyPSK")
	}
	return signatureAlgorithm{}, nil, failf("unsupported auth method %d", method)
}

// Verify checks AUTH payload data from the peer against its public key and
// the signed octets (RFC 7296 2.15). The method and, for method 14, the
// AlgorithmIdentifier decide the scheme (RFC 7427 3); the scheme's hash must
// be in allowed, the hashes we announced (nil means SupportedHashes()). SHA-1
// is accepted only in method 1 and only if allowed contains HashSHA1 (a
// configuration choice; it is never announced); inside method 14 it is
// always refused. The key must fit the method and scheme (an ECDSA P-384 key
// with method 9 fails). Every error matches ErrAuthenticationFailed.
func Verify(pub crypto.PublicKey, method wire.AuthMethod, authData, signedOctets []byte, allowed []wire.HashAlgorithm) error {
	return verify(pub, "the peer's "+keyDesc(pub), method, authData, signedOctets, allowed)
}

// VerifyWithCertificate is Verify with the key of cert, naming the
// certificate in errors: `RSA-PSS-SHA256 signature (auth method 14) does not
// verify with the key of "C=CH, O=Example, CN=gw-b"`.
func VerifyWithCertificate(cert *x509.Certificate, method wire.AuthMethod, authData, signedOctets []byte, allowed []wire.HashAlgorithm) error {
	return verify(cert.PublicKey, fmt.Sprintf("the key of %q (%s)", formatDN(cert.RawSubject), keyDesc(cert.PublicKey)),
		method, authData, signedOctets, allowed)
}

func verify(pub crypto.PublicKey, keyName string, method wire.AuthMethod, authData, signedOctets []byte, allowed []wire.HashAlgorithm) error {
	alg, sig, err := splitAuthData(method, authData)
	if err != nil {
		return err
	}
	s := alg.scheme
	if allowed == nil {
		allowed = SupportedHashes()
	}
	if !slices.Contains(allowed, s.Hash()) {
		return failf("the peer signed with %v (auth method %d), whose hash we do not allow", s, method)
	}
	rsLen, err := keyFits(pub, method, s)
	if err != nil {
		return failf("the peer's %v (%s)", err, keyName)
	}
	var digest []byte
	if h := s.cryptoHash(); h != 0 {
		hh := h.New()
		hh.Write(signedOctets)
		digest = hh.Sum(nil)
	}
	ok := false
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if s.isPSS() {
			// A declared saltLength of 0 becomes PSSSaltLengthAuto in
			// crypto/rsa, which also accepts other salt lengths.
			ok = rsa.VerifyPSS(k, s.cryptoHash(), digest, sig, &rsa.PSSOptions{SaltLength: alg.saltLen, Hash: s.cryptoHash()}) == nil
		} else {
			ok = rsa.VerifyPKCS1v15(k, s.cryptoHash(), digest, sig) == nil
		}
	case *ecdsa.PublicKey:
		if rsLen > 0 {
			// RFC 4754 7: r and s, each exactly rsLen octets.
			if len(sig) != 2*rsLen {
				return failf("ECDSA AUTH data of %d octets, want %d (RFC 4754 r|s), from %s", len(sig), 2*rsLen, keyName)
			}
			ok = ecdsa.VerifyASN1(k, digest, rsToDER(sig, rsLen))
		} else {
			ok = ecdsa.VerifyASN1(k, digest, sig)
		}
	case ed25519.PublicKey:
		ok = len(sig) == ed25519.SignatureSize && ed25519.Verify(k, signedOctets, sig)
	}
	if !ok {
		return failf("%v signature (auth method %d) does not verify with %s", s, method, keyName)
	}
	return nil
}

// VerifyPSK compares a received shared-key AUTH value (RFC 7296 2.15:
// prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)) with the
// expected one in constant time.
func VerifyPSK(expected, received []byte) error {
	if len(expected) == 0 {
		return failf("no expected shared-key AUTH value")
	}
	if subtle.ConstantTimeCompare(expected, received) != 1 {
		return failf("shared-key AUTH does not match: the peer uses another pre-shared key, or another identity or nonce went into it")
	}
	return nil
}
