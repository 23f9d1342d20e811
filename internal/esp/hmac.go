package esp

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"fmt"
	"hash"
	"sync"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// The HMAC of AES-CBC SAs. crypto/hmac's hash.Hash is stateful, so an SA
// would need one per concurrent worker (a per-SA sync.Pool: memory that a
// million SAs cannot afford). Instead each SA keeps only the marshaled hash
// states after absorbing key^ipad and key^opad (RFC 2104 2), and each packet
// restores them into an unkeyed hash taken from a global pool. This is what
// crypto/hmac's Reset does internally, so it costs no more.

type hashKind uint8

const (
	hashSHA1 hashKind = iota
	hashSHA256
	hashSHA384
	hashSHA512
	numHashKinds
)

var hashNew = [numHashKinds]func() hash.Hash{sha1.New, sha256.New, sha512.New384, sha512.New}

type stateHash interface {
	hash.Hash
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

type hmacKey struct {
	kind         hashKind
	icvLen       int
	inner, outer []byte // marshaled states after key^ipad, key^opad
}

// newHMACKey keys an integrity transform. RFC 4868 2.1.1 and RFC 2404 3: the
// key is exactly the hash's output size; the ICV is its left half (RFC 4868
// 2.1.2) or 96 bits for SHA-1 (RFC 2404 2).
func newHMACKey(id wire.IntegID, key []byte) (*hmacKey, error) {
	var kind hashKind
	var keyLen, icvLen int
	switch id {
	case wire.AUTH_HMAC_SHA1_96:
		kind, keyLen, icvLen = hashSHA1, 20, 12
	case wire.AUTH_HMAC_SHA2_256_128:
		kind, keyLen, icvLen = hashSHA256, 32, 16
	case wire.AUTH_HMAC_SHA2_384_192:
		kind, keyLen, icvLen = hashSHA384, 48, 24
	case wire.AUTH_HMAC_SHA2_512_256:
		kind, keyLen, icvLen = hashSHA512, 64, 32
	case wire.AUTH_NONE:
		return nil, fmt.Errorf("esp: AES-CBC needs an integrity transform")
	default:
		return nil, fmt.Errorf("esp: unsupported integrity transform %d", id)
	}
	if len(key) != keyLen {
		return nil, fmt.Errorf("esp: integrity key is %d bytes, want %d", len(key), keyLen)
	}
	k := &hmacKey{kind: kind, icvLen: icvLen}
	var err error
	if k.inner, err = padState(kind, key, 0x36); err != nil {
		return nil, err
	}
	if k.outer, err = padState(kind, key, 0x5c); err != nil {
		return nil, err
	}
	return k, nil
}

// padState returns the marshaled state of the hash after absorbing the
// block-sized key XOR pad (RFC 2104 2).
func padState(kind hashKind, key []byte, pad byte) ([]byte, error) {
	h, ok := hashNew[kind]().(stateHash)
	if !ok {
		return nil, fmt.Errorf("esp: hash %d cannot save its state", kind)
	}
	if len(key) > h.BlockSize() {
		// RFC 2104 2: longer keys are hashed first (not reachable with the
		// key sizes above, kept for correctness).
		h.Write(key)
		key = h.Sum(nil)
		h.Reset()
	}
	block := make([]byte, h.BlockSize())
	copy(block, key)
	for i := range block {
		block[i] ^= pad
	}
	h.Write(block)
	clear(block)
	return h.MarshalBinary()
}

// scratch is per-packet working memory. Go moves any array whose slice is
// passed to an interface method (cipher.AEAD.Seal, hash.Hash.Write) to the
// heap, so nonces and AADs built on the stack would cost two allocations per
// packet; a pooled scratch costs none.
type scratch struct {
	nonce  [12]byte
	aad    [12]byte
	esnHi  [4]byte
	inner  [sha512.Size]byte
	sum    [sha512.Size]byte
	hashes [numHashKinds]stateHash
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch  { return scratchPool.Get().(*scratch) }
func putScratch(s *scratch) { scratchPool.Put(s) }

// mac computes the untruncated HMAC of data | extra (extra carries the ESN
// high-order bits, RFC 4303 2.2.1, or is nil) into s.sum. It returns nil
// only if a saved state fails to restore, which the states made by padState
// never do; callers then fail closed.
func (k *hmacKey) mac(s *scratch, data, extra []byte) []byte {
	h := s.hashes[k.kind]
	if h == nil {
		h = hashNew[k.kind]().(stateHash) // checked by padState
		s.hashes[k.kind] = h
	}
	if h.UnmarshalBinary(k.inner) != nil {
		return nil
	}
	h.Write(data)
	if extra != nil {
		h.Write(extra)
	}
	in := h.Sum(s.inner[:0])
	if h.UnmarshalBinary(k.outer) != nil {
		return nil
	}
	h.Write(in)
	return h.Sum(s.sum[:0])
}
