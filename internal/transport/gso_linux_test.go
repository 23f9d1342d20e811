package transport

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// needOffload skips a test that needs UDP GSO and GRO where the kernel
// lacks them (CYGNET_STRICT=1: fails).
func needOffload(t *testing.T, us ...*UDP) {
	t.Helper()
	for _, u := range us {
		if gso, gro := u.Offload(); !gso || !gro {
			if strict() {
				t.Fatalf("no UDP GSO/GRO here (gso %v, gro %v) (CYGNET_STRICT=1: failing instead of skipping)", gso, gro)
			}
			t.Skipf("no UDP GSO/GRO here (gso %v, gro %v)", gso, gro)
		}
	}
}

// rawSendGSO sends b from c to to as one message with UDP_SEGMENT seg: the
// kernel cuts it into datagrams of seg octets (the last may be shorter).
func rawSendGSO(t *testing.T, c *net.UDPConn, to netip.AddrPort, b []byte, seg int) {
	t.Helper()
	words := make([]uint64, oobWords)
	oob := wordsAsBytes(words)
	n := putSegmentSize(oob, seg)
	if _, _, err := c.WriteMsgUDPAddrPort(b, oob[:n], to); err != nil {
		t.Fatal(err)
	}
}

// segmentSize returns the UDP_SEGMENT size in a message's control data, or 0.
func segmentSize(h *unix.Msghdr) int {
	if h.Control == nil || h.Controllen == 0 {
		return 0
	}
	oob := unsafe.Slice(h.Control, h.Controllen)
	for {
		c, data, rest, ok := nextCmsg(oob)
		if !ok {
			return 0
		}
		if c.Level == unix.IPPROTO_UDP && c.Type == unix.UDP_SEGMENT && len(data) >= 2 {
			return int(*(*uint16)(unsafe.Pointer(&data[0])))
		}
		oob = rest
	}
}

type sizedRun struct {
	spi0   uint32
	n, len int
	toPeer bool // to the raw peer instead of the transport
}

// TestGSORuns sends a batch that exercises how runs form: equal sizes, a
// shorter packet ending a run, a longer one starting the next, a change of
// peer, a bad packet in between, and more than gsoMaxSegments packets.
func TestGSORuns(t *testing.T) {
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	b, recB := listen(t, Config{Addrs: []netip.Addr{lo2}})
	needOffload(t, a, b)
	peer := rawConn(t, lo2)

	var batch []Packet
	var want []Packet
	var toPeer [][]byte
	add := func(r sizedRun) {
		for i := range r.n {
			p := Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(r.spi0+uint32(i), r.len)}
			if r.toPeer {
				p.Remote = rawAddr(peer)
				toPeer = append(toPeer, p.Data)
			} else {
				want = append(want, p)
			}
			batch = append(batch, p)
		}
	}
	add(sizedRun{spi0: 0x1000, n: 20, len: 1000})
	add(sizedRun{spi0: 0x2000, n: 1, len: 600}) // ends the first run
	add(sizedRun{spi0: 0x3000, n: 5, len: 1200})
	add(sizedRun{spi0: 0x4000, n: 3, len: 1200, toPeer: true})
	batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(0, 1200)}) // SPI 0: skipped
	add(sizedRun{spi0: 0x5000, n: 4, len: 1200})
	add(sizedRun{spi0: 0x6000, n: 70, len: 300}) // the first ends the 1200 run; then 64 + 5
	// Runs: 20x1000+600, 5x1200, 3x1200 (peer), 4x1200+300, 64x300, 5x300.
	const wantGSO = 6

	if err := a.SendESP(batch); !errors.Is(err, ErrBadESP) {
		t.Fatalf("SendESP: %v, want ErrBadESP for the SPI-0 packet", err)
	}
	got := recB.waitESP(t, len(want))
	if len(got) != len(want) {
		t.Fatalf("received %d packets, want %d", len(got), len(want))
	}
	var wantBytes uint64
	for i, p := range got {
		if !bytes.Equal(p.Data, want[i].Data) || p.Local != natAddr(b, lo2) || p.Remote != natAddr(a, lo1) {
			t.Fatalf("packet %d: %v -> %v, %d octets %x..., want %d octets %x...", i, p.Remote, p.Local, len(p.Data), p.Data[:4], len(want[i].Data), want[i].Data[:4])
		}
		wantBytes += uint64(len(p.Data))
	}
	// The peer without UDP_GRO gets the datagrams one by one.
	for i, w := range toPeer {
		if d, from := rawRead(t, peer); !bytes.Equal(d, w) || from != natAddr(a, lo1) {
			t.Errorf("peer datagram %d: %d octets from %v", i, len(d), from)
		}
	}

	sa, sb := a.Stats(), b.Stats()
	if sa.ESPOut.Packets != uint64(len(batch)-1) || sa.SendErrors != 1 || sa.GSOOut != wantGSO {
		t.Errorf("sender: ESPOut %+v, SendErrors %d, GSOOut %d; want %d packets, 1 error, %d GSO sends",
			sa.ESPOut, sa.SendErrors, sa.GSOOut, len(batch)-1, wantGSO)
	}
	if sb.ESPIn != (Counter{uint64(len(want)), wantBytes}) {
		t.Errorf("receiver ESPIn %+v, want %d packets, %d bytes", sb.ESPIn, len(want), wantBytes)
	}
	// Over loopback a GSO send reaches a UDP_GRO socket whole.
	if sb.GROIn == 0 {
		t.Errorf("receiver GROIn = 0: no coalesced datagram arrived")
	}
	t.Logf("GSOOut %d, GROIn %d, HandleESP calls %d", sa.GSOOut, sb.GROIn, recB.calls)
}

// TestGROMixed feeds the receiver coalesced datagrams that hold IKE behind
// the non-ESP marker, a NAT-keepalive and junk between ESP packets, as a
// peer's NAT-T port may send them (GRO joins datagrams of one flow by size
// alone): each piece is classified on its own and the order is kept.
func TestGROMixed(t *testing.T) {
	b, rec := listen(t, Config{Addrs: []netip.Addr{lo2}})
	needOffload(t, b)
	peer := rawConn(t, lo1)
	const seg = 100
	ike := ikeHeader(seg - MarkerLen)
	esp := func(spi uint32) []byte { return espPacket(spi, seg) }

	// ESP, IKE, ESP, ESP, keepalive (the short last segment).
	one := slices.Concat(esp(0x101), withMarker(ike), esp(0x102), esp(0x103), []byte{keepaliveByte})
	rawSendGSO(t, peer, natAddr(b, lo2), one, seg)
	// ESP, then three octets that are nothing.
	two := slices.Concat(esp(0x104), []byte{1, 2, 3})
	rawSendGSO(t, peer, natAddr(b, lo2), two, seg)
	// A datagram that is all IKE: two messages of the same size.
	three := slices.Concat(withMarker(ike), withMarker(ike))
	rawSendGSO(t, peer, natAddr(b, lo2), three, seg)

	rec.wait(t, "all pieces", func() bool { return len(rec.kinds) >= 7 })
	wantKinds := []Kind{KindESP, KindIKE, KindESP, KindESP, KindESP, KindIKE, KindIKE}
	rec.mu.Lock()
	kinds := slices.Clone(rec.kinds)
	esps := slices.Clone(rec.esp)
	ikes := slices.Clone(rec.ike)
	rec.mu.Unlock()
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("handler got %v, want %v", kinds, wantKinds)
	}
	for i, spi := range []uint32{0x101, 0x102, 0x103, 0x104} {
		if !bytes.Equal(esps[i].Data, esp(spi)) || esps[i].Remote != rawAddr(peer) || esps[i].Local != natAddr(b, lo2) {
			t.Errorf("ESP %d: %v -> %v %x", i, esps[i].Remote, esps[i].Local, esps[i].Data[:4])
		}
	}
	for i, p := range ikes {
		if !bytes.Equal(p.Data, ike) || p.Remote != rawAddr(peer) {
			t.Errorf("IKE %d: %v %x", i, p.Remote, p.Data)
		}
	}
	st := b.Stats()
	if st.GROIn != 3 || st.Drops[DropKeepalive] != 1 || st.Drops[DropShort] != 1 ||
		st.ESPIn != (Counter{4, 4 * seg}) || st.IKEIn != (Counter{3, 3 * uint64(len(ike))}) {
		t.Errorf("stats %+v", st)
	}
}

// TestOffloadOff: a receiver without GRO gets a GSO sender's runs as single
// datagrams, and a sender without GSO sends them one by one; nothing
// changes for the handler.
func TestOffloadOff(t *testing.T) {
	for _, tt := range []struct {
		name         string
		sendOff, off bool
	}{
		{"gso to no-gro", false, true},
		{"no-gso to gro", true, false},
		{"both off", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}, NoOffload: tt.sendOff})
			b, rec := listen(t, Config{Addrs: []netip.Addr{lo2}, NoOffload: tt.off})
			if !tt.sendOff {
				needOffload(t, a)
			}
			if gso, gro := b.Offload(); tt.off && (gso || gro) {
				t.Fatalf("NoOffload: Offload() = %v, %v", gso, gro)
			}
			var batch []Packet
			for i := range 10 {
				batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(uint32(0x100+i), 500)})
			}
			if err := a.SendESP(batch); err != nil {
				t.Fatal(err)
			}
			got := rec.waitESP(t, len(batch))
			for i := range batch {
				if !bytes.Equal(got[i].Data, batch[i].Data) {
					t.Fatalf("packet %d differs", i)
				}
			}
			wantGSO := uint64(1)
			if tt.sendOff {
				wantGSO = 0
			}
			if st := a.Stats(); st.GSOOut != wantGSO || st.ESPOut.Packets != 10 {
				t.Errorf("sender GSOOut %d, ESPOut %+v", st.GSOOut, st.ESPOut)
			}
			if st := b.Stats(); st.GROIn != 0 && (tt.off || tt.sendOff) {
				t.Errorf("receiver GROIn %d without a GSO sender and a GRO receiver", st.GROIn)
			}
		})
	}
}

// TestGSOFallback makes the kernel's answer to segmented sends fail (as it
// does on a route through XFRM, EIO, or with a segment above the path MTU,
// EMSGSIZE): the run goes again one datagram per packet, nothing is lost,
// and after EIO the socket stops segmenting.
func TestGSOFallback(t *testing.T) {
	for _, tt := range []struct {
		errno   unix.Errno
		gsoKept bool
	}{
		{unix.EMSGSIZE, true},
		{unix.EIO, false},
	} {
		t.Run(tt.errno.Error(), func(t *testing.T) {
			a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
			b, rec := listen(t, Config{Addrs: []netip.Addr{lo2}})
			needOffload(t, a)
			// Nothing has been sent yet, so the pool is empty: every
			// sendBuf comes from here.
			refused := 0
			a.sendBufs.New = func() any {
				sb := newSendBuf(a.batch, a.log)
				real := sb.writeFn
				// As sendmmsg does: the messages before the
				// refused one go, and an error comes only when
				// it is the first.
				sb.writeFn = func(fd uintptr) bool {
					k := slices.IndexFunc(sb.fdHdrs, func(h unix.Mmsghdr) bool { return segmentSize(&h.Hdr) != 0 })
					if k == 0 {
						refused++
						sb.n, sb.errno = 0, tt.errno
						return true
					}
					if k > 0 {
						all := sb.fdHdrs
						sb.fdHdrs = all[:k]
						defer func() { sb.fdHdrs = all }()
					}
					return real(fd)
				}
				return sb
			}
			run := func(spi0 uint32) []Packet {
				var batch []Packet
				batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(spi0, 100)})
				for i := range 8 {
					batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(spi0+1+uint32(i), 700)})
				}
				return batch
			}
			first, second := run(0x100), run(0x200)
			for _, batch := range [][]Packet{first, second} {
				if err := a.SendESP(batch); err != nil {
					t.Fatalf("SendESP: %v", err)
				}
			}
			got := rec.waitESP(t, 18)
			for i, p := range slices.Concat(first, second) {
				if !bytes.Equal(got[i].Data, p.Data) {
					t.Fatalf("packet %d differs", i)
				}
			}
			wantRefused := 1
			if tt.gsoKept {
				wantRefused = 2 // tried again with the second batch
			}
			gso, _ := a.Offload()
			st := a.Stats()
			if gso != tt.gsoKept || refused != wantRefused || st.SendErrors != 0 || st.GSOOut != 0 || st.ESPOut.Packets != 18 {
				t.Errorf("GSO on %v (want %v), refused %d (want %d), stats %+v", gso, tt.gsoKept, refused, wantRefused, st)
			}
		})
	}
}

// TestGSOWildcard: on wildcard sockets the source address of a segmented
// send is set with pktinfo next to UDP_SEGMENT, and coalesced datagrams
// still report the address they came to.
func TestGSOWildcard(t *testing.T) {
	b, recB := listen(t, Config{})
	a, recA := listen(t, Config{Addrs: []netip.Addr{lo1}})
	needOffload(t, a, b)
	_, nat := b.Ports()
	to := netip.AddrPortFrom(lo2, nat)
	var batch []Packet
	for i := range 6 {
		batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: to, Data: espPacket(uint32(0x700+i), 800)})
	}
	if err := a.SendESP(batch); err != nil {
		t.Fatal(err)
	}
	for i, p := range recB.waitESP(t, 6) {
		if p.Local != to || p.Remote != natAddr(a, lo1) || !bytes.Equal(p.Data, batch[i].Data) {
			t.Errorf("packet %d: %v -> %v", i, p.Remote, p.Local)
		}
	}
	if st := b.Stats(); st.GROIn == 0 {
		t.Errorf("no coalesced datagram on the wildcard socket: %+v", st)
	}
	// The reply run leaves from the address the peer wrote to.
	for i := range batch {
		batch[i] = Packet{Local: to, Remote: natAddr(a, lo1), Data: espPacket(uint32(0x800+i), 800)}
	}
	if err := b.SendESP(batch); err != nil {
		t.Fatal(err)
	}
	for i, p := range recA.waitESP(t, 6) {
		if p.Remote != to || !bytes.Equal(p.Data, batch[i].Data) {
			t.Errorf("reply %d from %v, want %v", i, p.Remote, to)
		}
	}
	if st := b.Stats(); st.GSOOut != 1 {
		t.Errorf("wildcard sender GSOOut = %d", st.GSOOut)
	}
}

func TestGSOIPv6(t *testing.T) {
	if !haveIPv6(t) {
		t.Skip("no IPv6 loopback")
	}
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo6}})
	b, rec := listen(t, Config{Addrs: []netip.Addr{lo6}})
	needOffload(t, a, b)
	var batch []Packet
	for i := range 12 {
		batch = append(batch, Packet{Local: natAddr(a, lo6), Remote: natAddr(b, lo6), Data: espPacket(uint32(0x600+i), 1300)})
	}
	if err := a.SendESP(batch); err != nil {
		t.Fatal(err)
	}
	for i, p := range rec.waitESP(t, 12) {
		if !bytes.Equal(p.Data, batch[i].Data) || p.Remote != natAddr(a, lo6) {
			t.Errorf("packet %d: %v", i, p.Remote)
		}
	}
	if sa, sb := a.Stats(), b.Stats(); sa.GSOOut != 1 || sb.GROIn == 0 {
		t.Errorf("GSOOut %d, GROIn %d", sa.GSOOut, sb.GROIn)
	}
}

// TestGSOMaxPayload: a run stops before the IP length limit of one datagram.
func TestGSOMaxPayload(t *testing.T) {
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	b, rec := listen(t, Config{Addrs: []netip.Addr{lo2}})
	needOffload(t, a, b)
	// 30000-octet packets: two fit one message (60000), three do not.
	var batch []Packet
	for i := range 5 {
		batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(uint32(0x900+i), 30000)})
	}
	if err := a.SendESP(batch); err != nil {
		t.Fatal(err)
	}
	for i, p := range rec.waitESP(t, 5) {
		if !bytes.Equal(p.Data, batch[i].Data) {
			t.Errorf("packet %d differs", i)
		}
	}
	if st := a.Stats(); st.GSOOut != 2 || st.SendErrors != 0 {
		t.Errorf("GSOOut %d (want 2: 2+2+1), SendErrors %d", st.GSOOut, st.SendErrors)
	}
}

// TestConcurrentSends: ESP runs, IKE messages and keepalives sent at once
// from several goroutines through one NAT-T socket all arrive, each kind
// counted where it belongs.
func TestConcurrentSends(t *testing.T) {
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	b, rec := listen(t, Config{Addrs: []netip.Addr{lo2}})
	const rounds, run = 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for g := range 2 {
		wg.Go(func() {
			for r := range rounds {
				var batch []Packet
				for i := range run {
					spi := uint32(0x10000*(g+1) + r*run + i)
					batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(spi, 1000)})
				}
				errs <- a.SendESP(batch)
			}
		})
	}
	wg.Go(func() {
		for range rounds {
			errs <- a.SendIKE(Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: ikeHeader(1000 - MarkerLen)})
		}
	})
	wg.Go(func() {
		for range rounds {
			errs <- a.SendKeepalive(natAddr(a, lo1), natAddr(b, lo2))
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rec.waitESP(t, 2*rounds*run)
	rec.waitIKE(t, rounds)
	// Per sender goroutine, its ESP packets arrive in the order sent.
	got := rec.waitESP(t, 0)
	last := map[uint32]uint32{}
	for _, p := range got {
		spi := uint32(p.Data[0])<<24 | uint32(p.Data[1])<<16 | uint32(p.Data[2])<<8 | uint32(p.Data[3])
		g := spi >> 16
		if spi <= last[g] {
			t.Fatalf("sender %d: SPI %#x after %#x", g, spi, last[g])
		}
		last[g] = spi
	}
	// The keepalives wake no handler: poll for their count.
	for deadline := time.Now().Add(waitFor); b.Stats().Drops[DropKeepalive] != rounds; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("keepalive drops %d, want %d", b.Stats().Drops[DropKeepalive], rounds)
		}
	}
	if st := a.Stats(); st.ESPOut.Packets != 2*rounds*run || st.IKEOut.Packets != rounds || st.KeepalivesOut != rounds || st.SendErrors != 0 {
		t.Errorf("sender stats %+v", st)
	}
}
