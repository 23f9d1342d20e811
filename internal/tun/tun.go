// Package tun is Cygnet's layer-3 network device abstraction for the
// userspace data plane: a Device reads the IP packets the host routes into
// the tunnel and writes the packets that come out of it, several per call,
// after a caller-chosen headroom (offset), in the spirit of wireguard-go's
// tun.Device.
//
// Two implementations: the Linux TUN device (/dev/net/tun, IFF_TUN|IFF_NO_PI,
// optionally IFF_VNET_HDR with TUNSETOFFLOAD so that the kernel hands over TCP
// super-packets of up to 64 KiB, which Read segments itself), and Mem, an
// in-memory pair for tests and the rootless demo.
package tun

import (
	"errors"
)

// Device is a layer-3 tunnel device. Packets are raw IPv4 or IPv6 packets
// without any link-layer or packet-information header.
//
// Read and Write may be called concurrently with each other, but each by one
// goroutine at a time.
type Device interface {
	// Read reads one or more packets, the i-th into bufs[i][offset:], and
	// sets sizes[i] to its length; it returns how many it read. It blocks
	// until at least one packet is available. len(sizes) must be at least
	// len(bufs); each bufs[i] should hold offset+MTU bytes at least (and
	// bufs[0] offset+65535 if the device segments super-packets).
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)

	// Write writes each bufs[i][offset:] as one packet and returns how many
	// it wrote. The bytes before offset are headroom the device may use
	// (Offload needs VirtioNetHdrLen of it); Write may modify the buffers.
	// A packet the host refuses is dropped and counted, not an error.
	Write(bufs [][]byte, offset int) (int, error)

	// BatchSize is how many packets one Read may return at most: the
	// length of bufs the caller should pass.
	BatchSize() int

	// MTU is the device's MTU in bytes.
	MTU() int

	// Name is the interface name.
	Name() string

	// Close releases the device. A blocked Read returns ErrClosed.
	Close() error
}

// Errors.
var (
	// ErrClosed: the device has been closed.
	ErrClosed = errors.New("tun: device closed")
	// ErrTooSmall: a buffer cannot hold the packet (or the headroom).
	ErrTooSmall = errors.New("tun: buffer too small")
	// ErrMalformed: a packet or virtio-net header that cannot be segmented.
	ErrMalformed = errors.New("tun: malformed packet or offload header")
)
