package dataplane

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"
)

// LarvalTimeout is how long an SPI from AllocSPI stays reserved without an
// Install. The kernel keeps an allocated ("larval") XFRM state about as long;
// an IKE exchange that has not finished by then has failed.
const LarvalTimeout = 3 * time.Minute

// None is the backend of `dataplane: none`: Cygnet negotiates SAs but moves
// no packets. It allocates SPIs, keeps the installed SAs, which of them
// carries each ReqID's outbound traffic, and the trap policies (so status and
// tests see what a real backend would hold), reports zero counters, and
// raises no events. It zeroes keys on Remove and Close.
type None struct {
	rand io.Reader
	now  func() time.Time

	mu        sync.Mutex
	closed    bool
	installed map[uint32]*noneSA
	larval    map[uint32]time.Time // allocated, not installed: reserved until then
	larvalQ   []larvalSPI          // the same, in allocation order, for expiry
	traps     map[uint32][2][]Selector
	handler   func(Event)
}

type noneSA struct {
	sa *SA
	// outbound is whether this SA carries the outbound traffic of its
	// ReqID: false while deferred (SA.DeferOutbound) and once a successor
	// took over.
	outbound bool
}

type larvalSPI struct {
	spi     uint32
	expires time.Time
}

// NewNone returns an empty none backend. rand supplies SPIs (nil:
// crypto/rand) and now the time for expiring unused SPIs (nil: time.Now).
func NewNone(rand io.Reader, now func() time.Time) *None {
	if now == nil {
		now = time.Now
	}
	return &None{
		rand:      rand,
		now:       now,
		installed: make(map[uint32]*noneSA),
		larval:    make(map[uint32]time.Time),
		traps:     make(map[uint32][2][]Selector),
	}
}

// AllocSPI implements Backend.
func (n *None) AllocSPI() (uint32, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return 0, ErrClosed
	}
	now := n.now()
	n.expireLarval(now)
	var b [4]byte
	// With 2^32 SPIs a collision is rare; a bounded number of tries keeps a
	// broken random source from spinning forever.
	for range 64 {
		if err := n.read(b[:]); err != nil {
			return 0, fmt.Errorf("dataplane: allocating an SPI: %w", err)
		}
		spi := binary.BigEndian.Uint32(b[:])
		if spi < 256 { // RFC 4303 2.1: 1-255 are reserved by IANA, 0 is never sent
			continue
		}
		if _, ok := n.installed[spi]; ok {
			continue
		}
		if _, ok := n.larval[spi]; ok {
			continue
		}
		exp := now.Add(LarvalTimeout)
		n.larval[spi] = exp
		n.larvalQ = append(n.larvalQ, larvalSPI{spi, exp})
		return spi, nil
	}
	return 0, ErrNoFreeSPI
}

func (n *None) read(b []byte) error {
	if n.rand == nil {
		_, err := rand.Read(b)
		return err
	}
	_, err := io.ReadFull(n.rand, b)
	return err
}

// expireLarval frees allocations older than LarvalTimeout. The queue is in
// allocation order, so this is amortized O(1) per AllocSPI.
func (n *None) expireLarval(now time.Time) {
	i := 0
	for ; i < len(n.larvalQ); i++ {
		l := n.larvalQ[i]
		if l.expires.After(now) {
			break
		}
		// The map entry may be gone (installed, removed) or belong to a
		// newer allocation of the same SPI.
		if exp, ok := n.larval[l.spi]; ok && exp.Equal(l.expires) {
			delete(n.larval, l.spi)
		}
	}
	if i > 0 {
		n.larvalQ = append(n.larvalQ[:0], n.larvalQ[i:]...)
	}
}

// Install implements Backend.
func (n *None) Install(sa *SA, replaces uint32) error {
	if err := checkSA(sa); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if _, ok := n.installed[sa.InSPI]; ok {
		return fmt.Errorf("%w: %08x", ErrSPIInUse, sa.InSPI)
	}
	var old *noneSA
	if replaces != 0 {
		var ok bool
		if old, ok = n.installed[replaces]; !ok {
			return fmt.Errorf("%w: %08x (the SA to replace)", ErrUnknownSPI, replaces)
		}
	}
	delete(n.larval, sa.InSPI)
	// Inbound first, then outbound; the old outbound stops here, under
	// the same lock, so no packet could see neither (make-before-break).
	n.installed[sa.InSPI] = &noneSA{sa: sa, outbound: !sa.DeferOutbound}
	if old != nil && !sa.DeferOutbound {
		old.outbound = false
	}
	return nil
}

// ActivateOutbound implements Backend.
func (n *None) ActivateOutbound(inSPI uint32) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	e, ok := n.installed[inSPI]
	if !ok {
		return fmt.Errorf("%w: %08x", ErrUnknownSPI, inSPI)
	}
	for _, o := range n.installed {
		if o.sa.ReqID == e.sa.ReqID {
			o.outbound = false
		}
	}
	e.outbound = true
	return nil
}

// Trap implements Backend: the none backend sees no packets, so a trap
// never fires; it is only recorded.
func (n *None) Trap(t Trap) error {
	if len(t.LocalTS) == 0 || len(t.RemoteTS) == 0 {
		return fmt.Errorf("%w: trap without selectors", ErrInvalidSA)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	n.traps[t.ReqID] = [2][]Selector{append([]Selector(nil), t.LocalTS...), append([]Selector(nil), t.RemoteTS...)}
	return nil
}

// Untrap implements Backend.
func (n *None) Untrap(reqid uint32) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if _, ok := n.traps[reqid]; !ok {
		return fmt.Errorf("%w: %d", ErrUnknownTrap, reqid)
	}
	delete(n.traps, reqid)
	return nil
}

// Trapped returns the selectors of reqid's trap policy, for tests.
func (n *None) Trapped(reqid uint32) (local, remote []Selector, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.traps[reqid]
	return t[0], t[1], ok
}

// checkSA rejects an SA no backend could install.
func checkSA(sa *SA) error {
	switch {
	case sa == nil:
		return fmt.Errorf("%w: nil", ErrInvalidSA)
	case sa.InSPI < 256 || sa.OutSPI < 256:
		return fmt.Errorf("%w: SPI in %08x out %08x (RFC 4303 2.1: 0-255 are reserved)", ErrInvalidSA, sa.InSPI, sa.OutSPI)
	case !sa.Local.Addr().IsValid() || !sa.Remote.Addr().IsValid():
		return fmt.Errorf("%w: outer addresses %v, %v", ErrInvalidSA, sa.Local, sa.Remote)
	case sa.Local.Addr().Is4() != sa.Remote.Addr().Is4():
		return fmt.Errorf("%w: outer addresses of different families %v, %v", ErrInvalidSA, sa.Local, sa.Remote)
	case sa.Mode != Tunnel && sa.Mode != Transport:
		return fmt.Errorf("%w: mode %v", ErrInvalidSA, sa.Mode)
	case sa.ReplayWindow < 0:
		return fmt.Errorf("%w: replay window %d", ErrInvalidSA, sa.ReplayWindow)
	}
	return nil
}

// Remove implements Backend.
func (n *None) Remove(inSPI uint32) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if e, ok := n.installed[inSPI]; ok {
		e.sa.Zero()
		delete(n.installed, inSPI)
		return nil
	}
	if _, ok := n.larval[inSPI]; ok {
		delete(n.larval, inSPI)
		return nil
	}
	return fmt.Errorf("%w: %08x", ErrUnknownSPI, inSPI)
}

// Counters implements Backend. The none backend moves no packets: they are
// zero for every installed SA.
func (n *None) Counters(inSPI uint32) (Counters, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.installed[inSPI]
	return Counters{}, ok
}

// SetEventHandler implements Backend. The none backend raises no events.
func (n *None) SetEventHandler(h func(Event)) {
	n.mu.Lock()
	n.handler = h
	n.mu.Unlock()
}

// Close implements Backend. It is idempotent.
func (n *None) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	for spi, e := range n.installed {
		e.sa.Zero()
		delete(n.installed, spi)
	}
	clear(n.larval)
	clear(n.traps)
	n.larvalQ = nil
	return nil
}

// Installed returns the inbound SPIs of the installed SAs, for tests and
// diagnostics, in no particular order.
func (n *None) Installed() []uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	spis := make([]uint32, 0, len(n.installed))
	for spi := range n.installed {
		spis = append(spis, spi)
	}
	return spis
}

// Outbound reports whether the SA with inbound SPI inSPI is installed and
// carries its outbound traffic (false once a replacement took over).
func (n *None) Outbound(inSPI uint32) (installed, outbound bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.installed[inSPI]
	if !ok {
		return false, false
	}
	return true, e.outbound
}

var _ Backend = (*None)(nil)
