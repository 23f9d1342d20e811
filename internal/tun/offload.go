package tun

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// VirtioNetHdrLen is the length of the virtio-net header that precedes every
// packet on a TUN device opened with IFF_VNET_HDR (struct virtio_net_hdr,
// include/uapi/linux/virtio_net.h; the legacy layout without num_buffers).
const VirtioNetHdrLen = 10

// virtio-net header flags and GSO types.
const (
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	gsoNone           = 0 // VIRTIO_NET_HDR_GSO_NONE
	gsoTCPv4          = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	gsoTCPv6          = 4 // VIRTIO_NET_HDR_GSO_TCPV6
	gsoECN            = 0x80
)

// virtioNetHdr is struct virtio_net_hdr. TUN uses the host's byte order for
// its fields unless told otherwise (TUNSETVNETLE); Cygnet runs on
// little-endian Linux hosts, and the decoder says so.
type virtioNetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func (h *virtioNetHdr) decode(b []byte) {
	_ = b[VirtioNetHdrLen-1]
	h.flags = b[0]
	h.gsoType = b[1]
	h.hdrLen = binary.LittleEndian.Uint16(b[2:])
	h.gsoSize = binary.LittleEndian.Uint16(b[4:])
	h.csumStart = binary.LittleEndian.Uint16(b[6:])
	h.csumOffset = binary.LittleEndian.Uint16(b[8:])
}

func (h *virtioNetHdr) encode(b []byte) {
	_ = b[VirtioNetHdrLen-1]
	b[0] = h.flags
	b[1] = h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
}

// checksumAdd adds b to the one's-complement sum acc, 64 bits at a time
// (RFC 1071 4.1; the carries are folded at the end).
func checksumAdd(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	acc, _ = bits.Add64(acc, 0, c)
	return acc
}

// checksumFold folds a 64-bit one's-complement sum to 16 bits.
func checksumFold(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}

// Checksum returns the Internet checksum (RFC 1071) of b with initial, a
// partial sum such as PseudoHeaderSum's.
func Checksum(b []byte, initial uint64) uint16 {
	return ^checksumFold(checksumAdd(b, initial))
}

// PseudoHeaderSum is the partial one's-complement sum of the TCP/UDP pseudo
// header (RFC 793 3.1, RFC 768; RFC 8200 8.1 for IPv6): the source and
// destination addresses (4 or 16 bytes each), the protocol and the length.
func PseudoHeaderSum(src, dst []byte, proto uint8, length int) uint64 {
	acc := checksumAdd(src, 0)
	acc = checksumAdd(dst, acc)
	var tail [8]byte
	binary.BigEndian.PutUint32(tail[0:], uint32(length))
	binary.BigEndian.PutUint32(tail[4:], uint32(proto))
	return checksumAdd(tail[:], acc)
}

// ipv4HeaderChecksum sets the header checksum of the IPv4 header h.
func ipv4HeaderChecksum(h []byte) {
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], Checksum(h, 0))
}

// errNoRoom: a packet has more segments than there are buffers (nothing
// was written; with more buffers it would fit).
var errNoRoom = fmt.Errorf("%w: more segments than buffers", ErrTooSmall)

// segment splits pkt, a packet read from a TUN device with virtio-net header
// hdr, into the packets the kernel would have sent without the offload, the
// i-th at bufs[i][offset:], and returns how many it wrote (sizes[i] their
// lengths). A TSO super-packet (GSO_TCPV4/TCPV6) becomes MSS-sized TCP
// segments with their own IP lengths, IPv4 IDs, sequence numbers, flags and
// checksums, as the kernel's tcp_gso_segment makes them; a packet that only
// needs its checksum (NEEDS_CSUM) gets it.
func segment(pkt []byte, hdr *virtioNetHdr, bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, errNoRoom
	}
	if hdr.gsoType == gsoNone {
		if len(bufs[0]) < offset+len(pkt) {
			return 0, fmt.Errorf("%w: %d-byte packet", ErrTooSmall, len(pkt))
		}
		out := bufs[0][offset : offset+len(pkt)]
		copy(out, pkt)
		if hdr.flags&vnetFlagNeedsCsum != 0 {
			// CHECKSUM_PARTIAL: the field holds the pseudo-header sum;
			// the checksum covers csum_start to the end.
			start, field := int(hdr.csumStart), int(hdr.csumStart)+int(hdr.csumOffset)
			if start >= len(out) || field+2 > len(out) || field < start {
				return 0, fmt.Errorf("%w: checksum at %d+%d in %d bytes", ErrMalformed, start, hdr.csumOffset, len(out))
			}
			binary.BigEndian.PutUint16(out[field:], Checksum(out[start:], 0))
		}
		sizes[0] = len(pkt)
		return 1, nil
	}
	if hdr.gsoType&^gsoECN != gsoTCPv4 && hdr.gsoType&^gsoECN != gsoTCPv6 {
		return 0, fmt.Errorf("%w: GSO type %d", ErrMalformed, hdr.gsoType)
	}
	v4 := hdr.gsoType&^gsoECN == gsoTCPv4
	if len(pkt) < 1 {
		return 0, fmt.Errorf("%w: empty packet", ErrMalformed)
	}
	var ipLen int
	switch pkt[0] >> 4 {
	case 4:
		if !v4 || len(pkt) < 20 {
			return 0, fmt.Errorf("%w: IPv4 super-packet", ErrMalformed)
		}
		ipLen = int(pkt[0]&0xf) * 4
		if ipLen < 20 || pkt[9] != 6 {
			return 0, fmt.Errorf("%w: IPv4 super-packet header", ErrMalformed)
		}
	case 6:
		if v4 || len(pkt) < 40 {
			return 0, fmt.Errorf("%w: IPv6 super-packet", ErrMalformed)
		}
		// The TCP header starts at csum_start; extension headers lie
		// between (the kernel's GSO handles them the same way).
		ipLen = int(hdr.csumStart)
		if ipLen < 40 {
			return 0, fmt.Errorf("%w: IPv6 super-packet header", ErrMalformed)
		}
	default:
		return 0, fmt.Errorf("%w: IP version %d", ErrMalformed, pkt[0]>>4)
	}
	if len(pkt) < ipLen+20 {
		return 0, fmt.Errorf("%w: TCP header", ErrMalformed)
	}
	tcpLen := int(pkt[ipLen+12]>>4) * 4
	hdrLen := ipLen + tcpLen
	mss := int(hdr.gsoSize)
	if tcpLen < 20 || len(pkt) < hdrLen || mss == 0 {
		return 0, fmt.Errorf("%w: TCP header or MSS", ErrMalformed)
	}
	payload := pkt[hdrLen:]
	nseg := (len(payload) + mss - 1) / mss
	if nseg == 0 {
		nseg = 1
	}
	if nseg > len(bufs) {
		return 0, fmt.Errorf("%w: %d segments for %d buffers", errNoRoom, nseg, len(bufs))
	}
	seq := binary.BigEndian.Uint32(pkt[ipLen+4:])
	flags := pkt[ipLen+13]
	var id uint16
	if v4 {
		id = binary.BigEndian.Uint16(pkt[4:])
	}
	for i := range nseg {
		chunk := payload[min(i*mss, len(payload)):min((i+1)*mss, len(payload))]
		n := hdrLen + len(chunk)
		if len(bufs[i]) < offset+n {
			return i, fmt.Errorf("%w: %d-byte segment", ErrTooSmall, n)
		}
		out := bufs[i][offset : offset+n]
		copy(out, pkt[:hdrLen])
		copy(out[hdrLen:], chunk)
		tcp := out[ipLen:]
		binary.BigEndian.PutUint32(tcp[4:], seq+uint32(i*mss))
		f := flags
		if i != nseg-1 {
			f &^= 0x09 // FIN, PSH only on the last segment
		}
		if i != 0 {
			f &^= 0x80 // CWR only on the first
		}
		tcp[13] = f
		tcp[16], tcp[17] = 0, 0
		var ph uint64
		if v4 {
			binary.BigEndian.PutUint16(out[2:], uint16(n))
			binary.BigEndian.PutUint16(out[4:], id+uint16(i))
			ipv4HeaderChecksum(out[:ipLen])
			ph = PseudoHeaderSum(out[12:16], out[16:20], 6, n-ipLen)
		} else {
			binary.BigEndian.PutUint16(out[4:], uint16(n-40))
			ph = PseudoHeaderSum(out[8:24], out[24:40], 6, n-ipLen)
		}
		binary.BigEndian.PutUint16(tcp[16:], Checksum(tcp, ph))
		sizes[i] = n
	}
	return nseg, nil
}
