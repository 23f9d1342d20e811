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
		ike, esp                 atomicCounter
		keepalives, sendErr, gso atomic.Uint64
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

	// gso: send runs of equal-sized ESP packets as one message with
	// UDP_SEGMENT. Cleared for good when the kernel answers such a send
	// with EIO (see sendBuf.send). gro: UDP_GRO is on, received datagrams
	// may hold several.
	gso atomic.Bool
	gro bool
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
	u.sendBufs.New = func() any { return newSendBuf(batch, log) }

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
	gso, gro := u.Offload()
	log.Info("transport: listening", "addrs", u.LocalAddrs(), "batch", batch, "kernel_encap", cfg.KernelEncap,
		"udp_gso", gso, "udp_gro", gro)
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
	var off offloads
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			off, serr = setSockopts(int(fd), cfg, v6, nat, wildcard)
			if serr == nil && cfg.Control != nil {
				if err := cfg.Control(int(fd), v6); err != nil {
					serr = fmt.Errorf("control: %w", err)
				}
			}
		})
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
	s := &socket{conn: conn, raw: raw, local: local, v6: v6, nat: nat, wildcard: wildcard, gro: off.gro}
	s.gso.Store(off.gso)
	return s, nil
}

// offloads are the UDP offloads a NAT-T socket got.
type offloads struct{ gso, gro bool }

func setSockopts(fd int, cfg Config, v6, nat, wildcard bool) (offloads, error) {
	if v6 {
		// Separate IPv4 and IPv6 sockets; no v4-mapped addresses.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return offloads{}, fmt.Errorf("IPV6_V6ONLY: %w", err)
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
			return offloads{}, fmt.Errorf("pktinfo: %w", err)
		}
	}
	if !nat {
		return offloads{}, nil
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
			return offloads{}, fmt.Errorf("UDP_ENCAP: %w", err)
		}
	}
	var off offloads
	if !cfg.NoOffload {
		// UDP GSO (Linux 4.18): a kernel that knows the option answers
		// getsockopt; whether a send may use it is decided per message.
		_, err := unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		off.gso = err == nil
		// UDP GRO (Linux 5.0): runs of same-sized datagrams of one flow
		// arrive as one, with the size in a control message. Not with
		// UDP_ENCAP: then ESP belongs to the kernel (which has its own
		// ESP-in-UDP GRO) and only IKE comes up here.
		if !cfg.KernelEncap {
			off.gro = unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		}
	}
	return off, nil
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

// Offload reports whether the NAT-T sockets send with UDP GSO and receive
// with UDP GRO: true if any does (a kernel has them for all or none; GSO
// goes off on a socket whose sends fail with EIO).
func (u *UDP) Offload() (gso, gro bool) {
	for _, s := range u.socks {
		if s.nat {
			gso = gso || s.gso.Load()
			gro = gro || s.gro
		}
	}
	return gso, gro
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
		GSOOut:        u.out.gso.Load(),
	}
	for _, s := range u.socks {
		r := s.rd
		st.IKEIn.add(r.ikeIn.load())
		st.ESPIn.add(r.espIn.load())
		for i := range st.Drops {
			st.Drops[i] += r.dropsIn[i].Load()
		}
		st.GROIn += r.groIn.Load()
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
	res, err := sb.send(s, []Packet{p}, src, prefix, false)
	u.out.ike.add(res.sent, res.bytes)
	if res.sent == 0 {
		u.out.sendErr.Add(1)
	}
	return err
}

// SendESP sends UDP-encapsulated ESP packets (RFC 3948 2.1) with sendmmsg,
// from the NAT-T socket of each packet's Local address. Where the kernel
// has UDP GSO, each run of packets to one peer whose sizes are equal (the
// last may be shorter) goes as one message with UDP_SEGMENT, which the
// stack carries as one buffer as far as it can and cuts into the same
// datagrams the run would have been. Packets that cannot go (no socket,
// bad ESP, a send error) are skipped and counted; the first such error is
// returned.
func (u *UDP) SendESP(batch []Packet) error {
	if u.closed.Load() {
		return ErrClosed
	}
	sb := u.getSendBuf()
	defer u.putSendBuf(sb)
	var firstErr error
	var packets, bytes, failed, gso uint64
	for len(batch) > 0 {
		// A run of packets from the same local address shares a socket.
		local := batch[0].Local
		n := 1
		for n < len(batch) && batch[n].Local == local {
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
		res, err := sb.send(s, group, src, nil, true)
		packets += res.sent
		bytes += res.bytes
		gso += res.gso
		failed += uint64(n) - res.sent
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if errors.Is(err, ErrClosed) {
			break
		}
	}
	u.out.esp.add(packets, bytes)
	if gso != 0 {
		u.out.gso.Add(gso)
	}
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
	res, err := sb.send(s, []Packet{{Local: local, Remote: remote, Data: keepaliveData[:]}}, src, nil, false)
	u.out.keepalives.Add(res.sent)
	if res.sent == 0 {
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

// Limits of one UDP_SEGMENT message.
const (
	// gsoMaxSegments is UDP_MAX_SEGMENTS before Linux 6.10 (later
	// kernels take 128).
	gsoMaxSegments = 64
	// The IP layer takes a GSO message as one datagram for its length
	// limits: the IPv4 total length (20 octets of header, UDP's 8, the
	// payload) and the IPv6 payload length (UDP's 8, the payload) are
	// 16-bit fields.
	gsoMaxPayload4 = 0xFFFF - 20 - 8
	gsoMaxPayload6 = 0xFFFF - 8
	// sendIovs is the iovecs of one sendmmsg call: room for a few full
	// GSO runs, one iovec per packet (the kernel gathers them, so packets
	// are not copied here), and two per message otherwise (marker, data).
	sendIovs = 4 * gsoMaxSegments
)

// sendBuf is the scratch space of one sendmmsg call; pooled, so that a
// steady stream of sends allocates nothing.
type sendBuf struct {
	log   *slog.Logger
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []uint64 // oobWords per message
	msgs  []sendMsg

	// Arguments and results of sendmmsgF, which is bound once so that
	// RawConn.Write gets no fresh closure per call.
	fdHdrs  []unix.Mmsghdr
	n       int
	errno   error
	writeFn func(fd uintptr) bool
}

// sendMsg is what one message of a sendmmsg call carries: the caller's
// packets pkts[first:first+count] (more than one: a GSO run) and their
// bytes.
type sendMsg struct {
	first, count int
	bytes        uint64
}

// sendResult counts what a send call sent: packets, their bytes, and the
// messages that carried several packets (GSO).
type sendResult struct {
	sent, bytes, gso uint64
}

func newSendBuf(batch int, log *slog.Logger) *sendBuf {
	sb := &sendBuf{
		log:   log,
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, max(sendIovs, 2*batch)),
		names: make([]unix.RawSockaddrInet6, batch),
		oob:   make([]uint64, oobWords*batch),
		msgs:  make([]sendMsg, batch),
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

// send sends pkts on s, each behind prefix, from src if valid, with as many
// sendmmsg calls as it takes. With esp set, packets must pass ESP's check
// and, if s has GSO, runs of them go as one message each. Packets that
// cannot be addressed or fail the check are skipped; the first error is
// returned.
func (sb *sendBuf) send(s *socket, pkts []Packet, src netip.Addr, prefix []byte, esp bool) (res sendResult, err error) {
	maxPayload := gsoMaxPayload4
	if s.v6 {
		maxPayload = gsoMaxPayload6
	}
	// Packets before noGSO go one per message: their GSO send failed.
	noGSO := 0
	for i := 0; i < len(pkts); {
		m, niov := 0, 0
		for i < len(pkts) && m < len(sb.hdrs) && niov+2 <= len(sb.iovs) {
			p := &pkts[i]
			// RFC 3948 2.1: SPI zero would read as the non-ESP marker;
			// the peer must classify what we send as ESP.
			if esp && !isESP(p.Data) {
				err = keepFirst(err, ErrBadESP)
				i++
				continue
			}
			namelen := putSockaddr(&sb.names[m], p.Remote, s.v6)
			if namelen == 0 {
				err = keepFirst(err, fmt.Errorf("%w: from %v to %v", ErrNoSocket, p.Local, p.Remote))
				i++
				continue
			}
			msg := &sb.msgs[m]
			*msg = sendMsg{first: i, count: 1, bytes: uint64(len(p.Data))}
			iov0 := niov
			if len(prefix) > 0 {
				sb.iovs[niov].Base = &prefix[0]
				sb.iovs[niov].SetLen(len(prefix))
				niov++
			}
			if len(p.Data) > 0 {
				sb.iovs[niov].Base = &p.Data[0]
				sb.iovs[niov].SetLen(len(p.Data))
				niov++
			}
			i++
			seg := len(p.Data)
			if esp && msg.first >= noGSO && s.gso.Load() {
				// The run: same peer, no packet longer than the first,
				// a shorter one ends it (the kernel cuts every segment
				// but the last at seg).
				total := seg
				for i < len(pkts) && msg.count < gsoMaxSegments && niov < len(sb.iovs) {
					q := &pkts[i]
					l := len(q.Data)
					if l > seg || total+l > maxPayload || q.Remote != p.Remote || !isESP(q.Data) {
						break
					}
					sb.iovs[niov].Base = &q.Data[0]
					sb.iovs[niov].SetLen(l)
					niov++
					msg.count++
					msg.bytes += uint64(l)
					total += l
					i++
					if l < seg {
						break
					}
				}
			}
			h := &sb.hdrs[m]
			*h = unix.Mmsghdr{}
			h.Hdr.Name = (*byte)(unsafe.Pointer(&sb.names[m]))
			h.Hdr.Namelen = namelen
			if niov > iov0 {
				h.Hdr.Iov = &sb.iovs[iov0]
				h.Hdr.SetIovlen(niov - iov0)
			}
			oob := wordsAsBytes(sb.oob[m*oobWords : (m+1)*oobWords])
			oobLen := 0
			if src.IsValid() {
				oobLen = putPktinfo(oob, src)
			}
			if msg.count > 1 {
				oobLen += putSegmentSize(oob[oobLen:], seg)
			}
			if oobLen > 0 {
				h.Hdr.Control = &oob[0]
				h.Hdr.SetControllen(oobLen)
			}
			m++
		}

		for off := 0; off < m; {
			sb.fdHdrs = sb.hdrs[off:m]
			if werr := s.raw.Write(sb.writeFn); werr != nil {
				// The socket is closed.
				sb.fdHdrs = nil
				return res, keepFirst(err, ErrClosed)
			}
			if sb.errno != nil || sb.n <= 0 {
				// sendmmsg fails only for the first message.
				errno := sb.errno
				if errno == nil {
					errno = unix.EIO
				}
				msg := &sb.msgs[off]
				if msg.count > 1 {
					// The kernel refused to segment: EIO where the route
					// cannot (an XFRM policy on it; before Linux 6.11, a
					// device without checksum offload), EMSGSIZE or
					// EINVAL when a segment and its headers exceed the
					// path MTU. Send the run again one datagram per
					// packet; after EIO, never segment on this socket
					// again (wireguard-go does the same).
					if errno == unix.EIO && s.gso.CompareAndSwap(true, false) {
						sb.log.Warn("transport: UDP GSO send failed, sending ESP one datagram at a time from now on",
							"local", s.local, "err", errno)
					}
					noGSO = msg.first + msg.count
					i = msg.first
					break
				}
				err = keepFirst(err, fmt.Errorf("transport: send to %v: %w", pkts[msg.first].Remote, os.NewSyscallError("sendmmsg", errno)))
				off++
				continue
			}
			for _, msg := range sb.msgs[off : off+sb.n] {
				res.sent += uint64(msg.count)
				res.bytes += msg.bytes
				if msg.count > 1 {
					res.gso++
				}
			}
			off += sb.n
		}
	}
	sb.fdHdrs = nil
	return res, err
}

// keepFirst keeps the first error.
func keepFirst(first, next error) error {
	if first != nil {
		return first
	}
	return next
}
