package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Certificates made by strongSwan's own `pki` tool, for interop tests that
// need "a certificate as strongSwan makes it". All files are PEM.

// CA is a self-signed certification authority.
type CA struct {
	DN       string
	KeyType  string
	KeyPath  string
	CertPath string
}

// Cert is an end-entity certificate issued by a CA, with its private key.
type Cert struct {
	DN       string
	SANs     []string
	KeyType  string
	KeyPath  string
	CertPath string
	CA       *CA
}

var pkiCounter atomic.Uint64

const pkiTimeout = 3 * time.Minute

// defaultBits are the key sizes used when bits is 0: P-256 (pki's own default
// is P-384) and RSA-3072. Ed25519 has no size.
var defaultBits = map[string]int{"ecdsa": 256, "rsa": 3072, "ed25519": 0}

// NewCA makes a key of keyType ("ecdsa" P-256, "rsa" 3072 bits or "ed25519")
// and a self-signed CA certificate for dn (e.g. "C=CH, O=Cygnet, CN=Test CA")
// in dir, valid for ten years.
func NewCA(t testing.TB, dir, keyType, dn string) *CA {
	t.Helper()
	Require(t, "pki")
	base := filepath.Join(dir, fileBase(dn))
	ca := &CA{DN: dn, KeyType: keyType, KeyPath: base + ".key", CertPath: base + ".crt"}
	genKey(t, ca.KeyPath, keyType, 0)
	pkiRun(t, ca.CertPath, "--self", "--ca", "--lifetime", "3650", "--in", ca.KeyPath,
		"--dn", dn, "--outform", "pem")
	return ca
}

// Issue makes a key of keyType (bits 0: the default size) and a certificate
// for it signed by ca, with subject dn and subjectAltNames sans (a DNS name,
// an e-mail address or an IP address each; pki infers the type), valid for a year.
func Issue(t testing.TB, ca *CA, keyType string, bits int, dn string, sans ...string) *Cert {
	t.Helper()
	Require(t, "pki")
	base := filepath.Join(filepath.Dir(ca.CertPath), fileBase(dn))
	c := &Cert{DN: dn, SANs: sans, KeyType: keyType, KeyPath: base + ".key", CertPath: base + ".crt", CA: ca}
	genKey(t, c.KeyPath, keyType, bits)
	args := []string{"--issue", "--cacert", ca.CertPath, "--cakey", ca.KeyPath,
		"--in", c.KeyPath, "--type", "priv", "--dn", dn, "--lifetime", "365", "--outform", "pem"}
	for _, s := range sans {
		args = append(args, "--san", s)
	}
	pkiRun(t, c.CertPath, args...)
	return c
}

// CharonFiles returns the files that make c this charon's identity, for
// CharonConfig.Files: x509ca/ca.crt, x509/peer.crt and private/peer.key.
func (c *Cert) CharonFiles(t testing.TB) map[string][]byte {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return map[string][]byte{
		"x509ca/ca.crt":    read(c.CA.CertPath),
		"x509/peer.crt":    read(c.CertPath),
		"private/peer.key": read(c.KeyPath),
	}
}

func genKey(t testing.TB, path, keyType string, bits int) {
	t.Helper()
	def, ok := defaultBits[keyType]
	if !ok {
		t.Fatalf("testbed: pki: key type %q: want ecdsa, rsa or ed25519", keyType)
	}
	if bits == 0 {
		bits = def
	}
	args := []string{"--gen", "--type", keyType, "--outform", "pem"}
	if keyType != "ed25519" {
		args = append(args, "--size", strconv.Itoa(bits))
	}
	pkiRun(t, path, args...)
}

// pkiRun runs pki and writes its standard output (the PEM) to out. pki
// prints plugin warnings on stderr even on success; they only show on failure.
func pkiRun(t testing.TB, out string, args ...string) {
	t.Helper()
	// Generating an RSA-3072 key takes about a second here, but tens of
	// seconds when the two CPUs are shared with other work.
	ctx, cancel := context.WithTimeout(context.Background(), pkiTimeout)
	defer cancel()
	cmd := execCommand(ctx, "pki", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testbed: pki %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if !bytes.HasPrefix(stdout.Bytes(), []byte("-----BEGIN ")) {
		t.Fatalf("testbed: pki %s: no PEM output: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	}
	if err := os.WriteFile(out, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileBase makes a unique file name from a DN's last CN (or the whole DN).
func fileBase(dn string) string {
	name := dn
	if i := strings.LastIndex(dn, "CN="); i >= 0 {
		name = dn[i+3:]
	}
	name = strings.Trim(unsafeFileChars.ReplaceAllString(name, "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%d", name, pkiCounter.Add(1))
}
