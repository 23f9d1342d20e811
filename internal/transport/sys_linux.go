package transport

// Socket addresses and control messages for recvmmsg/sendmmsg, built and
// parsed in place in preallocated buffers: the ESP path must not allocate
// per packet, which rules out x/net's ipv4.Message (a net.Addr per message).

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobWords is the control buffer per message, in uint64 words so that every
// cmsghdr in it is aligned. 128 bytes hold an in6_pktinfo (40 with header)
// and a UDP_GRO or UDP_SEGMENT message (24) with room to spare.
const oobWords = 16

// putSockaddr writes ap into sa as a sockaddr_in (v6 false) or sockaddr_in6
// and returns its length, or 0 if ap does not fit the socket's family.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort, v6 bool) uint32 {
	a := ap.Addr().Unmap()
	if !a.IsValid() || a.Is6() != v6 {
		return 0
	}
	if !v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		putPort(&sa4.Port, ap.Port())
		return unix.SizeofSockaddrInet4
	}
	var scope uint32
	if z := a.Zone(); z != "" {
		var ok bool
		if scope, ok = zoneIndex(z); !ok {
			return 0
		}
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16(), Scope_id: scope}
	putPort(&sa.Port, ap.Port())
	return unix.SizeofSockaddrInet6
}

// getSockaddr reads the peer address the kernel wrote into sa.
func getSockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), getPort(&sa4.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, getPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// Ports in sockaddrs are in network byte order.
func putPort(p *uint16, port uint16) {
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(p))[:], port)
}

func getPort(p *uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:])
}

// zoneIndex turns an IPv6 zone (an interface index, as we produce them on
// receive, or a name) into a scope id.
func zoneIndex(zone string) (uint32, bool) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), true
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, false
	}
	return uint32(ifi.Index), true
}

func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0))) // CMSG_ALIGN: sizeof(long) on Linux
	return (n + a - 1) &^ (a - 1)
}

// putPktinfo writes an IP_PKTINFO or IPV6_PKTINFO control message that makes
// the kernel send from src, and returns its length. oob must be aligned
// and have room (oobWords*8 bytes always do).
func putPktinfo(oob []byte, src netip.Addr) int {
	if src.Is4() {
		clear(oob[:unix.CmsgSpace(unix.SizeofInet4Pktinfo)])
	} else {
		clear(oob[:unix.CmsgSpace(unix.SizeofInet6Pktinfo)])
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	data := oob[unix.CmsgLen(0):]
	if src.Is4() {
		// struct in_pktinfo {ifindex; spec_dst; addr}: on send, spec_dst
		// is the source address; ifindex 0 lets routing pick the interface.
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		a := src.As4()
		copy(data[4:8], a[:])
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	// struct in6_pktinfo {addr; ifindex}.
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	a := src.As16()
	copy(data[0:16], a[:])
	if z := src.Zone(); z != "" {
		if idx, ok := zoneIndex(z); ok {
			binary.NativeEndian.PutUint32(data[16:20], idx)
		}
	}
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

// nextCmsg splits the first control message off oob: its header, its data
// and the rest of the buffer. ok is false at the end of the buffer and for
// a header whose length does not fit it. oob must be aligned.
func nextCmsg(oob []byte) (h *unix.Cmsghdr, data, rest []byte, ok bool) {
	hdrLen := unix.CmsgLen(0)
	if len(oob) < hdrLen {
		return nil, nil, nil, false
	}
	h = (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	l := uint64(h.Len) // compare before converting: a huge length must not wrap
	if l < uint64(hdrLen) || l > uint64(len(oob)) {
		return nil, nil, nil, false
	}
	data = oob[hdrLen:l]
	if next := cmsgAlign(int(l)); next < len(oob) {
		rest = oob[next:]
	}
	return h, data, rest, true
}

// getPktinfo finds the datagram's destination address in the control
// messages of a socket with IP_PKTINFO or IPV6_RECVPKTINFO on. oob must be
// aligned.
func getPktinfo(oob []byte, v6 bool) (netip.Addr, bool) {
	for {
		h, data, rest, ok := nextCmsg(oob)
		if !ok {
			return netip.Addr{}, false
		}
		switch {
		case !v6 && h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO &&
			len(data) >= unix.SizeofInet4Pktinfo:
			// ipi_addr, the header's destination address: what the peer
			// sent to, which is what NAT-D hashes (RFC 7296 2.23). Replies
			// go from it too (RFC 7296 2.11).
			return netip.AddrFrom4([4]byte(data[8:12])), true
		case v6 && h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO &&
			len(data) >= unix.SizeofInet6Pktinfo:
			a := netip.AddrFrom16([16]byte(data[0:16]))
			if a.IsLinkLocalUnicast() {
				idx := binary.NativeEndian.Uint32(data[16:20])
				a = a.WithZone(strconv.FormatUint(uint64(idx), 10))
			}
			return a, true
		}
		oob = rest
	}
}

// getGROSize returns the segment size of a datagram that the kernel
// coalesced (UDP_GRO: the control message holds an int), or 0 if there is
// none. oob must be aligned.
func getGROSize(oob []byte) int {
	for {
		h, data, rest, ok := nextCmsg(oob)
		if !ok {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO {
			switch {
			case len(data) >= 4:
				return int(int32(binary.NativeEndian.Uint32(data)))
			case len(data) >= 2:
				return int(binary.NativeEndian.Uint16(data))
			}
			return 0
		}
		oob = rest
	}
}

// putSegmentSize writes a UDP_SEGMENT control message (a u16: the size of
// each datagram the kernel cuts the message into, the last may be shorter)
// and returns its length. oob must be aligned and have room (24 octets).
func putSegmentSize(oob []byte, size int) int {
	n := unix.CmsgSpace(2)
	clear(oob[:n])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	return n
}

// wordsAsBytes views an aligned []uint64 as bytes.
func wordsAsBytes(w []uint64) []byte {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*8)
}
