package userspace

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/esp"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// FuzzInbound feeds arbitrary datagrams, encapsulated and plain, into a
// backend with tunnel- and transport-mode SAs of every suite installed: no
// panic, and whatever comes out of TUN passed the policy check.
func FuzzInbound(f *testing.F) {
	dev, host := tun.NewMemPair("fuzz", 1400, 4096)
	b, err := New(Config{Device: dev, Transport: discard{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close(); host.Close() })
	go func() { // drain the host side
		bufs := [][]byte{make([]byte, 1500)}
		sizes := make([]int, 1)
		for {
			if _, err := host.Read(bufs, sizes, 0); err != nil {
				return
			}
		}
	}()
	a := netip.MustParseAddrPort("192.0.2.1:4500")
	r := netip.MustParseAddrPort("192.0.2.2:4500")
	var seeds [][]byte
	for i, s := range suites {
		for _, mode := range []dataplane.Mode{dataplane.Tunnel, dataplane.Transport} {
			spi := uint32(0x100 + 2*i + int(mode))
			ts, rts := []dataplane.Selector{sel("10.1.0.0/16")}, []dataplane.Selector{sel("10.2.0.0/16")}
			if mode == dataplane.Transport {
				ts, rts = []dataplane.Selector{sel("192.0.2.1/32")}, []dataplane.Selector{sel("192.0.2.2/32")}
			}
			forUs, forPeer := makeSAs(s, peerSpec{outer: a, ts: ts, spi: spi}, peerSpec{outer: r, ts: rts, spi: spi + 0x1000}, mode, true, 1, 3)
			if err := b.Install(forUs, 0); err != nil {
				f.Fatal(err)
			}
			// A valid packet from the peer as a seed.
			out, err := esp.NewOutbound(espConfig(forPeer, false, nil))
			if err != nil {
				f.Fatal(err)
			}
			pkt := udpPacket(netip.MustParseAddr("10.2.0.1"), netip.MustParseAddr("10.1.0.1"), 1, 2, []byte("seed"))
			nh := uint8(esp.ProtoIPv4)
			payload := pkt
			if mode == dataplane.Transport {
				_, payload, nh, _ = esp.SplitTransport(udpPacket(r.Addr(), a.Addr(), 1, 2, []byte("seed")))
			}
			sealed, err := out.Seal(nil, payload, nh)
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, sealed)
		}
	}
	for _, s := range seeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 1}, true)
	f.Fuzz(func(t *testing.T, data []byte, encap bool) {
		pkts := []transport.Packet{{Local: a, Remote: r, Data: data}}
		if len(data) >= 4 && binary.BigEndian.Uint32(data) == 0 {
			return // the transport never hands these on (non-ESP marker)
		}
		b.handleESP(pkts, encap)
	})
}

type discard struct{}

func (discard) SendESP([]transport.Packet) error { return nil }
