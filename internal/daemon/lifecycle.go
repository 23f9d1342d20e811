package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
)

// The runtime's part of the SA lifecycle beyond applying the engine's
// events (worker.go): what to do when the peer closed a CHILD_SA or stopped
// answering (close_action, dpd_action), initiations that retry
// (keyingtries), rekeys on request (cygnet rekey), and the engine's per-IKE
// SA counters summed along a line of rekeyed IKE SAs.

// Triggers of afterDown: the names of the settings they apply, as the
// metrics' trigger label has them.
const (
	triggerClose = "close_action" // the peer deleted the CHILD_SA (or its IKE SA)
	triggerDPD   = "dpd_action"   // the peer stopped answering (RFC 7296 2.4)
)

// Pauses of the initiation loops: between attempts attempt×retryStep (at
// most retryMax); before a restart of a child that was restarted less than
// holdWindow ago, streak×retryStep (at most retryMax), so that a peer that
// deletes what we set up, again and again, is not hammered.
const (
	retryStep  = 5 * time.Second
	retryMax   = time.Minute
	holdWindow = time.Minute
)

// deleteRekeyedDelay is how long the inbound half of a CHILD_SA replaced by
// a rekey stays in the data plane after its delete, for ESP still in flight
// on it (strongSwan's charon.delete_rekeyed_delay, 5 s by default).
const deleteRekeyedDelay = 5 * time.Second

// retirements are the CHILD_SAs that rekeys replaced and that stay in the
// data plane for deleteRekeyedDelay (worker.retireChild): one timer each, no
// goroutine until it fires. At shutdown stop removes them all at once and
// waits for removals under way, so that nothing touches the data plane after
// it is closed and no timer outlives the daemon.
type retirements struct {
	mu      sync.Mutex
	stopped bool
	timers  map[uint32]*time.Timer // by inbound SPI
	running sync.WaitGroup         // removals that fired and run
}

// add calls remove(spi) after delay, or at once if stop ran already.
func (r *retirements) add(spi uint32, delay time.Duration, remove func(uint32)) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		remove(spi)
		return
	}
	if r.timers == nil {
		r.timers = make(map[uint32]*time.Timer)
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		r.mu.Lock()
		if r.stopped || r.timers[spi] != t {
			r.mu.Unlock()
			return // stop took it over
		}
		delete(r.timers, spi)
		r.running.Add(1)
		r.mu.Unlock()
		defer r.running.Done()
		remove(spi)
	})
	r.timers[spi] = t
	r.mu.Unlock()
}

// stop cancels the timers, removes their SAs now, and waits for removals
// that had started; later adds remove at once. It reports how many it
// removed.
func (r *retirements) stop(remove func(uint32)) int {
	r.mu.Lock()
	r.stopped = true
	timers := r.timers
	r.timers = nil
	r.mu.Unlock()
	for spi, t := range timers {
		t.Stop()
		remove(spi)
	}
	r.running.Wait()
	return len(timers)
}

// pending is how many retired SAs wait for their removal.
func (r *retirements) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.timers)
}

// childKey names one child of one connection.
type childKey struct{ conn, child string }

// starter is a running initiation loop (startChild), by its child.
type starter struct {
	cancel context.CancelFunc
}

// restartHistory is when a child was last restarted by afterDown, and how
// many restarts in a row came less than holdWindow apart.
type restartHistory struct {
	last   time.Time
	streak int
}

// afterDown applies the close_action (triggerClose) or dpd_action
// (triggerDPD) of a CHILD_SA that went away, as strongSwan does: none;
// start, initiate it again (with a new IKE SA if its own is gone), bounded
// by the connection's keyingtries; trap, install its trap policy so that
// the next packet for it initiates it. It runs on a worker and does not
// block.
func (d *Daemon) afterDown(conn, child, trigger string) {
	cs := d.cfgs.Load()
	c, _ := cs.lookup(conn)
	if c == nil {
		return // removed by a reload meanwhile
	}
	ch := c.Child(child)
	if ch == nil {
		return
	}
	action := ch.CloseAction
	if trigger == triggerDPD {
		action = ch.DPDAction
	}
	switch action {
	case "start":
		d.stats.restarted(trigger, action)
		pause := d.holdDown(childKey{conn, child})
		d.log.Info("CHILD_SA gone; initiating it again", "conn", conn, "child", child, "trigger", trigger, "after", pause.String())
		d.startChild(c, child, pause)
	case "trap":
		d.stats.restarted(trigger, action)
		if ch.StartAction == "trap" {
			// Its trap policy stays installed all along.
			d.log.Info("CHILD_SA gone; its trap policy initiates it on traffic", "conn", conn, "child", child, "trigger", trigger)
			return
		}
		d.log.Info("CHILD_SA gone; installing its trap policy", "conn", conn, "child", child, "trigger", trigger)
		d.background(func(context.Context) { d.trap(cs, c, ch) })
	}
}

// holdDown returns how long to wait before restarting child, and records
// the restart.
func (d *Daemon) holdDown(k childKey) time.Duration {
	d.bgMu.Lock()
	defer d.bgMu.Unlock()
	now := d.now()
	h := d.restarts[k]
	if !h.last.IsZero() && now.Sub(h.last) < holdWindow {
		h.streak++
	} else {
		h.streak = 0
	}
	h.last = now
	d.restarts[k] = h
	return min(time.Duration(h.streak)*retryStep, retryMax)
}

// startChild initiates one child in the background, after pause: for
// start_action start at load, and for close_action and dpd_action start.
// It retries up to the connection's keyingtries (0: until it works or the
// daemon stops), pausing attempt×5 s (at most a minute) between attempts;
// each attempt against a silent peer lasts the retransmission schedule. One
// loop runs per child at a time; Down and a reload that removes or
// changes the connection stop it.
func (d *Daemon) startChild(c *config.Connection, child string, pause time.Duration) {
	k := childKey{c.Name, child}
	d.bgMu.Lock()
	defer d.bgMu.Unlock()
	if d.closing || d.ctx == nil {
		return // not running (yet, or any more)
	}
	if d.starters[k] != nil {
		return // an initiation of it is under way
	}
	ctx, cancel := context.WithCancel(d.ctx)
	s := &starter{cancel: cancel}
	d.starters[k] = s
	d.bg.Go(func() {
		defer func() {
			cancel()
			d.bgMu.Lock()
			if d.starters[k] == s {
				delete(d.starters, k)
			}
			d.bgMu.Unlock()
		}()
		wait := func(p time.Duration) bool {
			if p <= 0 {
				return ctx.Err() == nil
			}
			t := time.NewTimer(p)
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !wait(pause) {
			return
		}
		for attempt := 1; ; attempt++ {
			err := d.Up(ctx, c.Name, child)
			if err == nil || ctx.Err() != nil {
				return
			}
			d.log.Warn("initiation failed", "conn", c.Name, "child", child, "attempt", attempt, "keyingtries", c.Keyingtries, "reason", err.Error())
			if c.Keyingtries != 0 && attempt >= c.Keyingtries {
				d.log.Warn("giving up: keyingtries reached", "conn", c.Name, "child", child, "attempts", attempt)
				return
			}
			if !wait(min(time.Duration(attempt)*retryStep, retryMax)) {
				return
			}
		}
	})
}

// stopStarts stops the initiation loops of conn (Down, reload).
func (d *Daemon) stopStarts(conn string) {
	d.bgMu.Lock()
	defer d.bgMu.Unlock()
	for k, s := range d.starters {
		if k.conn == conn {
			s.cancel()
			delete(d.starters, k)
		}
	}
}

// Rekey implements control.Rekeyer: it starts a rekey of the IKE SA of
// conn (child "", RFC 7296 1.3.2) or of its CHILD_SA child (1.3.3), on
// every established IKE SA of conn, as their rekey times would. It returns
// once the exchanges are started (a rekey in progress already is not
// started twice); status and the metrics show the outcome. Both peers
// rekeying at once make a collision (2.8.1, 2.8.2), which the engine
// resolves.
func (d *Daemon) Rekey(ctx context.Context, conn, child string) error {
	c, _ := d.cfgs.Load().lookup(conn)
	if c == nil {
		return fmt.Errorf("daemon: no connection %q", conn)
	}
	if child != "" && c.Child(child) == nil {
		return fmt.Errorf("daemon: connection %q has no child %q", conn, child)
	}
	var mu sync.Mutex
	ikes, children := 0, 0
	err := d.each(ctx, func(w *worker) {
		var list []*ikeEntry
		for e := range w.byConn[conn] {
			if st := e.sa.State(); e.established && !e.dead && (st == sa.StateEstablished || st == sa.StateRekeying) {
				list = append(list, e)
			}
		}
		n := 0
		for _, e := range list {
			now := d.now()
			if child == "" {
				if e.sa.State() == sa.StateEstablished {
					n++
					w.apply(e, e.sa.Rekey(now))
				}
				continue
			}
			// The SA that carries the child's traffic: one replaced
			// already is not rekeyed again.
			for _, cs := range e.sa.Snapshot().Children {
				if cs.Name == child && cs.Outbound {
					n++
					w.apply(e, e.sa.RekeyChild(now, cs.SPIIn))
				}
			}
		}
		mu.Lock()
		ikes += len(list)
		children += n
		mu.Unlock()
	})
	switch {
	case err != nil:
		return err
	case ikes == 0:
		return fmt.Errorf("daemon: connection %q has no established IKE SA", conn)
	case children == 0 && child != "":
		return fmt.Errorf("daemon: connection %q has no CHILD_SA %q up", conn, child)
	case children == 0:
		return fmt.Errorf("daemon: the IKE SA of connection %q is being rekeyed already", conn)
	}
	d.log.Info("rekey requested", "conn", conn, "child", child, "started", children)
	return nil
}

// Uninstall removes the trap policies of conn's children (or of child
// only), as `swanctl --uninstall` does: those of start_action trap and those
// that close_action or dpd_action trap installed. Down, like `swanctl
// --terminate`, leaves them: the next matching packet negotiates again.
// Uninstall touches no SA; a reload that changes the connection, or a
// close_action/dpd_action trap that applies later, installs them again.
// It implements control.Uninstaller (`cygnet uninstall CONN [CHILD]`).
func (d *Daemon) Uninstall(ctx context.Context, conn, child string) error {
	cs := d.cfgs.Load()
	c, _ := cs.lookup(conn)
	if c == nil {
		return fmt.Errorf("daemon: no connection %q", conn)
	}
	if child != "" && c.Child(child) == nil {
		return fmt.Errorf("daemon: connection %q has no child %q", conn, child)
	}
	var removed []string
	for reqid, ref := range cs.traps {
		if ref.conn != conn || child != "" && ref.child != child {
			continue
		}
		if err := d.dp.Untrap(reqid); err == nil {
			removed = append(removed, ref.child)
		} else if !errors.Is(err, dataplane.ErrUnknownTrap) {
			return fmt.Errorf("daemon: removing the trap policy of %s/%s: %w", conn, ref.child, err)
		}
	}
	if len(removed) == 0 {
		if child != "" {
			return fmt.Errorf("daemon: child %q of connection %q has no trap policy installed", child, conn)
		}
		return fmt.Errorf("daemon: connection %q has no trap policy installed", conn)
	}
	slices.Sort(removed)
	d.log.Info("trap policies uninstalled", "conn", conn, "children", fmt.Sprint(removed))
	return nil
}

// addCounters sums the engine's lifecycle counters of two IKE SAs.
func addCounters(a, b sa.Counters) sa.Counters {
	return sa.Counters{
		ChildRekeysInitiated: a.ChildRekeysInitiated + b.ChildRekeysInitiated,
		ChildRekeysResponded: a.ChildRekeysResponded + b.ChildRekeysResponded,
		IKERekeysInitiated:   a.IKERekeysInitiated + b.IKERekeysInitiated,
		IKERekeysResponded:   a.IKERekeysResponded + b.IKERekeysResponded,
		ChildCollisionsWon:   a.ChildCollisionsWon + b.ChildCollisionsWon,
		ChildCollisionsLost:  a.ChildCollisionsLost + b.ChildCollisionsLost,
		IKECollisionsWon:     a.IKECollisionsWon + b.IKECollisionsWon,
		IKECollisionsLost:    a.IKECollisionsLost + b.IKECollisionsLost,
		ChildDeletesLocal:    a.ChildDeletesLocal + b.ChildDeletesLocal,
		ChildDeletesRemote:   a.ChildDeletesRemote + b.ChildDeletesRemote,
		TempFailures:         a.TempFailures + b.TempFailures,
	}
}
