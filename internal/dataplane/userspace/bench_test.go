package userspace

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// direct is a zero-copy wire: what one backend sends, the other receives
// in the same call.
type direct struct{ to *Backend }

func (d *direct) SendESP(batch []transport.Packet) error {
	d.to.HandleESP(batch)
	return nil
}

// BenchmarkTunnel measures the whole userspace data path, in memory: host
// packet into A's TUN, SPD lookup, seal, hand-off, SAD lookup, open, policy
// check, out of B's TUN. One op is one packet.
func BenchmarkTunnel(b *testing.B) {
	for _, s := range suites {
		for _, size := range []int{64, 512, 1400} {
			b.Run(fmt.Sprintf("%s/%d", s.name, size), func(b *testing.B) {
				devA, hostA := tun.NewMemPair("a", 1400, 4096)
				devB, hostB := tun.NewMemPair("b", 1400, 4096)
				wa, wb := &direct{}, &direct{}
				ba, err := New(Config{Device: devA, Transport: wa})
				if err != nil {
					b.Fatal(err)
				}
				bb, err := New(Config{Device: devB, Transport: wb})
				if err != nil {
					b.Fatal(err)
				}
				wa.to, wb.to = bb, ba
				defer func() { ba.Close(); bb.Close(); hostA.Close(); hostB.Close() }()
				oa, ob := netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500")
				forA, forB := makeSAs(s,
					peerSpec{outer: oa, ts: []dataplane.Selector{sel("10.1.0.0/16")}, spi: 0x1000},
					peerSpec{outer: ob, ts: []dataplane.Selector{sel("10.2.0.0/16")}, spi: 0x2000},
					dataplane.Tunnel, true, 1, 1)
				if err := ba.Install(forA, 0); err != nil {
					b.Fatal(err)
				}
				if err := bb.Install(forB, 0); err != nil {
					b.Fatal(err)
				}
				pkt := udpPacket(netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1"), 1, 2, make([]byte, size-28))
				batch := make([][]byte, 64)
				for i := range batch {
					batch[i] = pkt
				}
				done := make(chan int)
				go func() {
					bufs := make([][]byte, 64)
					for i := range bufs {
						bufs[i] = make([]byte, 1500)
					}
					sizes := make([]int, 64)
					got := 0
					for got < b.N {
						n, err := hostB.Read(bufs, sizes, 0)
						if err != nil {
							break
						}
						got += n
					}
					done <- got
				}()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for sent := 0; sent < b.N; {
					n := min(len(batch), b.N-sent)
					hostA.Write(batch[:n], 0)
					sent += n
				}
				got := <-done
				el := time.Since(start)
				b.StopTimer()
				if got != b.N {
					b.Fatalf("received %d of %d", got, b.N)
				}
				b.ReportMetric(float64(size)*8*float64(b.N)/el.Seconds()/1e9, "Gbit/s")
			})
		}
	}
}
