package wire

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// HeaderLen is the length of the IKE header (RFC 7296 3.1).
const HeaderLen = 28

// The version Cygnet speaks (RFC 7296 3.1: major 2, minor 0).
const (
	MajorVersion = 2
	MinorVersion = 0
)

// Header is the IKE header (RFC 7296 3.1).
type Header struct {
	SPIi, SPIr   uint64 // the 8-octet SPIs, big-endian
	NextPayload  PayloadType
	MajorVersion uint8 // 2; Marshal sends 2 when zero
	MinorVersion uint8 // 0 when sending; ignored on receipt
	Exchange     ExchangeType
	Flags        Flags // only I and R: the rest is ignored on receipt and sent as zero
	MessageID    uint32
	Length       uint32 // total message length; set by Marshal
}

// ParseHeader parses the IKE header at the start of the datagram b (without a
// non-ESP marker) and checks that its Length field equals len(b).
//
// A major version other than 2 is an *Error with Notify
// INVALID_MAJOR_VERSION and no notification data: RFC 7296 3.10.1 puts the
// version we support in the header of the reply. On that error, and on a
// Length mismatch, the returned Header still holds every field, so that the
// caller can address a reply.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, syntaxError("message of %d octets is shorter than the %d-octet IKE header", len(b), HeaderLen)
	}
	s := cryptobyte.String(b)
	var next, version, exchange, flags uint8
	s.ReadUint64(&h.SPIi)
	s.ReadUint64(&h.SPIr)
	s.ReadUint8(&next)
	s.ReadUint8(&version)
	s.ReadUint8(&exchange)
	s.ReadUint8(&flags)
	s.ReadUint32(&h.MessageID)
	s.ReadUint32(&h.Length)
	h.NextPayload = PayloadType(next)
	h.MajorVersion, h.MinorVersion = version>>4, version&0x0f
	h.Exchange = ExchangeType(exchange)
	// RFC 7296 3.1: the X bits MUST be ignored on receipt; the V bit MUST be
	// cleared when sending and ignored in incoming messages.
	h.Flags = Flags(flags) & (FlagInitiator | FlagResponse)

	// RFC 7296 2.5: a message with a higher major version is dropped and MAY
	// be answered with INVALID_MAJOR_VERSION. A lower one (IKEv1) is not ours
	// either; whether to answer it is the caller's policy.
	if h.MajorVersion != MajorVersion {
		return h, &Error{
			Notify: INVALID_MAJOR_VERSION,
			Reason: fmt.Sprintf("version %d.%d, we speak %d.%d", h.MajorVersion, h.MinorVersion, MajorVersion, MinorVersion),
		}
	}
	if h.Length != uint32(len(b)) {
		return h, syntaxError("header Length %d, but the datagram has %d octets", h.Length, len(b))
	}
	return h, nil
}

// AppendTo appends the 28-octet header to b, with the Length field as set in
// h, and returns the extended slice. A zero MajorVersion is sent as 2.
func (h Header) AppendTo(b []byte) []byte {
	builder := cryptobyte.NewBuilder(b)
	h.marshal(builder)
	return builder.BytesOrPanic() // marshal never fails
}

func (h Header) marshal(b *cryptobyte.Builder) {
	major := h.MajorVersion
	if major == 0 {
		major = MajorVersion
	}
	b.AddUint64(h.SPIi)
	b.AddUint64(h.SPIr)
	b.AddUint8(uint8(h.NextPayload))
	b.AddUint8(major<<4 | h.MinorVersion&0x0f)
	b.AddUint8(uint8(h.Exchange))
	b.AddUint8(uint8(h.Flags & (FlagInitiator | FlagResponse)))
	b.AddUint32(h.MessageID)
	b.AddUint32(h.Length)
}

// IsResponse reports whether the R flag is set.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the I flag is set: the message was sent by the
// original initiator of the IKE SA.
func (h Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }
