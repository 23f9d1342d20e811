package algs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
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

// gcm8 is AES-GCM with an 8-octet ICV (RFC 4106 and RFC 5282: ENCR_AES_GCM_8).
// Go's cipher.NewGCMWithTagSize refuses tags shorter than 12 octets, so it is
// built on the standard 16-octet GCM: the ICV is the leftmost 8 octets of the
// full tag (NIST SP 800-38D 5.2.1.2, MSB_t). Seal truncates the full tag;
// Open decrypts with the GCM keystream (AES-CTR starting at inc32(J0)) and
// then recomputes the full tag over the received ciphertext by sealing the
// recovered plaintext again, comparing its first 8 octets in constant time.
//
// Only 12-octet nonces are supported, which is what IKE and ESP use (4-octet
// salt and 8-octet IV, RFC 5282 4 and RFC 4106 4).
type gcm8 struct {
	block cipher.Block
	full  cipher.AEAD
}

func newGCM8(block cipher.Block) (cipher.AEAD, error) {
	full, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &gcm8{block: block, full: full}, nil
}

func (g *gcm8) NonceSize() int { return gcmNonceSize }
func (g *gcm8) Overhead() int  { return gcm8TagSize }

func (g *gcm8) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != gcmNonceSize {
		panic("algs: incorrect nonce length given to AES-GCM-8")
	}
	n := len(plaintext)
	ret, out := sliceForAppend(dst, n+gcm8TagSize)
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
	ct, tag := ciphertext[:n], ciphertext[n:]
	ret, out := sliceForAppend(dst, n)

	// GCM encrypts with AES-CTR from inc32(J0); for a 96-bit IV,
	// J0 = IV || 0^31 || 1 (SP 800-38D 7.1), so the first counter block is
	// IV || 00000002. Copy the tag first: out may overlap ciphertext.
	var icv [gcm8TagSize]byte
	copy(icv[:], tag)
	var ctr [aes.BlockSize]byte
	copy(ctr[:], nonce)
	binary.BigEndian.PutUint32(ctr[gcmNonceSize:], 2)
	cipher.NewCTR(g.block, ctr[:]).XORKeyStream(out, ct)

	// Sealing the recovered plaintext reproduces the received ciphertext
	// and yields the full tag over it.
	resealed := g.full.Seal(make([]byte, 0, n+gcmTagSize), nonce, out, additionalData)
	if subtle.ConstantTimeCompare(resealed[n:n+gcm8TagSize], icv[:]) != 1 {
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

// sliceForAppend extends in by n bytes, reusing its capacity when it can,
// and returns the whole slice and the n new bytes (as crypto/cipher does).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
