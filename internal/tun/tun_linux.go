package tun

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinuxConfig configures OpenLinux.
type LinuxConfig struct {
	// Name is the interface name; "" lets the kernel pick (tunN).
	Name string
	// MTU of the device; 0 leaves the kernel's default (1500).
	MTU int
	// Offload opens the device with IFF_VNET_HDR and asks for checksum and
	// TCP segmentation offload (TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6): the
	// kernel then hands over TCP super-packets of up to 64 KiB, which Read
	// segments, so a TCP sender costs one read per 64 KiB instead of one
	// per segment. Write needs VirtioNetHdrLen bytes of headroom.
	Offload bool
	// Batch is BatchSize(): how many packets one Read returns at most (it
	// reads on while more are ready, and a super-packet with Offload
	// becomes up to that many segments). 0 means 128.
	Batch int
}

// Linux is a Linux TUN device.
type Linux struct {
	f       *os.File
	rc      syscall.RawConn
	name    string
	mtu     int
	offload bool
	batch   int
	index   int

	// Read side, used by one goroutine at a time.
	rbuf []byte // offload: the virtio-net header and a super-packet
	// rpending (offload) is the length of a packet in rbuf that did not
	// fit the buffers left in the previous Read: the next Read starts
	// with it.
	rpending int
	rdst     []byte
	rn       int
	rerr     error
	// rnonblock: readFd returns EAGAIN instead of waiting.
	rnonblock bool
	readF     func(fd uintptr) bool
	// readPacket is readOne; tests replace it.
	readPacket func(dst []byte, nonblock bool) (int, error)

	// Write side.
	wsrc   []byte
	gro    *coalescer
	werr   error
	writeF func(fd uintptr) bool

	closed  atomic.Bool
	dropped atomic.Uint64
}

// OpenLinux creates (or attaches to) the TUN device cfg names, sets its MTU
// and brings it up. It needs CAP_NET_ADMIN.
func OpenLinux(cfg LinuxConfig) (*Linux, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = 128
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tun: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(cfg.Name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: interface name %q: %w", cfg.Name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if cfg.Offload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: TUNSETIFF %q: %w", cfg.Name, err)
	}
	if cfg.Offload {
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("tun: TUNSETOFFLOAD: %w", err)
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: nonblocking: %w", err)
	}
	t := &Linux{
		f:       os.NewFile(uintptr(fd), "/dev/net/tun"),
		name:    ifr.Name(),
		offload: cfg.Offload,
		batch:   cfg.Batch,
	}
	t.readF = t.readFd
	t.writeF = t.writeFd
	t.readPacket = t.readOne
	if cfg.Offload {
		t.rbuf = make([]byte, VirtioNetHdrLen+65535)
		t.gro = newCoalescer()
	}
	if t.rc, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("tun: %w", err)
	}
	link, err := netlink.LinkByName(t.name)
	if err != nil {
		t.f.Close()
		return nil, fmt.Errorf("tun: %s: %w", t.name, err)
	}
	t.index = link.Attrs().Index
	if cfg.MTU > 0 {
		if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
			t.f.Close()
			return nil, fmt.Errorf("tun: %s: set MTU %d: %w", t.name, cfg.MTU, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("tun: %s: up: %w", t.name, err)
	}
	if link, err = netlink.LinkByIndex(t.index); err == nil {
		t.mtu = link.Attrs().MTU
	}
	if t.mtu == 0 {
		t.mtu = max(cfg.MTU, 1500)
	}
	return t, nil
}

func (t *Linux) readFd(fd uintptr) bool {
	n, err := unix.Read(int(fd), t.rdst)
	if (err == unix.EAGAIN && !t.rnonblock) || err == unix.EINTR {
		return false
	}
	t.rn, t.rerr = n, err
	return true
}

func (t *Linux) writeFd(fd uintptr) bool {
	_, err := unix.Write(int(fd), t.wsrc)
	if err == unix.EAGAIN || err == unix.EINTR {
		return false
	}
	t.werr = err
	return true
}

// readOne reads one packet into dst, blocking unless nonblock.
func (t *Linux) readOne(dst []byte, nonblock bool) (int, error) {
	t.rdst = dst
	t.rnonblock = nonblock
	if err := t.rc.Read(t.readF); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("tun: read: %w", err)
	}
	if t.rerr != nil {
		if t.closed.Load() {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("tun: read: %w", t.rerr)
	}
	return t.rn, nil
}

// Read implements Device. It blocks for the first packet, then collects
// what else is ready without sleeping again, until bufs are full. With
// Offload, a super-packet becomes its segments; one that does not fit the
// buffers left waits for the next Read.
func (t *Linux) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if t.offload {
		return t.readOffload(bufs, sizes, offset)
	}
	if len(bufs[0]) <= offset {
		return 0, ErrTooSmall
	}
	n, err := t.readPacket(bufs[0][offset:], false)
	if err != nil {
		return 0, err
	}
	sizes[0] = n
	k := 1
	// Collect what else is ready without sleeping again.
	for k < len(bufs) && len(bufs[k]) > offset {
		n, err := t.readPacket(bufs[k][offset:], true)
		if err != nil {
			break
		}
		sizes[k] = n
		k++
	}
	return k, nil
}

// readOffload is Read with IFF_VNET_HDR: each packet comes into rbuf behind
// its virtio-net header and is copied (a super-packet segmented) into bufs.
// Without the gathering, UDP (never a super-packet) would cross the data
// plane one packet per Read, with no batches for the transport's UDP GSO.
func (t *Linux) readOffload(bufs [][]byte, sizes []int, offset int) (int, error) {
	k := 0
	for k == 0 {
		n := t.rpending
		t.rpending = 0
		if n == 0 {
			var err error
			if n, err = t.readPacket(t.rbuf, false); err != nil {
				return 0, err
			}
		}
		m, err := t.segmentRead(n, bufs, sizes, offset)
		if err != nil {
			// One bad super-packet must not stop the device; what it
			// wrote before failing is whole.
			t.dropped.Add(1)
		}
		k = m
	}
	for k < len(bufs) {
		n, err := t.readPacket(t.rbuf, true)
		if err != nil {
			break // nothing more ready (or an error the next Read reports)
		}
		m, err := t.segmentRead(n, bufs[k:], sizes[k:], offset)
		if errors.Is(err, errNoRoom) {
			t.rpending = n
			break
		}
		if err != nil {
			t.dropped.Add(1)
		}
		k += m
	}
	return k, nil
}

// segmentRead segments the n bytes read into rbuf (virtio-net header
// first) into bufs.
func (t *Linux) segmentRead(n int, bufs [][]byte, sizes []int, offset int) (int, error) {
	if n < VirtioNetHdrLen {
		return 0, fmt.Errorf("%w: %d bytes without a virtio-net header", ErrMalformed, n)
	}
	var h virtioNetHdr
	h.decode(t.rbuf)
	return segment(t.rbuf[VirtioNetHdrLen:n], &h, bufs, sizes, offset)
}

// Write implements Device. With Offload, runs of in-order segments of one
// TCP flow are coalesced into super-packets (see gro.go); every other
// packet goes behind a zero virtio-net header (GSO_NONE) in its headroom.
func (t *Linux) Write(bufs [][]byte, offset int) (int, error) {
	if t.offload && offset < VirtioNetHdrLen {
		return 0, fmt.Errorf("%w: offload needs %d bytes of headroom", ErrTooSmall, VirtioNetHdrLen)
	}
	for i, b := range bufs {
		if len(b) <= offset {
			continue
		}
		pkt := b[offset:]
		if !t.offload {
			if err := t.write(pkt); err != nil {
				return i, err
			}
			continue
		}
		if s, ok := parseTCPSeg(pkt); ok {
			if t.gro.tryAppend(pkt, s) {
				continue
			}
			if t.gro.count > 0 {
				if err := t.write(t.gro.finish()); err != nil {
					return i, err
				}
			}
			t.gro.start(pkt, s)
			continue
		}
		if t.gro.count > 0 {
			if err := t.write(t.gro.finish()); err != nil {
				return i, err
			}
		}
		pkt = b[offset-VirtioNetHdrLen:]
		clear(pkt[:VirtioNetHdrLen])
		if err := t.write(pkt); err != nil {
			return i, err
		}
	}
	if t.offload && t.gro.count > 0 {
		if err := t.write(t.gro.finish()); err != nil {
			return len(bufs), err
		}
	}
	return len(bufs), nil
}

// write writes one packet (with its virtio-net header, with Offload).
func (t *Linux) write(pkt []byte) error {
	t.wsrc = pkt
	t.werr = nil
	if err := t.rc.Write(t.writeF); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("tun: write: %w", err)
	}
	if t.werr != nil {
		if t.closed.Load() {
			return ErrClosed
		}
		// EINVAL and friends: the kernel refused this packet.
		t.dropped.Add(1)
	}
	return nil
}

// Dropped counts packets the device dropped: malformed super-packets read,
// packets the kernel refused on write.
func (t *Linux) Dropped() uint64 { return t.dropped.Load() }

// Index is the interface index.
func (t *Linux) Index() int { return t.index }

// BatchSize implements Device.
func (t *Linux) BatchSize() int { return t.batch }

// MTU implements Device.
func (t *Linux) MTU() int { return t.mtu }

// Name implements Device.
func (t *Linux) Name() string { return t.name }

// Offload reports whether the device was opened with IFF_VNET_HDR.
func (t *Linux) Offload() bool { return t.offload }

// Close implements Device; the interface disappears with the last open file
// descriptor (the device is not persistent).
func (t *Linux) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	return t.f.Close()
}

var _ Device = (*Linux)(nil)
