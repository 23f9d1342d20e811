package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Certificates and keys made by strongSwan's pki tool (package
// strongswan-pki), loaded and verified here: what a strongSwan user
// configures must work unchanged.

// needPKI returns the path of pki, or skips (fails with CYGNET_STRICT=1).
func needPKI(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("pki")
	if err != nil {
		msg := "strongSwan's pki tool is not on PATH (apt-get install strongswan-pki)"
		if os.Getenv("CYGNET_STRICT") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// runPKI runs pki in dir and returns its standard output. pki's standard
// error carries plugin noise (TPM) and is shown only on failure.
func runPKI(t *testing.T, pki, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(pki, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pki %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStrongSwanPKI(t *testing.T) {
	pki := needPKI(t)
	for _, tc := range []struct {
		name    string
		gen     []string // key type options for pki --gen
		padding string   // --rsa-padding for --self/--issue, if any
		outform string
	}{
		{"ECDSA-P256", []string{"--type", "ecdsa", "--size", "256"}, "", "pem"},
		{"ECDSA-P384-DER", []string{"--type", "ecdsa", "--size", "384"}, "", "der"},
		{"RSA-2048", []string{"--type", "rsa", "--size", "2048"}, "", "pem"},
		{"RSA-2048-PSS", []string{"--type", "rsa", "--size", "2048"}, "pss", "pem"},
		{"Ed25519", []string{"--type", "ed25519"}, "", "pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pad := func(args ...string) []string {
				if tc.padding != "" {
					args = append(args, "--rsa-padding", tc.padding)
				}
				return append(args, "--outform", tc.outform)
			}
			caDN := "C=CH, O=Cygnet Interop, CN=Cygnet " + tc.name + " CA"
			leafDN := "C=CH, O=Cygnet Interop, CN=gw-a.example"
			writeFile(t, dir, "ca.key", runPKI(t, pki, dir, append(append([]string{"--gen"}, tc.gen...), "--outform", tc.outform)...))
			writeFile(t, dir, "ca.crt", runPKI(t, pki, dir, pad("--self", "--ca", "--lifetime", "30", "--in", "ca.key", "--dn", caDN)...))
			writeFile(t, dir, "gw.key", runPKI(t, pki, dir, append(append([]string{"--gen"}, tc.gen...), "--outform", tc.outform)...))
			writeFile(t, dir, "gw.pub", runPKI(t, pki, dir, "--pub", "--in", "gw.key"))
			writeFile(t, dir, "gw.crt", runPKI(t, pki, dir, pad("--issue", "--lifetime", "30",
				"--cacert", "ca.crt", "--cakey", "ca.key", "--in", "gw.pub", "--dn", leafDN,
				"--san", "gw-a.example", "--san", "192.0.2.1", "--san", "gw-a@example.com")...))

			read := func(name string) []byte {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			cas, err := LoadCertificates(read("ca.crt"))
			if err != nil {
				t.Fatal(err)
			}
			cred, err := LoadCredential([][]byte{read("gw.crt")}, read("gw.key"))
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(cas[0])
			now := time.Now()
			for _, id := range []string{"gw-a.example", "192.0.2.1", "gw-a@example.com", leafDN, "C=CH, O=Cygnet Interop, CN=*", "%any"} {
				if _, err := VerifyPeer(cred.CertsToSend(), roots, mustID(t, id), now); err != nil {
					t.Errorf("VerifyPeer(%q): %v", id, err)
				}
			}
			if _, err := VerifyPeer(cred.CertsToSend(), roots, mustID(t, "gw-b.example"), now); err == nil {
				t.Error("VerifyPeer accepted gw-b.example")
			}

			// strongSwan's DN encoding and printing agree with ours.
			dnHex := strings.TrimSpace(string(runPKI(t, pki, dir, "--dn", "--in", "gw.crt", "--format", "hex")))
			if got := hex.EncodeToString(mustID(t, leafDN).Data); got != dnHex {
				t.Errorf("ParseIdentity(%q) = %s, pki --dn = %s", leafDN, got, dnHex)
			}
			printed := runPKI(t, pki, dir, "--print", "--type", "x509", "--in", "gw.crt")
			if m := regexp.MustCompile(`subject:\s+"([^"]*)"`).FindSubmatch(printed); m == nil || string(m[1]) != cred.DefaultIdentity().String() {
				t.Errorf("pki prints subject %q, we print %q", m, cred.DefaultIdentity())
			}
			// CERTREQ hash = strongSwan's key ID (SHA-1 of the SPKI).
			keyid := strings.TrimSpace(string(runPKI(t, pki, dir, "--keyid", "--type", "x509", "--in", "ca.crt", "--id", "spki", "--format", "hex")))
			if h := CertReqHash(cas[0]); hex.EncodeToString(h[:]) != keyid {
				t.Errorf("CertReqHash = %x, pki --keyid = %s", h, keyid)
			}
			if got := cred.IssuerHashes(cas); len(got) != 1 || hex.EncodeToString(got[0][:]) != keyid {
				t.Errorf("IssuerHashes = %x", got)
			}

			// And the key signs AUTH payloads that verify with the certificate.
			method, scheme, err := ChooseScheme(cred.Key, SupportedHashes(), tc.padding == "pss")
			if err != nil {
				t.Fatal(err)
			}
			octets := []byte("signed octets")
			authData, err := Sign(rand.Reader, cred.Key, method, scheme, octets)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyWithCertificate(cred.Leaf(), method, authData, octets, nil); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: signed with method %d %v; CA key ID %s", tc.name, method, scheme, keyid)
		})
	}
}
