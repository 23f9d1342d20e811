package testbed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Packet capture with an AF_PACKET socket opened inside the namespace.
//
// Why not dumpcap/tshark -i: measured here, dumpcap (Wireshark 4.0) loses the
// packets of the last, not yet retired TPACKET_V3 block when it is stopped:
// a ping sent a few milliseconds before SIGINT is simply not in the file. It
// also takes a while to start, and the test must poll its stderr to know when
// it does. A plain AF_PACKET socket delivers each frame at once, is bound
// before StartCapture returns, and tells outgoing from incoming frames, which
// is what proves encryption: an endpoint also sees decrypted inner packets on
// receive. tshark still reads the files (Fields, Count).

const (
	captureSnaplen    = 256 << 10 // veth GSO frames can exceed 64 KiB
	captureMaxPackets = 1 << 20
	captureMaxBytes   = 256 << 20
)

// pcapng link types.
const (
	linkTypeEthernet = 1
	linkTypeRaw      = 101 // raw IPv4/IPv6, as on TUN devices such as ipsec0
)

var captureCounter atomic.Uint64

// Packet is one captured frame.
type Packet struct {
	Time     time.Time
	Outgoing bool   // sent by this namespace on dev (PACKET_OUTGOING)
	Data     []byte // the frame: Ethernet header first, or IP for TUN devices
	Length   int    // length on the wire, when Data is truncated
}

// Capture records every frame on one interface of a namespace.
type Capture struct {
	Path     string // pcapng file written by Stop
	Dev      string
	LinkType uint16 // linkTypeEthernet or linkTypeRaw

	file     *os.File
	rc       syscall.RawConn
	done     chan struct{}
	stopOnce sync.Once
	stopping atomic.Bool
	// reading is set while the reader takes a frame off the socket and
	// adds it (see settle).
	reading atomic.Bool

	mu      sync.Mutex
	packets []Packet
	bytes   int
	dropped int
	err     error
}

// StartCapture starts capturing every frame on dev inside ns (loopback,
// veth or TUN) and registers a cleanup that stops it. Frames are in the
// capture once StartCapture returns; Stop writes them to a pcapng file (with
// the direction of each frame) that tshark reads. Filter when reading
// (Capture.Fields and Capture.Count take Wireshark display filters, e.g.
// "udp.port == 4500 && esp").
func StartCapture(t testing.TB, ns *Netns, dev string) *Capture {
	t.Helper()
	Require(t, "root")
	fd, hatype, err := openPacketSocket(ns.Name, dev)
	if err != nil {
		t.Fatal(err)
	}
	c := &Capture{
		Path: filepath.Join(ns.Dir(), fmt.Sprintf("%s-%d.pcapng", dev, captureCounter.Add(1))),
		Dev:  dev,
		done: make(chan struct{}),
	}
	switch hatype {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		c.LinkType = linkTypeEthernet
	case unix.ARPHRD_NONE:
		c.LinkType = linkTypeRaw
	default:
		unix.Close(fd)
		t.Fatalf("testbed: capture on %s in %s: unsupported link type (ARPHRD %d)", dev, ns.Name, hatype)
	}
	// A non-blocking descriptor wrapped in os.File joins Go's poller, so the
	// reader can be woken by a deadline.
	c.file = os.NewFile(uintptr(fd), "packet:"+dev)
	if c.rc, err = c.file.SyscallConn(); err != nil {
		c.file.Close()
		t.Fatal(err)
	}
	go c.read()
	t.Cleanup(func() { c.Stop(t) })
	return c
}

// openPacketSocket creates an AF_PACKET socket in namespace nsName bound to
// dev. A socket keeps the namespace it was created in, so only its creation
// needs a thread switched into the namespace (setns affects one thread).
func openPacketSocket(nsName, dev string) (fd int, hatype uint16, err error) {
	type result struct {
		fd     int
		hatype uint16
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// If the thread cannot be put back, it stays locked and dies with
		// this goroutine instead of running other code in the wrong namespace.
		fd, hatype, restored, err := openPacketSocketLocked(nsName, dev)
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- result{fd, hatype, err}
	}()
	r := <-ch
	return r.fd, r.hatype, r.err
}

func openPacketSocketLocked(nsName, dev string) (fd int, hatype uint16, restored bool, err error) {
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return -1, 0, true, fmt.Errorf("testbed: capture: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", nsName))
	if err != nil {
		return -1, 0, true, fmt.Errorf("testbed: capture: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return -1, 0, true, fmt.Errorf("testbed: capture: setns %s: %w", nsName, err)
	}
	fd, hatype, err = bindPacketSocket(dev)
	if rerr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); rerr != nil {
		return fd, hatype, false, err
	}
	if err != nil {
		return -1, 0, true, fmt.Errorf("testbed: capture on %s in %s: %w", dev, nsName, err)
	}
	return fd, hatype, true, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func bindPacketSocket(dev string) (int, uint16, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, 0, err
	}
	ifr, err := unix.NewIfreq(dev)
	if err == nil {
		// SIOCGIFINDEX on any socket resolves in that socket's namespace.
		err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("interface %s: %w", dev, err)
	}
	// A large buffer, so that a burst is not dropped before the reader runs.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: int(ifr.Uint32())}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("bind: %w", err)
	}
	name, err := unix.Getsockname(fd)
	ll, ok := name.(*unix.SockaddrLinklayer)
	if err != nil || !ok {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("getsockname: %v", err)
	}
	return fd, ll.Hatype, nil
}

func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, captureSnaplen)
	var readErr error
	recv := func(fd uintptr) (done bool) {
		c.reading.Store(true)
		defer c.reading.Store(false)
		n, from, err := unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
		if err == unix.EAGAIN || err == unix.EINTR {
			return false
		}
		if err != nil {
			readErr = err
			return true
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		c.add(buf, n, ll != nil && ll.Pkttype == unix.PACKET_OUTGOING)
		return true
	}
	for {
		err := c.rc.Read(recv)
		if readErr != nil {
			c.setErr(readErr)
			return
		}
		if err == nil && !c.stopping.Load() {
			continue
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.setErr(err)
			return
		}
		// Stopping: take what the socket still holds, without waiting.
		c.rc.Control(func(fd uintptr) {
			for range captureMaxPackets {
				n, from, err := unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC|unix.MSG_DONTWAIT)
				if err != nil {
					return
				}
				ll, _ := from.(*unix.SockaddrLinklayer)
				c.add(buf, n, ll != nil && ll.Pkttype == unix.PACKET_OUTGOING)
			}
		})
		return
	}
}

func (c *Capture) add(buf []byte, n int, outgoing bool) {
	data := buf[:min(n, len(buf))]
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.packets) >= captureMaxPackets || c.bytes+len(data) > captureMaxBytes {
		c.dropped++
		return
	}
	c.packets = append(c.packets, Packet{Time: time.Now(), Outgoing: outgoing, Data: append([]byte(nil), data...), Length: n})
	c.bytes += len(data)
}

func (c *Capture) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = fmt.Errorf("testbed: capture on %s: %w", c.Dev, err)
	}
}

// Packets returns a copy of the list of frames captured so far: every frame
// the interface carried before the call (the kernel queues a frame on the
// capture's socket as it passes; Packets waits, a second at most, for the
// reader to take what is queued).
func (c *Capture) Packets() []Packet {
	c.settle()
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Packet(nil), c.packets...)
}

// settle waits until the socket holds no frame the reader has not added
// and the reader is not in the middle of one, or a second has passed, or
// the capture has stopped. The reader marks itself reading before it takes
// a frame off the socket, so an empty queue with the reader not reading
// means every queued frame is in c.packets.
func (c *Capture) settle() {
	deadline := time.Now().Add(time.Second)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		queued := 0
		c.rc.Control(func(fd uintptr) {
			// SIOCINQ on a packet socket: the length of the next queued frame, 0 if none.
			queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		})
		if (queued == 0 && !c.reading.Load()) || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Stop ends the capture, writes the pcapng file and returns its path. It is
// idempotent. A capture that overflowed its limits or failed fails the test.
func (c *Capture) Stop(t testing.TB) string {
	t.Helper()
	c.stopOnce.Do(func() {
		c.stopping.Store(true)
		c.file.SetReadDeadline(time.Now())
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Errorf("testbed: capture on %s did not stop", c.Dev)
		}
		c.file.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			t.Error(c.err)
		}
		if c.dropped > 0 {
			t.Errorf("testbed: capture on %s: %d frames over the limit (%d frames, %d bytes) not kept",
				c.Dev, c.dropped, captureMaxPackets, captureMaxBytes)
		}
		if err := os.WriteFile(c.Path, c.pcapng(), 0o600); err != nil {
			t.Error(err)
		}
	})
	return c.Path
}

// pcapng encodes the capture: a section header, one interface description
// and one enhanced packet block per frame with its direction in epb_flags.
// Everything is little-endian; the byte-order magic tells readers so.
func (c *Capture) pcapng() []byte {
	le := binary.LittleEndian
	var b []byte
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		b = le.AppendUint32(b, typ)
		b = le.AppendUint32(b, n)
		b = append(b, body...)
		b = le.AppendUint32(b, n)
	}
	option := func(body []byte, code uint16, val []byte) []byte {
		body = le.AppendUint16(body, code)
		body = le.AppendUint16(body, uint16(len(val)))
		body = append(body, val...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		return body
	}
	// Section Header Block: byte-order magic, version 1.0, unknown length.
	shb := le.AppendUint32(nil, 0x1A2B3C4D)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	block(0x0A0D0D0A, shb)
	// Interface Description Block with if_name and if_tsresol = 10^-9.
	idb := le.AppendUint16(nil, c.LinkType)
	idb = le.AppendUint16(idb, 0)
	idb = le.AppendUint32(idb, captureSnaplen)
	idb = option(idb, 2, []byte(c.Dev))
	idb = option(idb, 9, []byte{9})
	idb = option(idb, 0, nil)
	block(1, idb)
	for _, p := range c.packets {
		ts := uint64(p.Time.UnixNano())
		epb := le.AppendUint32(nil, 0)
		epb = le.AppendUint32(epb, uint32(ts>>32))
		epb = le.AppendUint32(epb, uint32(ts))
		epb = le.AppendUint32(epb, uint32(len(p.Data)))
		epb = le.AppendUint32(epb, uint32(p.Length))
		epb = append(epb, p.Data...)
		for len(epb)%4 != 0 {
			epb = append(epb, 0)
		}
		dir := uint32(1) // inbound
		if p.Outgoing {
			dir = 2
		}
		epb = option(epb, 2, le.AppendUint32(nil, dir))
		epb = option(epb, 0, nil)
		block(6, epb)
	}
	return b
}

// Fields stops the capture if needed and returns, for each frame matching
// the Wireshark display filter (e.g. "esp && udp.port == 4500"; "" for all),
// the values of fields (e.g. "ip.src", "esp.spi"). extra are more tshark
// options, such as decryption tables ("-o", "uat:esp_sa:...").
func (c *Capture) Fields(t testing.TB, filter string, fields []string, extra ...string) [][]string {
	t.Helper()
	args := []string{"-r", c.Stop(t), "-n", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	args = append(args, extra...)
	out := Tshark(t, args...)
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// Count returns how many frames match the display filter.
func (c *Capture) Count(t testing.TB, filter string) int {
	t.Helper()
	return c.Counts(t, filter)[0]
}

// Counts returns how many frames match each display filter, in one tshark
// pass (`-z io,stat`) when it can: tshark takes about 0.3 s of CPU to start,
// which adds up on a shared 2-CPU machine. Filters containing a comma or a
// double quote cannot be passed to io,stat and get a tshark run each.
func (c *Capture) Counts(t testing.TB, filters ...string) []int {
	t.Helper()
	counts := make([]int, len(filters))
	var batch []int // indexes of filters io,stat can take
	for i, f := range filters {
		if strings.ContainsAny(f, ",\"") || strings.TrimSpace(f) == "" {
			counts[i] = len(c.Fields(t, f, []string{"frame.number"}))
			continue
		}
		batch = append(batch, i)
	}
	if len(batch) == 0 {
		return counts
	}
	stat := "io,stat,0"
	for _, i := range batch {
		stat += "," + filters[i]
	}
	out := Tshark(t, "-r", c.Stop(t), "-n", "-q", "-z", stat)
	// The one data row: "| 0.000 <> 0.276 |      2 |   556 |      6 |  1032 |",
	// Frames and Bytes per filter; no row when the capture is empty.
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "<>") {
			continue
		}
		cols := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cols) != 1+2*len(batch) {
			t.Fatalf("testbed: tshark io,stat row %q: want %d columns", line, 1+2*len(batch))
		}
		for k, i := range batch {
			n, err := strconv.Atoi(strings.TrimSpace(cols[1+2*k]))
			if err != nil {
				t.Fatalf("testbed: tshark io,stat row %q: %v", line, err)
			}
			counts[i] = n
		}
		return counts
	}
	if len(c.Packets()) > 0 {
		t.Fatalf("testbed: tshark io,stat gave no counts for %d frames:\n%s", len(c.Packets()), out)
	}
	return counts
}

// Tshark runs tshark (outside any namespace) with a bounded time and returns
// its standard output; errors fail the test with its standard error.
func Tshark(t testing.TB, args ...string) string {
	t.Helper()
	Require(t, "tshark")
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := execCommand(ctx, "tshark", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testbed: tshark %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out)
}
