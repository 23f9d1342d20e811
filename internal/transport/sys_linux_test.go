package transport

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSockaddrRoundTrip(t *testing.T) {
	for _, s := range []string{"192.0.2.1:500", "0.0.0.0:4500", "[2001:db8::1]:500", "[fe80::1%1]:4500", "[::ffff:192.0.2.7]:500"} {
		ap := netip.MustParseAddrPort(s)
		v6 := ap.Addr().Unmap().Is6()
		var sa unix.RawSockaddrInet6
		if putSockaddr(&sa, ap, v6) == 0 {
			t.Errorf("%v: not written", ap)
			continue
		}
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if got := getSockaddr(&sa); got != want {
			t.Errorf("%v: read back %v", ap, got)
		}
		if putSockaddr(&sa, ap, !v6) != 0 {
			t.Errorf("%v written into a socket of the other family", ap)
		}
	}
	var sa unix.RawSockaddrInet6
	if putSockaddr(&sa, netip.MustParseAddrPort("[fe80::1%no-such-interface]:500"), true) != 0 {
		t.Error("unknown zone accepted")
	}
	if putSockaddr(&sa, netip.AddrPort{}, false) != 0 {
		t.Error("invalid address accepted")
	}
	sa.Family = unix.AF_UNIX
	if got := getSockaddr(&sa); got.IsValid() {
		t.Errorf("AF_UNIX read as %v", got)
	}
}

func TestPktinfo(t *testing.T) {
	buf := make([]uint64, oobWords)
	oob := wordsAsBytes(buf)

	// IPv6: in6_pktinfo has one address field, for both directions.
	for _, s := range []string{"2001:db8::5", "fe80::5%7"} {
		a := netip.MustParseAddr(s)
		n := putPktinfo(oob, a)
		if got, ok := getPktinfo(oob[:n], true); !ok || got != a {
			t.Errorf("%v: read back %v, %v", a, got, ok)
		}
		if _, ok := getPktinfo(oob[:n], false); ok {
			t.Errorf("%v: IPv6 pktinfo read on an IPv4 socket", a)
		}
	}

	// IPv4: we send with ipi_spec_dst and read ipi_addr.
	src := netip.MustParseAddr("192.0.2.9")
	n := putPktinfo(oob, src)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	if h.Level != unix.IPPROTO_IP || h.Type != unix.IP_PKTINFO || n != unix.CmsgSpace(unix.SizeofInet4Pktinfo) {
		t.Fatalf("IPv4 cmsg %+v, %d octets", h, n)
	}
	hdr := unix.CmsgLen(0)
	if got := netip.AddrFrom4([4]byte(oob[hdr+4 : hdr+8])); got != src {
		t.Errorf("ipi_spec_dst = %v", got)
	}
	dst := netip.MustParseAddr("198.51.100.3").As4()
	copy(oob[hdr+8:hdr+12], dst[:])
	if got, ok := getPktinfo(oob[:n], false); !ok || got.As4() != dst {
		t.Errorf("ipi_addr read as %v, %v", got, ok)
	}

	// Two messages: the pktinfo is found behind another one.
	clear(oob)
	other := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	other.Level, other.Type = unix.SOL_SOCKET, unix.SO_TIMESTAMP
	other.SetLen(unix.CmsgLen(3))
	off := cmsgAlign(unix.CmsgLen(3))
	n = putPktinfo(oob[off:], netip.MustParseAddr("2001:db8::9"))
	if got, ok := getPktinfo(oob[:off+n], true); !ok || got != netip.MustParseAddr("2001:db8::9") {
		t.Errorf("second message: %v, %v", got, ok)
	}
}

// FuzzGetPktinfo feeds the control-message walker arbitrary bytes: what the
// kernel writes is trusted, but a walker that can run off its buffer is a
// bug waiting for a kernel change.
func FuzzGetPktinfo(f *testing.F) {
	buf := make([]uint64, oobWords)
	oob := wordsAsBytes(buf)
	n := putPktinfo(oob, netip.MustParseAddr("2001:db8::1"))
	f.Add(append([]byte(nil), oob[:n]...), true)
	n = putPktinfo(oob, netip.MustParseAddr("192.0.2.1"))
	f.Add(append([]byte(nil), oob[:n]...), false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		aligned := make([]uint64, (len(b)+7)/8)
		in := wordsAsBytes(aligned)
		if in != nil {
			in = in[:len(b)]
		}
		copy(in, b)
		a, ok := getPktinfo(in, v6)
		if ok && a.Is6() != v6 {
			t.Fatalf("family mismatch: %v on v6=%v", a, v6)
		}
	})
}

// TestGROSize reads UDP_GRO's segment size as the kernel writes it (an
// int), also behind a pktinfo message, and writes UDP_SEGMENT (a u16).
func TestGROSize(t *testing.T) {
	buf := make([]uint64, oobWords)
	oob := wordsAsBytes(buf)
	put := func(oob []byte, size int) int {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_GRO
		h.SetLen(unix.CmsgLen(4))
		*(*int32)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = int32(size)
		return unix.CmsgSpace(4)
	}
	n := put(oob, 1380)
	if got := getGROSize(oob[:n]); got != 1380 {
		t.Errorf("alone: %d", got)
	}
	clear(oob)
	off := putPktinfo(oob, netip.MustParseAddr("2001:db8::1"))
	n = off + put(oob[off:], 1200)
	if got := getGROSize(oob[:n]); got != 1200 {
		t.Errorf("behind pktinfo: %d", got)
	}
	if a, ok := getPktinfo(oob[:n], true); !ok || a != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("pktinfo before GRO: %v %v", a, ok)
	}
	if got := getGROSize(oob[:off]); got != 0 {
		t.Errorf("pktinfo only: %d", got)
	}
	if got := getGROSize(nil); got != 0 {
		t.Errorf("no control data: %d", got)
	}

	clear(oob)
	n = putSegmentSize(oob, 1400)
	h, data, rest, ok := nextCmsg(oob[:n])
	if !ok || h.Level != unix.IPPROTO_UDP || h.Type != unix.UDP_SEGMENT || len(data) != 2 || rest != nil ||
		*(*uint16)(unsafe.Pointer(&data[0])) != 1400 || n != unix.CmsgSpace(2) {
		t.Errorf("UDP_SEGMENT: %+v %x, rest %d, %d octets", h, data, len(rest), n)
	}
	// Both control messages of a segmented send from a chosen source fit.
	if need := unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(2); need > oobWords*8 {
		t.Errorf("pktinfo and UDP_SEGMENT need %d octets, oob has %d", need, oobWords*8)
	}
}

// FuzzGetGROSize walks arbitrary control data for UDP_GRO.
func FuzzGetGROSize(f *testing.F) {
	buf := make([]uint64, oobWords)
	oob := wordsAsBytes(buf)
	n := putPktinfo(oob, netip.MustParseAddr("192.0.2.1"))
	n += putSegmentSize(oob[n:], 1400)
	// Turn the UDP_SEGMENT message into a UDP_GRO one.
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[unix.CmsgSpace(unix.SizeofInet4Pktinfo)]))
	h.Type = unix.UDP_GRO
	f.Add(append([]byte(nil), oob[:n]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		aligned := make([]uint64, (len(b)+7)/8)
		in := wordsAsBytes(aligned)
		if in != nil {
			in = in[:len(b)]
		}
		copy(in, b)
		getGROSize(in)
		for rest := in; ; {
			_, data, next, ok := nextCmsg(rest)
			if !ok {
				break
			}
			if len(next) >= len(rest) || len(data) > len(rest) {
				t.Fatalf("walker does not advance: %d -> %d", len(rest), len(next))
			}
			rest = next
		}
	})
}
