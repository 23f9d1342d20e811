package transport

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// countingHandler counts ESP packets and wakes the sender.
type countingHandler struct {
	esp  atomic.Uint64
	wake chan struct{}
}

func (h *countingHandler) HandleIKE(Packet) {}

func (h *countingHandler) HandleESP(batch []Packet) {
	h.esp.Add(uint64(len(batch)))
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// benchCases are the send shapes of the benchmarks: one packet per call,
// and batches as the data plane hands them over, with UDP GSO/GRO (where the
// kernel has them) and without.
var benchCases = []struct {
	batch     int
	noOffload bool
}{
	{1, false},
	{32, true},
	{32, false},
	{64, true},
	{64, false},
}

func benchName(batch int, noOffload bool) string {
	if noOffload {
		return fmt.Sprintf("batch=%d/offload=off", batch)
	}
	return fmt.Sprintf("batch=%d/offload=on", batch)
}

// BenchmarkESPLoopback sends ESP packets of 1400 octets through SendESP to
// a second transport over loopback and counts them in its HandleESP: the
// whole userspace path, sendmmsg to recvmmsg and demultiplexing (and with
// offload, UDP_SEGMENT to UDP_GRO and splitting). One op is one packet, so
// allocs/op is per packet (both sides: the receiver's goroutine is in the
// same process). The sender keeps at most window packets in flight so the
// receive buffer does not overflow.
func BenchmarkESPLoopback(b *testing.B) {
	for _, c := range benchCases {
		b.Run(benchName(c.batch, c.noOffload), func(b *testing.B) { benchESP(b, c.batch, c.noOffload) })
	}
}

func benchESP(b *testing.B, batch int, noOffload bool) {
	const size, window = 1400, 1024
	rx := &countingHandler{wake: make(chan struct{}, 1)}
	recv, err := ListenUDP(Config{Addrs: []netip.Addr{lo2}, NoOffload: noOffload}, rx)
	if err != nil {
		b.Fatal(err)
	}
	defer recv.Close()
	send, err := ListenUDP(Config{Addrs: []netip.Addr{lo1}, NoOffload: noOffload}, &countingHandler{wake: make(chan struct{}, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer send.Close()

	pkts := make([]Packet, batch)
	for i := range pkts {
		pkts[i] = Packet{Local: natAddr(send, lo1), Remote: natAddr(recv, lo2), Data: espPacket(uint32(0x10000+i), size)}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// wait blocks until the receiver has counted at least n packets, or
	// gives up after a second without progress (the rest were lost).
	var lost uint64
	wait := func(n uint64) {
		for {
			got := rx.esp.Load() + lost
			if got >= n {
				return
			}
			timer.Reset(time.Second)
			select {
			case <-rx.wake:
				timer.Stop()
			case <-timer.C:
				if rx.esp.Load()+lost == got {
					lost += n - got
				}
			}
		}
	}

	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n := min(batch, b.N-sent)
		if sent+n > window {
			wait(uint64(sent + n - window))
		}
		if err := send.SendESP(pkts[:n]); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	wait(uint64(sent))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
	if lost != 0 {
		b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
	}
}

// BenchmarkSendESP measures the send side alone: SendESP to a socket that
// nobody reads (the kernel drops what its buffer cannot hold), so the cost
// is the syscalls and our preparation, batch 1 (one sendmmsg per packet)
// against batches, with and without GSO. One op is one packet.
func BenchmarkSendESP(b *testing.B) {
	for _, c := range benchCases {
		batch := c.batch
		b.Run(benchName(batch, c.noOffload), func(b *testing.B) {
			const size = 1400
			sink, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo2, 0)))
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			send, err := ListenUDP(Config{Addrs: []netip.Addr{lo1}, NoOffload: c.noOffload}, &countingHandler{wake: make(chan struct{}, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer send.Close()
			to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
			pkts := make([]Packet, batch)
			for i := range pkts {
				pkts[i] = Packet{Local: natAddr(send, lo1), Remote: to, Data: espPacket(uint32(0x10000+i), size)}
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for sent := 0; sent < b.N; sent += batch {
				if err := send.SendESP(pkts[:min(batch, b.N-sent)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
