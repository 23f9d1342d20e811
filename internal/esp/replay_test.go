package esp

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// windowModel is the obvious anti-replay window (RFC 4303 3.4.3): a set of
// every accepted sequence number and the highest one.
type windowModel struct {
	size uint64
	top  uint64
	seen map[uint64]bool
}

func (m *windowModel) accept(seq uint64) bool {
	if seq == 0 || m.seen[seq] || (seq <= m.top && m.top-seq >= m.size) {
		return false
	}
	m.seen[seq] = true
	m.top = max(m.top, seq)
	return true
}

// runWindow feeds seqs through check and commit and compares each verdict
// with the model.
func runWindow(t testing.TB, size int, seqs []uint64) {
	w := newReplayWindow(size)
	m := &windowModel{size: w.size, seen: map[uint64]bool{}}
	for i, s := range seqs {
		want := m.accept(s)
		got := w.check(s) && w.commit(s)
		if got != want {
			t.Fatalf("window %d, step %d: seq %d (top %d): accepted=%t, want %t", size, i, s, m.top, got, want)
		}
		if w.top.Load() != m.top {
			t.Fatalf("top %d, want %d", w.top.Load(), m.top)
		}
	}
}

func TestReplayWindowEdges(t *testing.T) {
	w := newReplayWindow(64) // 64 packets, a ring of 2 blocks
	if len(w.blocks) != 2 {
		t.Fatalf("%d blocks", len(w.blocks))
	}
	steps := []struct {
		seq uint64
		ok  bool
	}{
		{0, false},  // never valid
		{1, true},   // first packet
		{1, false},  // duplicate
		{100, true}, // ahead; window is now 37..100
		{37, true},  // oldest in the window
		{36, false}, // just left of it
		{37, false}, // duplicate at the edge
		{100, false},
		{99, true},
		{228, true},  // a jump of exactly the ring (128): block 1 again, must be clear
		{164, false}, // 228-64: just out
		{165, true},  // 228-63: the left edge
		{229, true},
		{10_000_000, true}, // far ahead: everything cleared
		{229, false},
		{9_999_937, true},
		{9_999_936, false},
		{10_000_000, false},
		{math.MaxUint64, true},
		{math.MaxUint64 - 63, true},
		{math.MaxUint64 - 64, false},
		{math.MaxUint64, false},
	}
	for i, s := range steps {
		if got := w.check(s.seq) && w.commit(s.seq); got != s.ok {
			t.Fatalf("step %d: seq %d accepted=%t, want %t", i, s.seq, got, s.ok)
		}
	}
}

// TestReplayWindowModel compares the ring with the model over random
// walks: in order, reordered, duplicated, and with jumps.
func TestReplayWindowModel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{64, 128, 1024, 4096} {
		for range 20 {
			var seqs []uint64
			var top uint64 = uint64(r.IntN(3))
			for range 3000 {
				switch r.IntN(10) {
				case 0:
					top += uint64(r.IntN(4 * size)) // a jump
				case 1:
					seqs = append(seqs, top-min(top, uint64(r.IntN(2*size)))) // old or edge
				case 2:
					if len(seqs) > 0 {
						seqs = append(seqs, seqs[r.IntN(len(seqs))]) // duplicate
					}
				default:
					top += uint64(r.IntN(3))
				}
				seqs = append(seqs, top+uint64(r.IntN(8)))
			}
			runWindow(t, size, seqs)
		}
	}
}

func FuzzReplayWindow(f *testing.F) {
	f.Add(uint8(0), []byte{1, 2, 3, 3, 200, 1, 0, 255, 255, 7})
	f.Add(uint8(3), []byte{10, 0x80, 1, 0x81, 0xff, 3})
	f.Fuzz(func(t *testing.T, sizeSel uint8, ops []byte) {
		size := []int{64, 128, 192, 1024}[sizeSel%4]
		var seqs []uint64
		var top uint64
		for i := 0; i+1 < len(ops); i += 2 {
			d := uint64(ops[i+1]) * uint64(1+ops[i]&0x7f)
			if ops[i]&0x80 != 0 {
				seqs = append(seqs, top-min(top, d))
			} else {
				top += d
				seqs = append(seqs, top)
			}
		}
		runWindow(t, size, seqs)
	})
}

func TestInferESN(t *testing.T) {
	const W = 1024
	for _, tc := range []struct {
		top  uint64
		seql uint32
		want uint64
		ok   bool
	}{
		// Case A: Tl >= W-1.
		{5000, 5001, 5001, true},
		{5000, 4000, 4000, true},           // in the window
		{5000, 3977, 3977, true},           // Bl = 3977
		{5000, 3976, 1<<32 + 3976, true},   // below Bl: next subspace
		{7<<32 + 5000, 3, 8<<32 + 3, true}, // the next subspace
		{7<<32 + math.MaxUint32, 0, 8 << 32, true},
		// Case B: Tl < W-1, the window spans two subspaces.
		{7<<32 + 10, 5, 7<<32 + 5, true},
		{7<<32 + 10, math.MaxUint32, 6<<32 + math.MaxUint32, true},
		{7<<32 + 10, math.MaxUint32 - 1012, 6<<32 + math.MaxUint32 - 1012, true}, // Bl
		{7<<32 + 10, math.MaxUint32 - 1013, 7<<32 + math.MaxUint32 - 1013, true}, // ahead
		// Th = 0: there is no subspace before the first.
		{0, 1, 1, true},
		{0, math.MaxUint32, math.MaxUint32, true},
		{10, math.MaxUint32 - 5, math.MaxUint32 - 5, true},
		// Seqh would pass 2^32-1.
		{math.MaxUint64 - 10, 3, 0, false},
	} {
		w := newReplayWindow(W)
		w.reset(tc.top)
		got, ok := w.inferESN(tc.seql)
		if got != tc.want || ok != tc.ok {
			t.Errorf("T=%#x Seql=%#x: got %#x %t, want %#x %t", tc.top, tc.seql, got, ok, tc.want, tc.ok)
		}
	}
}

// TestESNAcrossBoundary sends packets across 2^32 with ESN and delivers
// them reordered and duplicated: every packet is accepted exactly once,
// including those from the old subspace that arrive after the window moved
// into the new one.
func TestESNAcrossBoundary(t *testing.T) {
	for _, name := range []string{"aes128gcm16", "aes128-sha256", "chacha20poly1305"} {
		sp := suiteByName(t, name)
		c := sp.config(9, true, Tunnel, 9)
		c.ReplayWindow = 128
		o, in := newPair(t, c)
		start := uint64(1<<32 - 50)
		o.seq.Store(start)
		in.w.reset(start)
		var pkts [][]byte
		for range 100 {
			p, err := o.Seal(nil, ipv4Packet(20, nil), ProtoIPv4)
			if err != nil {
				t.Fatal(err)
			}
			pkts = append(pkts, p)
		}
		// Deliver 60..99 (crossing into subspace 1), then 0..59, then all again.
		order := append(seqRange(60, 100), seqRange(0, 60)...)
		for _, i := range order {
			got, _, err := in.Open(nil, pkts[i])
			if err != nil {
				t.Fatalf("%s: packet %d (seq %#x): %v", name, i, start+1+uint64(i), err)
			}
			if !bytes.Equal(got, ipv4Packet(20, nil)) {
				t.Fatalf("%s: packet %d garbled", name, i)
			}
		}
		if top := in.w.top.Load(); top != start+100 {
			t.Fatalf("top %#x", top)
		}
		for _, i := range order {
			if _, _, err := in.Open(nil, pkts[i]); err != ErrReplay {
				t.Fatalf("%s: duplicate of packet %d: %v", name, i, err)
			}
		}
		// 2^32 packets later the same low-order bits mean the next subspace:
		// a replay of an old packet is inferred there and fails the ICV.
		in.w.reset(2<<32 - 60)
		if _, _, err := in.Open(nil, pkts[70]); err != ErrAuth {
			t.Fatalf("%s: old packet against a later window: %v", name, err)
		}
	}
}

// TestNoESNHighSequence checks that without ESN the 32-bit space is used up
// to 2^32-1 on both sides.
func TestNoESNHighSequence(t *testing.T) {
	o, in := newPair(t, suiteByName(t, "aes256gcm16").config(3, false, Tunnel, 3))
	o.seq.Store(math.MaxUint32 - 2)
	for range 2 {
		p, err := o.Seal(nil, ipv4Packet(1, nil), ProtoIPv4)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := in.Open(nil, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := o.Seal(nil, ipv4Packet(1, nil), ProtoIPv4); err != ErrSequenceExhausted {
		t.Fatal(err)
	}
}

// TestForgedPacketDoesNotMoveWindow: a packet far ahead with a bad ICV
// must leave the window where it was, so older genuine packets still pass.
func TestForgedPacketDoesNotMoveWindow(t *testing.T) {
	for _, esn := range []bool{false, true} {
		for _, name := range []string{"aes128gcm16", "aes128gcm8", "aes128-sha256"} {
			o, in := newPair(t, suiteByName(t, name).config(4, esn, Tunnel, 4))
			first, _ := o.Seal(nil, ipv4Packet(5, nil), ProtoIPv4)
			o.seq.Store(1 << 20)
			far, _ := o.Seal(nil, ipv4Packet(5, nil), ProtoIPv4)
			forged := bytes.Clone(far)
			forged[len(forged)-1] ^= 1
			if _, _, err := in.Open(nil, forged); err != ErrAuth {
				t.Fatalf("%s: forged: %v", name, err)
			}
			if top := in.w.top.Load(); top != 0 {
				t.Fatalf("%s: forged packet moved the window to %d", name, top)
			}
			if _, _, err := in.Open(nil, first); err != nil {
				t.Fatalf("%s: genuine packet after a forgery: %v", name, err)
			}
			if _, _, err := in.Open(nil, far); err != nil {
				t.Fatalf("%s: genuine far packet: %v", name, err)
			}
			// Without ESN the old packet is left of the window. With ESN,
			// RFC 4303 A2.2 puts a Seql below the window in the next
			// subspace, where its ICV fails.
			want := ErrReplay
			if esn {
				want = ErrAuth
			}
			if _, _, err := in.Open(nil, first); err != want {
				t.Fatalf("%s esn=%t: old packet after the jump: %v, want %v", name, esn, err, want)
			}
		}
	}
}

func seqRange(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
