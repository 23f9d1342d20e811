package userspace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/esp"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// rawESP sends and receives plain ESP (IP protocol 50, RFC 4303) for SAs
// without UDP encapsulation, through raw sockets (CAP_NET_RAW): the kernel
// writes the outer IP header on send, from the SA's local address (an
// IP_PKTINFO or IPV6_PKTINFO control message per packet: the route's
// preferred source may be another address of the host), and hands every
// received protocol-50 packet to the socket.
type rawESP struct {
	b      *Backend
	v4, v6 *rawSocket
	wg     sync.WaitGroup

	// Send side, used by sendLoop only.
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []uint64 // rawOOB bytes per packet, 8-aligned for the cmsg headers
}

type rawSocket struct {
	f  *os.File
	rc syscall.RawConn
	v6 bool

	// Receive side, used by its reader goroutine.
	bufs  [][]byte
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte
	pkts  []transport.Packet
	n     int
	errno error
	readF func(fd uintptr) bool

	// Send results.
	sent    int
	sendErr error
	sendN   int
	sendH   []unix.Mmsghdr
	writeF  func(fd uintptr) bool
}

const rawBatch = 32
const rawOOB = 64

// openRaw opens the raw sockets on first use; b.mu must be held.
func (b *Backend) openRaw() error {
	if b.raw != nil {
		return nil
	}
	r := &rawESP{
		b:     b,
		hdrs:  make([]unix.Mmsghdr, rawBatch),
		iovs:  make([]unix.Iovec, rawBatch),
		names: make([]unix.RawSockaddrInet6, rawBatch),
		oob:   make([]uint64, rawBatch*rawOOB/8),
	}
	var err error
	if r.v4, err = openRawSocket(false); err != nil {
		return err
	}
	if r.v6, err = openRawSocket(true); err != nil {
		// A host without IPv6 still does plain ESP over IPv4.
		r.v6 = nil
	}
	for _, s := range []*rawSocket{r.v4, r.v6} {
		if s != nil {
			r.wg.Add(1)
			go r.readLoop(s)
		}
	}
	b.raw = r
	return nil
}

func openRawSocket(v6 bool) (*rawSocket, error) {
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, esp.ProtoESP)
	if err != nil {
		return nil, fmt.Errorf("userspace: raw ESP socket (needs CAP_NET_RAW): %w", err)
	}
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("userspace: IPV6_RECVPKTINFO: %w", err)
		}
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	s := &rawSocket{
		f:     os.NewFile(uintptr(fd), "esp-raw"),
		v6:    v6,
		bufs:  make([][]byte, rawBatch),
		hdrs:  make([]unix.Mmsghdr, rawBatch),
		iovs:  make([]unix.Iovec, rawBatch),
		names: make([]unix.RawSockaddrInet6, rawBatch),
		oob:   make([]byte, rawBatch*rawOOB),
		pkts:  make([]transport.Packet, 0, rawBatch),
	}
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return nil, err
	}
	block := make([]byte, rawBatch*65536)
	for i := range s.bufs {
		s.bufs[i] = block[i*65536 : (i+1)*65536]
		s.iovs[i].Base = &s.bufs[i][0]
		s.iovs[i].SetLen(65536)
		h := &s.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
		h.Control = &s.oob[i*rawOOB]
	}
	s.readF = s.recvmmsg
	s.writeF = s.sendmmsg
	return s, nil
}

func (s *rawSocket) recvmmsg(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(len(s.hdrs)), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.n, s.errno = int(n), nil
	if e != 0 {
		s.errno = e
	}
	return true
}

func (s *rawSocket) sendmmsg(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.sendH[0])), uintptr(s.sendN), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.sent, s.sendErr = int(n), nil
	if e != 0 {
		s.sendErr = e
	}
	return true
}

func (r *rawESP) readLoop(s *rawSocket) {
	defer r.wg.Done()
	for {
		for i := range s.hdrs {
			h := &s.hdrs[i]
			h.Len = 0
			h.Hdr.Namelen = unix.SizeofSockaddrInet6
			h.Hdr.SetControllen(rawOOB)
			h.Hdr.Flags = 0
		}
		if err := s.rc.Read(s.readF); err != nil {
			return // closed
		}
		if s.errno != nil {
			if errors.Is(s.errno, unix.EBADF) {
				return
			}
			continue
		}
		s.pkts = s.pkts[:0]
		for i := range s.n {
			data := s.bufs[i][:min(int(s.hdrs[i].Len), len(s.bufs[i]))]
			var src, dst netip.Addr
			if !s.v6 {
				// IPv4 raw sockets deliver the IP header too.
				if len(data) < 20 || data[0]>>4 != 4 {
					continue
				}
				ihl := int(data[0]&0xf) * 4
				if ihl < 20 || len(data) < ihl {
					continue
				}
				src = netip.AddrFrom4([4]byte(data[12:16]))
				dst = netip.AddrFrom4([4]byte(data[16:20]))
				data = data[ihl:]
			} else {
				sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&s.names[i]))
				src = netip.AddrFrom16(sa.Addr)
				dst = pktinfoDst(s.oob[i*rawOOB : i*rawOOB+int(s.hdrs[i].Hdr.Controllen)])
			}
			s.pkts = append(s.pkts, transport.Packet{
				Local:  netip.AddrPortFrom(dst, 0),
				Remote: netip.AddrPortFrom(src, 0),
				Data:   data,
			})
		}
		if len(s.pkts) > 0 {
			r.b.handleESP(s.pkts, false)
		}
	}
}

// pktinfoDst finds the IPV6_PKTINFO destination address in a control
// message buffer.
func pktinfoDst(oob []byte) netip.Addr {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			break
		}
		if h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && l >= unix.CmsgLen(unix.SizeofInet6Pktinfo) {
			info := oob[unix.CmsgLen(0):]
			return netip.AddrFrom16([16]byte(info[:16]))
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return netip.Addr{}
}

// send sends plain ESP packets and returns how many failed. Called only by
// sendLoop.
func (r *rawESP) send(pkts []transport.Packet) (failed int) {
	for len(pkts) > 0 {
		v6 := pkts[0].Remote.Addr().Is6() && !pkts[0].Remote.Addr().Is4In6()
		n := 0
		for n < len(pkts) && n < rawBatch && (pkts[n].Remote.Addr().Is6() && !pkts[n].Remote.Addr().Is4In6()) == v6 {
			p := &pkts[n]
			r.iovs[n].Base = &p.Data[0]
			r.iovs[n].SetLen(len(p.Data))
			h := &r.hdrs[n].Hdr
			h.Iov = &r.iovs[n]
			h.SetIovlen(1)
			h.Name = (*byte)(unsafe.Pointer(&r.names[n]))
			if v6 {
				sa := &r.names[n]
				*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: p.Remote.Addr().As16()}
				h.Namelen = unix.SizeofSockaddrInet6
			} else {
				sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.names[n]))
				*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: p.Remote.Addr().Unmap().As4()}
				h.Namelen = unix.SizeofSockaddrInet4
			}
			h.Control, h.Controllen = nil, 0
			if src := p.Local.Addr(); src.IsValid() && !src.IsUnspecified() {
				oob := unsafe.Slice((*byte)(unsafe.Pointer(&r.oob[n*rawOOB/8])), rawOOB)
				h.Control = &oob[0]
				h.SetControllen(putPktinfo(oob, src, v6))
			}
			n++
		}
		s := r.v4
		if v6 {
			s = r.v6
		}
		group := r.hdrs[:n]
		pkts = pkts[n:]
		if s == nil {
			failed += n
			continue
		}
		for len(group) > 0 {
			s.sendH, s.sendN = group, len(group)
			if err := s.rc.Write(s.writeF); err != nil {
				failed += len(group)
				break
			}
			if s.sendErr != nil {
				// Skip the packet the kernel refused and go on.
				failed++
				group = group[1:]
				continue
			}
			group = group[s.sent:]
		}
	}
	return failed
}

// putPktinfo writes the control message that makes the kernel send from
// src (struct in_pktinfo's ipi_spec_dst, or in6_pktinfo's address; interface
// index 0: routing picks it) and returns its length.
func putPktinfo(oob []byte, src netip.Addr, v6 bool) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	if !v6 {
		n := unix.CmsgSpace(unix.SizeofInet4Pktinfo)
		clear(oob[:n])
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		a := src.Unmap().As4()
		copy(oob[unix.CmsgLen(0)+4:], a[:])
		return n
	}
	n := unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	clear(oob[:n])
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	a := src.As16()
	copy(oob[unix.CmsgLen(0):], a[:])
	return n
}

func (r *rawESP) close() error {
	var errs []error
	for _, s := range []*rawSocket{r.v4, r.v6} {
		if s != nil {
			errs = append(errs, s.f.Close())
		}
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

var _ = binary.BigEndian
