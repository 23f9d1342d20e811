package transport

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitFor bounds how long a test waits for a datagram on loopback; it is a
// failure deadline, not a timing assertion.
const waitFor = 10 * time.Second

var (
	lo1 = netip.MustParseAddr("127.0.0.1")
	lo2 = netip.MustParseAddr("127.0.0.2")
	lo6 = netip.MustParseAddr("::1")
)

// recorder is a Handler that keeps copies of what it gets.
type recorder struct {
	mu    sync.Mutex
	cond  *sync.Cond
	ike   []Packet
	esp   []Packet
	kinds []Kind // of every packet, in the order the handler got them
	calls int    // HandleESP calls
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) HandleIKE(p Packet) {
	r.mu.Lock()
	r.ike = append(r.ike, p)
	r.kinds = append(r.kinds, KindIKE)
	r.cond.Broadcast()
	r.mu.Unlock()
}

func (r *recorder) HandleESP(batch []Packet) {
	r.mu.Lock()
	for _, p := range batch {
		p.Data = bytes.Clone(p.Data)
		r.esp = append(r.esp, p)
		r.kinds = append(r.kinds, KindESP)
	}
	r.calls++
	r.cond.Broadcast()
	r.mu.Unlock()
}

// wait blocks until cond holds (checked under the lock) or fails the test.
func (r *recorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.AfterFunc(waitFor, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer deadline.Stop()
	start := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond() {
		if time.Since(start) >= waitFor {
			t.Fatalf("timed out waiting for %s (have %d IKE, %d ESP)", what, len(r.ike), len(r.esp))
		}
		r.cond.Wait()
	}
}

func (r *recorder) waitIKE(t *testing.T, n int) []Packet {
	t.Helper()
	r.wait(t, "IKE messages", func() bool { return len(r.ike) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ike)
}

func (r *recorder) waitESP(t *testing.T, n int) []Packet {
	t.Helper()
	r.wait(t, "ESP packets", func() bool { return len(r.esp) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.esp)
}

func listen(t *testing.T, cfg Config) (*UDP, *recorder) {
	t.Helper()
	rec := newRecorder()
	u, err := ListenUDP(cfg, rec)
	if err != nil {
		t.Fatalf("ListenUDP(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { u.Close() })
	return u, rec
}

func ikeAddr(u *UDP, a netip.Addr) netip.AddrPort {
	ike, _ := u.Ports()
	return netip.AddrPortFrom(a, ike)
}

func natAddr(u *UDP, a netip.Addr) netip.AddrPort {
	_, nat := u.Ports()
	return netip.AddrPortFrom(a, nat)
}

// rawConn is a plain UDP socket standing in for a peer, to see and forge
// the bytes on the wire.
func rawConn(t *testing.T, a netip.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rawAddr(c *net.UDPConn) netip.AddrPort {
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func rawRead(t *testing.T, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitFor))
	buf := make([]byte, 65536)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

func rawSend(t *testing.T, c *net.UDPConn, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

func TestIKEPort(t *testing.T) {
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	b, recB := listen(t, Config{Addrs: []netip.Addr{lo2}})

	msg := ikeHeader(300)
	if err := a.SendIKE(Packet{Local: ikeAddr(a, lo1), Remote: ikeAddr(b, lo2), Data: msg}); err != nil {
		t.Fatal(err)
	}
	got := recB.waitIKE(t, 1)[0]
	want := Packet{Local: ikeAddr(b, lo2), Remote: ikeAddr(a, lo1), Data: msg}
	if got.Local != want.Local || got.Remote != want.Remote || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("got %v -> %v %x\nwant %v -> %v %x", got.Remote, got.Local, got.Data, want.Remote, want.Local, want.Data)
	}
	if st := b.Stats(); st.IKEIn != (Counter{1, 300}) {
		t.Errorf("receiver IKEIn = %+v", st.IKEIn)
	}
	if st := a.Stats(); st.IKEOut != (Counter{1, 300}) || st.SendErrors != 0 {
		t.Errorf("sender IKEOut = %+v, SendErrors %d", st.IKEOut, st.SendErrors)
	}

	// No marker on the IKE port, on the wire.
	peer := rawConn(t, lo2)
	if err := a.SendIKE(Packet{Local: ikeAddr(a, lo1), Remote: rawAddr(peer), Data: msg}); err != nil {
		t.Fatal(err)
	}
	if wire, from := rawRead(t, peer); !bytes.Equal(wire, msg) || from != ikeAddr(a, lo1) {
		t.Errorf("on the wire from %v: %x, want %x from %v", from, wire, msg, ikeAddr(a, lo1))
	}
}

func TestNATPortMarker(t *testing.T) {
	a, recA := listen(t, Config{Addrs: []netip.Addr{lo1}})
	b, recB := listen(t, Config{Addrs: []netip.Addr{lo2}})
	msg := ikeHeader(100)

	// Transport to transport: marker added and stripped.
	if err := a.SendIKE(Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: msg}); err != nil {
		t.Fatal(err)
	}
	got := recB.waitIKE(t, 1)[0]
	if !bytes.Equal(got.Data, msg) || got.Local != natAddr(b, lo2) || got.Remote != natAddr(a, lo1) {
		t.Fatalf("got %v -> %v %x", got.Remote, got.Local, got.Data)
	}
	if st := b.Stats(); st.IKEIn != (Counter{1, 100}) {
		t.Errorf("IKEIn = %+v, want bytes without the marker", st.IKEIn)
	}

	// On the wire: four zero octets, then the message (RFC 3948 2.2).
	peer := rawConn(t, lo2)
	if err := a.SendIKE(Packet{Local: natAddr(a, lo1), Remote: rawAddr(peer), Data: msg}); err != nil {
		t.Fatal(err)
	}
	if wire, _ := rawRead(t, peer); !bytes.Equal(wire, withMarker(msg)) {
		t.Errorf("on the wire: %x, want marker + message", wire)
	}
	// And a peer's marked message arrives without the marker.
	rawSend(t, peer, natAddr(a, lo1), withMarker(msg))
	got = recA.waitIKE(t, 1)[0]
	if !bytes.Equal(got.Data, msg) || got.Remote != rawAddr(peer) || got.Local != natAddr(a, lo1) {
		t.Errorf("got %v -> %v %x", got.Remote, got.Local, got.Data)
	}
}

func TestESPBatch(t *testing.T) {
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}, BatchSize: 8})
	b, recB := listen(t, Config{Addrs: []netip.Addr{lo2}})

	// More packets than a batch holds, of different sizes and SPIs.
	const n = 50
	var batch []Packet
	var bytesOut uint64
	for i := range n {
		d := espPacket(uint32(0x1000+i), 40+i*20)
		bytesOut += uint64(len(d))
		batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: d})
	}
	if err := a.SendESP(batch); err != nil {
		t.Fatal(err)
	}
	got := recB.waitESP(t, n)
	for i, p := range got {
		if !bytes.Equal(p.Data, batch[i].Data) || p.Local != natAddr(b, lo2) || p.Remote != natAddr(a, lo1) {
			t.Fatalf("packet %d: %v -> %v %x, want %x", i, p.Remote, p.Local, p.Data[:8], batch[i].Data[:8])
		}
	}
	if st := a.Stats(); st.ESPOut != (Counter{n, bytesOut}) || st.SendErrors != 0 {
		t.Errorf("ESPOut = %+v, SendErrors %d; want %d packets, %d bytes", st.ESPOut, st.SendErrors, n, bytesOut)
	}
	if st := b.Stats(); st.ESPIn != (Counter{n, bytesOut}) {
		t.Errorf("ESPIn = %+v", st.ESPIn)
	}

	// Bad packets are skipped and reported; the rest go.
	mixed := []Packet{
		{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(0x2001, 64)},
		{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(0, 64)}, // SPI 0 reads as IKE
		{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(0x2002, 8)},
		{Local: ikeAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(0x2003, 64)}, // not the NAT-T port
		{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(0x2004, 64)},
	}
	if err := a.SendESP(mixed); !errors.Is(err, ErrBadESP) {
		t.Errorf("SendESP with bad packets: %v, want ErrBadESP", err)
	}
	got = recB.waitESP(t, n+2)
	if len(got) != n+2 || !bytes.Equal(got[n].Data, mixed[0].Data) || !bytes.Equal(got[n+1].Data, mixed[4].Data) {
		t.Errorf("after the mixed batch: %d packets", len(got))
	}
	if st := a.Stats(); st.SendErrors != 3 {
		t.Errorf("SendErrors = %d, want 3", st.SendErrors)
	}
}

func TestKeepalive(t *testing.T) {
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	b, recB := listen(t, Config{Addrs: []netip.Addr{lo2}})

	if err := a.SendKeepalive(natAddr(a, lo1), natAddr(b, lo2)); err != nil {
		t.Fatal(err)
	}
	// A message after it, to know the keepalive has been read (one socket,
	// one sender: loopback keeps the order).
	if err := a.SendIKE(Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: ikeHeader(28)}); err != nil {
		t.Fatal(err)
	}
	recB.waitIKE(t, 1)
	st := b.Stats()
	if st.Drops[DropKeepalive] != 1 || st.ESPIn.Packets != 0 || st.Drops[DropShort] != 0 {
		t.Errorf("receiver stats %+v", st)
	}
	if got := a.Stats().KeepalivesOut; got != 1 {
		t.Errorf("KeepalivesOut = %d", got)
	}

	peer := rawConn(t, lo2)
	if err := a.SendKeepalive(natAddr(a, lo1), rawAddr(peer)); err != nil {
		t.Fatal(err)
	}
	if wire, _ := rawRead(t, peer); !bytes.Equal(wire, []byte{0xFF}) {
		t.Errorf("keepalive on the wire: %x", wire)
	}
	if err := a.SendKeepalive(ikeAddr(a, lo1), rawAddr(peer)); !errors.Is(err, ErrNotNATPort) {
		t.Errorf("keepalive from the IKE port: %v", err)
	}
}

func TestShortDatagrams(t *testing.T) {
	b, rec := listen(t, Config{Addrs: []netip.Addr{lo2}})
	peer := rawConn(t, lo1)
	natShort := [][]byte{
		{}, {0x01}, {0, 0}, {1, 2, 3}, {0, 0, 0, 0}, {0, 0, 0, 0, 1},
		{1, 2, 3, 4, 5, 6, 7, 8}, withMarker(ikeHeader(28)[:27]), {0xFF, 0xFF},
	}
	ikeShort := [][]byte{{}, {0xFF}, {0, 0, 0, 0}, ikeHeader(28)[:27]}
	for _, d := range natShort {
		rawSend(t, peer, natAddr(b, lo2), d)
	}
	rawSend(t, peer, natAddr(b, lo2), []byte{0xFF})
	for _, d := range ikeShort {
		rawSend(t, peer, ikeAddr(b, lo2), d)
	}
	// A valid message behind them on each socket: once it is in, the
	// datagrams before it have been read (one sender, loopback keeps order).
	rawSend(t, peer, natAddr(b, lo2), withMarker(ikeHeader(28)))
	rawSend(t, peer, ikeAddr(b, lo2), ikeHeader(28))
	want := len(natShort) + len(ikeShort)
	got := rec.waitIKE(t, 2)
	for _, p := range got {
		if !bytes.Equal(p.Data, ikeHeader(28)) {
			t.Errorf("delivered %x", p.Data)
		}
	}
	st := b.Stats()
	if st.Drops[DropShort] != uint64(want) || st.Drops[DropKeepalive] != 1 || st.ESPIn.Packets != 0 || st.IKEIn.Packets != 2 {
		t.Errorf("stats %+v, want %d short drops", st, want)
	}
}

func TestWildcard(t *testing.T) {
	b, recB := listen(t, Config{})
	a, recA := listen(t, Config{Addrs: []netip.Addr{lo1}})
	ike, nat := b.Ports()
	if addrs := b.LocalAddrs(); !slices.Contains(addrs, netip.AddrPortFrom(netip.IPv4Unspecified(), ike)) ||
		!slices.Contains(addrs, netip.AddrPortFrom(netip.IPv4Unspecified(), nat)) {
		t.Fatalf("LocalAddrs = %v", addrs)
	}

	// The local address of each datagram is the one it was sent to.
	for i, dst := range []netip.AddrPort{
		netip.AddrPortFrom(lo2, ike), netip.AddrPortFrom(lo1, ike),
		netip.AddrPortFrom(lo2, nat), netip.AddrPortFrom(lo1, nat),
	} {
		from := ikeAddr(a, lo1)
		if dst.Port() == nat {
			from = natAddr(a, lo1)
		}
		if err := a.SendIKE(Packet{Local: from, Remote: dst, Data: ikeHeader(40)}); err != nil {
			t.Fatal(err)
		}
		if p := recB.waitIKE(t, i+1)[i]; p.Local != dst || p.Remote != from {
			t.Errorf("sent %v -> %v, reported %v -> %v", from, dst, p.Remote, p.Local)
		}
	}

	// Replies leave from the address the request came to.
	reply := ikeHeader(50)
	if err := b.SendIKE(Packet{Local: netip.AddrPortFrom(lo2, ike), Remote: ikeAddr(a, lo1), Data: reply}); err != nil {
		t.Fatal(err)
	}
	if p := recA.waitIKE(t, 1)[0]; p.Remote != netip.AddrPortFrom(lo2, ike) {
		t.Errorf("reply from %v, want %v", p.Remote, netip.AddrPortFrom(lo2, ike))
	}
	esp := []Packet{{Local: netip.AddrPortFrom(lo2, nat), Remote: natAddr(a, lo1), Data: espPacket(0x3003, 64)}}
	if err := b.SendESP(esp); err != nil {
		t.Fatal(err)
	}
	if p := recA.waitESP(t, 1)[0]; p.Remote != netip.AddrPortFrom(lo2, nat) {
		t.Errorf("ESP from %v, want %v", p.Remote, netip.AddrPortFrom(lo2, nat))
	}
	// No local address: the kernel picks one.
	if err := b.SendIKE(Packet{Local: netip.AddrPortFrom(netip.Addr{}, ike), Remote: ikeAddr(a, lo1), Data: reply}); err != nil {
		t.Fatal(err)
	}
	recA.waitIKE(t, 2)

	if !haveIPv6(t) {
		return
	}
	a6, _ := listen(t, Config{Addrs: []netip.Addr{lo6}})
	before := len(recB.waitIKE(t, 0))
	if err := a6.SendIKE(Packet{Local: ikeAddr(a6, lo6), Remote: netip.AddrPortFrom(lo6, ike), Data: ikeHeader(40)}); err != nil {
		t.Fatal(err)
	}
	if p := recB.waitIKE(t, before+1)[before]; p.Local != netip.AddrPortFrom(lo6, ike) || p.Remote != ikeAddr(a6, lo6) {
		t.Errorf("IPv6 on the wildcard: %v -> %v", p.Remote, p.Local)
	}
}

func haveIPv6(t *testing.T) bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		if strict() {
			t.Fatalf("no IPv6 loopback (%v) (CYGNET_STRICT=1: failing instead of skipping)", err)
		}
		t.Logf("no IPv6 loopback (%v): IPv6 part skipped", err)
		return false
	}
	c.Close()
	return true
}

// strict is CI's CYGNET_STRICT=1: a missing component fails, never skips.
func strict() bool { return os.Getenv("CYGNET_STRICT") == "1" }

func TestIPv6(t *testing.T) {
	if !haveIPv6(t) {
		t.Skip("no IPv6 loopback")
	}
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo6}})
	b, rec := listen(t, Config{Addrs: []netip.Addr{lo6}})
	if err := a.SendIKE(Packet{Local: natAddr(a, lo6), Remote: natAddr(b, lo6), Data: ikeHeader(60)}); err != nil {
		t.Fatal(err)
	}
	if p := rec.waitIKE(t, 1)[0]; !bytes.Equal(p.Data, ikeHeader(60)) || p.Remote != natAddr(a, lo6) {
		t.Errorf("got %v %x", p.Remote, p.Data)
	}
	batch := []Packet{
		{Local: natAddr(a, lo6), Remote: natAddr(b, lo6), Data: espPacket(0x6001, 80)},
		{Local: natAddr(a, lo6), Remote: natAddr(b, lo6), Data: espPacket(0x6002, 90)},
	}
	if err := a.SendESP(batch); err != nil {
		t.Fatal(err)
	}
	if got := rec.waitESP(t, 2); !bytes.Equal(got[1].Data, batch[1].Data) {
		t.Errorf("ESP over IPv6: %x", got[1].Data)
	}
	// Family mismatch: no IPv4 socket here.
	if err := a.SendIKE(Packet{Local: ikeAddr(a, lo6), Remote: netip.AddrPortFrom(lo1, 500), Data: ikeHeader(28)}); !errors.Is(err, ErrNoSocket) {
		t.Errorf("IPv6 local, IPv4 remote: %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	to := netip.AddrPortFrom(lo2, 9)
	for _, tt := range []struct {
		name string
		err  error
		send func() error
	}{
		{"unbound address", ErrNoSocket, func() error {
			return a.SendIKE(Packet{Local: netip.AddrPortFrom(lo2, 500), Remote: to, Data: ikeHeader(28)})
		}},
		{"unbound port", ErrNoSocket, func() error {
			return a.SendIKE(Packet{Local: netip.AddrPortFrom(lo1, 1), Remote: to, Data: ikeHeader(28)})
		}},
		{"IPv6 remote", ErrNoSocket, func() error {
			return a.SendIKE(Packet{Local: ikeAddr(a, lo1), Remote: netip.AddrPortFrom(lo6, 500), Data: ikeHeader(28)})
		}},
		{"ESP from the IKE port", ErrNotNATPort, func() error {
			return a.SendESP([]Packet{{Local: ikeAddr(a, lo1), Remote: to, Data: espPacket(7, 20)}})
		}},
		{"keepalive from the IKE port", ErrNotNATPort, func() error {
			return a.SendKeepalive(ikeAddr(a, lo1), to)
		}},
	} {
		if err := tt.send(); !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
	if err := a.SendESP(nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := a.SendIKE(Packet{Local: ikeAddr(a, lo1), Remote: to, Data: ikeHeader(28)}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := a.SendESP([]Packet{{Local: natAddr(a, lo1), Remote: to, Data: espPacket(7, 20)}}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Addrs: []netip.Addr{lo1}, Port: 40000, NATPort: 40000},
		{Addrs: []netip.Addr{lo1}, Port: -1},
		{Addrs: []netip.Addr{lo1}, NATPort: 70000},
		{Addrs: []netip.Addr{lo1}, BatchSize: MaxBatchSize + 1},
		{Addrs: []netip.Addr{{}}},
		{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.222")}}, // not ours
	} {
		if u, err := ListenUDP(cfg, newRecorder()); err == nil {
			u.Close()
			t.Errorf("ListenUDP(%+v) succeeded", cfg)
		}
	}
	if _, err := ListenUDP(Config{Addrs: []netip.Addr{lo1}}, nil); err == nil {
		t.Error("nil handler accepted")
	}
	// A port in use is an error, and nothing stays bound.
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	ike, _ := a.Ports()
	if _, err := ListenUDP(Config{Addrs: []netip.Addr{lo1}, Port: int(ike)}, newRecorder()); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("port in use: %v", err)
	}
}

func TestCloseStopsReaders(t *testing.T) {
	before := runtime.NumGoroutine()
	u, err := ListenUDP(Config{}, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	if runtime.NumGoroutine() <= before {
		t.Fatal("no reader goroutines started")
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for the readers; let exiting goroutines finish.
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func TestKernelEncap(t *testing.T) {
	rec := newRecorder()
	b, err := ListenUDP(Config{Addrs: []netip.Addr{lo2}, KernelEncap: true}, rec)
	if err != nil {
		if strict() {
			t.Fatalf("UDP_ENCAP not available here: %v (CYGNET_STRICT=1: failing instead of skipping)", err)
		}
		t.Skipf("UDP_ENCAP not available here: %v", err)
	}
	defer b.Close()
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	// The kernel takes ESP (and drops it: it has no SA for this SPI) and
	// keepalives; IKE behind the marker still reaches us.
	if err := a.SendESP([]Packet{{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: espPacket(0x4242, 100)}}); err != nil {
		t.Fatal(err)
	}
	if err := a.SendIKE(Packet{Local: natAddr(a, lo1), Remote: natAddr(b, lo2), Data: ikeHeader(40)}); err != nil {
		t.Fatal(err)
	}
	if p := rec.waitIKE(t, 1)[0]; !bytes.Equal(p.Data, ikeHeader(40)) {
		t.Errorf("IKE through the encap socket: %x", p.Data)
	}
	if st := b.Stats(); st.ESPIn.Packets != 0 {
		t.Errorf("ESP reached userspace through a UDP_ENCAP socket: %+v", st)
	}
}

// TestControl: Config.Control sees every socket once, with its family, and
// its error fails ListenUDP.
func TestControl(t *testing.T) {
	var mu sync.Mutex
	seen := map[bool]int{}
	u, err := ListenUDP(Config{Addrs: []netip.Addr{lo1, lo6}, Control: func(fd int, v6 bool) error {
		if fd < 0 {
			return errors.New("no socket")
		}
		mu.Lock()
		seen[v6]++
		mu.Unlock()
		return nil
	}}, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	u.Close()
	if seen[false] != 2 || seen[true] != 2 {
		t.Errorf("Control saw %d IPv4 and %d IPv6 sockets, want 2 each (IKE and NAT-T port)", seen[false], seen[true])
	}
	boom := errors.New("boom")
	if _, err := ListenUDP(Config{Addrs: []netip.Addr{lo1}, Control: func(int, bool) error { return boom }}, newRecorder()); !errors.Is(err, boom) {
		t.Errorf("ListenUDP with a failing Control: %v", err)
	}
}

// TestOffloadSupport records whether this kernel has UDP GSO (UDP_SEGMENT)
// and GRO (UDP_GRO), a later speed-up for the ESP path.
func TestOffloadSupport(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, _ := c.SyscallConn()
	var gso, gro error
	raw.Control(func(fd uintptr) {
		gso = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, 1400)
		gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
	})
	t.Logf("UDP_SEGMENT (GSO): %v; UDP_GRO: %v (nil means supported)", gso, gro)
}
