package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// superPacket builds a TCP super-packet as the kernel hands it over with
// TSO: one header, payload bytes, a GSO header for mss.
func superPacket(v6 bool, payload, mss int, flags byte) ([]byte, virtioNetHdr) {
	ipLen := 20
	if v6 {
		ipLen = 40
	}
	tcpLen := 32 // with 12 bytes of options (NOP NOP timestamps)
	pkt := make([]byte, ipLen+tcpLen+payload)
	if v6 {
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-40))
		pkt[6], pkt[7] = 6, 64
		pkt[8], pkt[23] = 0xfd, 1
		pkt[24], pkt[39] = 0xfd, 2
	} else {
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(pkt[4:], 0x1234)
		pkt[6] = 0x40 // DF
		pkt[8], pkt[9] = 64, 6
		copy(pkt[12:], []byte{10, 1, 0, 1, 10, 2, 0, 1})
		ipv4HeaderChecksum(pkt[:20])
	}
	tcp := pkt[ipLen:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], 0xfffff000) // wraps
	binary.BigEndian.PutUint32(tcp[8:], 77)
	tcp[12] = byte(tcpLen/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 512)
	copy(tcp[20:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	for i := range payload {
		tcp[tcpLen+i] = byte(i * 7)
	}
	h := virtioNetHdr{flags: vnetFlagNeedsCsum, gsoType: gsoTCPv4, hdrLen: uint16(ipLen + tcpLen), gsoSize: uint16(mss), csumStart: uint16(ipLen), csumOffset: 16}
	if v6 {
		h.gsoType = gsoTCPv6
	}
	return pkt, h
}

func verifyTCP(t *testing.T, pkt []byte) {
	t.Helper()
	var ph uint64
	ipLen := 40
	if pkt[0]>>4 == 4 {
		ipLen = 20
		if Checksum(pkt[:20], 0) != 0 {
			t.Fatal("bad IPv4 header checksum")
		}
		ph = PseudoHeaderSum(pkt[12:16], pkt[16:20], 6, len(pkt)-20)
	} else {
		ph = PseudoHeaderSum(pkt[8:24], pkt[24:40], 6, len(pkt)-40)
	}
	if Checksum(pkt[ipLen:], ph) != 0 {
		t.Fatal("bad TCP checksum")
	}
}

func TestSegmentCoalesce(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, payload := range []int{1, 1000, 1348, 4000, 65000 - 72} {
			super, h := superPacket(v6, payload, 1348, 0x18)
			bufs := make([][]byte, 64)
			for i := range bufs {
				bufs[i] = make([]byte, 1500)
			}
			sizes := make([]int, 64)
			n, err := segment(super, &h, bufs, sizes, 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := (payload + 1347) / 1348; n != want {
				t.Fatalf("%d segments, want %d", n, want)
			}
			c := newCoalescer()
			for i := range n {
				seg := bufs[i][:sizes[i]]
				verifyTCP(t, seg)
				if i < n-1 && seg[len(seg)-len(seg)+(map[bool]int{false: 20, true: 40}[v6])+13] != 0x10 {
					t.Fatalf("segment %d flags", i)
				}
				s, ok := parseTCPSeg(seg)
				if !ok {
					t.Fatalf("segment %d not coalescable", i)
				}
				if i == 0 {
					c.start(seg, s)
				} else if !c.tryAppend(seg, s) {
					t.Fatalf("segment %d not appended", i)
				}
			}
			out := c.finish()
			var gh virtioNetHdr
			gh.decode(out)
			got := out[VirtioNetHdrLen:]
			if n == 1 {
				if gh.gsoType != gsoNone || !bytes.Equal(got, bufs[0][:sizes[0]]) {
					t.Fatal("single segment changed")
				}
				continue
			}
			if gh.gsoType != h.gsoType || gh.gsoSize != 1348 || gh.csumStart != h.csumStart || len(got) != len(super) {
				t.Fatalf("header %+v, len %d want %d", gh, len(got), len(super))
			}
			// Segmenting the coalesced packet again gives the same segments.
			bufs2 := make([][]byte, 64)
			for i := range bufs2 {
				bufs2[i] = make([]byte, 1500)
			}
			sizes2 := make([]int, 64)
			n2, err := segment(got, &gh, bufs2, sizes2, 0)
			if err != nil || n2 != n {
				t.Fatal(n2, err)
			}
			for i := range n {
				a, b := bufs[i][:sizes[i]], bufs2[i][:sizes2[i]]
				if !v6 {
					// IPv4 IDs are numbered from the coalesced packet's.
					a, b = append([]byte(nil), a...), append([]byte(nil), b...)
					clear(a[4:6])
					clear(b[4:6])
					clear(a[10:12])
					clear(b[10:12])
				}
				if !bytes.Equal(a, b) {
					t.Fatalf("segment %d differs after a round trip", i)
				}
			}
		}
	}
}

func TestCoalesceRefuses(t *testing.T) {
	super, h := superPacket(false, 3000, 1000, 0x10)
	bufs := [][]byte{make([]byte, 1500), make([]byte, 1500), make([]byte, 1500)}
	sizes := make([]int, 3)
	if _, err := segment(super, &h, bufs, sizes, 0); err != nil {
		t.Fatal(err)
	}
	s0, _ := parseTCPSeg(bufs[0][:sizes[0]])
	s2, _ := parseTCPSeg(bufs[2][:sizes[2]])
	c := newCoalescer()
	c.start(bufs[0][:sizes[0]], s0)
	if c.tryAppend(bufs[2][:sizes[2]], s2) {
		t.Fatal("appended a segment with a gap")
	}
	syn := append([]byte(nil), bufs[1][:sizes[1]]...)
	syn[20+13] = 0x02
	if _, ok := parseTCPSeg(syn); ok {
		t.Fatal("SYN accepted")
	}
}

func TestSegmentErrors(t *testing.T) {
	super, h := superPacket(false, 3000, 1000, 0x10)
	bufs := [][]byte{make([]byte, 1500)}
	if _, err := segment(super, &h, bufs, make([]int, 1), 0); !errors.Is(err, ErrTooSmall) {
		t.Fatal(err)
	}
	for i := range len(super) {
		bufs := make([][]byte, 8)
		for j := range bufs {
			bufs[j] = make([]byte, 1500)
		}
		segment(super[:i], &h, bufs, make([]int, 8), 0) // must not panic
	}
}

// FuzzSegment: arbitrary virtio-net headers and packets never panic, and
// what segment returns fits the buffers.
func FuzzSegment(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		super, h := superPacket(v6, 5000, 1200, 0x18)
		hb := make([]byte, VirtioNetHdrLen)
		h.encode(hb)
		f.Add(append(hb, super...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < VirtioNetHdrLen {
			return
		}
		var h virtioNetHdr
		h.decode(data)
		bufs := make([][]byte, 16)
		for i := range bufs {
			bufs[i] = make([]byte, 2000)
		}
		sizes := make([]int, 16)
		n, err := segment(data[VirtioNetHdrLen:], &h, bufs, sizes, 10)
		if err == nil {
			for i := range n {
				if sizes[i] > 1990 {
					t.Fatal("size beyond buffer")
				}
				if s, ok := parseTCPSeg(bufs[i][10 : 10+sizes[i]]); ok {
					c := newCoalescer()
					c.start(bufs[i][10:10+sizes[i]], s)
					c.finish()
				}
			}
		}
	})
}

func TestMemPair(t *testing.T) {
	a, b := NewMemPair("m", 100, 4)
	if _, err := a.Write([][]byte{[]byte("xxhello"), []byte("xxworld"), make([]byte, 200)}, 2); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 50), make([]byte, 50), make([]byte, 50)}
	sizes := make([]int, 3)
	n, err := b.Read(bufs, sizes, 3)
	if err != nil || n != 2 || string(bufs[0][3:3+sizes[0]]) != "hello" || string(bufs[1][3:3+sizes[1]]) != "world" {
		t.Fatal(n, err)
	}
	if a.Dropped() != 1 {
		t.Fatal("oversize packet not dropped")
	}
	b.Close()
	if _, err := b.Read(bufs, sizes, 0); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := a.Write([][]byte{[]byte("x")}, 0); err != nil {
		t.Fatal(err)
	}
}
