package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP is the transport over real sockets: one IKE-port and one NAT-T-port
// socket per configured address and family, each with a reader goroutine.
type UDP struct {
	h       Handler
	log     *slog.Logger
	batch   int
	ikePort uint16
	natPort uint16

	socks []*socket
	// bound finds a socket bound to a specific address; wild lists the
	// sockets bound to a wildcard address (the source is then set per
	// datagram with a pktinfo control message).
	bound map[netip.AddrPort]*socket
	wild  []*socket

	sendBufs sync.Pool // *sendBuf

	out struct {
		ike, esp            atomicCounter
		keepalives, sendErr atomic.Uint64
	}

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

var _ Endpoint = (*UDP)(nil)

type socket struct {
	conn     *net.UDPConn
	raw      syscall.RawConn
	local    netip.AddrPort // as bound; the address may be unspecified
	v6       bool
	nat      bool // the NAT-T port: marker, ESP and keepalives
	wildcard bool
	rd       *reader
}

type atomicCounter struct{ packets, bytes atomic.Uint64 }

func (c *atomicCounter) add(packets, bytes uint64) {
	if packets != 0 {
		c.packets.Add(packets)
		c.bytes.Add(bytes)
	}
}

func (c *atomicCounter) load() Counter {
	return Counter{Packets: c.packets.Load(), Bytes: c.bytes.Load()}
}

// Backing store for the marker and keepalive iovecs; the kernel only reads them.
var (
	nonESPMarker  [MarkerLen]byte
	keepaliveData = [1]byte{keepaliveByte}
)

// ListenUDP binds the sockets cfg describes and starts one reader goroutine
// per socket, which calls h.
func ListenUDP(cfg Config, h Handler) (*UDP, error) {
	if h == nil {
		return nil, errors.New("transport: nil Handler")
	}
	if cfg.Port < 0 || cfg.Port > 65535 || cfg.NATPort < 0 || cfg.NATPort > 65535 {
		return nil, fmt.Errorf("transport: port out of range (port %d, NAT-T port %d)", cfg.Port, cfg.NATPort)
	}
	if cfg.Port != 0 && cfg.Port == cfg.NATPort {
		return nil, fmt.Errorf("transport: IKE port and NAT-T port are both %d", cfg.Port)
	}
	batch := cfg.BatchSize
	if batch == 0 {
		batch = DefaultBatchSize
	}
	if batch < 1 || batch > MaxBatchSize {
		return nil, fmt.Errorf("transport: batch size %d out of range 1..%d", cfg.BatchSize, MaxBatchSize)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	addrs, wildcard, err := listenAddrs(cfg.Addrs)
	if err != nil {
		return nil, err
	}

	u := &UDP{h: h, log: log, batch: batch, bound: make(map[netip.AddrPort]*socket)}
	u.sendBufs.New = func() any { return newSendBuf(batch) }

	// With port 0 the first socket of each kind picks the port and the
	// others take the same one, which another program may hold for some
	// family or address: then start over with fresh ports.
	for attempt := 0; ; attempt++ {
		err = u.bindAll(cfg, addrs, wildcard)
		if err == nil {
			break
		}
		if (cfg.Port == 0 || cfg.NATPort == 0) && errors.Is(err, unix.EADDRINUSE) && attempt < 8 {
			continue
		}
		return nil, err
	}

	for _, s := range u.socks {
		s.rd = newReader(u, s)
		if s.wildcard {
			u.wild = append(u.wild, s)
		} else {
			u.bound[netip.AddrPortFrom(s.local.Addr().WithZone(""), s.local.Port())] = s
		}
	}
	for _, s := range u.socks {
		u.wg.Add(1)
		go s.rd.run()
	}
	log.Info("transport: listening", "addrs", u.LocalAddrs(), "batch", batch, "kernel_encap", cfg.KernelEncap)
	return u, nil
}

// listenAddrs returns the addresses to bind, without duplicates.
func listenAddrs(cfg []netip.Addr) (addrs []netip.Addr, wildcard bool, err error) {
	if len(cfg) == 0 {
		return []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}, true, nil
	}
	for _, a := range cfg {
		if !a.IsValid() {
			return nil, false, errors.New("transport: invalid listen address")
		}
		a = a.Unmap()
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs, false, nil
}

func (u *UDP) bindAll(cfg Config, addrs []netip.Addr, wildcard bool) error {
	ports := [2]int{cfg.Port, cfg.NATPort}
	var socks []*socket
	fail := func(err error) error {
		for _, s := range socks {
			s.conn.Close()
		}
		return err
	}
	for _, a := range addrs {
		for kind, port := range ports {
			nat := kind == 1
			s, err := listenSocket(cfg, netip.AddrPortFrom(a, uint16(port)), nat)
			if err != nil {
				// A host without IPv6 still serves IPv4 on the wildcard.
				if wildcard && a.Is6() && !nat && (errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EADDRNOTAVAIL)) {
					u.log.Info("transport: no IPv6 on this host, listening on IPv4 only", "err", err)
					break
				}
				return fail(err)
			}
			socks = append(socks, s)
			if port == 0 {
				ports[kind] = int(s.local.Port())
			}
		}
	}
	u.socks = socks
	u.ikePort, u.natPort = uint16(ports[0]), uint16(ports[1])
	return nil
}

func listenSocket(cfg Config, ap netip.AddrPort, nat bool) (*socket, error) {
	v6 := ap.Addr().Is6()
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	wildcard := ap.Addr().IsUnspecified()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setSockopts(int(fd), cfg, v6, nat, wildcard) })
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, ap.String())
	if err != nil {
		return nil, fmt.Errorf("transport: listen on %s: %w", ap, err)
	}
	conn := pc.(*net.UDPConn)
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: listen on %s: %w", ap, err)
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	return &socket{conn: conn, raw: raw, local: local, v6: v6, nat: nat, wildcard: wildcard}, nil
}

func setSockopts(fd int, cfg Config, v6, nat, wildcard bool) error {
	if v6 {
		// Separate IPv4 and IPv6 sockets; no v4-mapped addresses.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fmt.Errorf("IPV6_V6ONLY: %w", err)
		}
	}
	if wildcard {
		// On a wildcard socket we must learn which local address each
		// datagram came to (for NAT-D, RFC 7296 2.23, and to answer from
		// it, RFC 7296 2.11).
		var err error
		if v6 {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		} else {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
		if err != nil {
			return fmt.Errorf("pktinfo: %w", err)
		}
	}
	if !nat {
		return nil
	}
	if size := cfg.SocketBuffer; size >= 0 {
		if size == 0 {
			size = DefaultSocketBuffer
		}
		// The FORCE variants pass net.core.[rw]mem_max but need
		// CAP_NET_ADMIN; without it the kernel caps the plain ones.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size)
		}
	}
	// RFC 3948 2.1 lets ESP-in-UDP over IPv4 go with checksum zero
	// (SO_NO_CHECK), but that socket option would also strip it from IKE
	// on this port; the kernel's checksum costs little with offload, so
	// we keep it.
	//
	// Without UDP_ENCAP the kernel hands every datagram to us, ESP included,
	// and never tries to decapsulate. With it, ESP for SAs in the kernel's
	// SAD is decapsulated by XFRM; IKE (behind the marker) still comes up.
	if cfg.KernelEncap {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_ENCAP, unix.UDP_ENCAP_ESPINUDP); err != nil {
			return fmt.Errorf("UDP_ENCAP: %w", err)
		}
	}
	return nil
}

// LocalAddrs lists the sockets' bound addresses and ports (wildcard
// addresses included as such).
func (u *UDP) LocalAddrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(u.socks))
	for i, s := range u.socks {
		out[i] = s.local
	}
	return out
}

// Ports returns the IKE and NAT-T ports (useful after binding port 0).
func (u *UDP) Ports() (ike, nat uint16) { return u.ikePort, u.natPort }

// Close closes the sockets and waits for the reader goroutines to return.
// It must not be called from a Handler method.
func (u *UDP) Close() error {
	u.closeOnce.Do(func() {
		u.closed.Store(true)
		var errs []error
		for _, s := range u.socks {
			errs = append(errs, s.conn.Close())
		}
		u.wg.Wait()
		u.closeErr = errors.Join(errs...)
		u.log.Info("transport: closed")
	})
	return u.closeErr
}

// Stats returns the counters.
func (u *UDP) Stats() Stats {
	st := Stats{
		IKEOut:        u.out.ike.load(),
		ESPOut:        u.out.esp.load(),
		KeepalivesOut: u.out.keepalives.Load(),
		SendErrors:    u.out.sendErr.Load(),
	}
	for _, s := range u.socks {
		r := s.rd
		st.IKEIn.add(r.ikeIn.load())
		st.ESPIn.add(r.espIn.load())
		for i := range st.Drops {
			st.Drops[i] += r.drops[i].Load()
		}
		st.ReceiveErrors += r.recvErr.Load()
	}
	return st
}

// lookup finds the socket to send from local to remote, and the source
// address to ask for with a pktinfo control message (invalid: none).
//
// A specific local address must be bound, directly or through a wildcard
// socket of its family. An unspecified or missing local address takes any
// socket of the port and family, and the kernel picks the source.
func (u *UDP) lookup(local, remote netip.AddrPort) (*socket, netip.Addr, error) {
	v6 := remote.Addr().Unmap().Is6()
	la := local.Addr().Unmap()
	port := local.Port()
	if la.IsValid() && !la.IsUnspecified() {
		if la.Is6() == v6 {
			if s := u.bound[netip.AddrPortFrom(la.WithZone(""), port)]; s != nil {
				return s, netip.Addr{}, nil
			}
			for _, s := range u.wild {
				if s.v6 == v6 && s.local.Port() == port {
					return s, la, nil
				}
			}
		}
	} else {
		for _, s := range u.socks {
			if s.v6 == v6 && s.local.Port() == port {
				return s, netip.Addr{}, nil
			}
		}
	}
	return nil, netip.Addr{}, fmt.Errorf("%w: from %v to %v", ErrNoSocket, local, remote)
}

// SendIKE sends one IKE message, behind the non-ESP marker when p.Local's
// port is the NAT-T port (RFC 3948 2.2, RFC 7296 2.23).
func (u *UDP) SendIKE(p Packet) error {
	if u.closed.Load() {
		return ErrClosed
	}
	s, src, err := u.lookup(p.Local, p.Remote)
	if err != nil {
		u.out.sendErr.Add(1)
		return err
	}
	var prefix []byte
	if s.nat {
		prefix = nonESPMarker[:]
	}
	sb := u.getSendBuf()
	defer u.putSendBuf(sb)
	sent, bytes, err := sb.send(s, []Packet{p}, src, prefix, false)
	u.out.ike.add(sent, bytes)
	if sent == 0 {
		u.out.sendErr.Add(1)
	}
	return err
}

// SendESP sends UDP-encapsulated ESP packets (RFC 3948 2.1) with sendmmsg,
// from the NAT-T socket of each packet's Local address. Packets that cannot
// go (no socket, bad ESP, a send error) are skipped and counted; the first
// such error is returned.
func (u *UDP) SendESP(batch []Packet) error {
	if u.closed.Load() {
		return ErrClosed
	}
	sb := u.getSendBuf()
	defer u.putSendBuf(sb)
	var firstErr error
	var packets, bytes, failed uint64
	for len(batch) > 0 {
		// A run of packets from the same local address shares a socket.
		local := batch[0].Local
		n := 1
		for n < len(batch) && n < len(sb.hdrs) && batch[n].Local == local {
			n++
		}
		group := batch[:n]
		batch = batch[n:]
		s, src, err := u.lookup(local, group[0].Remote)
		if err == nil && !s.nat {
			err = fmt.Errorf("%w: %v", ErrNotNATPort, local)
		}
		if err != nil {
			failed += uint64(n)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		sent, b, err := sb.send(s, group, src, nil, true)
		packets += sent
		bytes += b
		failed += uint64(n) - sent
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if errors.Is(err, ErrClosed) {
			break
		}
	}
	u.out.esp.add(packets, bytes)
	if failed != 0 {
		u.out.sendErr.Add(failed)
	}
	return firstErr
}

// SendKeepalive sends a NAT-keepalive, one 0xFF octet (RFC 3948 2.3), from
// the NAT-T socket of local.
func (u *UDP) SendKeepalive(local, remote netip.AddrPort) error {
	if u.closed.Load() {
		return ErrClosed
	}
	s, src, err := u.lookup(local, remote)
	if err == nil && !s.nat {
		err = fmt.Errorf("%w: %v", ErrNotNATPort, local)
	}
	if err != nil {
		u.out.sendErr.Add(1)
		return err
	}
	sb := u.getSendBuf()
	defer u.putSendBuf(sb)
	sent, _, err := sb.send(s, []Packet{{Local: local, Remote: remote, Data: keepaliveData[:]}}, src, nil, false)
	u.out.keepalives.Add(sent)
	if sent == 0 {
		u.out.sendErr.Add(1)
	}
	return err
}

func (u *UDP) getSendBuf() *sendBuf { return u.sendBufs.Get().(*sendBuf) }

func (u *UDP) putSendBuf(sb *sendBuf) {
	// Drop the references to the callers' buffers before pooling.
	clear(sb.iovs)
	u.sendBufs.Put(sb)
}

// sendBuf is the scratch space of one sendmmsg call; pooled, so that a
// steady stream of sends allocates nothing.
type sendBuf struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec // two per message: prefix, data
	names []unix.RawSockaddrInet6
	oob   []uint64
	lens  []int // Data length per message
	pkt   []int // index into the caller's packets per message

	// Arguments and results of sendmmsgF, which is bound once so that
	// RawConn.Write gets no fresh closure per call.
	fdHdrs  []unix.Mmsghdr
	n       int
	errno   error
	writeFn func(fd uintptr) bool
}

func newSendBuf(batch int) *sendBuf {
	sb := &sendBuf{
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, 2*batch),
		names: make([]unix.RawSockaddrInet6, batch),
		oob:   make([]uint64, oobWords*batch),
		lens:  make([]int, batch),
		pkt:   make([]int, batch),
	}
	sb.writeFn = sb.sendmmsgF
	return sb
}

func (sb *sendBuf) sendmmsgF(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&sb.fdHdrs[0])), uintptr(len(sb.fdHdrs)), 0, 0, 0)
	if e == unix.EAGAIN {
		return false // wait until writable
	}
	sb.n = int(n)
	sb.errno = nil
	if e != 0 {
		sb.errno = e
	}
	return true
}

// send sends pkts (at most len(sb.hdrs)) on s, each behind prefix, from src
// if valid. It returns how many went and their bytes (without prefix).
// Packets that cannot be addressed, or fail ESP's check when esp is set,
// are skipped; the first error is returned.
func (sb *sendBuf) send(s *socket, pkts []Packet, src netip.Addr, prefix []byte, esp bool) (sent, bytes uint64, err error) {
	oob := wordsAsBytes(sb.oob)
	var oobLen int
	if src.IsValid() {
		// Same source for the whole run: build the control message once
		// and point every header at it.
		oobLen = putPktinfo(oob, src)
	}
	n := 0
	for i := range pkts {
		p := &pkts[i]
		// RFC 3948 2.1: SPI zero would read as the non-ESP marker; the
		// peer must classify what we send as ESP.
		if esp && !isESP(p.Data) {
			err = keepFirst(err, ErrBadESP)
			continue
		}
		namelen := putSockaddr(&sb.names[n], p.Remote, s.v6)
		if namelen == 0 {
			err = keepFirst(err, fmt.Errorf("%w: from %v to %v", ErrNoSocket, p.Local, p.Remote))
			continue
		}
		iov := sb.iovs[2*n : 2*n+2]
		niov := 0
		if len(prefix) > 0 {
			iov[niov].Base = &prefix[0]
			iov[niov].SetLen(len(prefix))
			niov++
		}
		if len(p.Data) > 0 {
			iov[niov].Base = &p.Data[0]
			iov[niov].SetLen(len(p.Data))
			niov++
		}
		h := &sb.hdrs[n]
		*h = unix.Mmsghdr{}
		h.Hdr.Name = (*byte)(unsafe.Pointer(&sb.names[n]))
		h.Hdr.Namelen = namelen
		if niov > 0 {
			h.Hdr.Iov = &iov[0]
			h.Hdr.SetIovlen(niov)
		}
		if oobLen > 0 {
			h.Hdr.Control = &oob[0]
			h.Hdr.SetControllen(oobLen)
		}
		sb.lens[n] = len(p.Data)
		sb.pkt[n] = i
		n++
	}

	for off := 0; off < n; {
		sb.fdHdrs = sb.hdrs[off:n]
		if werr := s.raw.Write(sb.writeFn); werr != nil {
			// The socket is closed.
			return sent, bytes, keepFirst(err, ErrClosed)
		}
		if sb.errno != nil || sb.n <= 0 {
			// sendmmsg fails only for the first message; skip it.
			errno := sb.errno
			if errno == nil {
				errno = unix.EIO
			}
			err = keepFirst(err, fmt.Errorf("transport: send to %v: %w", pkts[sb.pkt[off]].Remote, os.NewSyscallError("sendmmsg", errno)))
			off++
			continue
		}
		for _, l := range sb.lens[off : off+sb.n] {
			bytes += uint64(l)
		}
		sent += uint64(sb.n)
		off += sb.n
	}
	sb.fdHdrs = nil
	return sent, bytes, err
}

// keepFirst keeps the first error.
func keepFirst(first, next error) error {
	if first != nil {
		return first
	}
	return next
}
