package esp

import (
	"encoding/binary"
	"errors"
	"slices"
)

// Small helpers for the two modes (RFC 4303 3.1). In tunnel mode the whole
// inner packet is the ESP payload and only its next header is needed. In
// transport mode ESP goes between the IP header and the transport payload
// (RFC 4303 3.1.1): the sender splits the packet, seals the payload, and
// rewrites the header's protocol and length for ESP; the receiver does the
// reverse. Transport checksums that cover addresses changed by a NAT are the
// caller's business (RFC 3948 3.1.2).

var (
	// ErrMalformedIP: not a well-formed IPv4 or IPv6 packet or header.
	ErrMalformedIP = errors.New("esp: malformed IP packet")
	// ErrFragment: transport mode protects whole datagrams only, never
	// fragments (RFC 4303 3.1.1, 3.3.4).
	ErrFragment = errors.New("esp: transport mode needs a whole datagram, not a fragment")
)

// IPv6 extension headers (RFC 8200 4).
const (
	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6DestOpts = 60
)

// TunnelNextHeader returns the next header for a tunnel-mode inner packet:
// ProtoIPv4 or ProtoIPv6 by its version field (RFC 4303 2.6).
func TunnelNextHeader(packet []byte) (uint8, error) {
	if len(packet) == 0 {
		return 0, ErrMalformedIP
	}
	switch packet[0] >> 4 {
	case 4:
		return ProtoIPv4, nil
	case 6:
		return ProtoIPv6, nil
	}
	return 0, ErrMalformedIP
}

// SplitTransport splits an IPv4 or IPv6 packet at the point where
// transport-mode ESP goes (RFC 4303 3.1.1): header is the IPv4 header with
// its options, or the IPv6 header with the extension headers that must stay
// visible to the path (Hop-by-Hop, Routing, and Destination Options before a
// Routing header); payload is the rest up to the IP length (link padding
// dropped), and proto is the header's protocol / next header value, the one
// to give Seal. The slices alias packet.
func SplitTransport(packet []byte) (header, payload []byte, proto uint8, err error) {
	if len(packet) == 0 {
		return nil, nil, 0, ErrMalformedIP
	}
	switch packet[0] >> 4 {
	case 4:
		if len(packet) < 20 {
			return nil, nil, 0, ErrMalformedIP
		}
		ihl := int(packet[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(packet[2:4]))
		if ihl < 20 || total < ihl || total > len(packet) {
			return nil, nil, 0, ErrMalformedIP
		}
		// More Fragments or a fragment offset (RFC 791 3.1).
		if binary.BigEndian.Uint16(packet[6:8])&0x3fff != 0 {
			return nil, nil, 0, ErrFragment
		}
		return packet[:ihl], packet[ihl:total], packet[9], nil
	case 6:
		if len(packet) < 40 {
			return nil, nil, 0, ErrMalformedIP
		}
		end := 40 + int(binary.BigEndian.Uint16(packet[4:6]))
		if end > len(packet) {
			return nil, nil, 0, ErrMalformedIP
		}
		split, nh := 40, packet[6]
		off, cur := 40, packet[6]
		for cur == ipv6HopByHop || cur == ipv6Routing || cur == ipv6DestOpts {
			if cur == ipv6HopByHop && off != 40 {
				// RFC 8200 4.1: Hop-by-Hop comes first or not at all.
				return nil, nil, 0, ErrMalformedIP
			}
			if off+2 > end {
				return nil, nil, 0, ErrMalformedIP
			}
			hl := (int(packet[off+1]) + 1) * 8
			if off+hl > end {
				return nil, nil, 0, ErrMalformedIP
			}
			next := packet[off]
			off += hl
			if cur != ipv6DestOpts {
				// Destination Options ahead of a Routing header stay with
				// it; the final ones may go after ESP (RFC 4303 3.1.1).
				split, nh = off, next
			}
			cur = next
		}
		if cur == ipv6Fragment {
			return nil, nil, 0, ErrFragment
		}
		return packet[:split], packet[split:end], nh, nil
	}
	return nil, nil, 0, ErrMalformedIP
}

// FixTransportHeader rewrites header, an IPv4 header with options or an IPv6
// header with extension headers as SplitTransport returns it, in place for a
// payload of payloadLen bytes carried with protocol proto: the IPv4 protocol,
// total length and header checksum, or the last IPv6 next header field and
// the payload length. The sender uses proto ProtoESP and the length of the
// ESP packet; the receiver the next header and length Open returned.
func FixTransportHeader(header []byte, proto uint8, payloadLen int) error {
	if len(header) == 0 || payloadLen < 0 {
		return ErrMalformedIP
	}
	switch header[0] >> 4 {
	case 4:
		if len(header) < 20 || int(header[0]&0x0f)*4 != len(header) {
			return ErrMalformedIP
		}
		total := len(header) + payloadLen
		if total > 0xffff {
			return ErrMalformedIP
		}
		binary.BigEndian.PutUint16(header[2:4], uint16(total))
		header[9] = proto
		header[10], header[11] = 0, 0
		binary.BigEndian.PutUint16(header[10:12], ipv4Checksum(header))
		return nil
	case 6:
		if len(header) < 40 {
			return ErrMalformedIP
		}
		plen := len(header) - 40 + payloadLen
		if plen > 0xffff {
			return ErrMalformedIP
		}
		nhAt, off := 6, 40
		for off < len(header) {
			switch header[nhAt] {
			case ipv6HopByHop, ipv6Routing, ipv6DestOpts:
			default:
				return ErrMalformedIP
			}
			if off+2 > len(header) {
				return ErrMalformedIP
			}
			nhAt = off
			off += (int(header[off+1]) + 1) * 8
		}
		if off != len(header) {
			return ErrMalformedIP
		}
		binary.BigEndian.PutUint16(header[4:6], uint16(plen))
		header[nhAt] = proto
		return nil
	}
	return ErrMalformedIP
}

// JoinTransport appends header and payload to dst, fixing the copy of the
// header with FixTransportHeader(proto, len(payload)), and returns the
// updated slice.
func JoinTransport(dst, header []byte, proto uint8, payload []byte) ([]byte, error) {
	head := slices.Grow(dst, len(header)+len(payload))[:len(dst)+len(header)+len(payload)]
	tail := head[len(dst):]
	copy(tail, header)
	copy(tail[len(header):], payload)
	if err := FixTransportHeader(tail[:len(header)], proto, len(payload)); err != nil {
		return dst, err
	}
	return head, nil
}

// ipv4Checksum is the Internet checksum (RFC 1071) of an IPv4 header whose
// checksum field is zero.
func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
