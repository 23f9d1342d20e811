package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
)

// The control API (control.Backend). Each request runs as closures on the
// workers that own the SAs concerned; none reads an SA from another
// goroutine.

// The Daemon serves the control API's optional commands too.
var (
	_ control.Backend     = (*Daemon)(nil)
	_ control.Rekeyer     = (*Daemon)(nil)
	_ control.Uninstaller = (*Daemon)(nil)
)

// Up implements control.Backend: it initiates conn (all its children, or
// only child) unless an IKE SA of conn exists, in which case only the
// missing children are created on it (CREATE_CHILD_SA), and waits until
// they are up or something failed. The error is the engine's one-line
// reason. When ctx ends first, an IKE SA this call started and that is not
// established yet is abandoned (deleted).
func (d *Daemon) Up(ctx context.Context, conn, child string) error {
	cs := d.cfgs.Load()
	c, ec := cs.lookup(conn)
	if c == nil {
		return fmt.Errorf("daemon: no connection %q", conn)
	}
	var children []string
	if child != "" {
		if c.Child(child) == nil {
			return fmt.Errorf("daemon: connection %q has no child %q", conn, child)
		}
		children = []string{child}
	} else {
		for _, ch := range c.Children {
			children = append(children, ch.Name)
		}
	}

	u := newUpWaiter(children, false)
	var owner *worker
	var entry *ikeEntry
	start := func(w *worker) {
		owner = w
		now := d.now()
		if e := w.connEntry(conn); e != nil {
			entry = e
			u.ike = e.established
			var outs []sa.Output
			for _, name := range children {
				switch {
				case e.hasChild(name):
					u.childUp(name)
				case e.pendingChildren[name]:
					// Another up asked for it already: wait for the same.
				default:
					e.pendingChildren[name] = true
					outs = append(outs, e.sa.CreateChild(now, name))
				}
			}
			e.waiters = append(e.waiters, u)
			u.check()
			for _, out := range outs {
				w.apply(e, out)
			}
			w.pruneWaiters(e)
			return
		}
		e, err := w.initiate(c, ec, children, now)
		if err != nil {
			u.finish(err)
			return
		}
		entry = e
		e.waiters = append(e.waiters, u)
	}

	// One up at a time decides whether to create an IKE SA, so that two
	// concurrent ups of a connection share one.
	d.upMu.Lock()
	w, err := d.findConn(ctx, conn)
	if err == nil {
		if w == nil {
			w = d.workers[d.shards.connWorker(conn)]
		}
		err = w.do(ctx, start)
	}
	d.upMu.Unlock()
	if err != nil {
		return err
	}

	select {
	case err := <-u.ch:
		return err
	case <-ctx.Done():
		// Stop the attempt: the caller gave up (Ctrl-C in `cygnet up`).
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		owner.do(stopCtx, func(w *worker) {
			u.finish(nil)
			w.pruneWaiters(entry)
			if entry.createdForUp && !entry.established && !entry.dead && len(entry.waiters) == 0 {
				w.apply(entry, entry.sa.Delete(d.now()))
			}
		})
		return fmt.Errorf("daemon: up %s canceled: %w", conn, context.Cause(ctx))
	}
}

// initiate creates an IKE SA for c on w and starts IKE_SA_INIT.
func (w *worker) initiate(c *config.Connection, ec *sa.Config, children []string, now time.Time) (*ikeEntry, error) {
	d := w.d
	if len(c.RemoteAddrs) == 0 {
		return nil, fmt.Errorf("daemon: connection %q has no remote address to initiate to (remote_addrs is %%any)", c.Name)
	}
	remote := c.RemoteAddrs[0]
	local, err := d.localAddrFor(c, remote)
	if err != nil {
		return nil, err
	}
	ike := sa.NewInitiator(w.env, ec,
		netip.AddrPortFrom(local, d.ikePort),
		netip.AddrPortFrom(remote, uint16(c.RemotePort)))
	out := ike.Initiate(now, children...)
	e := w.add(ike, c.Name)
	e.createdForUp, e.initiator = true, true
	for _, name := range children {
		e.pendingChildren[name] = true
	}
	d.log.Info("initiating", "conn", c.Name, "children", fmt.Sprint(children),
		"local", local.String(), "peer", netip.AddrPortFrom(remote, uint16(c.RemotePort)).String())
	w.apply(e, out)
	return e, nil
}

// connEntry returns a live IKE SA of conn on w (established first), or nil.
func (w *worker) connEntry(conn string) *ikeEntry {
	var best *ikeEntry
	for e := range w.byConn[conn] {
		if e.dead {
			continue
		}
		switch e.sa.State() {
		case sa.StateConnecting, sa.StateEstablished, sa.StateRekeying:
		default:
			continue
		}
		if best == nil || e.established && !best.established {
			best = e
		}
	}
	return best
}

func (e *ikeEntry) hasChild(name string) bool {
	for _, n := range e.children {
		if n == name {
			return true
		}
	}
	return false
}

// findConn returns the worker that holds a live IKE SA of conn, or nil.
func (d *Daemon) findConn(ctx context.Context, conn string) (*worker, error) {
	var mu sync.Mutex
	var found, foundEstablished *worker
	err := d.each(ctx, func(w *worker) {
		if e := w.connEntry(conn); e != nil {
			mu.Lock()
			found = w
			if e.established {
				foundEstablished = w
			}
			mu.Unlock()
		}
	})
	if foundEstablished != nil {
		return foundEstablished, err
	}
	return found, err
}

// each runs fn on every worker, in parallel, and waits.
func (d *Daemon) each(ctx context.Context, fn func(w *worker)) error {
	errs := make([]error, len(d.workers))
	var wg sync.WaitGroup
	for i, w := range d.workers {
		wg.Go(func() { errs[i] = w.do(ctx, fn) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Down implements control.Backend: it deletes the IKE SAs of conn with an
// INFORMATIONAL Delete (RFC 7296 1.4.1) and waits, at most DownTimeout,
// until the peer confirmed or the engine gave up.
func (d *Daemon) Down(ctx context.Context, conn string) error {
	timeout := d.opts.DownTimeout
	if timeout <= 0 {
		timeout = DefaultDownTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Down wins over restarts (close_action, dpd_action, keyingtries).
	d.stopStarts(conn)
	n := d.deleteWhere(ctx, func(e *ikeEntry) bool { return e.conn == conn }, true)
	if n == 0 {
		if c, _ := d.cfgs.Load().lookup(conn); c == nil {
			return fmt.Errorf("daemon: no connection %q", conn)
		}
	}
	return nil
}

// deleteWhere deletes the IKE SAs that match and, with wait, waits until
// they are gone or ctx ends. It returns how many it deleted.
func (d *Daemon) deleteWhere(ctx context.Context, match func(*ikeEntry) bool, wait bool) int {
	var mu sync.Mutex
	var gone []chan struct{}
	d.each(ctx, func(w *worker) {
		now := d.now()
		for _, e := range w.entries() {
			if e.dead || !match(e) {
				continue
			}
			c := make(chan struct{})
			e.goneWaiters = append(e.goneWaiters, c)
			mu.Lock()
			gone = append(gone, c)
			mu.Unlock()
			if e.sa.State() != sa.StateDeleting {
				w.apply(e, e.sa.Delete(now))
			}
		}
	})
	if wait {
		for _, c := range gone {
			select {
			case <-c:
			case <-ctx.Done():
				d.log.Warn("not all deleted IKE SAs confirmed in time", "count", len(gone))
				return len(gone)
			}
		}
	}
	return len(gone)
}

// entries returns the worker's IKE SAs in a stable order (by SPI), so that
// callers may modify the map while going through them.
func (w *worker) entries() []*ikeEntry {
	list := make([]*ikeEntry, 0, len(w.sas))
	for _, e := range w.sas {
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b *ikeEntry) int {
		switch {
		case a.spi < b.spi:
			return -1
		case a.spi > b.spi:
			return 1
		}
		return 0
	})
	return list
}

// dropOthers forgets, without a word to the peer, the established IKE SAs
// between the identities of the IKE SA keep, after the peer announced
// INITIAL_CONTACT (RFC 7296 2.4): it has lost them. It runs in the
// background (d.background), so that shutdown waits for it.
func (d *Daemon) dropOthers(ctx context.Context, keep uint64, localID, remoteID string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d.each(ctx, func(w *worker) {
		for _, e := range w.entries() {
			if e.spi != keep && e.established && !e.dead && e.localID == localID && e.remoteID == remoteID {
				d.log.Info("IKE SA replaced: the peer sent INITIAL_CONTACT", "conn", e.conn, "spi", fmt.Sprintf("%016x", e.spi), "remote_id", remoteID)
				w.remove(e, errors.New("daemon: IKE SA replaced (the peer sent INITIAL_CONTACT)"))
			}
		}
	})
}

// Status implements control.Backend.
func (d *Daemon) Status(ctx context.Context) (*control.Status, error) {
	var mu sync.Mutex
	st := &control.Status{IKESAs: []control.IKESA{}}
	err := d.each(ctx, func(w *worker) {
		list := make([]control.IKESA, 0, len(w.sas))
		for _, e := range w.sas {
			if !e.dead { // a dead SA only lingers to answer retransmissions
				list = append(list, statusIKESA(e.sa.Snapshot(), e.inherited, d.dp.Counters))
			}
		}
		mu.Lock()
		st.IKESAs = append(st.IKESAs, list...)
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	sortStatus(st.IKESAs)
	return st, nil
}

// Reload implements control.Backend: it reads the configuration again and
// applies it. Connections that did not change (config.Connection.Equal)
// keep their SAs; the SAs of removed and changed connections are deleted;
// new and changed connections with start_action start are initiated. A
// configuration that does not load changes nothing.
func (d *Daemon) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.cfgs.Load()
	load := d.opts.Load
	if load == nil {
		load = func() (*config.Config, error) { return config.Load(old.cfg.Path) }
	}
	ncfg, err := load()
	if err != nil {
		d.log.Warn("reload failed; the configuration in use stays", "err", err.Error())
		return err
	}
	if daemonSettingsChanged(old.cfg.Daemon, ncfg.Daemon) {
		d.log.Warn("reload: changes to the daemon section other than log take effect after a restart")
	}
	if d.opts.LogLevel != nil {
		d.opts.LogLevel.Set(ncfg.Daemon.Log.Level)
	}
	next := d.buildConfigSet(ncfg, old)
	gone := map[string]bool{}
	start := map[string]bool{}
	for i, c := range old.cfg.Connections {
		if nc, nec := next.lookup(c.Name); nc == nil || nec != old.eng[i] {
			gone[c.Name] = true
		}
	}
	for i, c := range ncfg.Connections {
		if oc, oec := old.lookup(c.Name); oc == nil || oec != next.eng[i] {
			start[c.Name] = true
		}
	}
	d.cfgs.Store(next)
	for name := range gone {
		d.stopStarts(name)
		d.untrap(old, name)
	}
	if len(gone) > 0 {
		d.deleteWhere(ctx, func(e *ikeEntry) bool { return gone[e.conn] }, false)
	}
	d.startConnections(next, func(name string) bool { return start[name] })
	d.log.Info("configuration reloaded", "connections", len(ncfg.Connections),
		"changed_or_removed", len(gone), "new_or_changed", len(start))
	return nil
}

func daemonSettingsChanged(a, b config.Daemon) bool {
	a.Log, b.Log = config.LogSettings{}, config.LogSettings{}
	return !slices.Equal(a.Listen, b.Listen) || a.Port != b.Port || a.NATPort != b.NATPort ||
		a.Socket != b.Socket || a.Dataplane != b.Dataplane || a.TUN != b.TUN ||
		a.Keylog != b.Keylog || a.Metrics != b.Metrics || a.Pprof != b.Pprof
}
