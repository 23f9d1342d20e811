package keys

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// cavsCase is one COUNT block of the NIST CAVS IKEv2 KDF file, with the
// parameters of the [...] section it is in.
type cavsCase struct {
	section  string
	hash     string // "SHA-1", "SHA-256", ...
	dkmLen   int    // bits
	childLen int    // bits
	fields   map[string][]byte
}

// readCAVS parses testdata/ikev2.fax.
func readCAVS(t *testing.T) []cavsCase {
	t.Helper()
	f, err := os.Open("testdata/ikev2.fax")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		cases    []cavsCase
		cur      *cavsCase
		params   = map[string]string{}
		sc       = bufio.NewScanner(f)
		lineNo   int
		sections []string
	)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	flush := func() {
		if cur != nil {
			cases = append(cases, *cur)
			cur = nil
		}
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "["):
			flush()
			inner := strings.Trim(line, "[]")
			if k, v, ok := strings.Cut(inner, "="); ok {
				params[strings.TrimSpace(k)] = strings.TrimSpace(v)
			} else {
				params["hash"] = inner
			}
			sections = append(sections, inner)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("ikev2.fax:%d: cannot parse %q", lineNo, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "COUNT" {
			flush()
			dkm, err1 := strconv.Atoi(params["DKM length"])
			child, err2 := strconv.Atoi(params["Child SA DKM length"])
			if err1 != nil || err2 != nil {
				t.Fatalf("ikev2.fax:%d: bad DKM lengths in %v", lineNo, params)
			}
			cur = &cavsCase{
				section:  fmt.Sprintf("[g^ir %s][%s][Ni %s]#%s", params["g^ir length"], params["hash"], params["Ni length"], v),
				hash:     params["hash"],
				dkmLen:   dkm,
				childLen: child,
				fields:   map[string][]byte{},
			}
			continue
		}
		if cur == nil {
			t.Fatalf("ikev2.fax:%d: field outside a case", lineNo)
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			t.Fatalf("ikev2.fax:%d: %v", lineNo, err)
		}
		cur.fields[k] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return cases
}

var cavsPRF = map[string]wire.PRFID{
	"SHA-1":   wire.PRF_HMAC_SHA1,
	"SHA-256": wire.PRF_HMAC_SHA2_256,
	"SHA-384": wire.PRF_HMAC_SHA2_384,
	"SHA-512": wire.PRF_HMAC_SHA2_512,
}

// TestCAVS runs every case of the NIST CAVS IKEv2 KDF vectors through
// SKEYSEED, prf+ (the IKE SA's DKM), CHILD_SA KEYMAT with and without PFS
// and the rekeyed SKEYSEED.
func TestCAVS(t *testing.T) {
	cases := readCAVS(t)
	ran := 0
	for _, c := range cases {
		prf := algs.LookupPRF(cavsPRF[c.hash])
		if prf == nil {
			t.Fatalf("%s: no PRF for %q", c.section, c.hash)
		}
		get := func(k string) []byte {
			b, ok := c.fields[k]
			if !ok {
				t.Fatalf("%s: missing %q", c.section, k)
			}
			return b
		}
		ni, nr, gir, girNew := get("Ni"), get("Nr"), get("g^ir"), get("g^ir (new)")
		spii, spir := get("SPIi"), get("SPIr")
		check := func(what string, got, want []byte) {
			t.Helper()
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %s\n got %x\nwant %x", c.section, what, got, want)
			}
		}

		// RFC 7296 2.14
		skeyseed := SKEYSEED(prf, ni, nr, gir)
		check("SKEYSEED", skeyseed, get("SKEYSEED"))

		seed := append(append(append(append([]byte{}, ni...), nr...), spii...), spir...)
		dkm, err := PRFPlus(prf, skeyseed, seed, c.dkmLen/8)
		if err != nil {
			t.Fatalf("%s: %v", c.section, err)
		}
		check("DKM", dkm, get("DKM"))

		// SK_d is the first PRF-sized key of the DKM.
		skd := dkm[:prf.KeyLen]
		seed = append(append([]byte{}, ni...), nr...)
		child, err := PRFPlus(prf, skd, seed, c.childLen/8)
		if err != nil {
			t.Fatalf("%s: %v", c.section, err)
		}
		check("DKM(Child SA)", child, get("DKM(Child SA)"))

		// RFC 7296 2.17 with PFS: g^ir (new) | Ni | Nr.
		seed = append(append(append([]byte{}, girNew...), ni...), nr...)
		childDH, err := PRFPlus(prf, skd, seed, c.childLen/8)
		if err != nil {
			t.Fatalf("%s: %v", c.section, err)
		}
		check("DKM(Child SA D-H)", childDH, get("DKM(Child SA D-H)"))

		// RFC 7296 2.18
		check("SKEYSEED(Rekey)", RekeySKEYSEED(prf, skd, ni, nr, girNew), get("SKEYSEED(Rekey)"))

		// DeriveChildKeys must take its keys from the same KEYMAT, in
		// order. An AES-128-CBC + HMAC-SHA2-256 suite needs 2*(16+32) = 96
		// octets, within every case's Child SA DKM (at least 132).
		s := suiteFor(wire.ProtoESP, wire.ENCR_AES_CBC, 128, 0, wire.AUTH_HMAC_SHA2_256_128)
		for _, pfs := range []bool{false, true} {
			var ck *ChildKeys
			want := child
			if pfs {
				ck, err = DeriveChildKeys(prf, skd, s, ni, nr, girNew)
				want = childDH
			} else {
				ck, err = DeriveChildKeys(prf, skd, s, ni, nr)
			}
			if err != nil {
				t.Fatalf("%s: %v", c.section, err)
			}
			got := bytes.Join([][]byte{ck.EncrI, ck.IntegI, ck.EncrR, ck.IntegR}, nil)
			check(fmt.Sprintf("DeriveChildKeys(pfs=%v)", pfs), got, want[:len(got)])
		}
		ran++
	}
	const want = 900
	if ran < want {
		t.Fatalf("ran %d CAVS cases, want %d", ran, want)
	}
	t.Logf("ran %d NIST CAVS IKEv2 KDF cases", ran)
}

func TestPRFPlusLimit(t *testing.T) {
	prf := algs.LookupPRF(wire.PRF_HMAC_SHA1)
	if _, err := PRFPlus(prf, []byte("k"), []byte("s"), 255*prf.Size); err != nil {
		t.Errorf("255 iterations: %v", err)
	}
	if _, err := PRFPlus(prf, []byte("k"), []byte("s"), 255*prf.Size+1); err == nil {
		t.Error("256 iterations: no error")
	}
	if _, err := PRFPlus(prf, []byte("k"), []byte("s"), -1); err == nil {
		t.Error("negative length: no error")
	}
	if b, err := PRFPlus(prf, []byte("k"), []byte("s"), 0); err != nil || len(b) != 0 {
		t.Errorf("zero length: %x, %v", b, err)
	}
	// Each prefix of a longer output is the shorter output.
	long, _ := PRFPlus(prf, []byte("k"), []byte("s"), 100)
	for n := 0; n <= 100; n++ {
		short, _ := PRFPlus(prf, []byte("k"), []byte("s"), n)
		if !bytes.Equal(short, long[:n]) {
			t.Fatalf("prf+ of %d octets is not a prefix of prf+ of 100", n)
		}
	}
}

// suiteFor builds a suite from transform IDs; keyLen is in bits, 0 for none.
func suiteFor(proto wire.ProtocolID, encr wire.EncrID, keyLen uint16, prf wire.PRFID, integ wire.IntegID) algs.Suite {
	s := algs.Suite{
		Protocol: proto,
		Encr:     algs.Transform{Type: wire.TransformENCR, ID: uint16(encr), KeyLen: keyLen},
	}
	if prf != 0 {
		s.PRF = algs.Transform{Type: wire.TransformPRF, ID: uint16(prf)}
	}
	if integ != wire.AUTH_NONE {
		s.Integ = algs.Transform{Type: wire.TransformINTEG, ID: uint16(integ)}
	}
	return s
}

func TestDeriveIKEKeysLengths(t *testing.T) {
	tests := []struct {
		name    string
		s       algs.Suite
		d, a, e int
	}{
		{"aes128-sha256-prfsha256", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128), 32, 32, 16},
		{"aes256-sha512-prfsha384", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 256, wire.PRF_HMAC_SHA2_384, wire.AUTH_HMAC_SHA2_512_256), 48, 64, 32},
		{"aes256gcm16-prfsha256", suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 256, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE), 32, 0, 36},
		{"aes128gcm12-prfsha1", suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_12, 128, wire.PRF_HMAC_SHA1, wire.AUTH_NONE), 20, 0, 20},
		{"chacha20poly1305-prfsha512", suiteFor(wire.ProtoIKE, wire.ENCR_CHACHA20_POLY1305, 0, wire.PRF_HMAC_SHA2_512, wire.AUTH_NONE), 64, 0, 36},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DeriveIKEKeys(tt.s, []byte("skeyseed"), []byte("ni"), []byte("nr"), 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			lens := []int{len(k.SKd), len(k.SKai), len(k.SKar), len(k.SKei), len(k.SKer), len(k.SKpi), len(k.SKpr)}
			want := []int{tt.d, tt.a, tt.a, tt.e, tt.e, tt.d, tt.d}
			if fmt.Sprint(lens) != fmt.Sprint(want) {
				t.Errorf("key lengths %v, want %v", lens, want)
			}
			// Appending to one key must not overwrite the next.
			next := append([]byte{}, k.SKai...)
			_ = append(k.SKd, 0xff)
			if !bytes.Equal(k.SKai, next) {
				t.Error("append to SK_d overwrote SK_ai")
			}
			k.Zero()
			for _, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
				if !bytes.Equal(b, make([]byte, len(b))) {
					t.Fatal("Zero left key bytes")
				}
			}
		})
	}
}

func TestDeriveIKEKeysErrors(t *testing.T) {
	tests := []struct {
		name string
		s    algs.Suite
	}{
		{"no prf", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, 0, wire.AUTH_HMAC_SHA1_96)},
		{"unknown prf", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_MD5, wire.AUTH_HMAC_SHA1_96)},
		{"unknown encr", suiteFor(wire.ProtoIKE, wire.ENCR_3DES, 0, wire.PRF_HMAC_SHA1, wire.AUTH_HMAC_SHA1_96)},
		{"bad key length", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 64, wire.PRF_HMAC_SHA1, wire.AUTH_HMAC_SHA1_96)},
		{"missing key length", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 0, wire.PRF_HMAC_SHA1, wire.AUTH_HMAC_SHA1_96)},
		{"key length on chacha", suiteFor(wire.ProtoIKE, wire.ENCR_CHACHA20_POLY1305, 256, wire.PRF_HMAC_SHA1, wire.AUTH_NONE)},
		{"cbc without integ", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA1, wire.AUTH_NONE)},
		{"aead with integ", suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 128, wire.PRF_HMAC_SHA1, wire.AUTH_HMAC_SHA1_96)},
		{"unknown integ", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA1, wire.AUTH_AES_XCBC_96)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DeriveIKEKeys(tt.s, []byte("skeyseed"), []byte("ni"), []byte("nr"), 1, 2)
			if err == nil {
				t.Fatalf("no error; keys %v", k)
			}
			if !strings.HasPrefix(err.Error(), "keys: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestDeriveChildKeysOrder(t *testing.T) {
	// RFC 7296 2.17: encryption then integrity, initiator-to-responder
	// first; AEAD keys include the salt and have no integrity key.
	prf := algs.LookupPRF(wire.PRF_HMAC_SHA2_256)
	skd := bytes.Repeat([]byte{7}, 32)
	ni, nr := []byte("nonce-i"), []byte("nonce-r")
	for _, tt := range []struct {
		name string
		s    algs.Suite
		e, a int
	}{
		{"aes128-sha1", suiteFor(wire.ProtoESP, wire.ENCR_AES_CBC, 128, 0, wire.AUTH_HMAC_SHA1_96), 16, 20},
		{"aes256gcm16", suiteFor(wire.ProtoESP, wire.ENCR_AES_GCM_16, 256, 0, wire.AUTH_NONE), 36, 0},
		{"chacha20poly1305", suiteFor(wire.ProtoESP, wire.ENCR_CHACHA20_POLY1305, 0, 0, wire.AUTH_NONE), 36, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keymat, _ := PRFPlus(prf, skd, append(append([]byte{}, ni...), nr...), 2*(tt.e+tt.a))
			ck, err := DeriveChildKeys(prf, skd, tt.s, ni, nr)
			if err != nil {
				t.Fatal(err)
			}
			want := [][]byte{keymat[:tt.e], keymat[tt.e : tt.e+tt.a], keymat[tt.e+tt.a : 2*tt.e+tt.a], keymat[2*tt.e+tt.a:]}
			got := [][]byte{ck.EncrI, ck.IntegI, ck.EncrR, ck.IntegR}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("key %d: got %x, want %x", i, got[i], want[i])
				}
			}
			// RFC 9370 2.2.4: several shared secrets are concatenated in
			// order before the nonces.
			multi, err := DeriveChildKeys(prf, skd, tt.s, ni, nr, []byte("ss0"), []byte("ss1"))
			if err != nil {
				t.Fatal(err)
			}
			keymat, _ = PRFPlus(prf, skd, []byte("ss0ss1nonce-inonce-r"), 2*(tt.e+tt.a))
			if !bytes.Equal(multi.EncrI, keymat[:tt.e]) {
				t.Error("several shared secrets: keys differ from prf+(SK_d, SS0 | SS1 | Ni | Nr)")
			}
			ck.Zero()
			if !bytes.Equal(ck.EncrR, make([]byte, tt.e)) {
				t.Error("Zero left key bytes")
			}
		})
	}
}

// TestRedaction checks that no fmt verb or slog handler prints key bytes.
func TestRedaction(t *testing.T) {
	secret := bytes.Repeat([]byte{0xab}, 32)
	ik := &IKEKeys{SKd: secret, SKai: secret, SKar: secret, SKei: secret, SKer: secret, SKpi: secret, SKpr: secret}
	ck := &ChildKeys{EncrI: secret, IntegI: secret, EncrR: secret, IntegR: secret}
	hexSecret := hex.EncodeToString(secret[:4])
	for _, v := range []any{ik, *ik, ck, *ck} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(strings.ToLower(out), hexSecret) || strings.Contains(out, "171") || strings.Contains(out, "\xab") {
				t.Errorf("%s of %T leaks key bytes: %s", verb, v, out)
			}
		}
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("keys", "ike", ik, "ike_value", *ik, "child", ck, "child_value", *ck)
	}
	out := buf.String()
	if strings.Contains(strings.ToLower(out), hexSecret) || strings.Contains(out, "171") || strings.Contains(out, "q6ur") {
		t.Errorf("slog output leaks key bytes: %s", out)
	}
	if !strings.Contains(out, "sk_d_len=32") {
		t.Errorf("slog output lacks key lengths: %s", out)
	}
}
