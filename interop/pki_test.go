package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Certificates for the suite, all made by strongSwan's pki: per signature
// algorithm a root CA, for RSA an intermediate CA under it, one key per side,
// and per case one certificate per side carrying the case's identities (so
// that no two connections share an identity). Keys are made once: RSA-3072
// key generation is the slow part.

// keyKind is pki's --type and --size for an auth value.
var keyKind = map[string]struct {
	typ  string
	size int
}{
	AuthECDSA:   {"ecdsa", 256},
	AuthRSA:     {"rsa", 3072},
	AuthEd25519: {"ed25519", 0},
}

// authPKI is the CA hierarchy and the two leaf keys of one auth value.
type authPKI struct {
	auth                string
	rootCert, rootKey   string
	interCert, interKey string // RSA only: the intermediate CA
	cygKey, swanKey     string
}

// issuer returns the CA that signs the leaves.
func (a *authPKI) issuer() (cert, key string) {
	if a.interCert != "" {
		return a.interCert, a.interKey
	}
	return a.rootCert, a.rootKey
}

// suitePKI holds every authPKI, keyed by auth value.
type suitePKI struct {
	dir  string
	auth map[string]*authPKI
}

const pkiTimeout = 3 * time.Minute

// pkiRun runs pki and writes its standard output (PEM) to out.
func pkiRun(out string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), pkiTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pki", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pki %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if !bytes.HasPrefix(stdout.Bytes(), []byte("-----BEGIN ")) {
		return fmt.Errorf("pki %s: no PEM output: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	}
	return os.WriteFile(out, stdout.Bytes(), 0o600)
}

func genKey(path, auth string) error {
	k := keyKind[auth]
	args := []string{"--gen", "--type", k.typ, "--outform", "pem"}
	if k.size != 0 {
		args = append(args, "--size", fmt.Sprint(k.size))
	}
	return pkiRun(path, args...)
}

// layoutPKI names the files of the CA hierarchies and leaf keys for auths
// in dir, without making them.
func layoutPKI(dir string, auths []string) *suitePKI {
	s := &suitePKI{dir: dir, auth: map[string]*authPKI{}}
	for _, auth := range auths {
		if _, ok := keyKind[auth]; !ok {
			continue // PSK
		}
		a := &authPKI{auth: auth}
		s.auth[auth] = a
		base := filepath.Join(dir, auth)
		a.rootCert, a.rootKey = base+"-root.crt", base+"-root.key"
		a.cygKey, a.swanKey = base+"-cygnet.key", base+"-swan.key"
		if auth == AuthRSA {
			a.interCert, a.interKey = base+"-inter.crt", base+"-inter.key"
		}
	}
	return s
}

// newSuitePKI makes the CA hierarchies and leaf keys for auths in dir,
// running pki for the different algorithms in parallel.
func newSuitePKI(dir string, auths []string) (*suitePKI, error) {
	s := layoutPKI(dir, auths)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, a := range s.auth {
		auth := a.auth
		// Keys in parallel, then the CA certificates in order.
		keys := []string{a.rootKey, a.cygKey, a.swanKey}
		if a.interKey != "" {
			keys = append(keys, a.interKey)
		}
		var kwg sync.WaitGroup
		fail := func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		for _, k := range keys {
			kwg.Add(1)
			go func() {
				defer kwg.Done()
				if err := genKey(k, auth); err != nil {
					fail(err)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			kwg.Wait()
			rootDN := fmt.Sprintf("C=CH, O=Cygnet interop, CN=%s root CA", auth)
			if err := pkiRun(a.rootCert, "--self", "--ca", "--lifetime", "3650", "--in", a.rootKey,
				"--dn", rootDN, "--outform", "pem"); err != nil {
				fail(err)
				return
			}
			if a.interCert != "" {
				if err := pkiRun(a.interCert, "--issue", "--cacert", a.rootCert, "--cakey", a.rootKey,
					"--in", a.interKey, "--type", "priv", "--ca", "--lifetime", "3650",
					"--dn", fmt.Sprintf("C=CH, O=Cygnet interop, CN=%s intermediate CA", auth), "--outform", "pem"); err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	return s, errors.Join(errs...)
}

// caseCerts are the two leaf certificates of one case.
type caseCerts struct {
	cyg, swan string
}

// caseFiles names the case's two certificates (none for PSK).
func (s *suitePKI) caseFiles(p Plan) caseCerts {
	if s.auth[p.Case.Auth] == nil {
		return caseCerts{}
	}
	return caseCerts{
		cyg:  filepath.Join(s.dir, p.CygID+".crt"),
		swan: filepath.Join(s.dir, p.SwanID+".crt"),
	}
}

// issueCase issues the case's two certificates (nothing for PSK).
func (s *suitePKI) issueCase(p Plan) (caseCerts, error) {
	a := s.auth[p.Case.Auth]
	if a == nil {
		return caseCerts{}, nil
	}
	caCert, caKey := a.issuer()
	c := s.caseFiles(p)
	for _, leaf := range []struct{ out, key, id string }{{c.cyg, a.cygKey, p.CygID}, {c.swan, a.swanKey, p.SwanID}} {
		if err := pkiRun(leaf.out, "--issue", "--cacert", caCert, "--cakey", caKey, "--in", leaf.key, "--type", "priv",
			"--dn", "C=CH, O=Cygnet interop, CN="+leaf.id, "--san", leaf.id, "--lifetime", "365", "--outform", "pem"); err != nil {
			return c, err
		}
	}
	return c, nil
}

// cygnetCredentials are Cygnet's files for a certificate case.
func (s *suitePKI) cygnetCredentials(p Plan, c caseCerts) *Credentials {
	a := s.auth[p.Case.Auth]
	if a == nil {
		return nil
	}
	cred := &Credentials{Cert: c.cyg, Key: a.cygKey, Roots: []string{a.rootCert}}
	if a.interCert != "" {
		cred.Chain = []string{a.interCert}
	}
	return cred
}

// charonFiles are the files strongSwan's swanctl directory needs: every root
// and intermediate CA, both leaf keys' strongSwan halves, and the cases'
// strongSwan certificates (x509/<id>.crt).
func (s *suitePKI) charonFiles(certs map[int]caseCerts, plans []Plan) (map[string][]byte, error) {
	files := map[string][]byte{}
	add := func(name, path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[name] = b
		return nil
	}
	for auth, a := range s.auth {
		if err := add("x509ca/"+auth+"-root.crt", a.rootCert); err != nil {
			return nil, err
		}
		if a.interCert != "" {
			if err := add("x509ca/"+auth+"-inter.crt", a.interCert); err != nil {
				return nil, err
			}
		}
		if err := add("private/"+auth+"-swan.key", a.swanKey); err != nil {
			return nil, err
		}
	}
	for _, p := range plans {
		if c, ok := certs[p.Case.ID]; ok && c.swan != "" {
			if err := add("x509/"+p.SwanID+".crt", c.swan); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// authsOf lists the auth values of plans, in order of appearance.
func authsOf(plans []Plan) []string {
	var auths []string
	for _, p := range plans {
		if !slices.Contains(auths, p.Case.Auth) {
			auths = append(auths, p.Case.Auth)
		}
	}
	return auths
}

// makeCerts makes every certificate plans need in dir: the CA hierarchies,
// then each case's pair, four cases at a time.
func makeCerts(dir string, plans []Plan) (*suitePKI, map[int]caseCerts, error) {
	pki, err := newSuitePKI(dir, authsOf(plans))
	if err != nil {
		return nil, nil, err
	}
	certs := map[int]caseCerts{}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	sem := make(chan struct{}, 4)
	for _, p := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := pki.issueCase(p)
			mu.Lock()
			defer mu.Unlock()
			certs[p.Case.ID] = c
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return pki, certs, errors.Join(errs...)
}

// existingCerts finds the certificates makeCerts made in dir for plans
// (in the VM, where the host made them).
func existingCerts(dir string, plans []Plan) (*suitePKI, map[int]caseCerts, error) {
	pki := layoutPKI(dir, authsOf(plans))
	certs := map[int]caseCerts{}
	var missing []error
	check := func(paths ...string) {
		for _, path := range paths {
			if _, err := os.Stat(path); err != nil {
				missing = append(missing, err)
			}
		}
	}
	for _, a := range pki.auth {
		check(a.rootCert, a.cygKey, a.swanKey)
		if a.interCert != "" {
			check(a.interCert)
		}
	}
	for _, p := range plans {
		c := pki.caseFiles(p)
		if c.cyg != "" {
			check(c.cyg, c.swan)
		}
		certs[p.Case.ID] = c
	}
	return pki, certs, errors.Join(missing...)
}
