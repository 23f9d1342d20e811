package sa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// A test PKI: a root CA, an intermediate CA under it, and end-entity
// certificates of several key types issued by the intermediate.

type keyKind string

const (
	keyRSA     keyKind = "rsa2048"
	keyECDSA   keyKind = "p256"
	keyEd25519 keyKind = "ed25519"
	keyBigRSA  keyKind = "rsa3072-bigchain" // a chain too large for one 1280-octet datagram
)

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

type testPKI struct {
	root, inter testCA
	other       testCA // an unrelated root
}

var (
	pkiOnce   sync.Once
	pki       *testPKI
	leafMu    sync.Mutex
	leafCache = map[string]*auth.Credential{}
	serial    int64
)

func newKey(k keyKind) crypto.Signer {
	switch k {
	case keyRSA:
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return key
	case keyBigRSA:
		key, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			panic(err)
		}
		return key
	case keyEd25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return key
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return key
}

func issue(tmpl *x509.Certificate, parent *testCA, key crypto.Signer) *x509.Certificate {
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{Country: []string{"CH"}, Organization: []string{"Cygnet Test"}, CommonName: cn},
		NotBefore:             t0.Add(-24 * time.Hour),
		NotAfter:              t0.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func getPKI() *testPKI {
	pkiOnce.Do(func() {
		p := &testPKI{}
		p.root.key = newKey(keyECDSA)
		p.root.cert = issue(caTemplate("Cygnet Test Root"), nil, p.root.key)
		p.inter.key = newKey(keyECDSA)
		p.inter.cert = issue(caTemplate("Cygnet Test Intermediate"), &p.root, p.inter.key)
		p.other.key = newKey(keyECDSA)
		p.other.cert = issue(caTemplate("Unrelated Root"), nil, p.other.key)
		pki = p
	})
	return pki
}

// leaf returns a credential for FQDN name with a key of kind, issued by the
// intermediate (chain: leaf, intermediate). notAfter zero: valid for years.
func leaf(t testing.TB, kind keyKind, name string, notAfter time.Time) *auth.Credential {
	t.Helper()
	p := getPKI()
	cacheKey := fmt.Sprintf("%s|%s|%v", kind, name, notAfter)
	leafMu.Lock()
	defer leafMu.Unlock()
	if c := leafCache[cacheKey]; c != nil {
		return c
	}
	key := newKey(kind)
	if notAfter.IsZero() {
		notAfter = t0.Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{Country: []string{"CH"}, Organization: []string{"Cygnet Test"}, CommonName: name},
		NotBefore: t0.Add(-24 * time.Hour),
		NotAfter:  notAfter,
		DNSNames:  []string{name},
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	if kind == keyBigRSA {
		// Many names make the certificate (and IKE_AUTH) large.
		for i := range 60 {
			tmpl.DNSNames = append(tmpl.DNSNames, fmt.Sprintf("alias-%03d.%s", i, name))
		}
	}
	cert := issue(tmpl, &p.inter, key)
	cred := &auth.Credential{Chain: []*x509.Certificate{cert, p.inter.cert}, Key: key}
	leafCache[cacheKey] = cred
	return cred
}

func rootPool(certs ...*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

func mustID(t testing.TB, s string) auth.Identity {
	t.Helper()
	id, err := auth.ParseIdentity(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustProposals(t testing.TB, proto wire.ProtocolID, list string) []algs.Proposal {
	t.Helper()
	ps, err := algs.ParseProposals(strings.Split(list, ","), proto)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

const testPSK = "a long random pre-shared key for the tests"

// pskPSK answers every PSK lookup between the two test identities.
func pskFunc(secret string) func(local, remote auth.Identity) ([]byte, bool) {
	return func(local, remote auth.Identity) ([]byte, bool) { return []byte(secret), true }
}

// baseConfigs returns the two sides of a connection between a.example
// (initiator, 10.1.0.0/16) and b.example (responder, 10.2.0.0/16) with PSK
// authentication, proposal ike and ESP proposal aes256gcm16.
func baseConfigs(t testing.TB, ike string) (ini, resp *Config) {
	t.Helper()
	mk := func(name, local, remote, lnet, rnet string) *Config {
		return &Config{
			Name:          name,
			IKEProposals:  mustProposals(t, wire.ProtoIKE, ike),
			Local:         LocalAuth{Method: AuthPSK, ID: mustID(t, local)},
			Remote:        RemoteAuth{Method: AuthPSK, ID: mustID(t, remote)},
			PSK:           pskFunc(testPSK),
			Fragmentation: true,
			SendCertReq:   true,
			Children: []*ChildConfig{{
				Name:      "net",
				ReqID:     1,
				LocalTS:   []TrafficSelector{PrefixTS(netipPrefix(lnet))},
				RemoteTS:  []TrafficSelector{PrefixTS(netipPrefix(rnet))},
				Proposals: mustProposals(t, wire.ProtoESP, "aes256gcm16"),
				RekeyTime: time.Hour,
				LifeTime:  66 * time.Minute,
			}},
		}
	}
	return mk("site", "a.example", "b.example", "10.1.0.0/16", "10.2.0.0/16"),
		mk("site", "b.example", "a.example", "10.2.0.0/16", "10.1.0.0/16")
}

// usePubKey switches cfg to certificate authentication with cred, trusting
// roots for the peer.
func usePubKey(cfg *Config, cred *auth.Credential, roots ...*x509.Certificate) {
	cfg.Local.Method = AuthPubKey
	cfg.Local.Cred = cred
	cfg.Remote.Method = AuthPubKey
	cfg.Remote.Roots = rootPool(roots...)
	cfg.Remote.CACerts = roots
	cfg.PSK = nil
}
