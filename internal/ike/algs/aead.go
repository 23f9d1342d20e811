package algs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// newAEAD builds the AEAD for e from the key without its salt.
func newAEAD(e *Encr, key []byte) (cipher.AEAD, error) {
	switch e.ID {
	case wire.ENCR_AES_GCM_8, wire.ENCR_AES_GCM_12, wire.ENCR_AES_GCM_16:
		if !e.ValidKeyLen(len(key) * 8) {
			return nil, fmt.Errorf("algs: %d-byte key for AES-GCM", len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		if e.ICVLen == gcm8TagSize {
			return newGCM8(block)
		}
		return cipher.NewGCMWithTagSize(block, e.ICVLen)
	case wire.ENCR_CHACHA20_POLY1305:
		if len(key) != chacha20poly1305.KeySize {
			return nil, fmt.Errorf("algs: %d-byte key for ChaCha20-Poly1305", len(key))
		}
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("algs: no AEAD for encryption transform %d", e.ID)
}

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
	gcm8TagSize  = 8
)

var errOpen = errors.New("algs: message authentication failed")

// gcm8 is AES-GCM with an 8-octet ICV (RFC 4106 and RFC 5282: ENCR_AES_GCM_8),
// for IKE and ESP alike. Go's cipher.NewGCMWithTagSize refuses tags shorter
// than 12 octets, so it is built on the standard 16-octet GCM: the ICV is
// the leftmost 8 octets of the full tag (NIST SP 800-38D 5.2.1.2, MSB_t).
//
// GCM encrypts with AES-CTR, ciphertext = plaintext XOR keystream, so the
// full GCM's Seal also serves as raw decryption. Seal seals with the full
// tag and cuts it; Open decrypts the ciphertext, seals the result again
// (which reproduces the ciphertext and yields the full tag over it),
// compares the tag's first 8 octets with the ICV in constant time, and
// only then decrypts for the caller, so that unauthenticated plaintext
// never outlives the check. Neither allocates when dst has spare capacity
// for the plaintext and a full tag (cap(dst)-len(dst) >= plaintext + 16:
// the ESP data path's case); the bytes past the result that this uses are
// restored. Otherwise they work in a fresh buffer.
//
// Only 12-octet nonces are supported, which is what IKE and ESP use (4-octet
// salt and 8-octet IV, RFC 5282 4 and RFC 4106 4).
type gcm8 struct {
	full cipher.AEAD
}

// GCM8Tailroom is the spare capacity, past the plaintext, that the
// ENCR_AES_GCM_8 AEAD's Seal and Open need in dst so as not to allocate:
// room for the full GCM tag.
const GCM8Tailroom = gcmTagSize

func newGCM8(block cipher.Block) (cipher.AEAD, error) {
	full, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &gcm8{full: full}, nil
}

func (g *gcm8) NonceSize() int { return gcmNonceSize }
func (g *gcm8) Overhead() int  { return gcm8TagSize }

func (g *gcm8) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != gcmNonceSize {
		panic("algs: incorrect nonce length given to AES-GCM-8")
	}
	n := len(plaintext)
	ret := slices.Grow(dst, n+gcm8TagSize)[:len(dst)+n+gcm8TagSize]
	out := ret[len(dst):]
	if cap(out) >= n+gcmTagSize &&
		!anyOverlap(out[n:n+gcmTagSize], plaintext) &&
		!anyOverlap(out[n:n+gcmTagSize], additionalData) {
		// Room for the full tag after our output: seal in place (plaintext
		// may be out[:n] exactly, which GCM allows), then restore the 8
		// octets past the end of our result that the full tag overwrote.
		var saved [gcm8TagSize]byte
		spill := out[n+gcm8TagSize : n+gcmTagSize]
		copy(saved[:], spill)
		g.full.Seal(out[:0], nonce, plaintext, additionalData)
		copy(spill, saved[:])
		return ret
	}
	sealed := g.full.Seal(make([]byte, 0, n+gcmTagSize), nonce, plaintext, additionalData)
	copy(out, sealed[:n+gcm8TagSize])
	return ret
}

func (g *gcm8) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != gcmNonceSize {
		return nil, errors.New("algs: incorrect nonce length given to AES-GCM-8")
	}
	if len(ciphertext) < gcm8TagSize {
		return nil, errOpen
	}
	n := len(ciphertext) - gcm8TagSize
	ct := ciphertext[:n]
	// Copy the ICV first: out may overlap ciphertext.
	var icv [gcm8TagSize]byte
	copy(icv[:], ciphertext[n:])
	ret := slices.Grow(dst, n)[:len(dst)+n]
	out := ret[len(dst):]

	// work holds n octets and the full tag: out itself when it has the
	// room and GCM accepts it (exactly in place, or apart from the
	// ciphertext; never on the additional data), else a fresh buffer.
	useOut := false
	if cap(out) >= n+gcmTagSize {
		w := out[:n+gcmTagSize]
		inPlace := &w[0] == &ciphertext[0]
		useOut = (inPlace || !anyOverlap(w, ciphertext)) && !anyOverlap(w, additionalData)
	}
	var work []byte
	var saved [gcmTagSize]byte
	if useOut {
		work = out[:n+gcmTagSize]
		copy(saved[:], work[n:])
	} else {
		work = make([]byte, n+gcmTagSize)
	}
	g.full.Seal(work[:0], nonce, ct, additionalData) // work[:n] = plaintext
	full := g.full.Seal(work[:0], nonce, work[:n], additionalData)
	ok := subtle.ConstantTimeCompare(full[n:n+gcm8TagSize], icv[:]) == 1
	if ok {
		g.full.Seal(work[:0], nonce, work[:n], additionalData) // plaintext again
	}
	if useOut {
		copy(work[n:], saved[:])
	} else {
		if ok {
			copy(out, work[:n])
		}
		clear(work)
	}
	if !ok {
		clear(out)
		return nil, errOpen
	}
	return ret, nil
}

// anyOverlap reports whether x and y share memory.
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}
