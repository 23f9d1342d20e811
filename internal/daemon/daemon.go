// Package daemon is Cygnet's runtime: it owns the live IKE SAs and connects
// the sans-IO engine (internal/ike/sa) to the network (internal/transport),
// the data plane (internal/dataplane), the key log, metrics and the control
// API (DESIGN.md, "Runtime / SA manager"). Concurrency lives here and only
// here.
//
// # Workers
//
// A fixed set of workers (2×GOMAXPROCS by default) each own a share of the
// IKE SAs: a map by SPI, a timer heap driven by each SA's NextDeadline, and
// a bounded inbox. Nothing else touches an SA, so the engine needs no locks
// and there is no goroutine per SA. Each worker hands the engine its own
// IKE SPI generator, which draws SPIs that are congruent to the worker's
// index modulo the number of workers: the transport's reader goroutines
// route a datagram by reading its header alone (route.go), and an SA created
// on a worker — including, later, the successor of a rekeyed IKE SA — stays
// there. IKE_SA_INIT requests go to the worker chosen by the peer's address
// and SPIi, where the SA that request created (kept under that key for its
// whole life) answers a retransmission from its cache, and otherwise that
// worker's Responder creates one.
//
// Control requests (up, down, status, reload) are closures run on the
// workers, so they see the SAs without sharing them.
//
// # Applying the engine's output
//
// For every step, the events come first (install or remove CHILD_SAs in the
// data plane, key log records, metrics, waking `up` callers), then the
// datagrams go out: a CHILD_SA is installed before the message that lets the
// peer use it leaves. When the data plane refuses a CHILD_SA, the engine
// hears of it (ChildInstallFailed) and its answer is applied after the
// current datagrams.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/keylog"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// Defaults for Options' zero values.
const (
	DefaultInboxSize       = 1024
	DefaultShutdownTimeout = 3 * time.Second
	DefaultDownTimeout     = 10 * time.Second
	// KeepaliveInterval is how often we send a NAT-keepalive when a NAT is
	// in front of us and nothing else went to the peer (RFC 3948 4: 20
	// seconds is the usual choice).
	KeepaliveInterval = 20 * time.Second
	// cookieThreshold is the number of half-open IKE SAs in the whole
	// daemon above which COOKIEs are demanded (strongSwan's default).
	cookieThreshold = 30
)

// Options inject what a daemon takes from outside its configuration.
type Options struct {
	// Listen opens the transport; nil means the real UDP transport
	// (transport.ListenUDP). Tests pass memnet's Network.Listen.
	Listen func(transport.Config, transport.Handler) (transport.Endpoint, error)
	// Dataplane is the data plane; nil builds the one daemon.dataplane
	// names. The daemon closes it when it stops.
	Dataplane dataplane.Backend
	// Now is the clock (nil: time.Now). Timers use the time package, so a
	// fake clock must come with testing/synctest's fake time.
	Now func() time.Time
	// Rand is the randomness for the engine and SPIs (nil: crypto/rand).
	Rand io.Reader
	// Logger receives the log; nil discards it.
	Logger *slog.Logger
	// Load re-reads the configuration for Reload; nil means
	// config.Load(cfg.Path).
	Load func() (*config.Config, error)
	// Workers is the number of SA workers (0: 2×GOMAXPROCS).
	Workers int
	// InboxSize bounds each worker's queue of received datagrams; more are
	// dropped and counted (0: DefaultInboxSize).
	InboxSize int
	// NoControl leaves the control socket closed (tests that call the
	// Backend methods directly).
	NoControl bool
	// Retransmit overrides the engine's retransmission schedule (zero:
	// the engine's defaults, strongSwan's).
	Retransmit sa.Retransmit
	// ShutdownTimeout bounds the polite deletes when Run's context ends
	// (0: DefaultShutdownTimeout); DownTimeout bounds Down's wait for the
	// peer's confirmation (0: DefaultDownTimeout).
	ShutdownTimeout, DownTimeout time.Duration
	// LogLevel, if set, is the level of Logger's handler: Reload sets it
	// from daemon.log.level.
	LogLevel *slog.LevelVar
	// Pprof, if set, is the host:port of the profiling endpoint, instead
	// of daemon.pprof (cygnet daemon takes it from $CYGNET_PPROF).
	Pprof string
	// RouteSource returns the source address the host would use towards
	// dst, for connections without local_addrs on a wildcard listener
	// (nil: ask the kernel with a connected UDP socket).
	RouteSource func(dst netip.Addr) (netip.Addr, error)
}

// Daemon is a running Cygnet instance. It implements control.Backend.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	rand   io.Reader // nil: crypto/rand
	shards *runtimeShards

	tr               transport.Endpoint
	ikePort, natPort uint16
	dp               dataplane.Backend
	keylog           *keylog.Writer
	stats            *stats
	metricsAddr      atomic.Value // string
	pprofAddr        atomic.Value // string

	cfgs    atomic.Pointer[configSet]
	ifIDs   ifIDs // the connections' if_id by request ID (kernel.go)
	nextReq atomic.Uint32
	// children finds the IKE SA of an installed CHILD_SA by its inbound
	// SPI (uint32 -> *ikeEntry), for the data plane's expiry events.
	children sync.Map
	// acquiring holds the ReqIDs (uint32) of traps whose negotiation runs.
	acquiring sync.Map
	// retiring holds the rekeyed CHILD_SAs still in the data plane for ESP
	// in flight (lifecycle.go).
	retiring retirements
	workers  []*worker
	reloadMu sync.Mutex // one reload at a time
	upMu     sync.Mutex // serializes finding-or-creating IKE SAs for up

	ctx     context.Context // Run's; canceled at shutdown
	stop    context.CancelFunc
	running atomic.Bool
	bgMu    sync.Mutex
	closing bool           // set under bgMu once Run stops: no new bg work
	bg      sync.WaitGroup // start_action initiations and the like
	// Under bgMu: the running initiation loops, and when each child was
	// last restarted by its close_action or dpd_action (lifecycle.go).
	starters map[childKey]*starter
	restarts map[childKey]restartHistory
}

// configSet is one generation of the configuration with the engine's view of
// each connection. It is immutable; Reload swaps in a new one.
type configSet struct {
	cfg    *config.Config
	eng    []*sa.Config // parallel to cfg.Connections
	byName map[string]int
	traps  map[uint32]trapRef // children with start_action trap, by ReqID
}

func (cs *configSet) lookup(name string) (*config.Connection, *sa.Config) {
	i, ok := cs.byName[name]
	if !ok {
		return nil, nil
	}
	return cs.cfg.Connections[i], cs.eng[i]
}

// New prepares a daemon for cfg: it opens the transport (binding the IKE and
// NAT-T ports), the data plane and the key log. Run starts it.
func New(cfg *config.Config, opts Options) (_ *Daemon, err error) {
	// d is not the named result: `return nil, err` must not take from the
	// deferred cleanup below what it is to close.
	d := &Daemon{opts: opts, log: opts.Logger, now: opts.Now,
		starters: make(map[childKey]*starter), restarts: make(map[childKey]restartHistory)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if opts.Rand != nil {
		d.rand = &lockedReader{r: opts.Rand}
	}
	n := opts.Workers
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	d.shards = newShards(n)
	d.stats = newStats()

	defer func() {
		if err != nil {
			// Whatever New opened before the failure: the data plane
			// (its TUN device, routes, trap policies), the key log.
			d.closeResources()
		}
	}()

	// Each resource goes into d only once it is open (see the defer).
	dp := opts.Dataplane
	if dp == nil {
		if dp, err = d.newDataplane(cfg); err != nil {
			return nil, err
		}
	}
	d.dp = dp
	d.dp.SetEventHandler(d.dataplaneEvent)

	if cfg.Daemon.Keylog != "" {
		var kl *keylog.Writer
		if kl, err = keylog.Open(cfg.Daemon.Keylog); err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		d.keylog = kl
		d.log.Warn("key log on: SA secrets are written to disk", "dir", cfg.Daemon.Keylog)
	}

	listen := opts.Listen
	if listen == nil {
		listen = func(c transport.Config, h transport.Handler) (transport.Endpoint, error) {
			return transport.ListenUDP(c, h)
		}
	}
	inbox := opts.InboxSize
	if inbox <= 0 {
		inbox = DefaultInboxSize
	}
	// The workers exist before the transport delivers anything.
	for i := range n {
		d.workers = append(d.workers, newWorker(d, i, inbox))
	}
	tc := transport.Config{
		Addrs:   cfg.Daemon.Listen,
		Port:    cfg.Daemon.Port,
		NATPort: cfg.Daemon.NATPort,
		Log:     d.log,
	}
	kernelTransport(d.dp, &tc) // UDP_ENCAP and IKE bypass for xfrm (kernel.go)
	tr, err := listen(tc, (*handler)(d))
	if err != nil {
		// Not into d.tr: a failed ListenUDP's nil *UDP would make it a
		// non-nil interface that closeResources calls.
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.tr = tr
	d.stats.transportStats = d.tr.Stats
	if t, ok := d.dp.(dataplane.Totaler); ok {
		d.stats.dataplaneTotals = t.Totals
	}
	if u, ok := d.dp.(TransportUser); ok {
		u.SetTransport(d.tr)
	}
	d.ikePort, d.natPort = uint16(cfg.Daemon.Port), uint16(cfg.Daemon.NATPort)
	if p, ok := d.tr.(interface{ Ports() (uint16, uint16) }); ok {
		d.ikePort, d.natPort = p.Ports()
	}
	d.cfgs.Store(d.buildConfigSet(cfg, nil))
	for _, w := range d.workers {
		w.init()
	}
	return d, nil
}

// buildConfigSet converts cfg for the engine, reusing prev's sa.Config for
// connections that did not change, so that their SAs and ReqIDs carry on.
func (d *Daemon) buildConfigSet(cfg *config.Config, prev *configSet) *configSet {
	cs := &configSet{cfg: cfg, byName: make(map[string]int, len(cfg.Connections))}
	params := engineParams{
		natPort:    d.natPort,
		psk:        d.psk,
		retransmit: d.opts.Retransmit,
		reqID:      func() uint32 { return d.nextReq.Add(1) },
	}
	for i, c := range cfg.Connections {
		cs.byName[c.Name] = i
		var ec *sa.Config
		if prev != nil {
			if old, oldEC := prev.lookup(c.Name); old != nil && old.Equal(c) {
				ec = oldEC
			}
		}
		if ec == nil {
			ec = engineConfig(c, params)
		}
		cs.eng = append(cs.eng, ec)
	}
	cs.traps = trapIndex(cs)
	return cs
}

// psk looks the key up in the current configuration, so that a reload with a
// new secret applies to the next authentication, as in strongSwan.
func (d *Daemon) psk(local, remote auth.Identity) ([]byte, bool) {
	return d.cfgs.Load().cfg.PSK(local, remote)
}

// Config returns the configuration in use.
func (d *Daemon) Config() *config.Config { return d.cfgs.Load().cfg }

// LocalAddrs lists the transport's bound addresses and ports.
func (d *Daemon) LocalAddrs() []netip.AddrPort { return d.tr.LocalAddrs() }

// Ports returns the IKE and NAT-T ports in use.
func (d *Daemon) Ports() (ike, nat uint16) { return d.ikePort, d.natPort }

// Run runs the daemon until ctx ends: it starts the workers, the control
// socket and the metrics endpoint if configured, and initiates connections
// with start_action start. When ctx ends it deletes every IKE SA politely
// (waiting at most ShutdownTimeout for the peers), then closes everything.
func (d *Daemon) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("daemon: Run called twice")
	}
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Go(func() { w.run(wctx) })
	}
	d.bgMu.Lock()
	d.ctx, d.stop = context.WithCancel(ctx)
	d.bgMu.Unlock()
	defer d.stop()

	cfg := d.Config()
	var ctl *control.Server
	var metricsSrv, pprofSrv *http.Server
	var err error
	if !d.opts.NoControl && cfg.Daemon.Socket != "" {
		if ctl, err = control.Listen(cfg.Daemon.Socket, d, d.log); err != nil {
			err = fmt.Errorf("daemon: control socket %s: %w", cfg.Daemon.Socket, err)
		}
	}
	if err == nil && cfg.Daemon.Metrics != "" {
		metricsSrv, err = d.serveMetrics(cfg.Daemon.Metrics)
	}
	pprofAddr := cmp.Or(d.opts.Pprof, cfg.Daemon.Pprof)
	if err == nil && pprofAddr != "" {
		pprofSrv, err = d.servePprof(pprofAddr)
	}
	if err == nil {
		ike, nat := d.Ports()
		d.log.Info("daemon started", "addrs", fmt.Sprint(d.tr.LocalAddrs()), "ike_port", ike, "nat_port", nat,
			"dataplane", cfg.Daemon.Dataplane, "workers", len(d.workers), "connections", len(cfg.Connections))
		d.startConnections(d.cfgs.Load(), nil)
		<-d.ctx.Done()
		d.log.Info("daemon stopping: deleting SAs")
	}

	if ctl != nil {
		ctl.Close()
	}
	d.bgMu.Lock()
	d.closing = true
	d.bgMu.Unlock()
	d.bg.Wait()
	d.shutdownSAs()
	for _, srv := range []*http.Server{metricsSrv, pprofSrv} {
		if srv != nil {
			srv.Close()
		}
	}
	stopWorkers()
	wg.Wait()
	// Nothing adds retirements now (the workers are gone); the data plane
	// is still open for their removal.
	if n := d.retiring.stop(d.removeRetired); n > 0 {
		d.log.Debug("removed rekeyed CHILD_SAs before their delay ended", "count", n)
	}
	d.closeResources()
	d.log.Info("daemon stopped")
	return err
}

// shutdownSAs deletes all IKE SAs and waits, bounded, until they are gone.
func (d *Daemon) shutdownSAs() {
	timeout := d.opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if n := d.deleteWhere(ctx, func(*ikeEntry) bool { return true }, true); n > 0 {
		d.log.Info("deleted IKE SAs", "count", n)
	}
}

// closeResources closes the transport before the data plane: the data
// plane may be sending through it until then.
func (d *Daemon) closeResources() {
	if d.tr != nil {
		d.tr.Close()
	}
	if d.dp != nil {
		d.dp.Close()
	}
	d.keylog.Close()
}

// startConnections initiates the children with start_action start, and
// installs the trap policies of those with start_action trap, of the
// connections in cs that only is nil or true for.
func (d *Daemon) startConnections(cs *configSet, only func(name string) bool) {
	for _, c := range cs.cfg.Connections {
		if only != nil && !only(c.Name) {
			continue
		}
		for _, ch := range c.Children {
			switch ch.StartAction {
			case "start":
				d.startChild(c, ch.Name, 0)
			case "trap":
				d.trap(cs, c, ch)
			}
		}
	}
}

// localAddrFor chooses the address we initiate c from towards remote.
func (d *Daemon) localAddrFor(c *config.Connection, remote netip.Addr) (netip.Addr, error) {
	sameFamily := func(a netip.Addr) bool { return a.Unmap().Is4() == remote.Unmap().Is4() }
	for _, a := range c.LocalAddrs {
		if sameFamily(a) {
			return a, nil
		}
	}
	if len(c.LocalAddrs) > 0 {
		return netip.Addr{}, fmt.Errorf("daemon: connection %q has no local address of the family of %v", c.Name, remote)
	}
	for _, ap := range d.tr.LocalAddrs() {
		if a := ap.Addr(); !a.IsUnspecified() && sameFamily(a) {
			return a, nil
		}
	}
	src := d.opts.RouteSource
	if src == nil {
		src = kernelRouteSource
	}
	a, err := src(remote)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("daemon: no route to %v: %w", remote, err)
	}
	return a, nil
}

// kernelRouteSource asks the kernel which source address it would use
// towards dst: connecting a UDP socket sends nothing but selects it.
func kernelRouteSource(dst netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 500)))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// handler is the daemon as the transport's Handler.
type handler Daemon

// HandleIKE routes one received IKE message to its worker. It runs on a
// transport reader goroutine and only reads the header.
func (h *handler) HandleIKE(p transport.Packet) {
	d := (*Daemon)(h)
	hdr, ok := peekHeader(p.Data)
	if !ok {
		d.stats.drop(dropMalformed)
		return
	}
	r, ok := d.shards.routeMessage(hdr, p.Remote)
	if !ok {
		d.stats.drop(dropNoSA)
		return
	}
	w := d.workers[r.worker]
	select {
	case w.inbox <- work{pkt: p, route: r}:
	default:
		// A flooded worker drops rather than stalling the socket for
		// every other SA (DESIGN.md: bounded inboxes).
		d.stats.drop(dropInboxFull)
	}
}

// HandleESP receives UDP-encapsulated ESP. A data plane that processes ESP
// in userspace implements ESPReceiver; with the others there is nobody to
// take it.
func (h *handler) HandleESP(batch []transport.Packet) {
	d := (*Daemon)(h)
	if r, ok := d.dp.(ESPReceiver); ok {
		r.HandleESP(batch)
		return
	}
	d.stats.dropN(dropNoDataplane, len(batch))
}

// ESPReceiver is implemented by data planes that take UDP-encapsulated ESP
// from the daemon's transport (the userspace one). The batch is valid only
// during the call.
type ESPReceiver interface {
	HandleESP(batch []transport.Packet)
}

// TransportUser is implemented by data planes that send ESP through the
// daemon's transport; the daemon calls SetTransport before Run.
type TransportUser interface {
	SetTransport(transport.Endpoint)
}

var _ control.Backend = (*Daemon)(nil)
