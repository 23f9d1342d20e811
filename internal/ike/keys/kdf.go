// Package keys is Cygnet's IKEv2 key schedule and message protection: prf+,
// SKEYSEED and the SK_* keys (RFC 7296 2.13, 2.14, 2.18), CHILD_SA key
// material (RFC 7296 2.17), the octets that AUTH covers (RFC 7296 2.15), the
// Encrypted (SK) payload with CBC+HMAC (RFC 7296 3.14) and AEAD ciphers (RFC
// 5282, RFC 7634), IKE message fragmentation (RFC 7383, SKF payloads), and
// Wireshark key-log records for debugging.
//
// Nothing in this package logs, and no error it returns contains key
// material. Key types redact themselves in fmt and log/slog output.
package keys

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// maxPRFPlusIterations is the limit of RFC 7296 2.13: the counter appended
// to each round is one octet, so prf+ yields at most 255 PRF outputs.
const maxPRFPlusIterations = 255

// PRFPlus computes n octets of prf+(key, seed) (RFC 7296 2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	...
//
// It fails if n octets need more than 255 iterations.
func PRFPlus(prf *algs.PRF, key, seed []byte, n int) ([]byte, error) {
	if prf == nil {
		return nil, errors.New("keys: no PRF")
	}
	if n < 0 {
		return nil, fmt.Errorf("keys: prf+ of negative length %d", n)
	}
	iterations := (n + prf.Size - 1) / prf.Size
	if iterations > maxPRFPlusIterations {
		// RFC 7296 2.13: "this function is not defined beyond 255 times
		// the size of the prf function output".
		return nil, fmt.Errorf("keys: prf+ of %d octets needs %d iterations (at most %d)", n, iterations, maxPRFPlusIterations)
	}
	out := make([]byte, 0, iterations*prf.Size)
	h := prf.New(key)
	var t []byte
	var counter [1]byte
	for i := 1; i <= iterations; i++ {
		h.Reset()
		h.Write(t)
		h.Write(seed)
		counter[0] = byte(i)
		h.Write(counter[:])
		start := len(out)
		out = h.Sum(out)
		t = out[start:]
	}
	return out[:n], nil
}

// SKEYSEED computes SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296
// 2.14). The nonces are used whole as the PRF key: every PRF Cygnet supports
// is an HMAC, which takes keys of any length (the fixed-key-length rule of
// 2.14 applies only to PRFs such as AES128-XCBC).
func SKEYSEED(prf *algs.PRF, ni, nr, sharedSecret []byte) []byte {
	key := make([]byte, 0, len(ni)+len(nr))
	key = append(key, ni...)
	key = append(key, nr...)
	out := prf.Sum(key, sharedSecret)
	clear(key)
	return out
}

// RekeySKEYSEED computes the SKEYSEED of an IKE SA that replaces one whose
// SK_d is oldSKd (RFC 7296 2.18):
//
//	SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
//
// With several key exchanges (RFC 9370 2.2.4) each shared secret is passed in
// the order of the exchanges and they are concatenated before the nonces:
// prf(SK_d, SK(0) | SK(1) | ... | Ni | Nr). The same function computes RFC
// 9370 2.2.2's SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr) after each
// IKE_INTERMEDIATE (or IKE_FOLLOWUP_KE) key exchange.
//
// The argument order differs from SKEYSEED so that the shared secrets can be
// variadic; the nonces are Ni and Nr of the exchange that created the new SA.
func RekeySKEYSEED(prf *algs.PRF, oldSKd, ni, nr []byte, sharedSecrets ...[]byte) []byte {
	h := prf.New(oldSKd)
	for _, s := range sharedSecrets {
		h.Write(s)
	}
	h.Write(ni)
	h.Write(nr)
	return h.Sum(nil)
}

// IKEKeys are the seven secrets of an IKE SA (RFC 7296 2.14). Their fmt and
// slog forms are redacted; Zero wipes them when the SA dies.
type IKEKeys struct {
	SKd  []byte // derives CHILD_SA keys and rekeyed IKE SAs
	SKai []byte // integrity, initiator to responder; empty with an AEAD
	SKar []byte // integrity, responder to initiator; empty with an AEAD
	SKei []byte // encryption, initiator to responder; AEADs: key | salt
	SKer []byte // encryption, responder to initiator; AEADs: key | salt
	SKpi []byte // AUTH of the initiator (RFC 7296 2.15)
	SKpr []byte // AUTH of the responder
}

// suiteAlgs resolves the PRF, integrity and encryption descriptors of an IKE
// or ESP suite and checks that they fit together: an AEAD has no integrity
// algorithm (RFC 5282, RFC 7296 3.3.3), a plain cipher must have one, and
// the key length is one the cipher allows.
func suiteAlgs(s algs.Suite, wantPRF bool) (*algs.PRF, *algs.Integ, *algs.Encr, int, error) {
	var prf *algs.PRF
	if wantPRF {
		switch prf = s.PRFAlg(); {
		case s.PRF.Type == 0:
			return nil, nil, nil, 0, errors.New("keys: suite has no PRF")
		case prf == nil:
			return nil, nil, nil, 0, fmt.Errorf("keys: unsupported PRF %d", s.PRF.ID)
		}
	}
	encr := s.EncrAlg()
	switch {
	case s.Encr.Type == 0:
		return nil, nil, nil, 0, errors.New("keys: suite has no encryption algorithm")
	case encr == nil:
		return nil, nil, nil, 0, fmt.Errorf("keys: unsupported encryption algorithm %d", s.Encr.ID)
	}
	keyLen := int(s.Encr.KeyLen)
	if !encr.ValidKeyLen(keyLen) {
		return nil, nil, nil, 0, fmt.Errorf("keys: invalid key length %d for %s", keyLen, encrName(encr, keyLen))
	}
	integ := s.IntegAlg()
	switch {
	case encr.AEAD && (integ != nil || s.Integ.Type != 0 && s.Integ.ID != uint16(wire.AUTH_NONE)):
		return nil, nil, nil, 0, fmt.Errorf("keys: %s is an AEAD but integrity algorithm %d is set", encrName(encr, keyLen), s.Integ.ID)
	case !encr.AEAD && integ == nil:
		return nil, nil, nil, 0, fmt.Errorf("keys: %s needs an integrity algorithm (got %d)", encrName(encr, keyLen), s.Integ.ID)
	}
	return prf, integ, encr, keyLen, nil
}

// encrName names an encryption algorithm for error messages.
func encrName(e *algs.Encr, keyLenBits int) string {
	if e.KeyLens == nil {
		return e.Keyword
	}
	if e.AEAD {
		return fmt.Sprintf(e.Keyword, keyLenBits)
	}
	return fmt.Sprintf("%s%d", e.Keyword, keyLenBits)
}

// DeriveIKEKeys derives the keys of a new IKE SA from its SKEYSEED (RFC 7296
// 2.14):
//
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//	                = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
//
// SK_d, SK_pi and SK_pr are the PRF's preferred key length, SK_a* the
// integrity key length (none with an AEAD), and SK_e* the cipher key plus,
// for AEADs, its salt (RFC 5282 7.1, RFC 7634 2).
func DeriveIKEKeys(s algs.Suite, skeyseed, ni, nr []byte, spii, spir uint64) (*IKEKeys, error) {
	prf, integ, encr, keyLen, err := suiteAlgs(s, true)
	if err != nil {
		return nil, err
	}
	aLen := 0
	if integ != nil {
		aLen = integ.KeyLen
	}
	eLen := encr.KeyMatLen(keyLen)
	pLen := prf.KeyLen

	seed := make([]byte, 0, len(ni)+len(nr)+16)
	seed = append(seed, ni...)
	seed = append(seed, nr...)
	seed = appendUint64(seed, spii)
	seed = appendUint64(seed, spir)
	km, err := PRFPlus(prf, skeyseed, seed, 3*pLen+2*aLen+2*eLen)
	if err != nil {
		return nil, err
	}
	take := keyCutter(km)
	return &IKEKeys{
		SKd:  take(pLen),
		SKai: take(aLen),
		SKar: take(aLen),
		SKei: take(eLen),
		SKer: take(eLen),
		SKpi: take(pLen),
		SKpr: take(pLen),
	}, nil
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// keyCutter returns a function that cuts the next n octets off km (RFC 7296
// 2.14, 2.17: the keys are taken from KEYMAT in order). The keys share km's
// backing array; full slice expressions keep an append to one from
// overwriting the next.
func keyCutter(km []byte) func(n int) []byte {
	return func(n int) []byte {
		k := km[:n:n]
		km = km[n:]
		return k
	}
}

// Zero overwrites every key with zeros. Call it when the IKE SA is deleted
// or replaced.
func (k *IKEKeys) Zero() {
	if k == nil {
		return
	}
	for _, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
		clear(b)
	}
}

// LogValue implements slog.LogValuer: it gives the key lengths, never the
// keys.
func (k IKEKeys) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("sk_d_len", len(k.SKd)),
		slog.Int("sk_a_len", len(k.SKai)),
		slog.Int("sk_e_len", len(k.SKei)),
		slog.Int("sk_p_len", len(k.SKpi)),
	)
}

// Format implements fmt.Formatter so that no verb prints key bytes.
func (k IKEKeys) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "keys.IKEKeys{redacted: SK_d %d, SK_a %d, SK_e %d, SK_p %d octets}",
		len(k.SKd), len(k.SKai), len(k.SKei), len(k.SKpi))
}

// ChildKeys are the keys of a CHILD_SA pair (RFC 7296 2.17). "I" keys protect
// traffic from the initiator of the exchange that created the CHILD_SA (which
// after a rekey need not be the IKE SA's original initiator) to its
// responder; "R" keys the other direction. AEAD encryption keys end with
// their salt; integrity keys are empty with an AEAD.
type ChildKeys struct {
	EncrI, IntegI []byte // initiator to responder
	EncrR, IntegR []byte // responder to initiator
}

// DeriveChildKeys derives the key material of a CHILD_SA (RFC 7296 2.17):
//
//	KEYMAT = prf+(SK_d, Ni | Nr)                  without PFS
//	KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)     with PFS
//
// taken in the order: initiator-to-responder encryption key, then its
// integrity key, then the same for responder-to-initiator. Ni and Nr are the
// nonces of the exchange that creates the CHILD_SA (for the first one, those
// of IKE_SA_INIT). sharedSecrets are the new key exchanges' shared secrets,
// none without PFS; with RFC 9370 additional key exchanges, pass them all in
// order and they are concatenated before the nonces (RFC 9370 2.2.4).
func DeriveChildKeys(prf *algs.PRF, skd []byte, s algs.Suite, ni, nr []byte, sharedSecrets ...[]byte) (*ChildKeys, error) {
	if prf == nil {
		return nil, errors.New("keys: no PRF")
	}
	_, integ, encr, keyLen, err := suiteAlgs(s, false)
	if err != nil {
		return nil, err
	}
	aLen := 0
	if integ != nil {
		aLen = integ.KeyLen
	}
	eLen := encr.KeyMatLen(keyLen)

	n := len(ni) + len(nr)
	for _, ss := range sharedSecrets {
		n += len(ss)
	}
	seed := make([]byte, 0, n)
	for _, ss := range sharedSecrets {
		seed = append(seed, ss...)
	}
	seed = append(seed, ni...)
	seed = append(seed, nr...)
	km, err := PRFPlus(prf, skd, seed, 2*eLen+2*aLen)
	clear(seed) // holds the shared secrets
	if err != nil {
		return nil, err
	}
	take := keyCutter(km)
	return &ChildKeys{
		EncrI:  take(eLen),
		IntegI: take(aLen),
		EncrR:  take(eLen),
		IntegR: take(aLen),
	}, nil
}

// Zero overwrites every key with zeros.
func (k *ChildKeys) Zero() {
	if k == nil {
		return
	}
	for _, b := range [][]byte{k.EncrI, k.IntegI, k.EncrR, k.IntegR} {
		clear(b)
	}
}

// LogValue implements slog.LogValuer: lengths only.
func (k ChildKeys) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("encr_len", len(k.EncrI)),
		slog.Int("integ_len", len(k.IntegI)),
	)
}

// Format implements fmt.Formatter so that no verb prints key bytes.
func (k ChildKeys) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "keys.ChildKeys{redacted: encr %d, integ %d octets}", len(k.EncrI), len(k.IntegI))
}
