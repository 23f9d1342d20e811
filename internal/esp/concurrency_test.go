package esp

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentSA has many goroutines seal on one Outbound and then many
// open the shuffled packets, each sent twice, on one Inbound: every
// sequence number is used once, every packet is accepted exactly once, and
// the counters add up. Run it with -race.
func TestConcurrentSA(t *testing.T) {
	const workers, perWorker = 16, 300
	for _, name := range []string{"aes128gcm16", "aes128gcm8", "chacha20poly1305", "aes128-sha256"} {
		t.Run(name, func(t *testing.T) {
			c := suiteByName(t, name).config(0xabc, true, Tunnel, 11)
			c.ReplayWindow = workers * perWorker // reordering below never leaves the window
			o, in := newPair(t, c)

			pkts := make([][]byte, workers*perWorker)
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dst := make([]byte, 0, 2048)
					for i := range perWorker {
						inner := ipv4Packet(w+i, nil)
						p, err := o.Seal(dst[:0], inner, ProtoIPv4)
						if err != nil {
							t.Error(err)
							return
						}
						pkts[next.Add(1)-1] = append([]byte(nil), p...)
					}
				}()
			}
			wg.Wait()
			seen := make(map[uint32]bool)
			for _, p := range pkts {
				s := binary.BigEndian.Uint32(p[4:8])
				if seen[s] || s == 0 || s > uint32(len(pkts)) {
					t.Fatalf("sequence number %d reused or out of range", s)
				}
				seen[s] = true
			}

			// Every packet twice, shuffled.
			deliveries := append(append([][]byte{}, pkts...), pkts...)
			r := rand.New(rand.NewPCG(1, 1))
			r.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
			var accepted, replayed atomic.Int64
			var idx atomic.Int64
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dst := make([]byte, 0, 2048)
					for {
						i := idx.Add(1) - 1
						if i >= int64(len(deliveries)) {
							return
						}
						_, _, err := in.Open(dst[:0], deliveries[i])
						switch err {
						case nil:
							accepted.Add(1)
						case ErrReplay:
							replayed.Add(1)
						default:
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			if accepted.Load() != int64(len(pkts)) || replayed.Load() != int64(len(pkts)) {
				t.Fatalf("accepted %d, replayed %d; want %d each", accepted.Load(), replayed.Load(), len(pkts))
			}
			oc, ic := o.Counters(), in.Counters()
			if oc.Packets != uint64(len(pkts)) || ic.Packets != oc.Packets || ic.Bytes != oc.Bytes || ic.Replay != oc.Packets {
				t.Fatalf("counters out %+v in %+v", oc, ic)
			}
		})
	}
}

// TestConcurrentExhaustion races many Seals over the last sequence numbers:
// exactly the remaining ones are handed out, once each, and the counter
// never wraps.
func TestConcurrentExhaustion(t *testing.T) {
	for _, esn := range []bool{false, true} {
		o, _ := newPair(t, suiteByName(t, "aes128gcm16").config(1, esn, Tunnel, 1))
		const left = 100
		o.seq.Store(o.hard - left)
		var ok, exhausted atomic.Int64
		var mu sync.Mutex
		seen := map[uint32]bool{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					p, err := o.Seal(nil, ipv4Packet(1, nil), ProtoIPv4)
					switch err {
					case nil:
						ok.Add(1)
						mu.Lock()
						s := binary.BigEndian.Uint32(p[4:8])
						if seen[s] {
							t.Errorf("sequence number %#x used twice", s)
						}
						seen[s] = true
						mu.Unlock()
					case ErrSequenceExhausted:
						exhausted.Add(1)
					default:
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if ok.Load() != left || exhausted.Load() != 400-left {
			t.Fatalf("esn=%t: %d sealed, %d refused", esn, ok.Load(), exhausted.Load())
		}
		if s := o.seq.Load(); s < o.hard || s > o.hard+8 {
			t.Fatalf("counter at %d, hard limit %d", s, o.hard)
		}
	}
}
