package transport

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bufSize holds any UDP payload (65,535 minus the UDP header, at most).
// The memory is touched only as far as datagrams fill it.
const bufSize = 1 << 16

// groMaxSegments is the most datagrams the kernel coalesces into one
// (UDP_GRO_CNT_MAX); espBatchGRO bounds a batch handed to HandleESP when
// coalesced datagrams can hold that many packets each.
const (
	groMaxSegments = 64
	espBatchGRO    = 512
)

// reader owns one socket's receive side: recvmmsg into a fixed set of
// buffers, split coalesced datagrams (UDP_GRO), classify, hand on. Nothing
// here allocates per ESP packet.
type reader struct {
	u *UDP
	s *socket

	bufs  []byte // batch slots of bufSize
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []uint64
	esp   []Packet // the ESP batch being gathered, at most cap(esp)

	// recvmmsgF's results; bound once (readFn) so RawConn.Read gets no
	// fresh closure per call.
	n      int
	errno  error
	readFn func(fd uintptr) bool

	// Counts of the current dispatch, added to the atomics at its end.
	ike, espc Counter
	drops     [NumDropReasons]uint64
	gro       uint64

	// Counters: written by this goroutine only, read by Stats.
	ikeIn, espIn atomicCounter
	dropsIn      [NumDropReasons]atomic.Uint64
	groIn        atomic.Uint64
	recvErr      atomic.Uint64
}

func newReader(u *UDP, s *socket) *reader {
	batch := u.batch
	espCap := batch
	if s.gro {
		espCap = max(batch, espBatchGRO)
	}
	r := &reader{
		u:     u,
		s:     s,
		bufs:  make([]byte, batch*bufSize),
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrInet6, batch),
		oob:   make([]uint64, batch*oobWords),
		esp:   make([]Packet, 0, espCap),
	}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i*bufSize]
		r.iovs[i].SetLen(bufSize)
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = (*byte)(unsafe.Pointer(&r.oob[i*oobWords]))
	}
	r.readFn = r.recvmmsgF
	return r
}

func (r *reader) recvmmsgF(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), 0, 0, 0)
	if e == unix.EAGAIN {
		return false // wait until readable
	}
	r.n = int(n)
	r.errno = nil
	if e != 0 {
		r.errno = e
	}
	return true
}

func (r *reader) run() {
	defer r.u.wg.Done()
	failures := 0
	for {
		n, err := r.read()
		if err != nil {
			if r.u.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			r.recvErr.Add(1)
			r.u.log.Warn("transport: receive failed", "local", r.s.local, "err", err)
			// Do not spin on an error that persists (ENOMEM, ...).
			failures = min(failures+1, 100)
			time.Sleep(time.Duration(failures) * time.Millisecond)
			continue
		}
		failures = 0
		r.dispatch(n)
	}
}

func (r *reader) read() (int, error) {
	for i := range r.hdrs {
		h := &r.hdrs[i]
		h.Len = 0
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
		h.Hdr.SetControllen(oobWords * 8)
		h.Hdr.Flags = 0
	}
	if err := r.s.raw.Read(r.readFn); err != nil {
		return 0, err
	}
	if r.errno != nil {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	return r.n, nil
}

// dispatch classifies the n datagrams just read and hands them on in
// arrival order: IKE one by one in a copy of its own, each run of ESP as one
// batch over the reader's buffers. A datagram the kernel coalesced
// (UDP_GRO) is cut at its segment size first, and each piece is a datagram
// of its own: GRO joins datagrams of one flow by size alone, so IKE and
// keepalives from the peer's NAT-T port may sit between ESP packets.
func (r *reader) dispatch(n int) {
	r.ike, r.espc, r.gro = Counter{}, Counter{}, 0
	clear(r.drops[:])
	r.esp = r.esp[:0]
	for i := range n {
		h := &r.hdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			r.drops[DropTruncated]++
			continue
		}
		datagram := r.bufs[i*bufSize : i*bufSize+min(int(h.Len), bufSize)]
		local, remote := r.local(i), getSockaddr(&r.names[i])
		seg := 0
		if r.s.gro {
			seg = getGROSize(r.control(i))
		}
		if seg <= 0 || seg >= len(datagram) {
			r.deliver(datagram, local, remote)
			continue
		}
		r.gro++
		for len(datagram) > 0 {
			d := datagram[:min(seg, len(datagram))]
			datagram = datagram[len(d):]
			r.deliver(d, local, remote)
		}
	}
	r.flushESP()
	r.count()
}

// count publishes the counts gathered so far. It runs before every handler
// call, so that a handler (or a test waiting on one) sees the counters
// include what it got and everything read before it.
func (r *reader) count() {
	if r.ike.Packets != 0 {
		r.ikeIn.add(r.ike.Packets, r.ike.Bytes)
		r.ike = Counter{}
	}
	if r.espc.Packets != 0 {
		r.espIn.add(r.espc.Packets, r.espc.Bytes)
		r.espc = Counter{}
	}
	for i, d := range r.drops {
		if d != 0 {
			r.dropsIn[i].Add(d)
			r.drops[i] = 0
		}
	}
	if r.gro != 0 {
		r.groIn.Add(r.gro)
		r.gro = 0
	}
}

// deliver classifies one datagram and queues it (ESP) or hands it on (IKE).
func (r *reader) deliver(datagram []byte, local, remote netip.AddrPort) {
	kind, payload := Classify(datagram, r.s.nat)
	switch kind {
	case KindKeepalive:
		r.drops[DropKeepalive]++
		return
	case KindJunk:
		r.drops[DropShort]++
		return
	}
	p := Packet{Local: local, Remote: remote, Data: payload}
	if kind == KindESP {
		r.espc.Packets++
		r.espc.Bytes += uint64(len(payload))
		r.esp = append(r.esp, p)
		if len(r.esp) == cap(r.esp) {
			r.flushESP()
		}
		return
	}
	r.ike.Packets++
	r.ike.Bytes += uint64(len(payload))
	// Keep the arrival order: the ESP before this message goes first.
	r.flushESP()
	// IKE is rare next to ESP and the engine may keep the message
	// (retransmission detection, AUTH over IKE_SA_INIT, RFC 7296
	// 2.15): give it its own buffer.
	p.Data = append([]byte(nil), payload...)
	r.count()
	r.u.h.HandleIKE(p)
}

func (r *reader) flushESP() {
	if len(r.esp) > 0 {
		r.count()
		r.u.h.HandleESP(r.esp)
		r.esp = r.esp[:0]
	}
}

// control returns the control messages the kernel wrote for datagram i.
func (r *reader) control(i int) []byte {
	oob := wordsAsBytes(r.oob[i*oobWords : (i+1)*oobWords])
	return oob[:min(int(r.hdrs[i].Hdr.Controllen), len(oob))]
}

// local is the address datagram i came to: the bound address, or on a
// wildcard socket the destination address from its pktinfo.
func (r *reader) local(i int) netip.AddrPort {
	if !r.s.wildcard {
		return r.s.local
	}
	if a, ok := getPktinfo(r.control(i), r.s.v6); ok {
		return netip.AddrPortFrom(a, r.s.local.Port())
	}
	return r.s.local
}
