package tun

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// DefaultMemQueue is how many packets a Mem device buffers in each direction.
const DefaultMemQueue = 1024

// Mem is one end of an in-memory pair of devices: what one end writes, the
// other reads, in order. One end plays the data plane's TUN device and the
// other the host's network stack (a test injects packets into the tunnel by
// writing on the host end and sees what comes out by reading there), or two
// data planes' hosts are joined through it.
//
// A Write blocks while the peer's queue is full (a real TUN device drops
// instead; the tests that count packets want none lost) and drops packets
// once the peer is closed. Nothing allocates per packet: the queues hold
// preallocated buffers.
type Mem struct {
	name string
	mtu  int
	peer *Mem

	// q holds the packets this end reads; free the empty buffers for them.
	q, free chan []byte
	closed  chan struct{}
	once    sync.Once

	dropped atomic.Uint64
}

// NewMemPair returns two connected in-memory devices with the given MTU, each
// buffering queue packets (0: DefaultMemQueue). dev is named name, host
// name+"-host".
func NewMemPair(name string, mtu, queue int) (dev, host *Mem) {
	if queue <= 0 {
		queue = DefaultMemQueue
	}
	mk := func(n string) *Mem {
		m := &Mem{
			name:   n,
			mtu:    mtu,
			q:      make(chan []byte, queue),
			free:   make(chan []byte, queue),
			closed: make(chan struct{}),
		}
		// One contiguous block: a packet never exceeds the MTU.
		block := make([]byte, queue*mtu)
		for i := range queue {
			m.free <- block[i*mtu : (i+1)*mtu : (i+1)*mtu]
		}
		return m
	}
	dev, host = mk(name), mk(name+"-host")
	dev.peer, host.peer = host, dev
	return dev, host
}

// Read implements Device: it waits for one packet, then takes whatever else
// is queued, up to len(bufs).
func (m *Mem) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	var p []byte
	select {
	case p = <-m.q:
	case <-m.closed:
		return 0, ErrClosed
	}
	n := 0
	for {
		if len(bufs[n]) < offset+len(p) {
			m.free <- p[:cap(p)]
			return n, fmt.Errorf("%w: %d-byte packet at offset %d in %d bytes", ErrTooSmall, len(p), offset, len(bufs[n]))
		}
		sizes[n] = copy(bufs[n][offset:], p)
		m.free <- p[:cap(p)]
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case p = <-m.q:
		default:
			return n, nil
		}
	}
}

// Write implements Device. Packets longer than the MTU are dropped and
// counted, as the kernel drops them.
func (m *Mem) Write(bufs [][]byte, offset int) (int, error) {
	select {
	case <-m.closed:
		return 0, ErrClosed
	default:
	}
	peer := m.peer
	for i, b := range bufs {
		if len(b) < offset {
			return i, fmt.Errorf("%w: offset %d in %d bytes", ErrTooSmall, offset, len(b))
		}
		pkt := b[offset:]
		if len(pkt) > m.mtu || len(pkt) == 0 {
			m.dropped.Add(1)
			continue
		}
		var slot []byte
		select {
		case slot = <-peer.free:
		case <-peer.closed:
			m.dropped.Add(uint64(len(bufs) - i))
			return len(bufs), nil
		case <-m.closed:
			return i, ErrClosed
		}
		slot = slot[:copy(slot, pkt)]
		peer.q <- slot // cannot block: there are as many slots as queue places
	}
	return len(bufs), nil
}

// Dropped returns how many packets Write dropped: too long, or written after
// the peer closed.
func (m *Mem) Dropped() uint64 { return m.dropped.Load() }

// Peer returns the other end of the pair.
func (m *Mem) Peer() *Mem { return m.peer }

// BatchSize implements Device.
func (m *Mem) BatchSize() int { return 64 }

// MTU implements Device.
func (m *Mem) MTU() int { return m.mtu }

// Name implements Device.
func (m *Mem) Name() string { return m.name }

// Close implements Device: Reads and Writes on this end fail with ErrClosed,
// and the peer's Writes to it are dropped. It is idempotent.
func (m *Mem) Close() error {
	m.once.Do(func() { close(m.closed) })
	return nil
}

var _ Device = (*Mem)(nil)
