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

	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// GSOConn is a UDP socket for UDP-encapsulated ESP (RFC 3948) with the
// kernel's UDP segmentation and receive offloads: a run of equal-sized ESP
// packets to one peer leaves in one sendmsg with UDP_SEGMENT (the stack
// handles the run as one 64 KiB buffer down to the device, or to the peer
// namespace over veth), and with UDP_GRO the socket receives such runs
// whole, with the segment size in a control message.
//
// It is the model for giving internal/transport these offloads; today the
// daemon's NAT-T socket (which also carries IKE) is transport's, and
// GSOConn serves bench/esppeer, which runs no IKE. Received datagrams that
// are not ESP (IKE behind the non-ESP marker, keepalives) are dropped.
type GSOConn struct {
	f     *os.File
	rc    syscall.RawConn
	local netip.AddrPort
	b     *Backend
	wg    sync.WaitGroup

	// send side (one sender goroutine: the Backend's sendLoop)
	sbuf   []byte // gsoMsgs * 64 KiB
	shdrs  []unix.Mmsghdr
	siovs  []unix.Iovec
	snames []unix.RawSockaddrInet6
	soob   []byte
	sn     int
	soff   int
	ssent  int
	serr   error
	sendF  func(fd uintptr) bool

	// receive side
	rbufs  [][]byte
	rhdrs  []unix.Mmsghdr
	riovs  []unix.Iovec
	rnames []unix.RawSockaddrInet6
	roob   []byte
	rn     int
	rerr   error
	recvF  func(fd uintptr) bool
	pkts   []transport.Packet
}

const (
	gsoMsgs    = 16 // GSO messages per sendmmsg
	gsoMaxSegs = 64 // UDP_MAX_SEGMENTS in older kernels
	gsoBuf     = 65535
	gsoOOB     = 64
	groMsgs    = 8
)

// ListenGSO binds a UDP socket on local (a NAT-T port) with UDP_GRO on and
// starts a reader that hands ESP to b. Send ESP through it with
// b.SetSender(conn).
func ListenGSO(local netip.AddrPort, b *Backend) (*GSOConn, error) {
	family := unix.AF_INET
	if local.Addr().Is6() && !local.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("userspace: UDP socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
	if err := unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("userspace: UDP_GRO: %w", err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(local.Port()), Addr: local.Addr().Unmap().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(local.Port()), Addr: local.Addr().As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("userspace: bind %v: %w", local, err)
	}
	c := &GSOConn{
		f:      os.NewFile(uintptr(fd), "esp-gso"),
		local:  local,
		b:      b,
		sbuf:   make([]byte, gsoMsgs*gsoBuf),
		shdrs:  make([]unix.Mmsghdr, gsoMsgs),
		siovs:  make([]unix.Iovec, gsoMsgs),
		snames: make([]unix.RawSockaddrInet6, gsoMsgs),
		soob:   make([]byte, gsoMsgs*gsoOOB),
		rbufs:  make([][]byte, groMsgs),
		rhdrs:  make([]unix.Mmsghdr, groMsgs),
		riovs:  make([]unix.Iovec, groMsgs),
		rnames: make([]unix.RawSockaddrInet6, groMsgs),
		roob:   make([]byte, groMsgs*gsoOOB),
		pkts:   make([]transport.Packet, 0, groMsgs*gsoMaxSegs),
	}
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, err
	}
	block := make([]byte, groMsgs*gsoBuf)
	for i := range c.rbufs {
		c.rbufs[i] = block[i*gsoBuf : (i+1)*gsoBuf]
		c.riovs[i].Base = &c.rbufs[i][0]
		c.riovs[i].SetLen(gsoBuf)
		h := &c.rhdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&c.rnames[i]))
		h.Iov = &c.riovs[i]
		h.SetIovlen(1)
		h.Control = &c.roob[i*gsoOOB]
	}
	c.sendF = c.sendmmsg
	c.recvF = c.recvmmsg
	c.wg.Add(1)
	go c.readLoop()
	return c, nil
}

func (c *GSOConn) sendmmsg(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.shdrs[c.soff])), uintptr(c.sn), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	c.ssent, c.serr = int(n), nil
	if e != 0 {
		c.serr = e
	}
	return true
}

func (c *GSOConn) recvmmsg(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rhdrs[0])), uintptr(len(c.rhdrs)), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	c.rn, c.rerr = int(n), nil
	if e != 0 {
		c.rerr = e
	}
	return true
}

// SendESP implements ESPSender: runs of packets to one peer whose sizes are
// equal (the last may be shorter) go as one GSO message each.
func (c *GSOConn) SendESP(batch []transport.Packet) error {
	var firstErr error
	for len(batch) > 0 {
		m := 0
		for m < gsoMsgs && len(batch) > 0 {
			remote := batch[0].Remote
			seg := len(batch[0].Data)
			off := m * gsoBuf
			n, size := 0, 0
			for n < len(batch) && n < gsoMaxSegs && batch[n].Remote == remote &&
				len(batch[n].Data) <= seg && size+len(batch[n].Data) <= gsoBuf-8 {
				size += copy(c.sbuf[off+size:], batch[n].Data)
				n++
				if len(batch[n-1].Data) < seg {
					break // a shorter packet ends a GSO run
				}
			}
			c.siovs[m].Base = &c.sbuf[off]
			c.siovs[m].SetLen(size)
			h := &c.shdrs[m].Hdr
			h.Iov = &c.siovs[m]
			h.SetIovlen(1)
			h.Name = (*byte)(unsafe.Pointer(&c.snames[m]))
			h.Namelen = putSockaddr(&c.snames[m], remote)
			if n > 1 {
				oob := c.soob[m*gsoOOB : (m+1)*gsoOOB]
				ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
				ch.Level, ch.Type = unix.SOL_UDP, unix.UDP_SEGMENT
				ch.SetLen(unix.CmsgLen(2))
				binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(seg))
				h.Control = &oob[0]
				h.SetControllen(unix.CmsgSpace(2))
			} else {
				h.Control = nil
				h.SetControllen(0)
			}
			batch = batch[n:]
			m++
		}
		hdrs := c.shdrs[:m]
		for len(hdrs) > 0 {
			c.sn = len(hdrs)
			c.soff = m - len(hdrs)
			if err := c.rc.Write(c.sendF); err != nil {
				return err
			}
			if c.serr != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("userspace: sendmmsg: %w", c.serr)
				}
				hdrs = hdrs[1:]
				continue
			}
			hdrs = hdrs[c.ssent:]
		}
	}
	return firstErr
}

func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort) uint32 {
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().Unmap().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:], ap.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	return unix.SizeofSockaddrInet6
}

func getSockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == unix.AF_INET {
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
}

// groSize returns the UDP_GRO segment size from a control buffer, 0 if none.
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(2) {
			d := oob[unix.CmsgLen(0):]
			if l >= unix.CmsgLen(4) {
				return int(binary.NativeEndian.Uint32(d))
			}
			return int(binary.NativeEndian.Uint16(d))
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return 0
}

func (c *GSOConn) readLoop() {
	defer c.wg.Done()
	for {
		for i := range c.rhdrs {
			h := &c.rhdrs[i]
			h.Len = 0
			h.Hdr.Namelen = unix.SizeofSockaddrInet6
			h.Hdr.SetControllen(gsoOOB)
			h.Hdr.Flags = 0
		}
		if err := c.rc.Read(c.recvF); err != nil {
			return
		}
		if c.rerr != nil {
			if errors.Is(c.rerr, unix.EBADF) {
				return
			}
			continue
		}
		c.pkts = c.pkts[:0]
		for i := range c.rn {
			data := c.rbufs[i][:min(int(c.rhdrs[i].Len), gsoBuf)]
			remote := getSockaddr(&c.rnames[i])
			seg := groSize(c.roob[i*gsoOOB : i*gsoOOB+int(c.rhdrs[i].Hdr.Controllen)])
			if seg <= 0 {
				seg = len(data)
			}
			for len(data) > 0 {
				d := data[:min(seg, len(data))]
				data = data[len(d):]
				if kind, esp := transport.Classify(d, true); kind == transport.KindESP {
					c.pkts = append(c.pkts, transport.Packet{Local: c.local, Remote: remote, Data: esp})
				}
			}
		}
		if len(c.pkts) > 0 {
			c.b.HandleESP(c.pkts)
		}
	}
}

// LocalAddrs returns the address the socket is bound to (a Backend given
// the conn with SetSender keeps its port out of the route table).
func (c *GSOConn) LocalAddrs() []netip.AddrPort { return []netip.AddrPort{c.local} }

// Close closes the socket and waits for the reader.
func (c *GSOConn) Close() error {
	err := c.f.Close()
	c.wg.Wait()
	return err
}
