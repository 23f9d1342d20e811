package algs

import (
	"crypto/ecdh"
	"crypto/mlkem"
	cryptorand "crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// KEMethod describes a key exchange method (transform type 4, and types 6
// to 12 of RFC 9370): a Diffie-Hellman group or a KEM.
//
// Key exchange data is always a fixed-length byte string (RFC 7296 3.4):
// MODP values are left-padded with zeros to the length of the prime, ECP
// values are x | y (RFC 5903 7), X25519 values are 32 bytes (RFC 8031 2).
type KEMethod struct {
	ID      wire.KEID
	Keyword string // strongSwan keyword: "modp2048", "ecp256", "x25519", "mlkem768"
	// PublicLen is the length of the initiator's KE data.
	PublicLen int
	// ResponseLen is the length of the responder's KE data. It differs from
	// PublicLen for KEMs: the initiator sends an ML-KEM encapsulation key,
	// the responder a ciphertext.
	ResponseLen int
	// SecretLen is the length of the shared secret.
	SecretLen int
	// KEM is set for key encapsulation mechanisms (ML-KEM), where the
	// responder encapsulates to the initiator's key instead of generating
	// a key share of its own.
	KEM  bool
	impl keImpl
}

func (m *KEMethod) String() string { return m.Keyword }

// KeyExchange is the initiator's side of a key exchange: a fresh ephemeral
// private key. It is not safe for concurrent use.
type KeyExchange interface {
	// Method returns the key exchange method.
	Method() *KEMethod
	// Public returns our KE payload data, exactly Method().PublicLen bytes.
	Public() []byte
	// SharedSecret computes the shared secret from the responder's KE data
	// (Method().ResponseLen bytes). Invalid peer data gives an error that
	// wraps ErrInvalidKEData.
	SharedSecret(peer []byte) ([]byte, error)
	// Destroy zeroes the private key as far as Go lets us (the big.Int
	// exponent and the seeds we hold; crypto/ecdh and crypto/mlkem keep
	// their own copies, which are dropped for the garbage collector).
	// SharedSecret fails after Destroy.
	Destroy()
}

// ErrInvalidKEData is wrapped by every error about a peer's KE data: wrong
// length, a value out of range, a point not on the curve, a low-order
// X25519 point, an invalid ML-KEM key or ciphertext.
var ErrInvalidKEData = errors.New("algs: invalid key exchange data")

var errDestroyed = errors.New("algs: key exchange already destroyed")

// Generate starts a key exchange as initiator with a fresh ephemeral key
// drawn from rand (crypto/rand.Reader if nil). The private key is derived
// from rand's output directly, so a deterministic rand gives deterministic
// keys in tests.
func (m *KEMethod) Generate(rand io.Reader) (KeyExchange, error) {
	if m.impl == nil {
		return nil, fmt.Errorf("algs: key exchange method %d is not implemented", m.ID)
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	return m.impl.generate(m, rand)
}

// Respond is the responder's side: given the initiator's KE data it
// returns our KE data (ResponseLen bytes) and the shared secret. For a
// Diffie-Hellman group it generates an ephemeral key from rand and combines
// it with the peer's; for ML-KEM it encapsulates to the peer's key (with
// crypto/mlkem's own randomness: Go offers no seeded encapsulation outside
// of tests, so rand is not used).
func (m *KEMethod) Respond(rand io.Reader, peer []byte) (public, secret []byte, err error) {
	if m.impl == nil {
		return nil, nil, fmt.Errorf("algs: key exchange method %d is not implemented", m.ID)
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	return m.impl.respond(m, rand, peer)
}

type keImpl interface {
	generate(m *KEMethod, rand io.Reader) (KeyExchange, error)
	respond(m *KEMethod, rand io.Reader, peer []byte) (public, secret []byte, err error)
	// fromPrivate builds the initiator's side from a given private key:
	// the exponent (MODP), scalar (ECP, X25519) or seed (ML-KEM). For
	// known-answer tests.
	fromPrivate(m *KEMethod, priv []byte) (KeyExchange, error)
}

// respondDH is Respond for Diffie-Hellman groups: generate, then combine.
// The peer's value is checked for its length first, so that garbage costs
// no key generation.
func respondDH(m *KEMethod, rand io.Reader, peer []byte) (public, secret []byte, err error) {
	if len(peer) != m.PublicLen {
		return nil, nil, invalidLen(m, len(peer), m.PublicLen)
	}
	kex, err := m.impl.generate(m, rand)
	if err != nil {
		return nil, nil, err
	}
	defer kex.Destroy()
	secret, err = kex.SharedSecret(peer)
	if err != nil {
		return nil, nil, err
	}
	return kex.Public(), secret, nil
}

func invalidLen(m *KEMethod, got, want int) error {
	return fmt.Errorf("%w: %s value of %d bytes, want %d", ErrInvalidKEData, m.Keyword, got, want)
}

// MODP groups (RFC 3526), computed with math/big.
//
// The private exponent is as long as RFC 3526 section 8's larger
// ("Strength Estimate 2") exponent size, rounded up to whole bytes: 320
// bits for group 14, 424 for 15, 480 for 16, 544 for 17, 624 for 18.
// strongSwan by default draws exponents as long as the prime
// (dh_exponent_ansi_x9_42); the shorter exponent is what RFC 3526 says is
// sufficient and keeps a 2048-bit exchange cheap. Note that math/big is not
// constant-time; prefer the elliptic-curve groups.
type modpGroup struct {
	p, g     *big.Int
	pMinus1  *big.Int
	size     int // bytes
	expBytes int
}

func newMODPGroup(hexP string, expBits int) *modpGroup {
	p, ok := new(big.Int).SetString(hexP, 16)
	if !ok {
		panic("algs: bad MODP prime")
	}
	return &modpGroup{
		p:        p,
		g:        big.NewInt(2),
		pMinus1:  new(big.Int).Sub(p, big.NewInt(1)),
		size:     (p.BitLen() + 7) / 8,
		expBytes: (expBits + 7) / 8,
	}
}

func (grp *modpGroup) generate(m *KEMethod, rand io.Reader) (KeyExchange, error) {
	buf := make([]byte, grp.expBytes)
	defer clear(buf)
	for range 100 {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("algs: reading randomness: %w", err)
		}
		kex, err := grp.fromPrivate(m, buf)
		if err == nil {
			return kex, nil
		}
	}
	return nil, errors.New("algs: cannot draw a MODP exponent from the random source")
}

func (grp *modpGroup) fromPrivate(m *KEMethod, priv []byte) (KeyExchange, error) {
	x := new(big.Int).SetBytes(priv)
	// 1 < x < p-1; x = 0 or 1 would make the public value 1 or g.
	if x.Cmp(big.NewInt(1)) <= 0 || x.Cmp(grp.pMinus1) >= 0 {
		return nil, errors.New("algs: MODP exponent out of range")
	}
	y := new(big.Int).Exp(grp.g, x, grp.p)
	// RFC 7296 3.4: the KE data is padded with zeros to the prime's length.
	return &modpKE{m: m, grp: grp, x: x, pub: y.FillBytes(make([]byte, grp.size))}, nil
}

func (grp *modpGroup) respond(m *KEMethod, rand io.Reader, peer []byte) ([]byte, []byte, error) {
	if len(peer) == grp.size && !grp.inRange(peer) {
		return nil, nil, fmt.Errorf("%w: %s public value out of range", ErrInvalidKEData, m.Keyword)
	}
	return respondDH(m, rand, peer)
}

// inRange reports whether a peer's public value y satisfies 1 < y < p-1:
// 0, 1 and p-1 generate subgroups of order 1 and 2, and values >= p are
// not reduced (NIST SP 800-56A 5.6.2.3.1, RFC 2785 3).
func (grp *modpGroup) inRange(peer []byte) bool {
	y := new(big.Int).SetBytes(peer)
	return y.Cmp(big.NewInt(1)) > 0 && y.Cmp(grp.pMinus1) < 0
}

type modpKE struct {
	m   *KEMethod
	grp *modpGroup
	x   *big.Int
	pub []byte
}

func (k *modpKE) Method() *KEMethod { return k.m }
func (k *modpKE) Public() []byte    { return k.pub }

func (k *modpKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.x == nil {
		return nil, errDestroyed
	}
	if len(peer) != k.grp.size {
		return nil, invalidLen(k.m, len(peer), k.grp.size)
	}
	if !k.grp.inRange(peer) {
		return nil, fmt.Errorf("%w: %s public value out of range", ErrInvalidKEData, k.m.Keyword)
	}
	z := new(big.Int).Exp(new(big.Int).SetBytes(peer), k.x, k.grp.p)
	defer clear(z.Bits())
	if z.Cmp(big.NewInt(1)) <= 0 {
		return nil, fmt.Errorf("%w: %s shared secret is degenerate", ErrInvalidKEData, k.m.Keyword)
	}
	// RFC 7296 2.14: g^ir is as long as the prime, with leading zeros.
	return z.FillBytes(make([]byte, k.grp.size)), nil
}

func (k *modpKE) Destroy() {
	if k.x != nil {
		clear(k.x.Bits())
		k.x = nil
	}
}

// Elliptic-curve groups over NIST curves (RFC 5903) and Curve25519 (RFC
// 8031), via crypto/ecdh.
type ecGroup struct {
	curve     ecdh.Curve
	scalarLen int
	// topMask clears the excess high bits of a drawn scalar (P-521's 66
	// bytes carry 521 bits), so that rejection sampling rarely rejects.
	topMask byte
	// nist: KE data is x | y without the 0x04 prefix (RFC 5903 7), and
	// the shared secret is the x coordinate (RFC 5903 9, crypto/ecdh).
	nist bool
}

func (grp *ecGroup) generate(m *KEMethod, rand io.Reader) (KeyExchange, error) {
	buf := make([]byte, grp.scalarLen)
	defer clear(buf)
	// Rejection sampling: NewPrivateKey refuses zero and scalars not below
	// the group order (FIPS 186-5 A.4.2). For X25519 every string is a
	// valid scalar (RFC 7748 5 clamps it).
	for range 100 {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("algs: reading randomness: %w", err)
		}
		buf[0] &= grp.topMask
		kex, err := grp.fromPrivate(m, buf)
		if err == nil {
			return kex, nil
		}
	}
	return nil, errors.New("algs: cannot draw an EC scalar from the random source")
}

func (grp *ecGroup) fromPrivate(m *KEMethod, priv []byte) (KeyExchange, error) {
	key, err := grp.curve.NewPrivateKey(priv)
	if err != nil {
		return nil, errors.New("algs: invalid EC private key")
	}
	pub := key.PublicKey().Bytes()
	if grp.nist {
		pub = pub[1:] // drop the uncompressed-point prefix 0x04
	}
	return &ecKE{m: m, grp: grp, key: key, pub: pub}, nil
}

func (grp *ecGroup) respond(m *KEMethod, rand io.Reader, peer []byte) ([]byte, []byte, error) {
	return respondDH(m, rand, peer)
}

type ecKE struct {
	m   *KEMethod
	grp *ecGroup
	key *ecdh.PrivateKey
	pub []byte
}

func (k *ecKE) Method() *KEMethod { return k.m }
func (k *ecKE) Public() []byte    { return k.pub }

func (k *ecKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.key == nil {
		return nil, errDestroyed
	}
	if len(peer) != k.m.ResponseLen {
		return nil, invalidLen(k.m, len(peer), k.m.ResponseLen)
	}
	enc := peer
	if k.grp.nist {
		// RFC 5903 7: x | y; crypto/ecdh wants SEC 1's uncompressed form
		// and checks that the point is on the curve (RFC 5903 9 requires
		// the check; a point off the curve is an invalid-curve attack).
		enc = make([]byte, 1+len(peer))
		enc[0] = 4
		copy(enc[1:], peer)
	}
	pk, err := k.grp.curve.NewPublicKey(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s public value is not a valid point", ErrInvalidKEData, k.m.Keyword)
	}
	secret, err := k.key.ECDH(pk)
	if err != nil {
		// X25519: a low-order point gives the all-zero value, which
		// crypto/ecdh refuses.
		return nil, fmt.Errorf("%w: %s key agreement failed", ErrInvalidKEData, k.m.Keyword)
	}
	// RFC 8031 2: reject an all-zero X25519 result. (On a NIST curve an
	// x coordinate of zero is a valid point.)
	if !k.grp.nist && subtle.ConstantTimeCompare(secret, make([]byte, len(secret))) == 1 {
		return nil, fmt.Errorf("%w: %s shared secret is all zero", ErrInvalidKEData, k.m.Keyword)
	}
	return secret, nil
}

func (k *ecKE) Destroy() { k.key = nil }

// ML-KEM (FIPS 203) as an IKEv2 key exchange (draft-ietf-ipsecme-ikev2-mlkem):
// the initiator's KE data is its encapsulation key, the responder's the
// ciphertext; the shared secret is the 32-byte ML-KEM shared key. Go's
// crypto/mlkem offers ML-KEM-768 and ML-KEM-1024 only, so ML-KEM-512 is not
// supported.
type mlkemKEM struct {
	newDK func(seed []byte) (decapsulator, []byte, error) // key and encapsulation key bytes
	encap func(ek []byte) (secret, ct []byte, err error)
}

type decapsulator interface {
	Decapsulate(ciphertext []byte) ([]byte, error)
}

func (kem *mlkemKEM) generate(m *KEMethod, rand io.Reader) (KeyExchange, error) {
	seed := make([]byte, mlkem.SeedSize)
	defer clear(seed)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("algs: reading randomness: %w", err)
	}
	return kem.fromPrivate(m, seed)
}

func (kem *mlkemKEM) fromPrivate(m *KEMethod, seed []byte) (KeyExchange, error) {
	dk, ek, err := kem.newDK(seed)
	if err != nil {
		return nil, errors.New("algs: invalid ML-KEM seed")
	}
	return &mlkemKE{m: m, dk: dk, pub: ek}, nil
}

func (kem *mlkemKEM) respond(m *KEMethod, _ io.Reader, peer []byte) ([]byte, []byte, error) {
	if len(peer) != m.PublicLen {
		return nil, nil, invalidLen(m, len(peer), m.PublicLen)
	}
	secret, ct, err := kem.encap(peer)
	if err != nil {
		// FIPS 203 7.2: the encapsulation key failed the modulus check.
		return nil, nil, fmt.Errorf("%w: %s encapsulation key is invalid", ErrInvalidKEData, m.Keyword)
	}
	return ct, secret, nil
}

type mlkemKE struct {
	m   *KEMethod
	dk  decapsulator
	pub []byte
}

func (k *mlkemKE) Method() *KEMethod { return k.m }
func (k *mlkemKE) Public() []byte    { return k.pub }

func (k *mlkemKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.dk == nil {
		return nil, errDestroyed
	}
	if len(peer) != k.m.ResponseLen {
		return nil, invalidLen(k.m, len(peer), k.m.ResponseLen)
	}
	// Decapsulation of a well-formed ciphertext never fails: a forged one
	// yields an unrelated key (implicit rejection, FIPS 203 6.3), and the
	// exchange then fails at AUTH.
	secret, err := k.dk.Decapsulate(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s ciphertext rejected", ErrInvalidKEData, k.m.Keyword)
	}
	return secret, nil
}

func (k *mlkemKE) Destroy() { k.dk = nil }

var mlkem768 = &mlkemKEM{
	newDK: func(seed []byte) (decapsulator, []byte, error) {
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			return nil, nil, err
		}
		return dk, dk.EncapsulationKey().Bytes(), nil
	},
	encap: func(ek []byte) ([]byte, []byte, error) {
		k, err := mlkem.NewEncapsulationKey768(ek)
		if err != nil {
			return nil, nil, err
		}
		secret, ct := k.Encapsulate()
		return secret, ct, nil
	},
}

var mlkem1024 = &mlkemKEM{
	newDK: func(seed []byte) (decapsulator, []byte, error) {
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			return nil, nil, err
		}
		return dk, dk.EncapsulationKey().Bytes(), nil
	},
	encap: func(ek []byte) ([]byte, []byte, error) {
		k, err := mlkem.NewEncapsulationKey1024(ek)
		if err != nil {
			return nil, nil, err
		}
		secret, ct := k.Encapsulate()
		return secret, ct, nil
	},
}

func modpMethod(id wire.KEID, keyword, hexP string, expBits int) *KEMethod {
	grp := newMODPGroup(hexP, expBits)
	return &KEMethod{ID: id, Keyword: keyword, PublicLen: grp.size, ResponseLen: grp.size, SecretLen: grp.size, impl: grp}
}

func ecpMethod(id wire.KEID, keyword string, curve ecdh.Curve, coordLen int, topMask byte) *KEMethod {
	return &KEMethod{ID: id, Keyword: keyword, PublicLen: 2 * coordLen, ResponseLen: 2 * coordLen, SecretLen: coordLen,
		impl: &ecGroup{curve: curve, scalarLen: coordLen, topMask: topMask, nist: true}}
}

// keMethods is in the order of Cygnet's preference for defaults.
var keMethods = []*KEMethod{
	{ID: wire.KE_CURVE25519, Keyword: "x25519", PublicLen: 32, ResponseLen: 32, SecretLen: 32,
		impl: &ecGroup{curve: ecdh.X25519(), scalarLen: 32, topMask: 0xff}},
	ecpMethod(wire.KE_ECP256, "ecp256", ecdh.P256(), 32, 0xff),
	ecpMethod(wire.KE_ECP384, "ecp384", ecdh.P384(), 48, 0xff),
	ecpMethod(wire.KE_ECP521, "ecp521", ecdh.P521(), 66, 0x01),
	modpMethod(wire.KE_MODP2048, "modp2048", modp2048P, 320),
	modpMethod(wire.KE_MODP3072, "modp3072", modp3072P, 424),
	modpMethod(wire.KE_MODP4096, "modp4096", modp4096P, 480),
	modpMethod(wire.KE_MODP6144, "modp6144", modp6144P, 544),
	modpMethod(wire.KE_MODP8192, "modp8192", modp8192P, 624),
	{ID: wire.KE_MLKEM768, Keyword: "mlkem768", PublicLen: mlkem.EncapsulationKeySize768,
		ResponseLen: mlkem.CiphertextSize768, SecretLen: mlkem.SharedKeySize, KEM: true, impl: mlkem768},
	{ID: wire.KE_MLKEM1024, Keyword: "mlkem1024", PublicLen: mlkem.EncapsulationKeySize1024,
		ResponseLen: mlkem.CiphertextSize1024, SecretLen: mlkem.SharedKeySize, KEM: true, impl: mlkem1024},
}

// LookupKE returns the key exchange method with the given ID, or nil if
// Cygnet has none (including KE_NONE).
func LookupKE(id wire.KEID) *KEMethod {
	for _, m := range keMethods {
		if m.ID == id {
			return m
		}
	}
	return nil
}
