package esp

import (
	"fmt"
	"sync/atomic"
	"testing"
)

var benchSuites = []string{"aes128gcm16", "aes256gcm16", "chacha20poly1305", "aes128gcm8", "aes128-sha256", "aes256-sha512", "aes128-sha1"}
var benchSizes = []int{64, 512, 1400}

// BenchmarkSeal seals n-byte inner packets on one goroutine into a reused
// buffer: zero allocations.
func BenchmarkSeal(b *testing.B) {
	for _, name := range benchSuites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				o, _ := newPair(b, suiteByName(b, name).config(1, false, Tunnel, 1))
				inner := ipv4Packet(n-28, nil)
				dst := make([]byte, 0, 2048)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if o.seq.Load() > 1<<31 {
						o.seq.Store(0)
					}
					if _, err := o.Seal(dst[:0], inner, ProtoIPv4); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// openRing returns count packets sealed with consecutive sequence numbers.
func openRing(b *testing.B, o *Outbound, n, count int) [][]byte {
	inner := ipv4Packet(n-28, nil)
	ring := make([][]byte, count)
	for i := range ring {
		p, err := o.Seal(nil, inner, ProtoIPv4)
		if err != nil {
			b.Fatal(err)
		}
		ring[i] = p
	}
	return ring
}

// BenchmarkOpen opens n-byte inner packets on one goroutine; the replay
// window is reset each time the ring of pre-sealed packets starts over.
func BenchmarkOpen(b *testing.B) {
	for _, name := range benchSuites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				o, in := newPair(b, suiteByName(b, name).config(1, false, Tunnel, 1))
				ring := openRing(b, o, n, 4096)
				dst := make([]byte, 0, 2048)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if i == len(ring) {
						i = 0
						in.w.reset(0)
					}
					if _, _, err := in.Open(dst[:0], ring[i]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkSealParallel: all goroutines seal on one SA (one atomic
// sequence counter).
func BenchmarkSealParallel(b *testing.B) {
	for _, name := range []string{"aes128gcm16", "chacha20poly1305", "aes128-sha256"} {
		for _, n := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				c := suiteByName(b, name).config(1, true, Tunnel, 1)
				o, _ := newPair(b, c)
				inner := ipv4Packet(n-28, nil)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					dst := make([]byte, 0, 2048)
					for pb.Next() {
						if _, err := o.Seal(dst[:0], inner, ProtoIPv4); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// BenchmarkOpenParallel: all goroutines open packets of one SA (one replay
// window) from a shared ring, roughly in sequence order as a pool of crypto
// workers would. When the ring starts over the window is reset, so a few
// packets in flight across that point are dropped as replays; they are
// reported as drops/op.
func BenchmarkOpenParallel(b *testing.B) {
	for _, name := range []string{"aes128gcm16", "chacha20poly1305", "aes128-sha256"} {
		for _, n := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				c := suiteByName(b, name).config(1, false, Tunnel, 1)
				c.ReplayWindow = 1 << 16
				o, in := newPair(b, c)
				ring := openRing(b, o, n, 1<<14)
				var next, drops atomic.Int64
				b.SetBytes(int64(n))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					dst := make([]byte, 0, 2048)
					for pb.Next() {
						i := next.Add(1) - 1
						k := int(i % int64(len(ring)))
						if k == 0 && i > 0 {
							in.w.reset(0)
						}
						if _, _, err := in.Open(dst[:0], ring[k]); err != nil {
							drops.Add(1)
						}
					}
				})
				b.ReportMetric(float64(drops.Load())/float64(b.N), "drops/op")
			})
		}
	}
}

// BenchmarkReplayWindow measures check+commit for in-order sequence
// numbers, serially and from all goroutines at once.
func BenchmarkReplayWindow(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		w := newReplayWindow(DefaultReplayWindow)
		var seq uint64
		for b.Loop() {
			seq++
			if !w.check(seq) || !w.commit(seq) {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		w := newReplayWindow(1 << 16)
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				seq := next.Add(1)
				if w.check(seq) {
					w.commit(seq)
				}
			}
		})
	})
}

// BenchmarkBaselineAEAD is the bare cipher.AEAD.Seal that Seal wraps, with
// a preallocated nonce: the difference to BenchmarkSeal is this package's
// per-packet cost (sequence number, padding, scratch, counters).
func BenchmarkBaselineAEAD(b *testing.B) {
	for _, name := range []string{"aes128gcm16", "chacha20poly1305"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				o, _ := newPair(b, suiteByName(b, name).config(1, false, Tunnel, 1))
				plain := make([]byte, (n+2+3)&^3)
				nonce, aad := make([]byte, 12), make([]byte, 8)
				dst := make([]byte, 0, 2048)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					o.s.aead.Seal(dst[:0], nonce, plain, aad)
				}
			})
		}
	}
}
