package tun

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// fakeReads replaces a Linux device's reads with a queue: each entry is
// what one read(2) returns (the virtio-net header first, with Offload).
// An empty queue is EAGAIN for a nonblocking read and ErrClosed for a
// blocking one.
type fakeReads struct{ queue [][]byte }

func (f *fakeReads) read(dst []byte, nonblock bool) (int, error) {
	if len(f.queue) == 0 {
		if nonblock {
			return 0, unix.EAGAIN
		}
		return 0, ErrClosed
	}
	n := copy(dst, f.queue[0])
	f.queue = f.queue[1:]
	return n, nil
}

func fakeLinux(offload bool) (*Linux, *fakeReads) {
	f := &fakeReads{}
	t := &Linux{offload: offload, batch: 8, readPacket: f.read}
	if offload {
		t.rbuf = make([]byte, VirtioNetHdrLen+65535)
	}
	return t, f
}

// vnet prepends a virtio-net header.
func vnet(h virtioNetHdr, pkt []byte) []byte {
	b := make([]byte, VirtioNetHdrLen, VirtioNetHdrLen+len(pkt))
	h.encode(b)
	return append(b, pkt...)
}

// udpPacket is an IPv4 UDP packet whose payload says i.
func udpPacket(i int) []byte {
	payload := fmt.Appendf(nil, "datagram %d", i)
	return udpIPv4Packet([4]byte{10, 1, 0, 1}, [4]byte{10, 2, 0, 1}, 4000, 5201, payload)
}

func udpIPv4Packet(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	p[2], p[3] = byte(len(p)>>8), byte(len(p))
	p[8], p[9] = 64, 17
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	ipv4HeaderChecksum(p[:20])
	p[20], p[21], p[22], p[23] = byte(sport>>8), byte(sport), byte(dport>>8), byte(dport)
	p[24], p[25] = byte((8+len(payload))>>8), byte(8+len(payload))
	copy(p[28:], payload)
	return p
}

func readBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// With and without Offload, a Read returns every packet that is ready, up
// to the buffers it has; a super-packet that does not fit the buffers left
// starts the next Read; a malformed one is dropped and counted.
func TestReadGathers(t *testing.T) {
	const offset = 16
	for _, offload := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			d, f := fakeLinux(offload)
			wrap := func(pkt []byte) []byte {
				if offload {
					return vnet(virtioNetHdr{}, pkt)
				}
				return pkt
			}
			for i := range 11 {
				f.queue = append(f.queue, wrap(udpPacket(i)))
			}
			bufs, sizes := readBufs(8, offset+1500)
			next := 0
			check := func(n int, err error, want int) {
				t.Helper()
				if err != nil || n != want {
					t.Fatalf("Read: %d packets, %v; want %d", n, err, want)
				}
				for i := range n {
					if got := bufs[i][offset : offset+sizes[i]]; !bytes.Equal(got, udpPacket(next)) {
						t.Fatalf("packet %d: %q, want datagram %d", i, got, next)
					}
					next++
				}
			}
			n, err := d.Read(bufs, sizes, offset)
			check(n, err, 8)
			n, err = d.Read(bufs, sizes, offset)
			check(n, err, 3)
			if !offload {
				return
			}
			// 2 datagrams, a super-packet of 5 segments (3 buffers left of
			// 5: it waits), a datagram, a malformed packet, a datagram.
			super, h := superPacket(false, 5*1000, 1000, 0x18)
			f.queue = append(f.queue, wrap(udpPacket(11)), wrap(udpPacket(12)), vnet(h, super), wrap(udpPacket(13)),
				vnet(virtioNetHdr{gsoType: 99}, udpPacket(99)), wrap(udpPacket(14)))
			bufs, sizes = readBufs(5, offset+1500)
			next = 11
			n, err = d.Read(bufs, sizes, offset)
			check(n, err, 2)
			if d.rpending == 0 {
				t.Fatal("the super-packet is not kept for the next Read")
			}
			n, err = d.Read(bufs, sizes, offset)
			if err != nil || n != 5 {
				t.Fatalf("Read after a kept super-packet: %d, %v", n, err)
			}
			for i := range n {
				verifyTCP(t, bufs[i][offset:offset+sizes[i]])
			}
			n, err = d.Read(bufs, sizes, offset)
			next = 13
			if err != nil || n != 2 || !bytes.Equal(bufs[0][offset:offset+sizes[0]], udpPacket(13)) ||
				!bytes.Equal(bufs[1][offset:offset+sizes[1]], udpPacket(14)) {
				t.Fatalf("Read around a malformed packet: %d, %v", n, err)
			}
			if d.Dropped() != 1 {
				t.Errorf("dropped %d, want 1", d.Dropped())
			}
			// A super-packet that fits no Read's buffers is dropped, not
			// kept for ever.
			f.queue = append(f.queue, vnet(h, super), wrap(udpPacket(15)))
			bufs, sizes = readBufs(2, offset+1500)
			n, err = d.Read(bufs, sizes, offset)
			if err != nil || n != 1 || !bytes.Equal(bufs[0][offset:offset+sizes[0]], udpPacket(15)) || d.Dropped() != 2 {
				t.Fatalf("Read with an oversized super-packet: %d, %v, dropped %d", n, err, d.Dropped())
			}
		})
	}
}

// Through a real device with Offload: UDP datagrams the host routes into
// the TUN device come out of one Read together. (The device is opened here
// and moved into a namespace, where the datagrams are sent.)
func TestReadGathersLinux(t *testing.T) {
	testbed.Require(t, "root", "tun", "ip")
	ns := testbed.NewNetns(t, "tunread")
	name := fmt.Sprintf("cygtr%d", os.Getpid()%100000)
	d, err := OpenLinux(LinuxConfig{Name: name, MTU: 1400, Offload: true, Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if out, err := exec.Command("ip", "link", "set", "dev", name, "netns", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("moving %s: %v: %s", name, err, out)
	}
	ns.Run(t, "ip", "addr", "add", "10.77.0.1/24", "dev", name)
	ns.Run(t, "ip", "link", "set", name, "up")
	const count = 20
	ns.Run(t, "bash", "-c", fmt.Sprintf("for i in $(seq 0 %d); do echo datagram $i >/dev/udp/10.77.0.2/5201; done", count-1))
	bufs, sizes := readBufs(64, 16+1400)
	got, reads := 0, 0
	for got < count {
		n, err := d.Read(bufs, sizes, 16)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		for i := range n {
			p := bufs[i][16 : 16+sizes[i]]
			if len(p) > 28 && p[0]>>4 == 4 && p[9] == 17 && bytes.HasPrefix(p[28:], []byte("datagram ")) {
				got++
			}
		}
	}
	// All were queued before the first Read: only packets the kernel sends
	// on its own (IPv6 router solicitations, ...) may come in other Reads.
	if reads > 3 {
		t.Errorf("%d datagrams took %d Reads: no gathering", count, reads)
	}
	t.Logf("%d datagrams in %d Reads", count, reads)
}

// FuzzReadOffload: reads of arbitrary bytes (each cut into reads at the
// 0xff 0xfe marker) never panic, never report more than the buffers hold,
// and every Read makes progress.
func FuzzReadOffload(f *testing.F) {
	super, h := superPacket(false, 3000, 1000, 0x18)
	seed := append(vnet(virtioNetHdr{}, udpPacket(1)), 0xff, 0xfe)
	seed = append(seed, vnet(h, super)...)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, fr := fakeLinux(true)
		for len(data) > 0 {
			i := bytes.Index(data, []byte{0xff, 0xfe})
			if i < 0 {
				fr.queue = append(fr.queue, data)
				break
			}
			fr.queue = append(fr.queue, data[:i])
			data = data[i+2:]
		}
		bufs, sizes := readBufs(3, 8+1500)
		for range len(fr.queue) + 2 {
			n, err := d.Read(bufs, sizes, 8)
			if err != nil {
				return // the queue ran dry
			}
			if n < 1 || n > len(bufs) {
				t.Fatalf("Read returned %d", n)
			}
			for i := range n {
				if sizes[i] < 0 || sizes[i] > 1500 {
					t.Fatalf("size %d", sizes[i])
				}
			}
		}
		if len(fr.queue) != 0 || d.rpending != 0 {
			t.Fatalf("%d reads left after as many Reads", len(fr.queue))
		}
	})
}
