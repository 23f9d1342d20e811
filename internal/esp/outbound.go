package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// Sequence number limits (RFC 4303 3.3.3: the counter never cycles; the SA
// must be rekeyed before it would).
const (
	// Without ESN the last usable sequence number is 2^32-1.
	seqHardLimit32 = math.MaxUint32
	// With ESN it would be 2^64-1. The counter is an atomic.Uint64 that a
	// Seal increments before it knows whether the space is exhausted, so a
	// few racing Seals may step past the limit; stopping 2^32 short of 2^64
	// keeps that from ever wrapping the counter to 0 (Seal stops adding once
	// it sees the limit, so the overshoot is bounded by the number of
	// concurrent callers). Nobody sends 2^64 - 2^32 packets.
	seqHardLimit64 = math.MaxUint64 - math.MaxUint32
)

// softLimit is where SeqSoftLimitReached turns true: 7/8 of the space. For
// 32-bit sequence numbers that leaves 2^29 (about 537 million) packets to
// finish a CHILD_SA rekey: nine minutes at a million packets per second.
func softLimit(hard uint64) uint64 { return hard - hard/8 }

// Outbound protects packets for one outbound SA. It is safe for concurrent
// use.
type Outbound struct {
	s     *suite
	spi   uint32
	esn   bool
	mode  Mode
	hard  uint64
	soft  uint64
	ivKey cipher.Block // AES-CBC only: IV = AES(ivKey, seq), see newIVKey

	_ cpu.CacheLinePad // keep the read-only fields above off the hot line

	seq       atomic.Uint64 // the last sequence number taken
	packets   atomic.Uint64
	bytes     atomic.Uint64
	exhausted atomic.Uint64

	_ cpu.CacheLinePad
}

// NewOutbound returns the outbound half of the SA described by c.
func NewOutbound(c Config) (*Outbound, error) {
	s, err := newSuite(&c)
	if err != nil {
		return nil, err
	}
	o := &Outbound{s: s, spi: c.SPI, esn: c.ESN, mode: c.Mode, hard: seqHardLimit32}
	if c.ESN {
		o.hard = seqHardLimit64
	}
	o.soft = softLimit(o.hard)
	if s.block != nil {
		if o.ivKey, err = newIVKey(c.randReader()); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// newIVKey returns the key that generates AES-CBC IVs. RFC 3602 2.4 (and
// RFC 4303 3.3.2) requires each CBC IV to be unpredictable to an attacker.
// Each IV is the encryption of the packet's unique 64-bit sequence number
// under an AES key of its own, drawn from crypto/rand when the SA is made:
// NIST SP 800-38A Appendix C's method of encrypting a nonce, with a separate
// key. The IVs are distinct (AES is a permutation and sequence numbers never
// repeat) and unpredictable without that key, and each costs one AES block
// operation with no lock and no state beyond the atomic counter Seal takes
// anyway; a per-SA CSPRNG would need a lock or per-worker state.
func newIVKey(r io.Reader) (cipher.Block, error) {
	var k [16]byte
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return nil, fmt.Errorf("esp: reading IV key: %w", err)
	}
	b, err := aes.NewCipher(k[:])
	clear(k[:])
	return b, err
}

// SPI returns the SA's SPI.
func (o *Outbound) SPI() uint32 { return o.spi }

// SealedLen returns the length of the ESP packet that Seal makes of an
// n-byte payload. Seal does not allocate when cap(dst)-len(dst) is at least
// that (plus 8 with ENCR_AES_GCM_8, whose full 16-octet GCM tag is written
// before being cut to 8).
func (o *Outbound) SealedLen(n int) int { return o.s.sealedLen(n) }

// PayloadOffset returns where the payload starts in the packets Seal makes:
// after SPI, sequence number and IV.
func (o *Outbound) PayloadOffset() int { return headerLen + o.s.ivLen }

// Seq returns the last sequence number used (0 before the first packet).
func (o *Outbound) Seq() uint64 { return min(o.seq.Load(), o.hard) }

// SeqSoftLimitReached reports that the sequence number space is nearly used
// up: the SA should be rekeyed now, before Seal starts failing with
// ErrSequenceExhausted.
func (o *Outbound) SeqSoftLimitReached() bool { return o.seq.Load() >= o.soft }

// Seal appends to dst the ESP packet (RFC 4303 2: SPI | Sequence Number |
// IV | encrypted(payload | padding | pad length | next header) | ICV) that
// carries payload with the given next header, and returns the updated
// slice. In tunnel mode payload is a whole IPv4 or IPv6 packet and
// nextHeader ProtoIPv4 or ProtoIPv6 (see TunnelNextHeader); ProtoNone with
// any payload makes a dummy packet (RFC 4303 2.6).
//
// Each call takes the next sequence number atomically. When the sequence
// number space is exhausted Seal returns dst and ErrSequenceExhausted, and
// keeps doing so: it never wraps. payload may lie in dst's spare capacity;
// placed at dst[len(dst)+PayloadOffset():] it is encrypted in place.
func (o *Outbound) Seal(dst, payload []byte, nextHeader uint8) ([]byte, error) {
	if !allowedInMode(o.mode, nextHeader) {
		return dst, ErrNextHeader
	}
	// The Load keeps failing calls from incrementing the counter without
	// bound (see seqHardLimit64); the Add decides.
	if o.seq.Load() >= o.hard {
		o.exhausted.Add(1)
		return dst, ErrSequenceExhausted
	}
	seq := o.seq.Add(1)
	if seq > o.hard {
		o.exhausted.Add(1)
		return dst, ErrSequenceExhausted
	}
	out, err := o.seal(dst, payload, nextHeader, seq, nil)
	if err != nil {
		return dst, err
	}
	o.packets.Add(1)
	o.bytes.Add(uint64(len(payload)))
	return out, nil
}

var errMAC = errors.New("esp: internal error computing the ICV")

// seal builds the packet with sequence number seq. iv overrides the IV for
// known-answer tests; nil derives it from seq.
func (o *Outbound) seal(dst, payload []byte, nextHeader uint8, seq uint64, iv []byte) ([]byte, error) {
	s := o.s
	n := len(payload)
	// RFC 4303 2.4: pad so that payload | padding | pad length | next header
	// is a multiple of the cipher's block size (4 for the AEADs, whose
	// ciphertext must still end on a 4-octet boundary). The minimum padding
	// is used; no TFC padding (RFC 4303 2.7).
	padded := (n + 2 + s.align - 1) &^ (s.align - 1)
	padLen := padded - n - 2
	total := headerLen + s.ivLen + padded + s.icvLen
	// With room past the packet for the AEAD to seal in place.
	head := slices.Grow(dst, total+s.sealRoom)[:len(dst)+total]
	pkt := head[len(dst):]
	body := pkt[headerLen+s.ivLen : headerLen+s.ivLen+padded]
	// Copy first: payload may overlap pkt anywhere (copy is a memmove).
	copy(body, payload)
	// RFC 4303 2.4: the padding bytes are 1, 2, 3, ...
	for i := range padLen {
		body[n+i] = byte(i + 1)
	}
	body[padded-2] = byte(padLen)
	body[padded-1] = nextHeader
	if err := o.protect(pkt[:total], seq, iv); err != nil {
		return dst, err
	}
	return head, nil
}

// protect fills in SPI and sequence number, IV and ICV of pkt, a packet of
// exactly the SA's layout whose plaintext is in place, and encrypts it (with
// sealRoom bytes of spare capacity).
func (o *Outbound) protect(pkt []byte, seq uint64, iv []byte) error {
	s := o.s
	binary.BigEndian.PutUint32(pkt[0:4], o.spi)
	// RFC 4303 2.2.1: with ESN only the low-order 32 bits are sent.
	binary.BigEndian.PutUint32(pkt[4:8], uint32(seq))
	ivb := pkt[headerLen : headerLen+s.ivLen]
	body := pkt[headerLen+s.ivLen : len(pkt)-s.icvLen]

	sc := getScratch()
	defer putScratch(sc)
	if s.aead != nil {
		// RFC 4106 3.1 and RFC 7634 2: the 8-octet IV only has to be unique
		// per key; the 64-bit sequence number is, and costs nothing.
		if iv != nil {
			copy(ivb, iv)
		} else {
			binary.BigEndian.PutUint64(ivb, seq)
		}
		// RFC 4106 4, RFC 7634 2: nonce = salt | IV.
		copy(sc.nonce[:4], s.salt[:])
		copy(sc.nonce[4:], ivb)
		s.aead.Seal(body[:0], sc.nonce[:], body, o.aad(sc, pkt, seq))
		return nil
	}

	// AES-CBC, RFC 3602.
	if iv != nil {
		copy(ivb, iv)
	} else {
		binary.BigEndian.PutUint64(ivb[0:8], seq)
		clear(ivb[8:])
		o.ivKey.Encrypt(ivb, ivb)
	}
	cbcEncrypt(s.block, ivb, body)
	if s.mac != nil {
		// RFC 4303 2.8 and 3.3.4: the ICV covers SPI | Seq | IV | ciphertext,
		// and with ESN the high-order 32 bits of the sequence number appended
		// for the computation only (RFC 4303 2.2.1).
		var hi []byte
		if o.esn {
			binary.BigEndian.PutUint32(sc.esnHi[:], uint32(seq>>32))
			hi = sc.esnHi[:]
		}
		icvAt := len(pkt) - s.icvLen
		sum := s.mac.mac(sc, pkt[:icvAt], hi)
		if sum == nil {
			return errMAC
		}
		// RFC 4868 2.1.2, RFC 2404 2: the ICV is the truncated HMAC.
		copy(pkt[icvAt:], sum)
	}
	return nil
}

// aad returns the AEAD's additional authenticated data: SPI | Seq, the
// packet's first 8 octets, or with ESN SPI | Seq high | Seq low (RFC 4106 5,
// RFC 7634 3).
func (o *Outbound) aad(sc *scratch, pkt []byte, seq uint64) []byte {
	if !o.esn {
		return pkt[:headerLen]
	}
	return esnAAD(sc, o.spi, seq)
}

func esnAAD(sc *scratch, spi uint32, seq uint64) []byte {
	binary.BigEndian.PutUint32(sc.aad[0:4], spi)
	binary.BigEndian.PutUint64(sc.aad[4:12], seq)
	return sc.aad[:12]
}

// cbcEncrypt encrypts buf in place in CBC mode. Go's own CBC mode is the
// same block-by-block loop on amd64 and arm64, but it holds the IV as state
// and would have to be allocated or pooled per packet.
func cbcEncrypt(b cipher.Block, iv, buf []byte) {
	prev := iv
	for i := 0; i < len(buf); i += aes.BlockSize {
		blk := buf[i : i+aes.BlockSize]
		xor16(blk, prev)
		b.Encrypt(blk, blk)
		prev = blk
	}
}

// xor16 sets dst[:16] ^= src[:16]; it inlines, unlike subtle.XORBytes,
// which matters once per block.
func xor16(dst, src []byte) {
	_, _ = dst[15], src[15]
	binary.LittleEndian.PutUint64(dst[0:], binary.LittleEndian.Uint64(dst[0:])^binary.LittleEndian.Uint64(src[0:]))
	binary.LittleEndian.PutUint64(dst[8:], binary.LittleEndian.Uint64(dst[8:])^binary.LittleEndian.Uint64(src[8:]))
}

// cbcDecrypt decrypts src into dst, which must not overlap. CBC decryption
// has no chain: each block is D(c[i]) ^ c[i-1], so it decrypts all blocks
// (independent AES operations the CPU overlaps) and then XORs in one pass.
func cbcDecrypt(b cipher.Block, iv, dst, src []byte) {
	for i := 0; i < len(src); i += aes.BlockSize {
		b.Decrypt(dst[i:i+aes.BlockSize], src[i:i+aes.BlockSize])
	}
	xor16(dst, iv)
	subtle.XORBytes(dst[aes.BlockSize:len(src)], dst[aes.BlockSize:len(src)], src[:len(src)-aes.BlockSize])
}

// OutboundCounters is a snapshot of an Outbound's counters.
type OutboundCounters struct {
	Packets   uint64 // packets sealed
	Bytes     uint64 // payload (inner packet) bytes sealed
	Exhausted uint64 // Seal calls refused with ErrSequenceExhausted
}

// Counters returns the SA's counters; each is read atomically.
func (o *Outbound) Counters() OutboundCounters {
	return OutboundCounters{
		Packets:   o.packets.Load(),
		Bytes:     o.bytes.Load(),
		Exhausted: o.exhausted.Load(),
	}
}
