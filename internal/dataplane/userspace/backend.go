// Package userspace is Cygnet's userspace data plane (`dataplane:
// userspace`): ESP (RFC 4303, with internal/esp) between a TUN device and
// the network, for hosts whose kernel has no ESP or no XFRM.
//
// Packets the host routes into the TUN device are matched against the SPD
// (outbound policies built from the installed SAs' traffic selectors),
// sealed with the chosen SA and sent UDP-encapsulated (RFC 3948) through the
// transport, or as plain ESP (IP protocol 50) through a raw socket. ESP
// packets from the transport (HandleESP) or the raw socket are looked up in
// the SAD by SPI, opened, checked against the SA's selectors (RFC 4301 5.2)
// and written to the TUN device.
//
// The pipeline follows wireguard-go: the TUN device is read in batches (with
// TSO super-packets segmented by internal/tun), each batch is sealed in place
// in pooled buffers and handed to a sender goroutine that sends it with one
// batched call (sendmmsg); inbound, each batch the transport reads is opened
// into pooled buffers on the reader goroutine and handed to a TUN writer
// goroutine. Nothing on these paths allocates per packet. Per-SA order is
// kept: one goroutine seals a batch in order, so sequence numbers follow
// the TUN order, and batches leave in the order they were read.
package userspace

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/esp"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// Defaults for Config's zero values.
const (
	DefaultTUNName = "cygnet0"
	// DefaultMTU leaves room for the outer IPv6 header, UDP, ESP header, IV,
	// padding and ICV in a 1500-byte path (1500-40-8-8-16-18-16 > 1400).
	DefaultMTU       = 1400
	DefaultBatchSize = 64
	// DefaultAcquireInterval is how often one trap raises Acquire while
	// packets keep matching it.
	DefaultAcquireInterval = time.Second
	// DefaultRouteTable is the routing table of the routes through the
	// TUN device (strongSwan uses 220 for its own).
	DefaultRouteTable = 221
	// DefaultRulePriority is the priority of the first of the routing
	// rules that send traffic to DefaultRouteTable (see routeTable).
	DefaultRulePriority = 221
)

// ESPSender sends UDP-encapsulated ESP packets; transport.Endpoint
// (transport.UDP, memnet.Endpoint) implements it.
type ESPSender interface {
	SendESP(batch []transport.Packet) error
}

// Config configures New.
type Config struct {
	// Device is the TUN device to use (tun.Mem for tests and the rootless
	// demo); the backend closes it on Close. Nil: New opens a Linux TUN
	// device named TUNName with MTU and Offload, and manages routes
	// through it.
	Device tun.Device
	// TUNName is the name of the device New opens; "" means cygnet0.
	TUNName string
	// MTU of the device New opens; 0 means DefaultMTU.
	MTU int
	// Offload asks for TUN segmentation offload (see tun.LinuxConfig).
	Offload bool
	// NoRoutes: do not add routes (a test that routes by itself, or a
	// Device that is not a kernel interface, where there are none anyway).
	NoRoutes bool
	// RouteTable is the routing table for the routes through the TUN
	// device; 0 means DefaultRouteTable. RulePriority is the priority of
	// the first of the three rules that consult it and keep Cygnet's own
	// IKE and ESP out of it (see routeTable); 0 means
	// DefaultRulePriority.
	RouteTable, RulePriority int
	// Transport sends UDP-encapsulated ESP; it may also be given later
	// with SetTransport (the daemon does that).
	Transport ESPSender
	// BatchSize is how many packets move per batch; 0 means
	// DefaultBatchSize.
	BatchSize int
	// AcquireInterval limits Acquire events per trap; 0 means
	// DefaultAcquireInterval.
	AcquireInterval time.Duration
	// Rand supplies SPIs and is passed to esp (AES-CBC IVs); nil means
	// crypto/rand.
	Rand io.Reader
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
}

// Errors beyond dataplane's.
var (
	// ErrNoTransport: an encapsulated SA was installed before the backend
	// had a transport to send through.
	ErrNoTransport = errors.New("userspace: no transport for UDP-encapsulated ESP")
	// ErrUnknownTrap: Untrap of a reqid without a trap.
	ErrUnknownTrap = dataplane.ErrUnknownTrap
)

// headroom is where packets start in the pooled buffers: room for an ESP
// header and IV in front of a packet sealed in place (8+16 octets), for an
// IPv6 header in front of a transport-mode payload, and for the TUN's
// virtio-net header.
const headroom = 64

// tailroom is room after a packet for ESP padding, trailer and ICV (at most
// 15+2 and 32 octets, plus 8 for the GCM-8 tag written whole).
const tailroom = 128

// saPair is one installed SA pair with what the packet paths need.
type saPair struct {
	sa    *dataplane.SA
	in    *esp.Inbound
	out   *esp.Outbound
	seq   uint64
	local netip.AddrPort
	// remote is where ESP goes: the peer's address (and NAT-T port).
	remote            netip.AddrPort
	encap             bool
	transportMode     bool
	localTS, remoteTS []dataplane.Selector
	routes            []netip.Prefix

	outbound atomic.Bool // carries its ReqID's outbound traffic
	dead     atomic.Bool // removed or hard-expired: carries nothing

	softSent, hardSent        atomic.Bool
	policyDrops, noSA         atomic.Uint64
	expiredIn, expiredOut     atomic.Uint64
	malformedIn               atomic.Uint64
	lastIn, lastOut           atomic.Int64 // unix nanoseconds
	bytesSoftIn, bytesSoftOut bool
}

// trap is a trap policy (start_action: trap).
type trap struct {
	reqid         uint32
	local, remote []dataplane.Selector
	seq           uint64
	routes        []netip.Prefix
	lastAcquire   atomic.Int64
}

// Stats are the backend's counters of packets that belong to no SA.
type Stats struct {
	// NoPolicyOut: outbound packets that matched no policy (dropped).
	NoPolicyOut uint64
	// TrapDrops: outbound packets that matched a trap (dropped after
	// raising Acquire).
	TrapDrops uint64
	// NoSAIn: ESP packets with an unknown SPI.
	NoSAIn uint64
	// MalformedOut, MalformedIn: packets that are not IP packets, or ESP
	// packets too short for an SPI.
	MalformedOut, MalformedIn uint64
	// SendErrors: packets the transport or raw socket did not send.
	SendErrors uint64
	// TUNErrors: failed TUN writes.
	TUNErrors uint64
}

// Backend is the userspace data plane. It implements dataplane.Backend and,
// for the daemon, transport.Handler's HandleESP (ESP from the NAT-T socket)
// and SetTransport.
type Backend struct {
	dev     tun.Device
	ownDev  bool
	batch   int
	mtu     int
	rand    io.Reader
	now     func() time.Time
	log     *slog.Logger
	acqIntv time.Duration

	sender  atomic.Pointer[senderBox]
	handler atomic.Pointer[func(dataplane.Event)]

	// sad maps inbound SPIs to SA pairs; the packet path only Loads.
	sad sync.Map // uint32 -> *saPair
	spd atomic.Pointer[spd]

	mu      sync.Mutex // serializes control-plane changes
	closed  bool
	pairs   map[uint32]*saPair
	traps   map[uint32]*trap
	larval  map[uint32]time.Time
	nextSeq uint64
	routes  *routeTable
	raw     *rawESP
	// retired sums the counters of removed SA pairs, for Totals.
	retired dataplane.Totals

	outPool, inPool chan *batch
	sendQ, writeQ   chan *batch
	wg              sync.WaitGroup
	closing         chan struct{}

	stats struct {
		noPolicyOut, trapDrops, noSAIn, malformedOut, malformedIn, sendErrors, tunErrors atomic.Uint64
	}
}

type senderBox struct{ s ESPSender }

// batch is a set of pooled packet buffers moving through one stage.
type batch struct {
	bufs  [][]byte // headroom + packet + tailroom each
	sizes []int
	// pkts are the packets to send (outbound: ESP with addresses) and
	// raw the ones without encapsulation.
	pkts []transport.Packet
	raw  []transport.Packet
	// out are the packets to write to TUN (inbound): bufs[i][:headroom+n].
	out [][]byte
}

func newBatch(n, size int) *batch {
	b := &batch{
		bufs:  make([][]byte, n),
		sizes: make([]int, n),
		pkts:  make([]transport.Packet, 0, n),
		raw:   make([]transport.Packet, 0, n),
		out:   make([][]byte, 0, n),
	}
	block := make([]byte, n*size)
	for i := range b.bufs {
		b.bufs[i] = block[i*size : (i+1)*size : (i+1)*size]
	}
	return b
}

// New opens (or takes) the TUN device and starts the packet goroutines.
func New(cfg Config) (*Backend, error) {
	b := &Backend{
		dev:     cfg.Device,
		batch:   cfg.BatchSize,
		rand:    cfg.Rand,
		now:     cfg.Now,
		log:     cfg.Log,
		acqIntv: cfg.AcquireInterval,
		pairs:   make(map[uint32]*saPair),
		traps:   make(map[uint32]*trap),
		larval:  make(map[uint32]time.Time),
		closing: make(chan struct{}),
	}
	if b.batch <= 0 {
		b.batch = DefaultBatchSize
	}
	if b.rand == nil {
		b.rand = rand.Reader
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.acqIntv <= 0 {
		b.acqIntv = DefaultAcquireInterval
	}
	if cfg.Transport != nil {
		b.sender.Store(&senderBox{cfg.Transport})
	}
	if b.dev == nil {
		name := cfg.TUNName
		if name == "" {
			name = DefaultTUNName
		}
		mtu := cfg.MTU
		if mtu == 0 {
			mtu = DefaultMTU
		}
		dev, err := openTUN(name, mtu, cfg.Offload, b.batch)
		if err != nil {
			return nil, err
		}
		if cfg.Transport != nil {
			b.bypass(cfg.Transport)
		}
		b.dev, b.ownDev = dev, true
		if !cfg.NoRoutes {
			table, pref := cfg.RouteTable, cfg.RulePriority
			if table == 0 {
				table = DefaultRouteTable
			}
			if pref == 0 {
				pref = DefaultRulePriority
			}
			if b.routes, err = newRouteTable(dev, table, pref, b.log); err != nil {
				dev.Close()
				return nil, err
			}
		}
	}
	b.mtu = b.dev.MTU()
	b.batch = max(b.batch, b.dev.BatchSize())
	b.spd.Store(&spd{})

	size := headroom + max(b.mtu, 1280) + tailroom
	const inflight = 4 // batches per direction: reading, sealing, sending
	b.outPool = make(chan *batch, inflight)
	b.inPool = make(chan *batch, 2*inflight)
	b.sendQ = make(chan *batch, inflight)
	b.writeQ = make(chan *batch, 2*inflight)
	for range inflight {
		b.outPool <- newBatch(b.batch, size)
	}
	for range 2 * inflight {
		b.inPool <- newBatch(transport.MaxBatchSize/8, size)
	}
	b.wg.Add(3)
	go b.readTUN()
	go b.sendLoop()
	go b.writeTUN()
	return b, nil
}

// Device returns the TUN device.
func (b *Backend) Device() tun.Device { return b.dev }

// SetTransport sets the sender of UDP-encapsulated ESP (the daemon's
// transport, once it is listening). With routes, the transport's ports
// bypass the route table (see routeTable), so that Cygnet's IKE and ESP to
// a peer never enter the tunnel, even where a remote selector covers the
// peer's address.
func (b *Backend) SetTransport(t transport.Endpoint) {
	if t == nil {
		b.sender.Store(nil)
		return
	}
	b.bypass(t)
	b.sender.Store(&senderBox{t})
}

// bypass keeps the UDP ports s sends from out of the route table.
func (b *Backend) bypass(s ESPSender) {
	la, ok := s.(interface{ LocalAddrs() []netip.AddrPort })
	if !ok || b.routes == nil {
		return
	}
	var ports []uint16
	for _, a := range la.LocalAddrs() {
		ports = append(ports, a.Port())
	}
	if err := b.routes.bypass(ports); err != nil {
		b.log.Warn("userspace: Cygnet's own packets may be routed into the tunnel", "err", err)
	}
}

// SetEventHandler implements dataplane.Backend.
func (b *Backend) SetEventHandler(h func(dataplane.Event)) {
	if h == nil {
		b.handler.Store(nil)
		return
	}
	b.handler.Store(&h)
}

func (b *Backend) emit(ev dataplane.Event) {
	if h := b.handler.Load(); h != nil {
		(*h)(ev)
	}
}

// AllocSPI implements dataplane.Backend.
func (b *Backend) AllocSPI() (uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, dataplane.ErrClosed
	}
	now := b.now()
	for spi, t := range b.larval {
		if now.Sub(t) > dataplane.LarvalTimeout {
			delete(b.larval, spi)
		}
	}
	var buf [4]byte
	for range 64 {
		if _, err := io.ReadFull(b.rand, buf[:]); err != nil {
			return 0, fmt.Errorf("userspace: allocating an SPI: %w", err)
		}
		spi := binary.BigEndian.Uint32(buf[:])
		if spi < 256 { // RFC 4303 2.1: 1-255 reserved, 0 never sent
			continue
		}
		if _, ok := b.pairs[spi]; ok {
			continue
		}
		if _, ok := b.larval[spi]; ok {
			continue
		}
		b.larval[spi] = now
		return spi, nil
	}
	return 0, dataplane.ErrNoFreeSPI
}

func espConfig(sa *dataplane.SA, inbound bool, r io.Reader) esp.Config {
	c := esp.Config{
		Mode:         esp.Tunnel,
		Encr:         sa.Encr,
		EncrKeyLen:   sa.EncrKeyLen,
		Integ:        sa.Integ,
		ESN:          sa.ESN,
		ReplayWindow: sa.ReplayWindow,
		Rand:         r,
	}
	if sa.Mode == dataplane.Transport {
		c.Mode = esp.Transport
	}
	if inbound {
		c.SPI, c.EncrKey, c.IntegKey = sa.InSPI, sa.InEncrKey, sa.InIntegKey
	} else {
		c.SPI, c.EncrKey, c.IntegKey = sa.OutSPI, sa.OutEncrKey, sa.OutIntegKey
	}
	return c
}

func checkSA(sa *dataplane.SA) error {
	switch {
	case sa == nil:
		return fmt.Errorf("%w: nil", dataplane.ErrInvalidSA)
	case sa.InSPI < 256 || sa.OutSPI < 256:
		return fmt.Errorf("%w: SPI in %08x out %08x (RFC 4303 2.1: 0-255 are reserved)", dataplane.ErrInvalidSA, sa.InSPI, sa.OutSPI)
	case !sa.Local.Addr().IsValid() || !sa.Remote.Addr().IsValid():
		return fmt.Errorf("%w: outer addresses %v, %v", dataplane.ErrInvalidSA, sa.Local, sa.Remote)
	case sa.Local.Addr().Is4() != sa.Remote.Addr().Is4():
		return fmt.Errorf("%w: outer addresses of different families %v, %v", dataplane.ErrInvalidSA, sa.Local, sa.Remote)
	case sa.Mode != dataplane.Tunnel && sa.Mode != dataplane.Transport:
		return fmt.Errorf("%w: mode %v", dataplane.ErrInvalidSA, sa.Mode)
	case sa.ReplayWindow < 0:
		return fmt.Errorf("%w: replay window %d", dataplane.ErrInvalidSA, sa.ReplayWindow)
	case len(sa.LocalTS) == 0 || len(sa.RemoteTS) == 0:
		return fmt.Errorf("%w: no traffic selectors", dataplane.ErrInvalidSA)
	case sa.IfID != 0:
		return fmt.Errorf("%w: if_id %d: XFRM interfaces are the kernel's (dataplane: xfrm)", dataplane.ErrInvalidSA, sa.IfID)
	}
	return nil
}

// Install implements dataplane.Backend. The new SA pair's inbound SA goes
// into the SAD first; then the SPD snapshot that routes its selectors to it
// (and no longer to the SA it replaces) is published with one atomic store.
func (b *Backend) Install(sa *dataplane.SA, replaces uint32) error {
	if err := checkSA(sa); err != nil {
		return err
	}
	in, err := esp.NewInbound(espConfig(sa, true, b.rand))
	if err != nil {
		return fmt.Errorf("%w: %v", dataplane.ErrInvalidSA, err)
	}
	out, err := esp.NewOutbound(espConfig(sa, false, b.rand))
	if err != nil {
		return fmt.Errorf("%w: %v", dataplane.ErrInvalidSA, err)
	}
	p := &saPair{
		sa:            sa,
		in:            in,
		out:           out,
		local:         sa.Local,
		remote:        sa.Remote,
		encap:         sa.Encap,
		transportMode: sa.Mode == dataplane.Transport,
		localTS:       append([]dataplane.Selector(nil), sa.LocalTS...),
		remoteTS:      append([]dataplane.Selector(nil), sa.RemoteTS...),
	}
	p.outbound.Store(!sa.DeferOutbound)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	if _, ok := b.pairs[sa.InSPI]; ok {
		return fmt.Errorf("%w: %08x", dataplane.ErrSPIInUse, sa.InSPI)
	}
	var old *saPair
	if replaces != 0 {
		var ok bool
		if old, ok = b.pairs[replaces]; !ok {
			return fmt.Errorf("%w: %08x (the SA to replace)", dataplane.ErrUnknownSPI, replaces)
		}
	}
	if sa.Encap && b.sender.Load() == nil {
		return ErrNoTransport
	}
	if !sa.Encap {
		if err := b.openRaw(); err != nil {
			return err
		}
	}
	if b.routes != nil {
		routes, err := b.routes.add(p.localTS, p.remoteTS)
		if err != nil {
			return err
		}
		p.routes = routes
	}
	b.nextSeq++
	p.seq = b.nextSeq
	delete(b.larval, sa.InSPI)
	b.pairs[sa.InSPI] = p
	b.sad.Store(sa.InSPI, p) // inbound first
	if old != nil && !sa.DeferOutbound {
		old.outbound.Store(false)
	}
	b.publishSPD() // then the outbound switch, atomically
	b.log.Debug("userspace: SA installed", "sa", sa, "replaces", fmt.Sprintf("%08x", replaces), "defer_outbound", sa.DeferOutbound)
	return nil
}

// ActivateOutbound implements dataplane.Backend. The switch is one SPD
// snapshot: the packet path reads either the old one (and seals with the SA
// that carried the traffic) or the new one, never a mix, and one goroutine
// seals, so no packet is lost or sealed twice.
func (b *Backend) ActivateOutbound(inSPI uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	p, ok := b.pairs[inSPI]
	if !ok {
		return fmt.Errorf("%w: %08x", dataplane.ErrUnknownSPI, inSPI)
	}
	if p.outbound.Load() {
		return nil
	}
	for _, o := range b.pairs {
		if o != p && o.sa.ReqID == p.sa.ReqID {
			o.outbound.Store(false)
		}
	}
	p.outbound.Store(true)
	b.publishSPD()
	b.log.Debug("userspace: outbound switched", "reqid", p.sa.ReqID, "spi_in", fmt.Sprintf("%08x", inSPI), "spi_out", fmt.Sprintf("%08x", p.sa.OutSPI))
	return nil
}

// publishSPD rebuilds the SPD snapshot; b.mu must be held.
func (b *Backend) publishSPD() {
	pairs := make([]*saPair, 0, len(b.pairs))
	for _, p := range b.pairs {
		if p.outbound.Load() && !p.dead.Load() {
			pairs = append(pairs, p)
		}
	}
	traps := make([]*trap, 0, len(b.traps))
	for _, t := range b.traps {
		traps = append(traps, t)
	}
	b.spd.Store(buildSPD(pairs, traps))
}

// Remove implements dataplane.Backend.
func (b *Backend) Remove(inSPI uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	p, ok := b.pairs[inSPI]
	if !ok {
		if _, ok := b.larval[inSPI]; ok {
			delete(b.larval, inSPI)
			return nil
		}
		return fmt.Errorf("%w: %08x", dataplane.ErrUnknownSPI, inSPI)
	}
	b.removeLocked(p)
	b.publishSPD()
	return nil
}

func (b *Backend) removeLocked(p *saPair) {
	c := p.counters()
	addTotals(&b.retired, &c)
	p.dead.Store(true)
	delete(b.pairs, p.sa.InSPI)
	b.sad.Delete(p.sa.InSPI)
	if b.routes != nil {
		b.routes.remove(p.routes)
	}
	// The esp SAs keep their own expanded keys; packets still in a batch
	// finish with them. Zeroing the SA's copies is what this layer can do.
	p.sa.Zero()
}

// Counters implements dataplane.Backend.
func (b *Backend) Counters(inSPI uint32) (dataplane.Counters, bool) {
	v, ok := b.sad.Load(inSPI)
	if !ok {
		return dataplane.Counters{}, false
	}
	return v.(*saPair).counters(), true
}

func (p *saPair) counters() dataplane.Counters {
	ic, oc := p.in.Counters(), p.out.Counters()
	c := dataplane.Counters{
		BytesIn:    ic.Bytes,
		BytesOut:   oc.Bytes,
		PacketsIn:  ic.Packets,
		PacketsOut: oc.Packets,
	}
	c.Drops[dataplane.DropReplay] = ic.Replay
	c.Drops[dataplane.DropIntegrity] = ic.Auth
	c.Drops[dataplane.DropMalformed] = ic.Truncated + ic.Padding + ic.SPI + ic.NextHeader + p.malformedIn.Load()
	c.Drops[dataplane.DropPolicy] = p.policyDrops.Load()
	c.Drops[dataplane.DropExpired] = p.expiredIn.Load() + p.expiredOut.Load() + oc.Exhausted
	if t := p.lastIn.Load(); t != 0 {
		c.LastIn = time.Unix(0, t)
	}
	if t := p.lastOut.Load(); t != 0 {
		c.LastOut = time.Unix(0, t)
	}
	return c
}

// Totals implements dataplane.Totaler. It sums the counters of the SAs
// installed now and of those removed, and adds the packets that belonged to
// no SA; it costs one Counters call per SA, so the metrics endpoint calls it
// per scrape, never the packet path.
func (b *Backend) Totals() dataplane.Totals {
	b.mu.Lock()
	t := b.retired
	for _, p := range b.pairs {
		c := p.counters()
		addTotals(&t, &c)
	}
	b.mu.Unlock()
	st := b.Stats()
	t.Drops[dataplane.DropNoSA] += st.NoSAIn
	t.Drops[dataplane.DropMalformed] += st.MalformedIn + st.MalformedOut
	t.Drops[dataplane.DropNoPolicy] += st.NoPolicyOut
	t.Drops[dataplane.DropTrap] += st.TrapDrops
	t.Drops[dataplane.DropError] += st.SendErrors + st.TUNErrors
	return t
}

func addTotals(t *dataplane.Totals, c *dataplane.Counters) {
	t.BytesIn += c.BytesIn
	t.BytesOut += c.BytesOut
	t.PacketsIn += c.PacketsIn
	t.PacketsOut += c.PacketsOut
	for i, n := range c.Drops {
		t.Drops[i] += n
	}
}

// Stats returns the counters of packets that belong to no SA.
func (b *Backend) Stats() Stats {
	return Stats{
		NoPolicyOut:  b.stats.noPolicyOut.Load(),
		TrapDrops:    b.stats.trapDrops.Load(),
		NoSAIn:       b.stats.noSAIn.Load(),
		MalformedOut: b.stats.malformedOut.Load(),
		MalformedIn:  b.stats.malformedIn.Load(),
		SendErrors:   b.stats.sendErrors.Load(),
		TUNErrors:    b.stats.tunErrors.Load(),
	}
}

// Trap implements dataplane.Backend for start_action: trap: an outbound
// packet that matches tr.LocalTS × tr.RemoteTS (and no installed SA) raises
// an Acquire event with tr.ReqID and the packet's selector, at most once per
// AcquireInterval, and is dropped, as the kernel drops packets on larval
// SAs by default (net.core.xfrm_larval_drop=1): the sender retransmits once
// the SA is up. Trap policies rank after every SA policy (see Backend).
// The remote selectors are routed into the TUN device, as an SA's are, so
// that the first packet reaches the trap. Trapping a reqid again replaces
// its selectors. The mode and outer addresses do not matter here; an if_id
// is refused, as for SAs.
func (b *Backend) Trap(tr dataplane.Trap) error {
	reqid, local, remote := tr.ReqID, tr.LocalTS, tr.RemoteTS
	if len(local) == 0 || len(remote) == 0 {
		return fmt.Errorf("%w: trap without selectors", dataplane.ErrInvalidSA)
	}
	if tr.IfID != 0 {
		return fmt.Errorf("%w: trap with if_id %d: XFRM interfaces are the kernel's (dataplane: xfrm)", dataplane.ErrInvalidSA, tr.IfID)
	}
	t := &trap{
		reqid:  reqid,
		local:  append([]dataplane.Selector(nil), local...),
		remote: append([]dataplane.Selector(nil), remote...),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	if b.routes != nil {
		routes, err := b.routes.add(t.local, t.remote)
		if err != nil {
			return err
		}
		t.routes = routes
	}
	if old := b.traps[reqid]; old != nil && b.routes != nil {
		b.routes.remove(old.routes)
	}
	b.nextSeq++
	t.seq = b.nextSeq
	b.traps[reqid] = t
	b.publishSPD()
	return nil
}

// Traps returns the ReqIDs of the trap policies, for diagnostics and
// tests, in no particular order.
func (b *Backend) Traps() []uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]uint32, 0, len(b.traps))
	for id := range b.traps {
		ids = append(ids, id)
	}
	return ids
}

// Untrap implements dataplane.Backend.
func (b *Backend) Untrap(reqid uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	t, ok := b.traps[reqid]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownTrap, reqid)
	}
	delete(b.traps, reqid)
	if b.routes != nil {
		b.routes.remove(t.routes)
	}
	b.publishSPD()
	return nil
}

// Close implements dataplane.Backend: it removes every SA (zeroing keys),
// trap and route, stops the packet goroutines and closes the TUN device
// (which removes it, if New created it) and the raw sockets.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for _, p := range b.pairs {
		b.removeLocked(p)
	}
	clear(b.traps)
	clear(b.larval)
	b.spd.Store(&spd{})
	var errs []error
	if b.routes != nil {
		errs = append(errs, b.routes.close())
	}
	raw := b.raw
	b.mu.Unlock()

	close(b.closing)
	errs = append(errs, b.dev.Close())
	if raw != nil {
		errs = append(errs, raw.close())
	}
	b.wg.Wait()
	return errors.Join(errs...)
}

var (
	_ dataplane.Backend = (*Backend)(nil)
	_ dataplane.Totaler = (*Backend)(nil)
)
