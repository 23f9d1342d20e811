package userspace

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/transport/memnet"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

type suite struct {
	name   string
	encr   wire.EncrID
	keyLen int
	integ  wire.IntegID
}

var suites = []suite{
	{"aes256gcm16", wire.ENCR_AES_GCM_16, 256, wire.AUTH_NONE},
	{"chacha20poly1305", wire.ENCR_CHACHA20_POLY1305, 256, wire.AUTH_NONE},
	{"aes256-sha256", wire.ENCR_AES_CBC, 256, wire.AUTH_HMAC_SHA2_256_128},
}

func (s suite) keys(r *rand.Rand) (encr, integ []byte) {
	n := s.keyLen / 8
	if s.encr != wire.ENCR_AES_CBC {
		n += 4 // salt
	}
	encr = make([]byte, n)
	for i := range encr {
		encr[i] = byte(r.Uint32())
	}
	if s.integ == wire.AUTH_HMAC_SHA2_256_128 {
		integ = make([]byte, 32)
		for i := range integ {
			integ[i] = byte(r.Uint32())
		}
	}
	return encr, integ
}

// peerSpec is one side of a test tunnel.
type peerSpec struct {
	outer netip.AddrPort
	ts    []dataplane.Selector
	spi   uint32 // its inbound SPI
}

func sel(prefix string) dataplane.Selector {
	p := netip.MustParsePrefix(prefix)
	return dataplane.Selector{Start: p.Masked().Addr(), End: lastAddr(p), EndPort: 0xffff}
}

// makeSAs returns the SA pairs for a and b with keys drawn from seed.
func makeSAs(s suite, a, b peerSpec, mode dataplane.Mode, encap bool, reqid uint32, seed uint64) (forA, forB *dataplane.SA) {
	r := rand.New(rand.NewPCG(seed, uint64(a.spi)<<32|uint64(b.spi)))
	abE, abI := s.keys(r)
	baE, baI := s.keys(r)
	clone := func(k []byte) []byte { return append([]byte(nil), k...) }
	forA = &dataplane.SA{
		ReqID: reqid, Name: "net", Mode: mode, Encap: encap,
		Local: a.outer, Remote: b.outer, InSPI: a.spi, OutSPI: b.spi,
		Encr: s.encr, EncrKeyLen: s.keyLen, Integ: s.integ,
		InEncrKey: clone(baE), InIntegKey: clone(baI), OutEncrKey: clone(abE), OutIntegKey: clone(abI),
		LocalTS: a.ts, RemoteTS: b.ts, ReplayWindow: 1024,
	}
	forB = &dataplane.SA{
		ReqID: reqid, Name: "net", Mode: mode, Encap: encap,
		Local: b.outer, Remote: a.outer, InSPI: b.spi, OutSPI: a.spi,
		Encr: s.encr, EncrKeyLen: s.keyLen, Integ: s.integ,
		InEncrKey: clone(abE), InIntegKey: clone(abI), OutEncrKey: clone(baE), OutIntegKey: clone(baI),
		LocalTS: b.ts, RemoteTS: a.ts, ReplayWindow: 1024,
	}
	return forA, forB
}

// espHandler feeds a backend from memnet.
type espHandler struct{ b *Backend }

func (h *espHandler) HandleIKE(transport.Packet)         {}
func (h *espHandler) HandleESP(batch []transport.Packet) { h.b.HandleESP(batch) }

// memPeer is a backend on an in-memory TUN and memnet endpoint.
type memPeer struct {
	b    *Backend
	host *tun.Mem
	ep   *memnet.Endpoint
}

func newMemPeer(t testing.TB, n *memnet.Network, addr netip.Addr, natPort int) *memPeer {
	dev, host := tun.NewMemPair("mem", 1400, 4096)
	b, err := New(Config{Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	h := &espHandler{b: b}
	ep, err := n.Listen(transport.Config{Addrs: []netip.Addr{addr}, NATPort: natPort}, h)
	if err != nil {
		t.Fatal(err)
	}
	b.SetTransport(ep)
	p := &memPeer{b: b, host: host, ep: ep}
	t.Cleanup(func() {
		b.Close()
		ep.Close()
		host.Close()
	})
	return p
}

func (p *memPeer) natAddr() netip.AddrPort {
	_, nat := p.ep.Ports()
	return netip.AddrPortFrom(p.ep.LocalAddrs()[0].Addr(), nat)
}

// send injects packets into the peer's TUN as the host would.
func (p *memPeer) send(t testing.TB, pkts ...[]byte) {
	t.Helper()
	if _, err := p.host.Write(pkts, 0); err != nil {
		t.Fatal(err)
	}
}

// recv reads n packets that came out of the peer's TUN, failing after a
// generous bound.
func (p *memPeer) recv(t testing.TB, n int) [][]byte {
	t.Helper()
	var out [][]byte
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 2000)
	}
	sizes := make([]int, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(out) < n {
			k, err := p.host.Read(bufs, sizes, 0)
			if err != nil {
				return
			}
			for i := range k {
				out = append(out, append([]byte(nil), bufs[i][:sizes[i]]...))
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.host.Close()
		<-done
		t.Fatalf("got %d of %d packets", len(out), n)
	}
	return out
}

// udpPacket builds an IPv4 or IPv6 UDP packet with valid checksums.
func udpPacket(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	var pkt []byte
	l4 := 8 + len(payload)
	if src.Is4() {
		pkt = make([]byte, 20+l4)
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[8] = 64
		pkt[9] = 17
		s, d := src.As4(), dst.As4()
		copy(pkt[12:], s[:])
		copy(pkt[16:], d[:])
		binary.BigEndian.PutUint16(pkt[10:], tun.Checksum(pkt[:20], 0))
	} else {
		pkt = make([]byte, 40+l4)
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(l4))
		pkt[6] = 17
		pkt[7] = 64
		s, d := src.As16(), dst.As16()
		copy(pkt[8:], s[:])
		copy(pkt[24:], d[:])
	}
	hl := len(pkt) - l4
	u := pkt[hl:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(l4))
	copy(u[8:], payload)
	var ph uint64
	if src.Is4() {
		ph = tun.PseudoHeaderSum(pkt[12:16], pkt[16:20], 17, l4)
	} else {
		ph = tun.PseudoHeaderSum(pkt[8:24], pkt[24:40], 17, l4)
	}
	c := tun.Checksum(u, ph)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return pkt
}

func mkdirTemp() (string, error) { return os.MkdirTemp("", "cygnet-userspace-") }
