package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Credential is our certificate chain and private key.
type Credential struct {
	// Chain is our end-entity certificate first, then the intermediates
	// that lead to a trust anchor, each issued by the next.
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// Leaf returns our end-entity certificate.
func (c *Credential) Leaf() *x509.Certificate { return c.Chain[0] }

// DefaultIdentity is the identity we send when none is configured: the
// subject DN of our certificate (as strongSwan does).
func (c *Credential) DefaultIdentity() Identity {
	return Identity{Type: wire.IDDERASN1DN, Data: bytes.Clone(c.Chain[0].RawSubject)}
}

// CertsToSend returns the certificates for our CERT payloads (RFC 7296 3.6,
// encoding X.509 Certificate - Signature): the end-entity certificate first
// (RFC 7296 3.6: "the first certificate provided MUST contain the public key
// used to verify the AUTH field"), then the intermediates. A self-signed
// certificate at the end of the chain (a root the configuration included) is
// left out: the peer must already hold it as a trust anchor.
func (c *Credential) CertsToSend() []*x509.Certificate {
	certs := c.Chain
	if n := len(certs); n > 1 && isSelfSigned(certs[n-1]) {
		certs = certs[:n-1]
	}
	return certs
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

// LoadCertificates reads every certificate in PEM data ("CERTIFICATE"
// blocks, other blocks ignored), or, if data holds no PEM at all, DER
// certificates (strongSwan's pki writes DER by default).
func LoadCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	sawPEM := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if !sawPEM && len(data) > 0 {
		c, err := x509.ParseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("auth: neither PEM nor DER certificates: %v", err)
		}
		certs = c
	}
	if len(certs) == 0 {
		return nil, errors.New("auth: no certificate found")
	}
	return certs, nil
}

// LoadCredential builds our credential from PEM (or DER) certificates, ours
// first and then intermediates, and a private key in PEM or DER: PKCS#8
// ("PRIVATE KEY", also for Ed25519), SEC 1 ("EC PRIVATE KEY") or PKCS#1
// ("RSA PRIVATE KEY"). Encrypted keys are not supported. It checks that the
// key belongs to the first certificate, that the key type can sign AUTH
// payloads, and that each certificate was issued by the next one.
func LoadCredential(certPEMs [][]byte, keyPEM []byte) (*Credential, error) {
	var chain []*x509.Certificate
	for _, p := range certPEMs {
		certs, err := LoadCertificates(p)
		if err != nil {
			return nil, err
		}
		chain = append(chain, certs...)
	}
	if len(chain) == 0 {
		return nil, errors.New("auth: no certificate given")
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if err := signableKey(key.Public()); err != nil {
		return nil, err
	}
	pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("auth: the private key does not belong to certificate %q", formatDN(chain[0].RawSubject))
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, fmt.Errorf("auth: certificate %d %q is not issued by certificate %d %q: %v",
				i+1, formatDN(chain[i].RawSubject), i+2, formatDN(chain[i+1].RawSubject), err)
		}
	}
	return &Credential{Chain: chain, Key: key}, nil
}

// parsePrivateKey reads the first private key in PEM data, or DER.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	der := data
	kind := ""
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return nil, errors.New("auth: encrypted private keys are not supported")
		}
		der, kind = block.Bytes, block.Type
		break
	}
	if kind == "" && bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----")) {
		return nil, errors.New("auth: no PRIVATE KEY block in PEM data")
	}
	var key any
	var err error
	switch kind {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	case "":
		// DER: try each format.
		if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			if key, err = x509.ParseECPrivateKey(der); err != nil {
				key, err = x509.ParsePKCS1PrivateKey(der)
			}
		}
	default:
		return nil, fmt.Errorf("auth: unsupported key block %q", kind)
	}
	if err != nil {
		// The x509 errors name the format, never key material.
		return nil, fmt.Errorf("auth: private key: %v", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("auth: a %T cannot sign", key)
	}
	return s, nil
}

// signableKey checks that a public key is one we can sign or verify AUTH
// payloads with.
func signableKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("auth: ECDSA curve %s is not supported (P-256, P-384, P-521 are)", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("auth: %T keys are not supported (RSA, ECDSA, Ed25519 are)", pub)
}

// CertReqHash is a trust anchor's entry in a CERTREQ payload with encoding
// X.509 Certificate - Signature (RFC 7296 3.7): the SHA-1 hash of its
// SubjectPublicKeyInfo. strongSwan calls it the key ID ("pki --keyid").
func CertReqHash(ca *x509.Certificate) [20]byte {
	return sha1.Sum(ca.RawSubjectPublicKeyInfo)
}

// CertReqData is the Certification Authority field of the CERTREQ payload
// we send: the concatenated CertReqHash of each trust anchor (RFC 7296 3.7).
func CertReqData(anchors []*x509.Certificate) []byte {
	out := make([]byte, 0, 20*len(anchors))
	for _, ca := range anchors {
		h := CertReqHash(ca)
		out = append(out, h[:]...)
	}
	return out
}

// ParseCertReqData splits a received CERTREQ's Certification Authority field
// (encoding X.509 Certificate - Signature) into its SHA-1 hashes. An empty
// field is valid (no hashes).
func ParseCertReqData(data []byte) ([][20]byte, error) {
	if len(data)%sha1.Size != 0 {
		return nil, fmt.Errorf("auth: CERTREQ authority field of %d octets is not a list of SHA-1 hashes", len(data))
	}
	hashes := make([][20]byte, len(data)/sha1.Size)
	for i := range hashes {
		copy(hashes[i][:], data[i*sha1.Size:])
	}
	return hashes, nil
}

// IssuerHashes lists the CERTREQ hashes (CertReqHash) that name an issuer of
// this credential: each CA certificate in our chain after the first, and each
// of anchors that issued the last certificate of our chain.
func (c *Credential) IssuerHashes(anchors []*x509.Certificate) [][20]byte {
	var out [][20]byte
	for _, ca := range c.Chain[1:] {
		out = append(out, CertReqHash(ca))
	}
	top := c.Chain[len(c.Chain)-1]
	for _, ca := range anchors {
		if top.CheckSignatureFrom(ca) == nil {
			out = append(out, CertReqHash(ca))
		}
	}
	return out
}

// SelectCredential picks which of our credentials answers a peer's CERTREQ
// hashes: the first whose IssuerHashes contains one of them. When none
// matches, or the peer sent no CERTREQ (requested is empty), it returns the
// first credential and matched false.
//
// Policy for CERT payloads: we always send CertsToSend of the credential we
// authenticate with, whatever the CERTREQ said. strongSwan's default
// (send_cert = ifasked) sends whenever any CERTREQ arrives, even one naming
// unknown CAs, and most peers do not hold our certificate, so leaving it out
// only risks a failure; a CERTREQ thus chooses among our credentials but
// never suppresses the certificates.
func SelectCredential(creds []*Credential, anchors []*x509.Certificate, requested [][20]byte) (cred *Credential, matched bool) {
	if len(creds) == 0 {
		return nil, false
	}
	for _, c := range creds {
		for _, h := range c.IssuerHashes(anchors) {
			for _, r := range requested {
				if h == r {
					return c, true
				}
			}
		}
	}
	return creds[0], false
}

// VerifyPeer verifies the peer's certificate chain (its end-entity
// certificate first, then whatever intermediates it sent, in any order)
// against roots at time now, then checks that the end-entity certificate
// proves id (RFC 7296 3.5 does not define how; we do what strongSwan does):
// an ID_FQDN must be a subjectAltName dNSName, an ID_RFC822_ADDR a SAN
// rfc822Name, an address a SAN iPAddress, an ID_DER_ASN1_DN the subject (or a
// SAN directoryName), compared with Identity.Matches so that a configured
// pattern ("%any", "*.example", "CN=*") is honoured. An ID_KEY_ID is never
// proven by a certificate. No key usage or extended key usage is required
// (strongSwan requires none). It returns the end-entity certificate, whose
// key must then verify the AUTH payload.
//
// A zero now means the current time (crypto/x509's default). Every error
// matches ErrAuthenticationFailed and names the certificate at fault.
func VerifyPeer(chain []*x509.Certificate, roots *x509.CertPool, id Identity, now time.Time) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, failf("the peer sent no certificate")
	}
	if roots == nil {
		// x509 would fall back to the system roots: never do that here.
		return nil, failf("no trust anchors configured for the peer")
	}
	leaf := chain[0]
	if err := signableKey(leaf.PublicKey); err != nil {
		return nil, failWrap(err, "certificate %q: %v", formatDN(leaf.RawSubject), strings.TrimPrefix(err.Error(), "auth: "))
	}
	if !now.IsZero() {
		for _, c := range chain {
			if err := checkValidity(c, now); err != nil {
				return nil, err
			}
		}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, chainError(err, chain, now)
	}
	if !certProves(leaf, id) {
		return nil, failf("identity %q is not in the certificate %q (%s)", id, formatDN(leaf.RawSubject), certIdentities(leaf))
	}
	return leaf, nil
}

func checkValidity(c *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(c.NotBefore):
		return failf("certificate %q is not valid before %s (now %s)",
			formatDN(c.RawSubject), c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return failf("certificate %q expired at %s (now %s)",
			formatDN(c.RawSubject), c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// chainError turns an x509 verification error into one line naming the
// certificate at fault.
func chainError(err error, chain []*x509.Certificate, now time.Time) error {
	var ua x509.UnknownAuthorityError
	var inv x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua) && ua.Cert != nil:
		hint := ""
		if bytes.Equal(ua.Cert.RawSubject, ua.Cert.RawIssuer) {
			hint = "; it is self-signed and not a configured trust anchor"
		} else if len(chain) == 1 {
			hint = "; the peer sent no intermediate certificates"
		}
		return failWrap(err, "certificate %q was issued by unknown authority %q%s",
			formatDN(ua.Cert.RawSubject), formatDN(ua.Cert.RawIssuer), hint)
	case errors.As(err, &inv) && inv.Cert != nil:
		if inv.Reason == x509.Expired && !now.IsZero() {
			if e := checkValidity(inv.Cert, now); e != nil {
				return failWrap(err, "%s", e.(*Error).Reason)
			}
		}
		return failWrap(err, "certificate %q: %v", formatDN(inv.Cert.RawSubject), err)
	}
	return failWrap(err, "certificate %q does not verify: %v", formatDN(chain[0].RawSubject), err)
}

// certProves reports whether the certificate proves the (pattern) identity.
func certProves(c *x509.Certificate, id Identity) bool {
	if id.Any() {
		return true
	}
	for _, p := range certIDs(c) {
		if id.Matches(p) {
			return true
		}
	}
	return false
}

// certIDs lists the identities a certificate proves: its subject DN and its
// dNSName, rfc822Name, iPAddress and directoryName subjectAltNames.
func certIDs(c *x509.Certificate) []Identity {
	ids := []Identity{{Type: wire.IDDERASN1DN, Data: c.RawSubject}}
	for _, n := range c.DNSNames {
		ids = append(ids, Identity{Type: wire.IDFQDN, Data: []byte(n)})
	}
	for _, e := range c.EmailAddresses {
		ids = append(ids, Identity{Type: wire.IDRFC822, Data: []byte(e)})
	}
	for _, ip := range c.IPAddresses {
		// x509 keeps the SAN's octets: 4 for IPv4, 16 for IPv6 (an
		// IPv4-mapped IPv6 SAN stays an IPv6 identity).
		switch len(ip) {
		case net.IPv4len:
			ids = append(ids, Identity{Type: wire.IDIPv4Addr, Data: []byte(ip)})
		case net.IPv6len:
			ids = append(ids, Identity{Type: wire.IDIPv6Addr, Data: []byte(ip)})
		}
	}
	for _, dn := range directoryNames(c) {
		ids = append(ids, Identity{Type: wire.IDDERASN1DN, Data: dn})
	}
	return ids
}

// certIdentities describes what a certificate proves, for error messages.
func certIdentities(c *x509.Certificate) string {
	var sans []string
	for _, id := range certIDs(c)[1:] {
		prefix := map[wire.IDType]string{
			wire.IDFQDN: "DNS:", wire.IDRFC822: "email:", wire.IDIPv4Addr: "IP:",
			wire.IDIPv6Addr: "IP:", wire.IDDERASN1DN: "DirName:",
		}[id.Type]
		sans = append(sans, prefix+id.String())
	}
	if len(sans) == 0 {
		return "no subjectAltNames"
	}
	return "SANs: " + strings.Join(sans, ", ")
}

var oidSubjectAltName = []int{2, 5, 29, 17}

// directoryNames returns the DER of each directoryName in the certificate's
// subjectAltName extension (crypto/x509 does not expose them).
func directoryNames(c *x509.Certificate) [][]byte {
	var out [][]byte
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, asn1.SEQUENCE) {
			return nil
		}
		for !names.Empty() {
			var gn cryptobyte.String
			var tag asn1.Tag
			if !names.ReadAnyASN1(&gn, &tag) {
				return out
			}
			// GeneralName directoryName [4] Name: EXPLICIT, because Name
			// is a CHOICE (RFC 5280 4.2.1.6, X.680 31.2.7).
			if tag != asn1.Tag(4).Constructed().ContextSpecific() {
				continue
			}
			var name cryptobyte.String
			if gn.ReadASN1Element(&name, asn1.SEQUENCE) && gn.Empty() {
				out = append(out, bytes.Clone(name))
			}
		}
	}
	return out
}
