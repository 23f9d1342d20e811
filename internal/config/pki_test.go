package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testPKI is a throw-away CA with certificates for gw-a.example and
// gw-b.example, generated per test run.
type testPKI struct {
	ca             *x509.Certificate
	caKey          crypto.Signer
	caPEM          []byte
	aCert, bCert   []byte // PEM
	aKey, bKey     []byte // PEM, PKCS#8 (ECDSA)
	aSEC1          []byte // gw-a's key as a SEC1 "EC PRIVATE KEY"
	rsaCert        []byte // gw-r.example, RSA
	rsaPKCS1       []byte // its key as a PKCS#1 "RSA PRIVATE KEY"
	aParsed        *x509.Certificate
	aSigner        crypto.Signer
	serial         int64
	notBeforeFixed time.Time
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{notBeforeFixed: time.Now().Add(-time.Hour)}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.caKey = caKey
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"CH"}, Organization: []string{"Example"}, CommonName: "Example CA"},
		NotBefore:             p.notBeforeFixed,
		NotAfter:              p.notBeforeFixed.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caPEM = pemBlock("CERTIFICATE", der)
	p.serial = 1

	aKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.aCert = p.issue(t, "gw-a", "gw-a.example", aKey.Public())
	p.bCert = p.issue(t, "gw-b", "gw-b.example", bKey.Public())
	p.aKey = pkcs8(t, aKey)
	p.aSigner = aKey
	p.bKey = pkcs8(t, bKey)
	sec1, err := x509.MarshalECPrivateKey(aKey)
	if err != nil {
		t.Fatal(err)
	}
	p.aSEC1 = pemBlock("EC PRIVATE KEY", sec1)
	blk, _ := pem.Decode(p.aCert)
	p.aParsed, _ = x509.ParseCertificate(blk.Bytes)

	return p
}

// addRSA adds gw-r.example with an RSA key, which is slow to generate.
func (p *testPKI) addRSA(t testing.TB) {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.rsaCert = p.issue(t, "gw-r", "gw-r.example", rsaKey.Public())
	p.rsaPKCS1 = pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
}

// issue returns a PEM certificate for "C=CH, O=Example, CN=cn" with dns as
// its subjectAltName.
func (p *testPKI) issue(t testing.TB, cn, dns string, pub crypto.PublicKey) []byte {
	t.Helper()
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{Country: []string{"CH"}, Organization: []string{"Example"}, CommonName: cn},
		DNSNames:     []string{dns},
		NotBefore:    p.notBeforeFixed,
		NotAfter:     p.notBeforeFixed.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, pub, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der)
}

// files returns the PKI as the file names the tests' configurations use;
// r.crt and r-rsa.key only if addRSA was called.
func (p *testPKI) files() map[string][]byte {
	files := map[string][]byte{
		"ca.crt":   p.caPEM,
		"a.crt":    p.aCert,
		"a.key":    p.aKey,
		"a-ec.key": p.aSEC1,
		"b.crt":    p.bCert,
		"b.key":    p.bKey,
	}
	if p.rsaCert != nil {
		files["r.crt"] = p.rsaCert
		files["r-rsa.key"] = p.rsaPKCS1
	}
	return files
}

// writeFiles writes files (relative names) under dir.
func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

// sharedPKI is generated once per test binary.
var (
	sharedPKIMu sync.Mutex
	sharedPKI   *testPKI
)

// getPKI returns the shared PKI, with the RSA certificate if withRSA.
func getPKI(t testing.TB, withRSA ...bool) *testPKI {
	sharedPKIMu.Lock()
	defer sharedPKIMu.Unlock()
	if sharedPKI == nil {
		sharedPKI = newTestPKI(t)
	}
	if len(withRSA) > 0 && withRSA[0] && sharedPKI.rsaCert == nil {
		sharedPKI.addRSA(t)
	}
	return sharedPKI
}
