package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// Inner packets for the demo: what alice's and bob's IP stacks would write
// into their TUN devices, and a one-line description of what comes out.

// udp4 builds an IPv4 UDP datagram with valid checksums (RFC 791, RFC 768).
func udp4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	pkt := ipv4Header(src, dst, 17, 8+len(payload))
	u := pkt[20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	c := tun.Checksum(u, tun.PseudoHeaderSum(pkt[12:16], pkt[16:20], 17, len(u)))
	if c == 0 {
		c = 0xffff // RFC 768: zero means no checksum
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return pkt
}

// icmpEcho builds an ICMP echo request (typ 8) or reply (typ 0) (RFC 792).
func icmpEcho(src, dst netip.Addr, typ uint8, id, seq uint16, data []byte) []byte {
	pkt := ipv4Header(src, dst, 1, 8+len(data))
	m := pkt[20:]
	m[0] = typ
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	binary.BigEndian.PutUint16(m[2:], tun.Checksum(m, 0))
	return pkt
}

func ipv4Header(src, dst netip.Addr, proto uint8, l4 int) []byte {
	pkt := make([]byte, 20+l4)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, proto
	s, d := src.As4(), dst.As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[10:], tun.Checksum(pkt[:20], 0))
	return pkt
}

// innerPacket is what the demo reads of an IPv4 packet.
type innerPacket struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16 // UDP
	icmpType     uint8
	id, seq      uint16 // ICMP echo
	payload      []byte
}

func parseInner(pkt []byte) (innerPacket, bool) {
	var p innerPacket
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return p, false
	}
	ihl := int(pkt[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < 20 || total < ihl || total > len(pkt) {
		return p, false
	}
	p.src = netip.AddrFrom4([4]byte(pkt[12:16]))
	p.dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	p.proto = pkt[9]
	l4 := pkt[ihl:total]
	switch {
	case p.proto == 17 && len(l4) >= 8:
		p.sport, p.dport = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		p.payload = l4[8:]
	case p.proto == 1 && len(l4) >= 8:
		p.icmpType = l4[0]
		p.id, p.seq = binary.BigEndian.Uint16(l4[4:]), binary.BigEndian.Uint16(l4[6:])
		p.payload = l4[8:]
	default:
		return p, false
	}
	return p, true
}

func (p innerPacket) String() string {
	switch p.proto {
	case 17:
		return fmt.Sprintf("%v:%d -> %v:%d  UDP  %s", p.src, p.sport, p.dst, p.dport, strconv.Quote(string(p.payload)))
	case 1:
		kind := "echo request"
		if p.icmpType == 0 {
			kind = "echo reply"
		}
		return fmt.Sprintf("%v -> %v  ICMP %s id %d seq %d", p.src, p.dst, kind, p.id, p.seq)
	}
	return fmt.Sprintf("%v -> %v  protocol %d", p.src, p.dst, p.proto)
}
