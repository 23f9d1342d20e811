package daemon

import (
	"container/heap"
	"time"
)

// timerHeap orders a worker's timed items by deadline: one heap per worker,
// driven by each IKE SA's NextDeadline (and its NAT keepalive), so a million
// idle SAs cost a million heap entries and one time.Timer per worker, not a
// goroutine each.
type timerHeap []*timerItem

// timerItem is one entry; index is its position in the heap, -1 when out.
type timerItem struct {
	at    time.Time
	index int
	owner any
}

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	it := x.(*timerItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *timerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	it.index = -1
	*h = old[:len(old)-1]
	return it
}

// set arms it for at, or disarms it when at is zero.
func (h *timerHeap) set(it *timerItem, at time.Time) {
	switch {
	case at.IsZero():
		if it.index >= 0 {
			heap.Remove(h, it.index)
		}
	case it.index >= 0:
		it.at = at
		heap.Fix(h, it.index)
	default:
		it.at = at
		heap.Push(h, it)
	}
}

// next returns the earliest deadline, or zero when nothing is armed.
func (h timerHeap) next() time.Time {
	if len(h) == 0 {
		return time.Time{}
	}
	return h[0].at
}

// popDue removes and returns the items due at now, earliest first.
func (h *timerHeap) popDue(now time.Time, due []*timerItem) []*timerItem {
	for len(*h) > 0 && !(*h)[0].at.After(now) {
		due = append(due, heap.Pop(h).(*timerItem))
	}
	return due
}
