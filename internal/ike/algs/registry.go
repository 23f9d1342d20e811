// Package algs is Cygnet's registry of IKEv2 and ESP transforms, keyed by their
// IANA transform IDs (RFC 7296 3.3.2): encryption (including the AEADs of
// RFC 5282 and RFC 7634), pseudorandom functions, integrity algorithms (RFC
// 4868), key exchange methods (RFC 3526, RFC 5903, RFC 8031, ML-KEM) and ESN.
// It also parses and prints proposals in strongSwan's syntax and selects a
// proposal from a peer's offer.
package algs

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// PRF describes a pseudorandom function transform (type 2).
type PRF struct {
	ID      wire.PRFID
	Keyword string // strongSwan keyword, e.g. "prfsha256"
	// Size is the PRF's output length in bytes.
	Size int
	// KeyLen is the preferred key length in bytes: the length of SK_d, SK_pi
	// and SK_pr (RFC 7296 2.13, 2.14). For the HMAC PRFs it is Size.
	KeyLen int
	hash   func() hash.Hash
}

// New returns the PRF keyed with key. Any key length is accepted (HMAC).
func (p *PRF) New(key []byte) hash.Hash { return hmac.New(p.hash, key) }

// Sum computes prf(key, data) in one call.
func (p *PRF) Sum(key []byte, data ...[]byte) []byte {
	h := p.New(key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

// Integ describes an integrity algorithm transform (type 3).
type Integ struct {
	ID      wire.IntegID
	Keyword string // strongSwan keyword, e.g. "sha256"
	// KeyLen is the key length in bytes (RFC 4868 2.1.1: the HMAC output size).
	KeyLen int
	// ICVLen is the length of the truncated output in bytes.
	ICVLen int
	// PRF is the PRF with the same hash, used when a proposal string names an
	// integrity keyword but no PRF (strongSwan maps one onto the other).
	PRF  wire.PRFID
	hash func() hash.Hash
}

// New returns the untruncated HMAC keyed with key; callers truncate the Sum
// to ICVLen bytes.
func (i *Integ) New(key []byte) hash.Hash { return hmac.New(i.hash, key) }

// Sum computes the integrity check value over data: the HMAC truncated to
// its leftmost ICVLen bytes (RFC 2404 2, RFC 4868 2.1.1).
func (i *Integ) Sum(key []byte, data ...[]byte) []byte {
	h := i.New(key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)[:i.ICVLen]
}

// Encr describes an encryption transform (type 1), with or without
// integrated authentication.
type Encr struct {
	ID wire.EncrID
	// Keyword is the strongSwan keyword: for fixed-length ciphers the
	// keyword itself ("chacha20poly1305"), for AES-CBC the stem the key
	// length in bits is appended to ("aes"), for AES-GCM a fmt format
	// taking it ("aes%dgcm16"). Name does the right thing for each.
	Keyword string
	// KeyLens lists the key lengths in bits that may be negotiated with the
	// Key Length attribute. It is nil for ciphers whose transform carries no
	// Key Length attribute (ChaCha20-Poly1305, RFC 7634 2).
	KeyLens []int
	// FixedKeyLen is the key length in bits when KeyLens is nil.
	FixedKeyLen int
	AEAD        bool
	// ICVLen is the length of the AEAD's integrity check value in bytes.
	ICVLen int
	// IVLen is the length of the explicit IV carried in each SK or ESP payload.
	IVLen int
	// BlockSize is the alignment the plaintext (with padding) must have.
	BlockSize int
	// SaltLen is the length of the salt appended to the key in the key
	// material (RFC 5282 7.1: 4 for GCM; RFC 7634 2: 4 for ChaCha20-Poly1305).
	SaltLen int
}

// Name returns the strongSwan keyword of e with a key of keyLenBits, e.g.
// "aes256gcm16"; keyLenBits is ignored for fixed-length ciphers.
func (e *Encr) Name(keyLenBits int) string {
	switch {
	case e.KeyLens == nil:
		return e.Keyword
	case strings.Contains(e.Keyword, "%d"):
		return fmt.Sprintf(e.Keyword, keyLenBits)
	}
	return e.Keyword + strconv.Itoa(keyLenBits)
}

// KeyMatLen returns how many bytes of key material a key of keyLenBits takes,
// salt included. keyLenBits is ignored for fixed-length ciphers.
func (e *Encr) KeyMatLen(keyLenBits int) int {
	if e.KeyLens == nil {
		keyLenBits = e.FixedKeyLen
	}
	return keyLenBits/8 + e.SaltLen
}

// ValidKeyLen reports whether keyLenBits may be negotiated for e; 0 means
// "no Key Length attribute", which is valid only for fixed-length ciphers.
func (e *Encr) ValidKeyLen(keyLenBits int) bool {
	if e.KeyLens == nil {
		return keyLenBits == 0
	}
	for _, k := range e.KeyLens {
		if k == keyLenBits {
			return true
		}
	}
	return false
}

// NewBlock returns the block cipher of a non-AEAD transform (AES-CBC).
func (e *Encr) NewBlock(key []byte) (cipher.Block, error) {
	if e.AEAD {
		return nil, fmt.Errorf("algs: encryption transform %d is an AEAD", e.ID)
	}
	switch e.ID {
	case wire.ENCR_AES_CBC:
		if !e.ValidKeyLen(len(key) * 8) {
			return nil, fmt.Errorf("algs: %d-byte key for AES-CBC", len(key))
		}
		return aes.NewCipher(key)
	}
	return nil, fmt.Errorf("algs: no block cipher for encryption transform %d", e.ID)
}

// NewAEAD returns the AEAD of an AEAD transform. keymat is the full key
// material including the trailing salt; the salt is returned separately
// because IKE and ESP build each nonce as salt || explicit IV (RFC 5282 4,
// RFC 4106 4, RFC 7634 2). The AEAD's Overhead is ICVLen and its NonceSize
// is 12 (salt and IV). The salt is a copy: keymat may be zeroed afterwards.
func (e *Encr) NewAEAD(keymat []byte) (aead cipher.AEAD, salt []byte, err error) {
	if !e.AEAD {
		return nil, nil, fmt.Errorf("algs: encryption transform %d is not an AEAD", e.ID)
	}
	if len(keymat) <= e.SaltLen {
		return nil, nil, errors.New("algs: AEAD key material too short")
	}
	key := keymat[:len(keymat)-e.SaltLen]
	salt = bytes.Clone(keymat[len(keymat)-e.SaltLen:])
	aead, err = newAEAD(e, key)
	if err != nil {
		return nil, nil, err
	}
	return aead, salt, nil
}

var prfs = []*PRF{
	{ID: wire.PRF_HMAC_SHA1, Keyword: "prfsha1", Size: 20, KeyLen: 20, hash: sha1.New},
	{ID: wire.PRF_HMAC_SHA2_256, Keyword: "prfsha256", Size: 32, KeyLen: 32, hash: sha256.New},
	{ID: wire.PRF_HMAC_SHA2_384, Keyword: "prfsha384", Size: 48, KeyLen: 48, hash: sha512.New384},
	{ID: wire.PRF_HMAC_SHA2_512, Keyword: "prfsha512", Size: 64, KeyLen: 64, hash: sha512.New},
}

var integs = []*Integ{
	{ID: wire.AUTH_HMAC_SHA1_96, Keyword: "sha1", KeyLen: 20, ICVLen: 12, PRF: wire.PRF_HMAC_SHA1, hash: sha1.New},
	{ID: wire.AUTH_HMAC_SHA2_256_128, Keyword: "sha256", KeyLen: 32, ICVLen: 16, PRF: wire.PRF_HMAC_SHA2_256, hash: sha256.New},
	{ID: wire.AUTH_HMAC_SHA2_384_192, Keyword: "sha384", KeyLen: 48, ICVLen: 24, PRF: wire.PRF_HMAC_SHA2_384, hash: sha512.New384},
	{ID: wire.AUTH_HMAC_SHA2_512_256, Keyword: "sha512", KeyLen: 64, ICVLen: 32, PRF: wire.PRF_HMAC_SHA2_512, hash: sha512.New},
}

var aesKeyLens = []int{128, 192, 256}

var encrs = []*Encr{
	{ID: wire.ENCR_AES_CBC, Keyword: "aes", KeyLens: aesKeyLens, IVLen: 16, BlockSize: 16},
	{ID: wire.ENCR_AES_GCM_8, Keyword: "aes%dgcm8", KeyLens: aesKeyLens, AEAD: true, ICVLen: 8, IVLen: 8, BlockSize: 4, SaltLen: 4},
	{ID: wire.ENCR_AES_GCM_12, Keyword: "aes%dgcm12", KeyLens: aesKeyLens, AEAD: true, ICVLen: 12, IVLen: 8, BlockSize: 4, SaltLen: 4},
	{ID: wire.ENCR_AES_GCM_16, Keyword: "aes%dgcm16", KeyLens: aesKeyLens, AEAD: true, ICVLen: 16, IVLen: 8, BlockSize: 4, SaltLen: 4},
	{ID: wire.ENCR_CHACHA20_POLY1305, Keyword: "chacha20poly1305", FixedKeyLen: 256, AEAD: true, ICVLen: 16, IVLen: 8, BlockSize: 4, SaltLen: 4},
}

// LookupPRF returns the PRF with the given ID, or nil if Cygnet has none.
func LookupPRF(id wire.PRFID) *PRF {
	for _, p := range prfs {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// LookupInteg returns the integrity algorithm with the given ID, or nil.
func LookupInteg(id wire.IntegID) *Integ {
	for _, i := range integs {
		if i.ID == id {
			return i
		}
	}
	return nil
}

// LookupEncr returns the encryption algorithm with the given ID, or nil.
func LookupEncr(id wire.EncrID) *Encr {
	for _, e := range encrs {
		if e.ID == id {
			return e
		}
	}
	return nil
}
