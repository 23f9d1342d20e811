package tun

import (
	"bytes"
	"encoding/binary"
)

// TCP receive coalescing for Write on an offload device (what GRO does in
// a NIC driver, and wireguard-go's tcpGRO): consecutive in-order data
// segments of one TCP flow become one super-packet behind a virtio-net
// header with GSO_TCPV4/TCPV6, so that the host's TCP stack takes 64 KiB in
// one write instead of one segment per write. The rules are those of the
// kernel's tcp_gro_receive: identical IP and TCP headers but for lengths,
// IPv4 ID, checksums and the sequence number, which must continue the
// previous segment; every segment but the last of the full size; only ACK
// (and PSH on the last) set.

// tcpSeg is a TCP segment that may be coalesced.
type tcpSeg struct {
	v4            bool
	ipLen, tcpLen int
	seq           uint32
	payload       int
	psh           bool
}

// parseTCPSeg accepts plain TCP data segments: IPv4 without options and not
// fragmented, or IPv6 without extension headers; flags ACK or ACK|PSH.
func parseTCPSeg(pkt []byte) (s tcpSeg, ok bool) {
	if len(pkt) < 20 {
		return s, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if pkt[0] != 0x45 || pkt[9] != 6 || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) ||
			binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 { // MF or an offset
			return s, false
		}
		s.v4, s.ipLen = true, 20
	case 6:
		if len(pkt) < 40 || pkt[6] != 6 || int(binary.BigEndian.Uint16(pkt[4:]))+40 != len(pkt) {
			return s, false
		}
		s.ipLen = 40
	default:
		return s, false
	}
	if len(pkt) < s.ipLen+20 {
		return s, false
	}
	tcp := pkt[s.ipLen:]
	s.tcpLen = int(tcp[12]>>4) * 4
	if s.tcpLen < 20 || len(tcp) < s.tcpLen {
		return s, false
	}
	switch tcp[13] {
	case 0x10:
	case 0x18:
		s.psh = true
	default:
		return s, false
	}
	s.payload = len(tcp) - s.tcpLen
	if s.payload == 0 {
		return s, false
	}
	s.seq = binary.BigEndian.Uint32(tcp[4:])
	return s, true
}

// coalescer builds one super-packet at a time in buf, after room for the
// virtio-net header.
type coalescer struct {
	buf     []byte // VirtioNetHdrLen + 65535
	n       int    // packet bytes in buf after the header
	count   int    // segments in it
	first   tcpSeg
	gsoSize int
	nextSeq uint32
	done    bool // a short or PSH segment ended it
}

func newCoalescer() *coalescer {
	return &coalescer{buf: make([]byte, VirtioNetHdrLen+65535)}
}

func (c *coalescer) pkt() []byte { return c.buf[VirtioNetHdrLen : VirtioNetHdrLen+c.n] }

// start begins a super-packet with pkt.
func (c *coalescer) start(pkt []byte, s tcpSeg) {
	c.n = copy(c.buf[VirtioNetHdrLen:], pkt)
	c.count = 1
	c.first = s
	c.gsoSize = s.payload
	c.nextSeq = s.seq + uint32(s.payload)
	c.done = s.psh
}

// tryAppend appends pkt if it continues the super-packet.
func (c *coalescer) tryAppend(pkt []byte, s tcpSeg) bool {
	if c.count == 0 || c.done || s.v4 != c.first.v4 || s.tcpLen != c.first.tcpLen ||
		s.seq != c.nextSeq || s.payload > c.gsoSize || c.n+s.payload > 65535 {
		return false
	}
	h := c.pkt()
	if s.v4 {
		// version/IHL/TOS, flags (DF), TTL, protocol, addresses
		if !bytes.Equal(h[0:2], pkt[0:2]) || !bytes.Equal(h[6:10], pkt[6:10]) || !bytes.Equal(h[12:20], pkt[12:20]) {
			return false
		}
	} else {
		// version/class/flow label, next header, hop limit, addresses
		if !bytes.Equal(h[0:4], pkt[0:4]) || !bytes.Equal(h[6:40], pkt[6:40]) {
			return false
		}
	}
	ht, pt := h[c.first.ipLen:], pkt[s.ipLen:]
	// ports; acknowledgment, data offset, window; options
	if !bytes.Equal(ht[0:4], pt[0:4]) || !bytes.Equal(ht[8:13], pt[8:13]) || !bytes.Equal(ht[14:16], pt[14:16]) ||
		!bytes.Equal(ht[20:c.first.tcpLen], pt[20:s.tcpLen]) {
		return false
	}
	c.n += copy(c.buf[VirtioNetHdrLen+c.n:], pkt[s.ipLen+s.tcpLen:])
	c.count++
	c.nextSeq += uint32(s.payload)
	if s.psh {
		ht[13] |= 0x08
	}
	c.done = s.psh || s.payload < c.gsoSize
	return true
}

// finish returns the bytes to write, virtio-net header included, and
// resets the coalescer.
func (c *coalescer) finish() []byte {
	out := c.buf[:VirtioNetHdrLen+c.n]
	var h virtioNetHdr
	if c.count > 1 {
		pkt := c.pkt()
		ipLen, tcpLen := c.first.ipLen, c.first.tcpLen
		var ph uint64
		if c.first.v4 {
			binary.BigEndian.PutUint16(pkt[2:], uint16(c.n))
			ipv4HeaderChecksum(pkt[:20])
			ph = PseudoHeaderSum(pkt[12:16], pkt[16:20], 6, c.n-ipLen)
			h.gsoType = gsoTCPv4
		} else {
			binary.BigEndian.PutUint16(pkt[4:], uint16(c.n-40))
			ph = PseudoHeaderSum(pkt[8:24], pkt[24:40], 6, c.n-ipLen)
			h.gsoType = gsoTCPv6
		}
		// CHECKSUM_PARTIAL: the field holds the folded pseudo-header
		// sum and the kernel finishes it (virtio 1.1 5.1.6.2).
		binary.BigEndian.PutUint16(pkt[ipLen+16:], checksumFold(ph))
		h.flags = vnetFlagNeedsCsum
		h.hdrLen = uint16(ipLen + tcpLen)
		h.gsoSize = uint16(c.gsoSize)
		h.csumStart = uint16(ipLen)
		h.csumOffset = 16
	}
	h.encode(out)
	c.count, c.n = 0, 0
	return out
}
