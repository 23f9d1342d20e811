// Package memnet is an in-memory network for daemon-level tests: endpoints
// with the transport's API (SendIKE, SendESP, SendKeepalive, a
// transport.Handler) on a simulated network that loses, duplicates, delays
// and reorders datagrams, and whose links can be cut.
//
// Datagrams cross it framed as on the wire: IKE on a NAT-T port carries the
// non-ESP marker, and the receiver demultiplexes with transport.Classify,
// exactly as the UDP transport does.
//
// Every fault decision comes from one RNG seeded by Config.Seed, drawn in
// the order datagrams are sent, so a test that sends from one goroutine at
// a time sees the same losses, duplicates and delays on every run. Delays
// use the time package's clock; run tests under testing/synctest for
// virtual time, and then delivery order and times are deterministic too.
package memnet

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// Faults describe what a link does to datagrams. Probabilities are in [0, 1].
type Faults struct {
	// Loss is the probability that a datagram is dropped.
	Loss float64
	// Duplicate is the probability that a datagram is delivered twice.
	Duplicate float64
	// Reorder is the probability that a datagram (each copy on its own) is
	// held back by ReorderDelay, so that later ones overtake it.
	Reorder float64
	// ReorderDelay is the hold-back; zero means 10ms.
	ReorderDelay time.Duration
	// Latency delays every datagram; zero delivers at once.
	Latency time.Duration
}

const defaultReorderDelay = 10 * time.Millisecond

// Config configures a Network.
type Config struct {
	// Seed seeds the fault RNG.
	Seed uint64
	// Faults apply to every link without its own (SetLinkFaults).
	Faults Faults
}

// Stats count what the network did with datagrams.
type Stats struct {
	Sent       uint64 // datagrams handed to the network
	Delivered  uint64 // datagrams handed to a receiving endpoint (duplicates included)
	Lost       uint64 // dropped by Loss
	Duplicated uint64 // extra copies made by Duplicate
	Reordered  uint64 // copies held back by Reorder
	Cut        uint64 // dropped on a cut link
	NoListener uint64 // sent to an address and port nobody listens on
}

// Network is a simulated network of endpoints, addressed by IP address and
// port.
type Network struct {
	mu        sync.Mutex
	rng       *rand.Rand
	faults    Faults
	links     map[link]*linkState
	endpoints map[netip.AddrPort]*Endpoint
	nextPort  uint16
	seq       uint64
	stats     Stats
}

// link is one direction between two addresses.
type link struct{ from, to netip.Addr }

type linkState struct {
	cut    bool
	faults *Faults
}

// New returns an empty network.
func New(cfg Config) *Network {
	return &Network{
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		faults:    cfg.Faults,
		links:     make(map[link]*linkState),
		endpoints: make(map[netip.AddrPort]*Endpoint),
		nextPort:  49152,
	}
}

// SetFaults changes the faults of every link without its own.
func (n *Network) SetFaults(f Faults) {
	n.mu.Lock()
	n.faults = f
	n.mu.Unlock()
}

// SetLinkFaults gives the link between a and b (both directions) its own
// faults.
func (n *Network) SetLinkFaults(a, b netip.Addr, f Faults) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range bothWays(a, b) {
		n.linkState(l).faults = &f
	}
}

// Cut drops every datagram between a and b, both ways, until Restore:
// what a dead peer or a broken path looks like.
func (n *Network) Cut(a, b netip.Addr) { n.setCut(a, b, true) }

// Restore undoes Cut.
func (n *Network) Restore(a, b netip.Addr) { n.setCut(a, b, false) }

func (n *Network) setCut(a, b netip.Addr, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range bothWays(a, b) {
		n.linkState(l).cut = cut
	}
}

func bothWays(a, b netip.Addr) [2]link {
	a, b = a.Unmap(), b.Unmap()
	return [2]link{{a, b}, {b, a}}
}

func (n *Network) linkState(l link) *linkState {
	ls := n.links[l]
	if ls == nil {
		ls = &linkState{}
		n.links[l] = ls
	}
	return ls
}

// Stats returns the network's counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Listen attaches an endpoint with an IKE and a NAT-T port on each of
// cfg.Addrs (which must be given: there is no wildcard here). A zero port
// takes the next free one from 49152 up. BatchSize, SocketBuffer,
// KernelEncap and Log do not apply.
func (n *Network) Listen(cfg transport.Config, h transport.Handler) (*Endpoint, error) {
	if h == nil {
		return nil, errors.New("memnet: nil Handler")
	}
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("memnet: Listen needs addresses (no wildcard)")
	}
	if cfg.Port < 0 || cfg.Port > 65535 || cfg.NATPort < 0 || cfg.NATPort > 65535 ||
		(cfg.Port != 0 && cfg.Port == cfg.NATPort) {
		return nil, fmt.Errorf("memnet: bad ports %d, %d", cfg.Port, cfg.NATPort)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ike, nat := uint16(cfg.Port), uint16(cfg.NATPort)
	if ike == 0 {
		ike = n.freePort(cfg.Addrs)
	}
	if nat == 0 {
		nat = n.freePort(cfg.Addrs, ike)
	}
	e := &Endpoint{
		net:     n,
		h:       h,
		ikePort: ike,
		natPort: nat,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	for _, a := range cfg.Addrs {
		if !a.IsValid() || a.IsUnspecified() {
			return nil, fmt.Errorf("memnet: bad listen address %v", a)
		}
		a = a.Unmap()
		for _, ap := range []netip.AddrPort{netip.AddrPortFrom(a, ike), netip.AddrPortFrom(a, nat)} {
			if n.endpoints[ap] != nil || slices.Contains(e.locals, ap) {
				return nil, fmt.Errorf("memnet: %v already in use", ap)
			}
			e.locals = append(e.locals, ap)
		}
	}
	for _, ap := range e.locals {
		n.endpoints[ap] = e
	}
	e.wg.Add(1)
	go e.run()
	return e, nil
}

// freePort returns a port free on all addrs and not in except.
func (n *Network) freePort(addrs []netip.Addr, except ...uint16) uint16 {
	for {
		p := n.nextPort
		n.nextPort++
		if n.nextPort == 0 {
			n.nextPort = 49152
		}
		if slices.Contains(except, p) {
			continue
		}
		free := true
		for _, a := range addrs {
			if n.endpoints[netip.AddrPortFrom(a.Unmap(), p)] != nil {
				free = false
			}
		}
		if free {
			return p
		}
	}
}

// datagram is one UDP payload on its way.
type datagram struct {
	from, to netip.AddrPort
	data     []byte
}

// transmit puts datagrams on the network; it owns their data. Each
// receiver gets its share in one step, so that a batch sent at once
// arrives as one batch when nothing delays it.
func (n *Network) transmit(dgs ...datagram) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	var dsts []*Endpoint
	var queues [][]*datagramItem
	for _, dg := range dgs {
		dst, items := n.route(dg, now)
		if len(items) == 0 {
			continue
		}
		i := slices.Index(dsts, dst)
		if i < 0 {
			i = len(dsts)
			dsts = append(dsts, dst)
			queues = append(queues, nil)
		}
		queues[i] = append(queues[i], items...)
	}
	for i, dst := range dsts {
		dst.enqueue(queues[i])
	}
}

// route decides the fate of one datagram: its receiver and the copies to
// queue there (none if it is lost). n.mu is held.
func (n *Network) route(dg datagram, now time.Time) (*Endpoint, []*datagramItem) {
	n.stats.Sent++
	from := netip.AddrPortFrom(dg.from.Addr().Unmap(), dg.from.Port())
	to := netip.AddrPortFrom(dg.to.Addr().Unmap(), dg.to.Port())
	f := n.faults
	ls := n.links[link{from.Addr(), to.Addr()}]
	if ls != nil && ls.faults != nil {
		f = *ls.faults
	}
	// Draw the same numbers for every datagram, whatever happens to it,
	// so that cutting a link or a missing listener does not shift the
	// fate of the datagrams after it.
	lossDraw, dupDraw := n.rng.Float64(), n.rng.Float64()
	reorderDraws := [2]float64{n.rng.Float64(), n.rng.Float64()}

	if ls != nil && ls.cut {
		n.stats.Cut++
		return nil, nil
	}
	dst := n.endpoints[to]
	if dst == nil {
		n.stats.NoListener++
		return nil, nil
	}
	if lossDraw < f.Loss {
		n.stats.Lost++
		return nil, nil
	}
	copies := [][]byte{dg.data}
	if dupDraw < f.Duplicate {
		// Each copy has its own buffer: its receiver may keep or spoil it.
		copies = append(copies, slices.Clone(dg.data))
		n.stats.Duplicated++
	}
	items := make([]*datagramItem, len(copies))
	for i, data := range copies {
		delay := f.Latency
		if reorderDraws[i] < f.Reorder {
			d := f.ReorderDelay
			if d == 0 {
				d = defaultReorderDelay
			}
			delay += d
			n.stats.Reordered++
		}
		n.seq++
		items[i] = &datagramItem{at: now.Add(delay), seq: n.seq, local: to, remote: from, data: data}
	}
	return dst, items
}

func (n *Network) delivered(k uint64) {
	n.mu.Lock()
	n.stats.Delivered += k
	n.mu.Unlock()
}

// Endpoint is one host's transport on a Network. It implements
// transport.Endpoint.
type Endpoint struct {
	net     *Network
	h       transport.Handler
	locals  []netip.AddrPort
	ikePort uint16
	natPort uint16

	mu     sync.Mutex
	inbox  inbox
	closed bool
	stats  transport.Stats

	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

var _ transport.Endpoint = (*Endpoint)(nil)

type datagramItem struct {
	at            time.Time
	seq           uint64
	local, remote netip.AddrPort
	data          []byte
}

// inbox is a heap ordered by delivery time, then by send order.
type inbox []*datagramItem

func (q inbox) Len() int { return len(q) }
func (q inbox) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q inbox) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *inbox) Push(x any)   { *q = append(*q, x.(*datagramItem)) }
func (q *inbox) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return it
}

func (e *Endpoint) enqueue(items []*datagramItem) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	for _, it := range items {
		heap.Push(&e.inbox, it)
	}
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// run delivers due datagrams in order, as a socket's reader goroutine does.
func (e *Endpoint) run() {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var due []*datagramItem
	for {
		e.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(e.inbox) > 0 && !e.inbox[0].at.After(now) {
			due = append(due, heap.Pop(&e.inbox).(*datagramItem))
		}
		wait := time.Duration(-1)
		if len(due) == 0 && len(e.inbox) > 0 {
			wait = e.inbox[0].at.Sub(now)
		}
		e.mu.Unlock()

		if len(due) > 0 {
			e.deliver(due)
			clear(due)
			continue
		}
		var tc <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-e.wake:
		case <-tc:
		case <-e.done:
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

// deliver demultiplexes datagrams as the UDP transport does and calls the
// handler: IKE one by one, runs of ESP as one batch.
func (e *Endpoint) deliver(items []*datagramItem) {
	var batch []transport.Packet
	var st transport.Stats
	flush := func() {
		if len(batch) == 0 {
			return
		}
		e.h.HandleESP(batch)
		// The data plane must not keep ESP buffers past the call (the UDP
		// transport reuses them at once): spoil them to catch it in tests.
		for _, p := range batch {
			for i := range p.Data {
				p.Data[i] = 0xA5
			}
		}
		batch = batch[:0]
	}
	for _, it := range items {
		kind, payload := transport.Classify(it.data, it.local.Port() == e.natPort)
		switch kind {
		case transport.KindKeepalive:
			st.Drops[transport.DropKeepalive]++
		case transport.KindJunk:
			st.Drops[transport.DropShort]++
		case transport.KindESP:
			st.ESPIn.Packets++
			st.ESPIn.Bytes += uint64(len(payload))
			batch = append(batch, transport.Packet{Local: it.local, Remote: it.remote, Data: payload})
		case transport.KindIKE:
			flush()
			st.IKEIn.Packets++
			st.IKEIn.Bytes += uint64(len(payload))
			e.h.HandleIKE(transport.Packet{Local: it.local, Remote: it.remote, Data: payload})
		}
	}
	flush()
	e.net.delivered(uint64(len(items)))
	e.mu.Lock()
	addStats(&e.stats, &st)
	e.mu.Unlock()
}

func addStats(to, from *transport.Stats) {
	add := func(a *transport.Counter, b transport.Counter) {
		a.Packets += b.Packets
		a.Bytes += b.Bytes
	}
	add(&to.IKEIn, from.IKEIn)
	add(&to.IKEOut, from.IKEOut)
	add(&to.ESPIn, from.ESPIn)
	add(&to.ESPOut, from.ESPOut)
	to.KeepalivesOut += from.KeepalivesOut
	for i := range to.Drops {
		to.Drops[i] += from.Drops[i]
	}
	to.SendErrors += from.SendErrors
	to.ReceiveErrors += from.ReceiveErrors
}

// checkLocal reports whether local is one of e's addresses, and whether it
// is a NAT-T port.
func (e *Endpoint) checkLocal(local netip.AddrPort) (nat bool, err error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return false, transport.ErrClosed
	}
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	if !slices.Contains(e.locals, local) {
		return false, fmt.Errorf("%w: %v", transport.ErrNoSocket, local)
	}
	return local.Port() == e.natPort, nil
}

func (e *Endpoint) count(f func(st *transport.Stats)) {
	e.mu.Lock()
	f(&e.stats)
	e.mu.Unlock()
}

// SendIKE sends an IKE message, behind the non-ESP marker from a NAT-T port.
func (e *Endpoint) SendIKE(p transport.Packet) error {
	nat, err := e.checkLocal(p.Local)
	if err != nil {
		e.count(func(st *transport.Stats) { st.SendErrors++ })
		return err
	}
	var dg []byte
	if nat {
		dg = make([]byte, transport.MarkerLen, transport.MarkerLen+len(p.Data))
	}
	dg = append(dg, p.Data...)
	e.count(func(st *transport.Stats) {
		st.IKEOut.Packets++
		st.IKEOut.Bytes += uint64(len(p.Data))
	})
	e.net.transmit(datagram{p.Local, p.Remote, dg})
	return nil
}

// SendESP sends ESP packets from NAT-T ports. Bad packets are skipped and
// counted; the first error is returned.
func (e *Endpoint) SendESP(batch []transport.Packet) error {
	var first error
	var dgs []datagram
	for _, p := range batch {
		nat, err := e.checkLocal(p.Local)
		if err == nil && !nat {
			err = fmt.Errorf("%w: %v", transport.ErrNotNATPort, p.Local)
		}
		if kind, _ := transport.Classify(p.Data, true); err == nil && kind != transport.KindESP {
			err = transport.ErrBadESP // the peer could not tell it from IKE
		}
		if err != nil {
			e.count(func(st *transport.Stats) { st.SendErrors++ })
			if first == nil {
				first = err
			}
			continue
		}
		e.count(func(st *transport.Stats) {
			st.ESPOut.Packets++
			st.ESPOut.Bytes += uint64(len(p.Data))
		})
		dgs = append(dgs, datagram{p.Local, p.Remote, slices.Clone(p.Data)})
	}
	e.net.transmit(dgs...)
	return first
}

// SendKeepalive sends a NAT-keepalive (RFC 3948 2.3) from a NAT-T port.
func (e *Endpoint) SendKeepalive(local, remote netip.AddrPort) error {
	nat, err := e.checkLocal(local)
	if err == nil && !nat {
		err = fmt.Errorf("%w: %v", transport.ErrNotNATPort, local)
	}
	if err != nil {
		e.count(func(st *transport.Stats) { st.SendErrors++ })
		return err
	}
	e.count(func(st *transport.Stats) { st.KeepalivesOut++ })
	e.net.transmit(datagram{local, remote, []byte{0xFF}})
	return nil
}

// LocalAddrs lists the endpoint's addresses and ports.
func (e *Endpoint) LocalAddrs() []netip.AddrPort { return slices.Clone(e.locals) }

// Ports returns the IKE and NAT-T ports.
func (e *Endpoint) Ports() (ike, nat uint16) { return e.ikePort, e.natPort }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() transport.Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Close detaches the endpoint, drops what is still in flight to it and
// waits for its delivery goroutine. It must not be called from a Handler.
func (e *Endpoint) Close() error {
	e.once.Do(func() {
		e.net.mu.Lock()
		for _, ap := range e.locals {
			if e.net.endpoints[ap] == e {
				delete(e.net.endpoints, ap)
			}
		}
		e.net.mu.Unlock()
		e.mu.Lock()
		e.closed = true
		e.inbox = nil
		e.mu.Unlock()
		close(e.done)
		e.wg.Wait()
	})
	return nil
}
