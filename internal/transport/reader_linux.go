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

// reader owns one socket's receive side: recvmmsg into a fixed set of
// buffers, classify, hand on. Nothing here allocates per ESP packet.
type reader struct {
	u *UDP
	s *socket

	bufs  []byte // batch slots of bufSize
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []uint64
	esp   []Packet

	// recvmmsgF's results; bound once (readFn) so RawConn.Read gets no
	// fresh closure per call.
	n      int
	errno  error
	readFn func(fd uintptr) bool

	// Counters: written by this goroutine only, read by Stats.
	ikeIn, espIn atomicCounter
	drops        [NumDropReasons]atomic.Uint64
	recvErr      atomic.Uint64
}

func newReader(u *UDP, s *socket) *reader {
	batch := u.batch
	r := &reader{
		u:     u,
		s:     s,
		bufs:  make([]byte, batch*bufSize),
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrInet6, batch),
		oob:   make([]uint64, batch*oobWords),
		esp:   make([]Packet, 0, batch),
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
// batch over the reader's buffers.
func (r *reader) dispatch(n int) {
	var ike, esp Counter
	var drops [NumDropReasons]uint64
	batch := r.esp[:0]
	for i := range n {
		h := &r.hdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			drops[DropTruncated]++
			continue
		}
		datagram := r.bufs[i*bufSize : i*bufSize+min(int(h.Len), bufSize)]
		kind, payload := Classify(datagram, r.s.nat)
		switch kind {
		case KindKeepalive:
			drops[DropKeepalive]++
			continue
		case KindJunk:
			drops[DropShort]++
			continue
		}
		p := Packet{Local: r.local(i), Remote: getSockaddr(&r.names[i]), Data: payload}
		if kind == KindESP {
			esp.Packets++
			esp.Bytes += uint64(len(payload))
			batch = append(batch, p)
			continue
		}
		ike.Packets++
		ike.Bytes += uint64(len(payload))
		// Keep the arrival order: the ESP before this message goes first.
		if len(batch) > 0 {
			r.u.h.HandleESP(batch)
			batch = batch[:0]
		}
		// IKE is rare next to ESP and the engine may keep the message
		// (retransmission detection, AUTH over IKE_SA_INIT, RFC 7296
		// 2.15): give it its own buffer.
		p.Data = append([]byte(nil), payload...)
		r.u.h.HandleIKE(p)
	}
	if len(batch) > 0 {
		r.u.h.HandleESP(batch)
	}
	r.ikeIn.add(ike.Packets, ike.Bytes)
	r.espIn.add(esp.Packets, esp.Bytes)
	for i, d := range drops {
		if d != 0 {
			r.drops[i].Add(d)
		}
	}
}

// local is the address datagram i came to: the bound address, or on a
// wildcard socket the destination address from its pktinfo.
func (r *reader) local(i int) netip.AddrPort {
	if !r.s.wildcard {
		return r.s.local
	}
	oob := wordsAsBytes(r.oob[i*oobWords : (i+1)*oobWords])
	l := int(r.hdrs[i].Hdr.Controllen)
	if l > len(oob) {
		l = len(oob)
	}
	if a, ok := getPktinfo(oob[:l], r.s.v6); ok {
		return netip.AddrPortFrom(a, r.s.local.Port())
	}
	return r.s.local
}
