package transport

import "strconv"

// Kind is what a received datagram carries.
type Kind uint8

const (
	// KindJunk: too short to be anything Cygnet speaks; dropped.
	KindJunk Kind = iota
	// KindIKE: an IKE message.
	KindIKE
	// KindESP: a UDP-encapsulated ESP packet.
	KindESP
	// KindKeepalive: a NAT-keepalive; dropped.
	KindKeepalive
)

func (k Kind) String() string {
	switch k {
	case KindJunk:
		return "junk"
	case KindIKE:
		return "IKE"
	case KindESP:
		return "ESP"
	case KindKeepalive:
		return "keepalive"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

const (
	// MarkerLen is the length of the non-ESP marker, four zero octets in
	// the place of an ESP SPI (RFC 3948 2.2).
	MarkerLen = 4
	// ikeHeaderLen is the fixed IKE header (RFC 7296 3.1); nothing shorter
	// is an IKE message, so the transport drops it without bothering the
	// IKE engine.
	ikeHeaderLen = 28
	// espMinLen: an ESP header is SPI and Sequence Number (RFC 4303 2),
	// and a packet needs more than that. Linux's ESP-in-UDP receive path
	// uses the same bound (it takes a datagram as ESP only if it is longer
	// than the ESP header), so classification agrees with the kernel's
	// when KernelEncap is on.
	espMinLen = 8 + 1
	// keepaliveByte is the NAT-keepalive's only octet (RFC 3948 2.3).
	keepaliveByte = 0xFF
)

// Classify says what the UDP payload b is and returns the part to hand on:
// the IKE message without the marker, the ESP packet from its SPI, or nil.
// natPort says whether b arrived on the NAT-T port; on the IKE port every
// datagram is IKE and has no marker (RFC 3948 2.2).
//
// On the NAT-T port:
//   - a single 0xFF octet is a NAT-keepalive (RFC 3948 2.3: the receiver
//     SHOULD ignore it);
//   - four zero octets are the non-ESP marker, and IKE follows
//     (RFC 3948 2.2, RFC 7296 2.23); the marker sits where an ESP SPI would
//     be, and SPI zero is never sent (RFC 4303 2.1, RFC 3948 2.1);
//   - anything else is ESP, starting at its non-zero SPI (RFC 3948 2.1).
//
// Datagrams too short for their kind are KindJunk.
func Classify(b []byte, natPort bool) (Kind, []byte) {
	if !natPort {
		if len(b) < ikeHeaderLen {
			return KindJunk, nil
		}
		return KindIKE, b
	}
	if len(b) == 1 && b[0] == keepaliveByte {
		return KindKeepalive, nil
	}
	if len(b) < MarkerLen {
		return KindJunk, nil
	}
	if b[0]|b[1]|b[2]|b[3] == 0 {
		if len(b)-MarkerLen < ikeHeaderLen {
			return KindJunk, nil
		}
		return KindIKE, b[MarkerLen:]
	}
	if len(b) < espMinLen {
		return KindJunk, nil
	}
	return KindESP, b
}

// isESP reports whether the peer will take b, sent to its NAT-T port, for
// ESP: SPI non-zero (RFC 3948 2.1) and long enough.
func isESP(b []byte) bool {
	kind, _ := Classify(b, true)
	return kind == KindESP
}
