package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// A test PKI built in the test: root CA -> intermediate CA -> end entity,
// all with keys of one kind.

// keyKinds are the key types the tests cover.
var keyKinds = []string{"RSA-2048", "RSA-3072", "P-256", "P-384", "P-521", "Ed25519"}

var (
	keyCacheMu sync.Mutex
	keyCache   = map[string][]crypto.Signer{}
)

// testKey returns the i-th cached key of a kind (RSA generation is slow,
// especially under -race, so keys are shared between tests).
func testKey(t testing.TB, kind string, i int) crypto.Signer {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	for len(keyCache[kind]) <= i {
		var k crypto.Signer
		var err error
		switch kind {
		case "RSA-2048":
			k, err = rsa.GenerateKey(rand.Reader, 2048)
		case "RSA-3072":
			k, err = rsa.GenerateKey(rand.Reader, 3072)
		case "P-256":
			k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case "P-384":
			k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		case "P-521":
			k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		case "Ed25519":
			_, k, err = ed25519.GenerateKey(rand.Reader)
		default:
			t.Fatalf("unknown key kind %q", kind)
		}
		if err != nil {
			t.Fatal(err)
		}
		keyCache[kind] = append(keyCache[kind], k)
	}
	return keyCache[kind][i]
}

// testNow is the time at which the test certificates are valid.
var (
	testNotBefore = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	testNotAfter  = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	testNow       = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
)

type testPKI struct {
	kind      string
	root      *x509.Certificate
	rootKey   crypto.Signer
	inter     *x509.Certificate
	interKey  crypto.Signer
	leaf      *x509.Certificate
	leafKey   crypto.Signer
	rootPool  *x509.CertPool
	leafChain []*x509.Certificate // leaf, intermediate
}

var serial int64 = 1000

func issue(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	keyCacheMu.Lock()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	keyCacheMu.Unlock()
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = testNotBefore, testNotAfter
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{Country: []string{"CH"}, Organization: []string{"Cygnet Test"}, CommonName: cn},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// leafTemplate is gw-a's certificate: a DN, FQDN, email and addresses.
func leafTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:        pkix.Name{Country: []string{"CH"}, Organization: []string{"Cygnet Test"}, CommonName: "gw-a"},
		DNSNames:       []string{"gw-a.example"},
		EmailAddresses: []string{"gw-a@example.com"},
		IPAddresses:    []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")},
		KeyUsage:       x509.KeyUsageDigitalSignature,
	}
}

// newTestPKI builds root -> intermediate -> gw-a for keys of one kind.
func newTestPKI(t testing.TB, kind string) *testPKI {
	t.Helper()
	p := &testPKI{kind: kind, rootKey: testKey(t, kind, 0), interKey: testKey(t, kind, 1), leafKey: testKey(t, kind, 2)}
	p.root = issue(t, caTemplate("Cygnet Test Root "+kind), nil, p.rootKey.Public(), p.rootKey)
	p.inter = issue(t, caTemplate("Cygnet Test Intermediate "+kind), p.root, p.interKey.Public(), p.rootKey)
	p.leaf = issue(t, leafTemplate(), p.inter, p.leafKey.Public(), p.interKey)
	p.rootPool = x509.NewCertPool()
	p.rootPool.AddCert(p.root)
	p.leafChain = []*x509.Certificate{p.leaf, p.inter}
	return p
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// keyPEM encodes a key in one of "pkcs8", "sec1", "pkcs1".
func keyPEM(t testing.TB, key crypto.Signer, format string) []byte {
	t.Helper()
	var der []byte
	var typ string
	var err error
	switch format {
	case "pkcs8":
		typ = "PRIVATE KEY"
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "sec1":
		typ = "EC PRIVATE KEY"
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	case "pkcs1":
		typ = "RSA PRIVATE KEY"
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
