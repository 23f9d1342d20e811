package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

func TestLoadCredential(t *testing.T) {
	for _, kind := range keyKinds {
		p := newTestPKI(t, kind)
		formats := []string{"pkcs8"}
		switch kind {
		case "RSA-2048", "RSA-3072":
			formats = append(formats, "pkcs1")
		case "P-256", "P-384", "P-521":
			formats = append(formats, "sec1")
		}
		for _, f := range formats {
			// Certificates in one file, and in one file each.
			for _, certs := range [][][]byte{{certPEM(p.leaf, p.inter)}, {certPEM(p.leaf), certPEM(p.inter)}} {
				cred, err := LoadCredential(certs, keyPEM(t, p.leafKey, f))
				if err != nil {
					t.Fatalf("%s %s: %v", kind, f, err)
				}
				if len(cred.Chain) != 2 || cred.Leaf() != cred.Chain[0] || !cred.Chain[0].Equal(p.leaf) {
					t.Fatalf("%s %s: chain %v", kind, f, cred.Chain)
				}
				// The credential signs, and VerifyPeer accepts its own
				// default identity.
				m, s, err := ChooseScheme(cred.Key, SupportedHashes(), false)
				if err != nil {
					t.Fatal(err)
				}
				authData, err := Sign(rand.Reader, cred.Key, m, s, []byte("octets"))
				if err != nil {
					t.Fatal(err)
				}
				leaf, err := VerifyPeer(cred.CertsToSend(), p.rootPool, cred.DefaultIdentity(), testNow)
				if err != nil {
					t.Fatal(err)
				}
				if err := VerifyWithCertificate(leaf, m, authData, []byte("octets"), nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestLoadCredentialErrors(t *testing.T) {
	p := newTestPKI(t, "P-256")
	key := keyPEM(t, p.leafKey, "pkcs8")
	enc := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})
	for _, tc := range []struct {
		name  string
		certs [][]byte
		key   []byte
		err   string
	}{
		{"key of another cert", [][]byte{certPEM(p.inter)}, key, "does not belong to certificate"},
		{"wrong order", [][]byte{certPEM(p.leaf, p.root)}, key, "is not issued by certificate 2"},
		{"no certs", nil, key, "no certificate given"},
		{"empty PEM", [][]byte{[]byte("-----BEGIN NOTHING-----\n-----END NOTHING-----\n")}, key, "no certificate found"},
		{"garbage cert", [][]byte{[]byte("garbage")}, key, "neither PEM nor DER"},
		{"bad cert DER in PEM", [][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}})}, key, "certificate 1"},
		{"encrypted key", [][]byte{certPEM(p.leaf)}, enc, "encrypted"},
		{"encrypted PKCS#8", [][]byte{certPEM(p.leaf)}, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"no key block", [][]byte{certPEM(p.leaf)}, certPEM(p.leaf), "no PRIVATE KEY block"},
		{"garbage key", [][]byte{certPEM(p.leaf)}, []byte("garbage"), "private key"},
		{"RSA key in EC block", [][]byte{certPEM(p.leaf)}, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER(t, testKey(t, "RSA-2048", 0))}), "private key"},
	} {
		_, err := LoadCredential(tc.certs, tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "auth: ") {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
		if err != nil && keyBytesRE.MatchString(err.Error()) {
			t.Errorf("%s: error %q may contain key material", tc.name, err)
		}
	}
}

func keyDER(t *testing.T, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadDER(t *testing.T) {
	p := newTestPKI(t, "P-384")
	certs, err := LoadCertificates(append(bytes.Clone(p.leaf.Raw), p.inter.Raw...))
	if err != nil || len(certs) != 2 {
		t.Fatal(certs, err)
	}
	der, _ := x509.MarshalECPrivateKey(p.leafKey.(*ecdsa.PrivateKey))
	if _, err := LoadCredential([][]byte{p.leaf.Raw, p.inter.Raw}, der); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCredential([][]byte{p.leaf.Raw}, keyDER(t, p.leafKey)); err != nil {
		t.Fatal(err)
	}
	// Non-certificate PEM blocks between certificates are skipped.
	mixed := append(append(certPEM(p.leaf), keyPEM(t, p.leafKey, "pkcs8")...), certPEM(p.inter)...)
	if certs, err := LoadCertificates(mixed); err != nil || len(certs) != 2 {
		t.Fatal(certs, err)
	}
}

// TestCertsToSend: a root at the end of our chain is not sent.
func TestCertsToSend(t *testing.T) {
	p := newTestPKI(t, "P-256")
	cred, err := LoadCredential([][]byte{certPEM(p.leaf, p.inter, p.root)}, keyPEM(t, p.leafKey, "sec1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cred.CertsToSend(); len(got) != 2 || got[1] != cred.Chain[1] {
		t.Errorf("CertsToSend = %d certificates", len(got))
	}
	cred.Chain = cred.Chain[:1]
	if got := cred.CertsToSend(); len(got) != 1 {
		t.Errorf("CertsToSend = %d certificates", len(got))
	}
}

func TestVerifyPeer(t *testing.T) {
	p := newTestPKI(t, "P-256")
	other := newTestPKI(t, "Ed25519")

	// A leaf with a directoryName SAN and a subject that differs from it.
	dirName := mustID(t, "C=CH, O=Cygnet Test, OU=VPN, CN=gw-a-alias")
	san, err := asn1.Marshal([]asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: dirName.Data},
		{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("gw-dir.example")},
	})
	if err != nil {
		t.Fatal(err)
	}
	dirLeaf := issue(t, &x509.Certificate{
		Subject:         pkix.Name{CommonName: "gw-dir"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier(oidSubjectAltName), Value: san}},
	}, p.inter, testKey(t, "P-256", 3).Public(), p.interKey)

	// Time-bounded variants, all with gw-a's names.
	expiredTmpl := leafTemplate()
	expiredTmpl.NotBefore, expiredTmpl.NotAfter = testNotBefore, testNow.Add(-time.Hour)
	expired := issue(t, expiredTmpl, p.inter, p.leafKey.Public(), p.interKey)
	futureTmpl := leafTemplate()
	futureTmpl.NotBefore, futureTmpl.NotAfter = testNow.Add(time.Hour), testNotAfter
	future := issue(t, futureTmpl, p.inter, p.leafKey.Public(), p.interKey)
	expInterTmpl := caTemplate("Expired Intermediate")
	expInterTmpl.NotBefore, expInterTmpl.NotAfter = testNotBefore, testNow.Add(-time.Minute)
	expInter := issue(t, expInterTmpl, p.root, p.interKey.Public(), p.rootKey)
	leafOfExpInter := issue(t, leafTemplate(), expInter, p.leafKey.Public(), p.interKey)
	selfSigned := issue(t, leafTemplate(), nil, p.leafKey.Public(), p.leafKey)

	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		roots *x509.CertPool
		id    string
		now   time.Time
		err   string
	}{
		{"FQDN in SAN", p.leafChain, p.rootPool, "gw-a.example", testNow, ""},
		{"FQDN case-insensitive", p.leafChain, p.rootPool, "GW-A.example", testNow, ""},
		{"email in SAN", p.leafChain, p.rootPool, "gw-a@example.com", testNow, ""},
		{"IPv4 in SAN", p.leafChain, p.rootPool, "192.0.2.1", testNow, ""},
		{"IPv6 in SAN", p.leafChain, p.rootPool, "2001:db8::1", testNow, ""},
		{"subject DN", p.leafChain, p.rootPool, "C=CH, O=Cygnet Test, CN=gw-a", testNow, ""},
		{"subject DN, other spacing and case", p.leafChain, p.rootPool, "c=ch,o=cygnet test,  cn=GW-A", testNow, ""},
		{"subject DN wildcard", p.leafChain, p.rootPool, "C=CH, O=Cygnet Test, CN=*", testNow, ""},
		{"FQDN wildcard", p.leafChain, p.rootPool, "*.example", testNow, ""},
		{"%any", p.leafChain, p.rootPool, "%any", testNow, ""},
		{"intermediates in any order", []*x509.Certificate{p.leaf, other.inter, p.inter}, p.rootPool, "gw-a.example", testNow, ""},
		{"directoryName SAN", []*x509.Certificate{dirLeaf, p.inter}, p.rootPool, "C=CH, O=Cygnet Test, OU=VPN, CN=gw-a-alias", testNow, ""},
		{"zero time means now", p.leafChain, p.rootPool, "gw-a.example", time.Time{}, ""},

		{"FQDN mismatch", p.leafChain, p.rootPool, "gw-b.example", testNow,
			`identity "gw-b.example" is not in the certificate "C=CH, O=Cygnet Test, CN=gw-a" (SANs: DNS:gw-a.example, email:gw-a@example.com, IP:192.0.2.1, IP:2001:db8::1)`},
		{"FQDN as email", p.leafChain, p.rootPool, "email:gw-a.example", testNow, "is not in the certificate"},
		{"IP mismatch", p.leafChain, p.rootPool, "192.0.2.2", testNow, "is not in the certificate"},
		{"DN mismatch", p.leafChain, p.rootPool, "C=CH, O=Cygnet Test, CN=gw-b", testNow, "is not in the certificate"},
		{"DN in SAN only as dirName", []*x509.Certificate{dirLeaf, p.inter}, p.rootPool, "C=CH, O=Cygnet Test, CN=gw-a", testNow,
			`(SANs: DNS:gw-dir.example, DirName:C=CH, O=Cygnet Test, OU=VPN, CN=gw-a-alias)`},
		{"KEY_ID never", p.leafChain, p.rootPool, "@#0102", testNow, "is not in the certificate"},
		{"CN is not an FQDN", p.leafChain, p.rootPool, "gw-a", testNow, "is not in the certificate"},
		{"expired leaf", []*x509.Certificate{expired, p.inter}, p.rootPool, "gw-a.example", testNow,
			`certificate "C=CH, O=Cygnet Test, CN=gw-a" expired at 2026-06-01T11:00:00Z (now 2026-06-01T12:00:00Z)`},
		{"leaf not yet valid", []*x509.Certificate{future, p.inter}, p.rootPool, "gw-a.example", testNow,
			`certificate "C=CH, O=Cygnet Test, CN=gw-a" is not valid before 2026-06-01T13:00:00Z`},
		{"expired intermediate", []*x509.Certificate{leafOfExpInter, expInter}, p.rootPool, "gw-a.example", testNow,
			`certificate "C=CH, O=Cygnet Test, CN=Expired Intermediate" expired at`},
		{"everything expired later", p.leafChain, p.rootPool, "gw-a.example", testNotAfter.Add(time.Hour), "expired at 2027-01-01T00:00:00Z"},
		{"unknown CA", p.leafChain, other.rootPool, "gw-a.example", testNow,
			`certificate "C=CH, O=Cygnet Test, CN=Cygnet Test Intermediate P-256" was issued by unknown authority "C=CH, O=Cygnet Test, CN=Cygnet Test Root P-256"`},
		{"missing intermediate", []*x509.Certificate{p.leaf}, p.rootPool, "gw-a.example", testNow,
			`certificate "C=CH, O=Cygnet Test, CN=gw-a" was issued by unknown authority "C=CH, O=Cygnet Test, CN=Cygnet Test Intermediate P-256"; the peer sent no intermediate certificates`},
		{"self-signed leaf", []*x509.Certificate{selfSigned}, p.rootPool, "gw-a.example", testNow, "self-signed and not a configured trust anchor"},
		{"no roots", p.leafChain, nil, "gw-a.example", testNow, "no trust anchors"},
		{"no certificate", nil, p.rootPool, "gw-a.example", testNow, "no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := VerifyPeer(tc.chain, tc.roots, mustID(t, tc.id), tc.now)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if leaf != tc.chain[0] {
					t.Error("VerifyPeer did not return the end-entity certificate")
				}
				return
			}
			checkAuthErr(t, err, tc.err)
		})
	}
}

// TestVerifyPeerLeafKey: a chain whose leaf key cannot sign AUTH (P-224).
func TestVerifyPeerLeafKey(t *testing.T) {
	p := newTestPKI(t, "P-256")
	leaf := issue(t, leafTemplate(), p.inter, p224Key(t).Public(), p.interKey)
	_, err := VerifyPeer([]*x509.Certificate{leaf, p.inter}, p.rootPool, mustID(t, "gw-a.example"), testNow)
	checkAuthErr(t, err, "P-224 is not supported")
}

func TestCertReq(t *testing.T) {
	p := newTestPKI(t, "P-256")
	q := newTestPKI(t, "P-384")
	// RFC 7296 3.7: SHA-1 of the SubjectPublicKeyInfo.
	if h := CertReqHash(p.root); h != sha1.Sum(p.root.RawSubjectPublicKeyInfo) {
		t.Fatal("CertReqHash")
	}
	data := CertReqData([]*x509.Certificate{p.root, q.root})
	hashes, err := ParseCertReqData(data)
	if err != nil || len(hashes) != 2 || hashes[0] != CertReqHash(p.root) || hashes[1] != CertReqHash(q.root) {
		t.Fatal(hashes, err)
	}
	if h, err := ParseCertReqData(nil); err != nil || len(h) != 0 {
		t.Fatal(h, err)
	}
	if _, err := ParseCertReqData(data[:39]); err == nil {
		t.Fatal("39 octets accepted")
	}

	credP := &Credential{Chain: p.leafChain, Key: p.leafKey}
	credQ := &Credential{Chain: []*x509.Certificate{q.leaf, q.inter}, Key: q.leafKey}
	anchors := []*x509.Certificate{p.root, q.root}
	if got := credQ.IssuerHashes(anchors); len(got) != 2 || got[0] != CertReqHash(q.inter) || got[1] != CertReqHash(q.root) {
		t.Errorf("IssuerHashes = %x", got)
	}
	creds := []*Credential{credP, credQ}
	for _, tc := range []struct {
		name    string
		req     [][20]byte
		want    *Credential
		matched bool
	}{
		{"root of Q", [][20]byte{CertReqHash(q.root)}, credQ, true},
		{"intermediate of Q", [][20]byte{{1}, CertReqHash(q.inter)}, credQ, true},
		{"root of P", [][20]byte{CertReqHash(p.root)}, credP, true},
		{"unknown CA", [][20]byte{{1}}, credP, false},
		{"no CERTREQ", nil, credP, false},
	} {
		got, matched := SelectCredential(creds, anchors, tc.req)
		if got != tc.want || matched != tc.matched {
			t.Errorf("%s: got %p %v", tc.name, got, matched)
		}
	}
	if got, _ := SelectCredential(nil, anchors, nil); got != nil {
		t.Error("credential from nothing")
	}
}

func TestDefaultIdentity(t *testing.T) {
	p := newTestPKI(t, "P-256")
	cred := &Credential{Chain: p.leafChain, Key: p.leafKey}
	id := cred.DefaultIdentity()
	if id.Type != wire.IDDERASN1DN || id.String() != "C=CH, O=Cygnet Test, CN=gw-a" {
		t.Errorf("DefaultIdentity = %d %q", id.Type, id)
	}
	if !id.Equal(mustID(t, "C=CH, O=Cygnet Test, CN=gw-a")) {
		t.Error("DefaultIdentity differs from the parsed DN")
	}
}

func TestAuthErrorType(t *testing.T) {
	err := failWrap(errors.New("cause"), "reason %d", 1)
	var e *Error
	if !errors.As(err, &e) || e.Reason != "reason 1" || errors.Unwrap(err).Error() != "cause" || !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatal(err)
	}
	if errors.Is(errors.New("other"), ErrAuthenticationFailed) {
		t.Fatal("unrelated error matches")
	}
}
