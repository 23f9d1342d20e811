package esp

import (
	"math"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// replayWindow is the receiver's anti-replay window (RFC 4303 3.4.3 and
// Appendix A) kept as RFC 6479's ring of 64-bit blocks: bit s&63 of block
// (s>>6) mod n records sequence number s, and moving the window forward only
// clears the blocks it enters instead of shifting the whole bitmap.
//
// Concurrency: many workers call Open on one SA. check, the test before
// decryption, reads the window without a lock (atomic loads); it may be
// stale, so commit repeats the test under mu before setting the bit, after
// the ICV has verified. A stale check can only let through a packet that
// commit then rejects, or reject one that commit would also reject (a ring
// slot is reused only for blocks at least n > W/64 blocks ahead, which puts
// the old sequence number out of the window).
type replayWindow struct {
	size   uint64 // W, packets; a multiple of 64
	mask   uint64 // len(blocks)-1; len(blocks) is a power of two > W/64
	blocks []atomic.Uint64

	_ cpu.CacheLinePad // the fields above are read-only

	mu  sync.Mutex    // serializes commit
	top atomic.Uint64 // T, the highest authenticated sequence number (RFC 4303 A2)
}

func newReplayWindow(size int) *replayWindow {
	if size <= 0 {
		size = DefaultReplayWindow
	}
	size = (size + 63) &^ 63
	// RFC 6479 3: one block more than the window, so that the block being
	// entered never holds bits still inside the window; rounded up to a
	// power of two so that the ring index is a mask.
	n := 1
	for n < size/64+1 {
		n <<= 1
	}
	return &replayWindow{
		size:   uint64(size),
		mask:   uint64(n - 1),
		blocks: make([]atomic.Uint64, n),
	}
}

// inferESN returns the 64-bit sequence number of a packet that carries
// seql, choosing the high-order half by RFC 4303 Appendix A2.2 relative to
// the top of the window T. ok is false if Seqh would wrap past 2^32-1.
func (w *replayWindow) inferESN(seql uint32) (seq uint64, ok bool) {
	t := w.top.Load()
	th, tl := uint32(t>>32), uint32(t)
	win := uint32(w.size)
	bl := tl - win + 1 // mod 2^32
	seqh := th
	if tl >= win-1 {
		// Case A: the window lies within one subspace; anything below it
		// belongs to the next subspace.
		if seql < bl {
			if th == math.MaxUint32 {
				return 0, false
			}
			seqh = th + 1
		}
	} else if seql >= bl && th > 0 {
		// Case B: the window spans subspaces Th-1 and Th; values above Bl
		// are in Th-1. While Th is 0 there is no earlier subspace and those
		// values lie ahead of the window.
		seqh = th - 1
	}
	return uint64(seqh)<<32 | uint64(seql), true
}

// check reports whether seq may be new: ahead of the window, or inside it
// with its bit clear. Sequence number 0 is never sent (RFC 4303 3.3.3: the
// first packet carries 1) and is rejected.
func (w *replayWindow) check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	top := w.top.Load()
	if seq > top {
		return true
	}
	if top-seq >= w.size {
		return false
	}
	return w.blocks[(seq>>6)&w.mask].Load()&(1<<(seq&63)) == 0
}

// commit records seq as received after its ICV verified (RFC 4303 3.4.3:
// "the receive window is updated only if the ICV verification succeeds"),
// moving the window when seq is ahead of it. It reports false if seq turned
// out to be a replay after all (a duplicate decrypted concurrently, or the
// window moved past it since check).
func (w *replayWindow) commit(seq uint64) bool {
	if seq == 0 {
		return false
	}
	w.mu.Lock()
	top := w.top.Load()
	if seq > top {
		// Clear the blocks the window enters, all of them on a jump of a
		// whole ring or more (RFC 6479 3).
		cur, next := top>>6, seq>>6
		if next-cur > w.mask {
			for i := range w.blocks {
				w.blocks[i].Store(0)
			}
		} else {
			for b := cur + 1; b <= next; b++ {
				w.blocks[b&w.mask].Store(0)
			}
		}
		w.top.Store(seq)
	} else if top-seq >= w.size {
		w.mu.Unlock()
		return false
	}
	blk := &w.blocks[(seq>>6)&w.mask]
	bit := uint64(1) << (seq & 63)
	old := blk.Load()
	if old&bit != 0 {
		w.mu.Unlock()
		return false
	}
	blk.Store(old | bit)
	w.mu.Unlock()
	return true
}

// reset empties the window and puts its top at t (tests start near 2^32 or
// 2^64 with it).
func (w *replayWindow) reset(t uint64) {
	w.mu.Lock()
	for i := range w.blocks {
		w.blocks[i].Store(0)
	}
	w.top.Store(t)
	w.mu.Unlock()
}
