// Package esp is the packet-processing core of Cygnet's userspace data plane:
// the IP Encapsulating Security Payload of RFC 4303 for one Security
// Association in each direction, with Extended Sequence Numbers (RFC 4303
// 2.2.1 and Appendix A), an RFC 6479-style anti-replay bitmap, and the
// transforms AES-GCM (RFC 4106), ChaCha20-Poly1305 (RFC 7634) and AES-CBC
// (RFC 3602) with HMAC-SHA-1-96 (RFC 2404) or HMAC-SHA-2 (RFC 4868).
//
// The package does no I/O. An Outbound turns an inner packet into an ESP
// payload (the bytes that follow the outer IP or UDP header, starting at the
// SPI) and an Inbound turns one back, for one SA each. Both are safe for
// concurrent use by many crypto workers: the outbound sequence number is
// taken atomically, the inbound replay window is checked without a lock
// before decryption and updated under a short mutex after the ICV verifies.
// Neither allocates per packet when dst has the capacity (see SealedLen and
// Open).
package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Mode is the IPsec mode of an SA (RFC 4301 4.1).
type Mode uint8

const (
	// Tunnel: the ESP payload is a whole inner IP packet, next header 4
	// (IPv4) or 41 (IPv6).
	Tunnel Mode = iota
	// Transport: the ESP payload is the transport payload of the packet
	// whose IP header precedes ESP (see SplitTransport and JoinTransport).
	Transport
)

func (m Mode) String() string {
	switch m {
	case Tunnel:
		return "tunnel"
	case Transport:
		return "transport"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Next header values (IANA protocol numbers) that this package treats
// specially.
const (
	ProtoIPv4 = 4  // IP-in-IP: a tunnel-mode IPv4 inner packet
	ProtoIPv6 = 41 // a tunnel-mode IPv6 inner packet
	ProtoESP  = 50
	// ProtoNone is "no next header": RFC 4303 2.6 uses it for dummy packets,
	// which the receiver discards silently.
	ProtoNone = 59
)

// DefaultReplayWindow is the replay window, in packets, used when
// Config.ReplayWindow is 0.
const DefaultReplayWindow = 1024

// MaxReplayWindow bounds Config.ReplayWindow (a 128 KiB bitmap). RFC 4303
// Appendix A2 assumes at most 2^31.
const MaxReplayWindow = 1 << 20

// Config describes one ESP SA in one direction: what the IKE engine
// negotiated (RFC 7296 3.3) and derived (RFC 7296 2.17).
type Config struct {
	SPI uint32
	// Mode decides which next headers Seal and Open accept: in Tunnel mode
	// only ProtoIPv4, ProtoIPv6 and ProtoNone.
	Mode Mode

	Encr wire.EncrID
	// EncrKeyLen is the negotiated Key Length attribute in bits: 128, 192 or
	// 256 for AES; 0 or 256 for ChaCha20-Poly1305 (RFC 7634 2: no attribute).
	EncrKeyLen int
	// EncrKey is the encryption key, followed for the AEADs by the 4-octet
	// salt (RFC 4106 8.1, RFC 7634 2): EncrKeyLen/8 (+4) bytes.
	EncrKey []byte

	// Integ is AUTH_NONE with the AEADs (RFC 7296 3.3: an AEAD proposal has
	// no integrity transform) and one of the HMACs with AES-CBC.
	Integ    wire.IntegID
	IntegKey []byte

	// ESN enables 64-bit Extended Sequence Numbers (RFC 4303 2.2.1, RFC 4304).
	ESN bool

	// ReplayWindow is the anti-replay window in packets, inbound only: 0
	// means DefaultReplayWindow; other values are rounded up to a multiple
	// of 64, at most MaxReplayWindow.
	ReplayWindow int

	// Rand is the source of the secret key that generates AES-CBC IVs
	// (outbound only); nil means crypto/rand.
	Rand io.Reader

	// allowNoInteg permits AES-CBC without integrity. Confidentiality-only
	// ESP (RFC 4303 3.2) is open to active attacks and Cygnet never
	// negotiates it; the flag exists only so that the RFC 3602 known-answer
	// packets, which carry no ICV, can be tested.
	allowNoInteg bool
}

// String describes c without its keys.
func (c Config) String() string {
	return fmt.Sprintf("esp SA spi=%08x %s encr=%d/%d integ=%d esn=%t", c.SPI, c.Mode, c.Encr, c.EncrKeyLen, c.Integ, c.ESN)
}

// LogValue keeps keys out of logs (DESIGN.md: secrets never reach a log line).
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("spi", fmt.Sprintf("%08x", c.SPI)),
		slog.String("mode", c.Mode.String()),
		slog.Int("encr", int(c.Encr)),
		slog.Int("encr_keylen", c.EncrKeyLen),
		slog.Int("integ", int(c.Integ)),
		slog.Bool("esn", c.ESN),
	)
}

// Errors. Open and Seal return exactly these values (compare with ==
// or errors.Is), so that a caller can count drops by reason; the SA's
// counters already count them.
var (
	// ErrSequenceExhausted: the outbound sequence number space is used up
	// (RFC 4303 3.3.3: the counter must not cycle); the SA must be rekeyed.
	ErrSequenceExhausted = errors.New("esp: sequence number space exhausted, SA needs rekeying")
	// ErrTruncated: the packet is shorter than the transform's minimum, or
	// its ciphertext is not a whole number of cipher blocks.
	ErrTruncated = errors.New("esp: packet truncated or misaligned")
	// ErrSPI: the packet's SPI is not this SA's.
	ErrSPI = errors.New("esp: SPI does not match the SA")
	// ErrReplay: the sequence number is a duplicate, older than the replay
	// window, or invalid (RFC 4303 3.4.3).
	ErrReplay = errors.New("esp: replayed or out-of-window sequence number")
	// ErrAuth: the ICV did not verify (RFC 4303 3.4.4).
	ErrAuth = errors.New("esp: integrity check failed")
	// ErrPadding: the pad length overruns the plaintext or the padding is not
	// 1, 2, 3, ... (RFC 4303 2.4).
	ErrPadding = errors.New("esp: invalid padding")
	// ErrNextHeader: a next header that the SA's mode does not carry (a
	// tunnel-mode SA carries only IPv4, IPv6 and dummy packets).
	ErrNextHeader = errors.New("esp: next header not allowed in this mode")
	// ErrDummy: an authentic dummy packet (next header 59, RFC 4303 2.6);
	// drop it silently.
	ErrDummy = errors.New("esp: dummy packet")
)

// suite holds an SA's keyed transform. Everything in it is read-only after
// construction and safe for concurrent use: cipher.AEAD and cipher.Block
// values hold only expanded keys, and the HMAC is kept as marshaled states
// that each packet restores into a pooled hash.
type suite struct {
	aead cipher.AEAD // AES-GCM or ChaCha20-Poly1305 (algs); nil for AES-CBC
	// sealRoom and openRoom are the spare capacity past their output that
	// aead's Seal and Open need so as not to allocate: AES-GCM-8 works with
	// the full 16-octet GCM tag (algs.GCM8Tailroom past the plaintext), 8
	// octets past a sealed packet and 16 past an opened payload; 0 for
	// the others.
	sealRoom, openRoom int
	salt               [4]byte      // AEAD nonce prefix (RFC 4106 4, RFC 7634 2)
	block              cipher.Block // AES-CBC
	mac                *hmacKey     // AES-CBC's integrity; nil only in tests

	ivLen  int // explicit IV in each packet
	icvLen int
	align  int // RFC 4303 2.4: (payload | padding | 2) is a multiple of this
}

// headerLen is SPI | Sequence Number (RFC 4303 2).
const headerLen = 8

func newSuite(c *Config) (*suite, error) {
	if c.Mode != Tunnel && c.Mode != Transport {
		return nil, fmt.Errorf("esp: unknown mode %d", c.Mode)
	}
	s := new(suite)
	var keyLen int // bits, without salt
	switch c.Encr {
	case wire.ENCR_AES_CBC, wire.ENCR_AES_GCM_8, wire.ENCR_AES_GCM_12, wire.ENCR_AES_GCM_16:
		if c.EncrKeyLen != 128 && c.EncrKeyLen != 192 && c.EncrKeyLen != 256 {
			return nil, fmt.Errorf("esp: AES key length %d bits", c.EncrKeyLen)
		}
		keyLen = c.EncrKeyLen
	case wire.ENCR_CHACHA20_POLY1305:
		// RFC 7634 2: the transform has no Key Length attribute; accept the
		// implied 256 as well.
		if c.EncrKeyLen != 0 && c.EncrKeyLen != 256 {
			return nil, fmt.Errorf("esp: ChaCha20-Poly1305 key length %d bits", c.EncrKeyLen)
		}
		keyLen = 256
	default:
		return nil, fmt.Errorf("esp: unsupported encryption transform %d", c.Encr)
	}

	if c.Encr == wire.ENCR_AES_CBC {
		if len(c.EncrKey) != keyLen/8 {
			return nil, fmt.Errorf("esp: AES-CBC key is %d bytes, want %d", len(c.EncrKey), keyLen/8)
		}
		block, err := aes.NewCipher(c.EncrKey)
		if err != nil {
			return nil, fmt.Errorf("esp: %w", err)
		}
		s.block = block
		s.ivLen, s.align = aes.BlockSize, aes.BlockSize // RFC 3602 3
		if c.Integ == wire.AUTH_NONE && c.allowNoInteg {
			return s, nil
		}
		mac, err := newHMACKey(c.Integ, c.IntegKey)
		if err != nil {
			return nil, err
		}
		s.mac = mac
		s.icvLen = mac.icvLen
		return s, nil
	}

	// The AEADs: key | salt.
	if c.Integ != wire.AUTH_NONE {
		return nil, fmt.Errorf("esp: integrity transform %d with an AEAD", c.Integ)
	}
	if len(c.EncrKey) != keyLen/8+len(s.salt) {
		return nil, fmt.Errorf("esp: AEAD key material is %d bytes, want %d (key and 4-byte salt)", len(c.EncrKey), keyLen/8+len(s.salt))
	}
	// The same AEADs as IKE's SK payloads (RFC 5282 and RFC 4106 share
	// the transforms), AES-GCM-8 included.
	e := algs.LookupEncr(c.Encr)
	aead, salt, err := e.NewAEAD(c.EncrKey)
	if err != nil {
		return nil, fmt.Errorf("esp: %w", err)
	}
	s.aead = aead
	copy(s.salt[:], salt)
	s.ivLen, s.align, s.icvLen = e.IVLen, e.BlockSize, e.ICVLen // RFC 4106 3.1, RFC 7634 2; RFC 4303 2.4
	if c.Encr == wire.ENCR_AES_GCM_8 {
		s.sealRoom, s.openRoom = algs.GCM8Tailroom-e.ICVLen, algs.GCM8Tailroom
	}
	return s, nil
}

// sealedLen returns the ESP packet length for an n-byte payload.
func (s *suite) sealedLen(n int) int {
	padded := (n + 2 + s.align - 1) &^ (s.align - 1)
	return headerLen + s.ivLen + padded + s.icvLen
}

// randReader returns c.Rand or crypto/rand.
func (c *Config) randReader() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

// allowedInMode reports whether next header nh may be carried by an SA in
// mode m. RFC 4303 2.6 and RFC 4301 4.1: a tunnel carries IP packets (and
// dummy packets); transport mode carries any upper-layer protocol.
func allowedInMode(m Mode, nh uint8) bool {
	if m != Tunnel {
		return true
	}
	return nh == ProtoIPv4 || nh == ProtoIPv6 || nh == ProtoNone
}
