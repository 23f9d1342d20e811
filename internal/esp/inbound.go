package esp

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// Inbound verifies and decrypts packets for one inbound SA. It is safe for
// concurrent use.
type Inbound struct {
	s    *suite
	spi  uint32
	esn  bool
	mode Mode
	w    *replayWindow

	_ cpu.CacheLinePad

	packets    atomic.Uint64
	bytes      atomic.Uint64
	replay     atomic.Uint64
	auth       atomic.Uint64
	truncated  atomic.Uint64
	padding    atomic.Uint64
	spiDrops   atomic.Uint64
	nextHeader atomic.Uint64
	dummy      atomic.Uint64

	_ cpu.CacheLinePad
}

// NewInbound returns the inbound half of the SA described by c.
func NewInbound(c Config) (*Inbound, error) {
	s, err := newSuite(&c)
	if err != nil {
		return nil, err
	}
	if c.ReplayWindow < 0 || c.ReplayWindow > MaxReplayWindow {
		return nil, errReplayWindow
	}
	return &Inbound{s: s, spi: c.SPI, esn: c.ESN, mode: c.Mode, w: newReplayWindow(c.ReplayWindow)}, nil
}

var errReplayWindow = fmt.Errorf("esp: replay window out of range (0 to %d packets)", MaxReplayWindow)

// SPI returns the SA's SPI.
func (in *Inbound) SPI() uint32 { return in.spi }

// LastSeq returns the highest sequence number received and authenticated
// so far (the top of the replay window; 0 before the first packet).
func (in *Inbound) LastSeq() uint64 { return in.w.top.Load() }

// ReplayWindow returns the replay window in packets.
func (in *Inbound) ReplayWindow() int { return int(in.w.size) }

// Open verifies and decrypts one ESP packet (starting at the SPI, RFC 4303
// 3.4), appends the inner payload to dst and returns the updated slice with
// the packet's next header. In tunnel mode the payload is an IP packet,
// possibly followed by TFC padding (RFC 4303 2.7) that the caller trims by
// the IP length.
//
// The order is RFC 4303 3.4's: SPI, then the replay check (3.4.3) before
// any cryptography, then the ICV (3.4.4), then decryption and the padding
// check (2.4); the replay window moves only for packets that pass all of
// them. With ESN the high-order half of the sequence number is inferred by
// RFC 4303 Appendix A.
//
// Failures return dst, 0 and one of ErrTruncated, ErrSPI, ErrReplay,
// ErrAuth, ErrPadding or ErrNextHeader, each also counted; an authentic
// dummy packet returns ErrDummy (and next header ProtoNone), to be dropped
// silently. dst must not overlap packet; Open does not allocate when
// cap(dst)-len(dst) >= len(packet), and may overwrite that much of dst's
// spare capacity even when it fails.
func (in *Inbound) Open(dst, packet []byte) ([]byte, uint8, error) {
	s := in.s
	if len(packet) < headerLen {
		in.truncated.Add(1)
		return dst, 0, ErrTruncated
	}
	// RFC 4303 3.4.2: the SPI names the SA. A demultiplexer picked this SA
	// by it; a mismatch means it picked the wrong one.
	if binary.BigEndian.Uint32(packet[0:4]) != in.spi {
		in.spiDrops.Add(1)
		return dst, 0, ErrSPI
	}
	ctLen := len(packet) - headerLen - s.ivLen - s.icvLen
	if s.aead != nil {
		// At least pad length and next header.
		if ctLen < 2 {
			in.truncated.Add(1)
			return dst, 0, ErrTruncated
		}
	} else if ctLen < s.align || ctLen%s.align != 0 {
		// RFC 3602 3: CBC ciphertext is whole blocks.
		in.truncated.Add(1)
		return dst, 0, ErrTruncated
	}

	// RFC 4303 3.4.3: the replay check comes first, so that replayed packets
	// cost no cryptography.
	seql := binary.BigEndian.Uint32(packet[4:8])
	seq := uint64(seql)
	if in.esn {
		var ok bool
		if seq, ok = in.w.inferESN(seql); !ok {
			in.replay.Add(1)
			return dst, 0, ErrReplay
		}
	}
	if !in.w.check(seq) {
		in.replay.Add(1)
		return dst, 0, ErrReplay
	}

	// With room past the plaintext for the AEAD to open in place (AES-GCM-8:
	// 16 octets, still within len(packet)).
	head := slices.Grow(dst, ctLen+s.openRoom)[:len(dst)+ctLen]
	out := head[len(dst):]
	iv := packet[headerLen : headerLen+s.ivLen]
	sealed := packet[headerLen+s.ivLen:] // ciphertext | ICV
	ct := sealed[:ctLen]
	pt := out[:ctLen]

	sc := getScratch()
	defer putScratch(sc)
	if s.aead != nil {
		copy(sc.nonce[:4], s.salt[:])
		copy(sc.nonce[4:], iv)
		aad := packet[:headerLen]
		if in.esn {
			aad = esnAAD(sc, in.spi, seq)
		}
		if _, err := s.aead.Open(out[:0], sc.nonce[:], sealed, aad); err != nil {
			in.auth.Add(1)
			return dst, 0, ErrAuth
		}
	} else {
		// RFC 4303 3.4.4: verify the ICV before decrypting (RFC 4303 3.3.4's
		// coverage, see Outbound.seal).
		if s.mac != nil {
			var hi []byte
			if in.esn {
				binary.BigEndian.PutUint32(sc.esnHi[:], uint32(seq>>32))
				hi = sc.esnHi[:]
			}
			sum := s.mac.mac(sc, packet[:len(packet)-s.icvLen], hi)
			if sum == nil || subtle.ConstantTimeCompare(sum[:s.icvLen], sealed[ctLen:]) != 1 {
				in.auth.Add(1)
				return dst, 0, ErrAuth
			}
		}
		cbcDecrypt(s.block, iv, pt, ct)
	}

	// RFC 4303 2.4-2.6: ... | padding | pad length | next header. The
	// receiver checks the default padding 1, 2, 3, ... (2.4: "the receiver
	// SHOULD inspect the Padding field").
	padLen := int(pt[ctLen-2])
	nh := pt[ctLen-1]
	n := ctLen - 2 - padLen
	if n < 0 {
		in.padding.Add(1)
		return dst, 0, ErrPadding
	}
	for i, b := range pt[n : ctLen-2] {
		if b != byte(i+1) {
			in.padding.Add(1)
			return dst, 0, ErrPadding
		}
	}
	if !allowedInMode(in.mode, nh) {
		in.nextHeader.Add(1)
		return dst, 0, ErrNextHeader
	}
	// The packet is authentic and well formed: only now may it move the
	// window. A concurrent duplicate that also got this far loses here.
	if !in.w.commit(seq) {
		in.replay.Add(1)
		return dst, 0, ErrReplay
	}
	if nh == ProtoNone {
		// RFC 4303 2.6: discard dummy packets silently.
		in.dummy.Add(1)
		return dst, ProtoNone, ErrDummy
	}
	in.packets.Add(1)
	in.bytes.Add(uint64(n))
	return head[:len(dst)+n], nh, nil
}

// InboundCounters is a snapshot of an Inbound's counters.
type InboundCounters struct {
	Packets uint64 // packets accepted
	Bytes   uint64 // payload (inner packet) bytes accepted
	// Drops by reason.
	Replay     uint64 // ErrReplay
	Auth       uint64 // ErrAuth
	Truncated  uint64 // ErrTruncated
	Padding    uint64 // ErrPadding
	SPI        uint64 // ErrSPI
	NextHeader uint64 // ErrNextHeader
	Dummy      uint64 // ErrDummy: authentic dummy packets, dropped silently
}

// Counters returns the SA's counters; each is read atomically.
func (in *Inbound) Counters() InboundCounters {
	return InboundCounters{
		Packets:    in.packets.Load(),
		Bytes:      in.bytes.Load(),
		Replay:     in.replay.Load(),
		Auth:       in.auth.Load(),
		Truncated:  in.truncated.Load(),
		Padding:    in.padding.Load(),
		SPI:        in.spiDrops.Load(),
		NextHeader: in.nextHeader.Load(),
		Dummy:      in.dummy.Load(),
	}
}
