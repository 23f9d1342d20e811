package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// worker owns a share of the IKE SAs (see the package comment). Every field
// below inbox is touched only by the worker's goroutine.
type worker struct {
	d     *Daemon
	id    int
	inbox chan work

	env  *sa.Env
	resp *sa.Responder

	sas map[uint64]*ikeEntry // by our SPI
	// byInit finds a responder IKE SA by the peer's address and SPIi, the
	// key of its IKE_SA_INIT request, for as long as the SA lives (as
	// strongSwan keeps its init hashes): a retransmitted or duplicated
	// request, even one that arrives late, reaches the SA and never
	// makes the Responder open a second one.
	byInit map[initRequestKey]*ikeEntry
	byConn map[string]map[*ikeEntry]struct{}
	timers timerHeap
	armed  time.Time // what timer is set for; zero: stopped
	timer  *time.Timer
	due    []*timerItem // reused by runTimers
}

// work is one item in a worker's inbox: a received datagram, or a function
// to run on the worker (control requests).
type work struct {
	pkt   transport.Packet
	route route
	fn    func(w *worker)
}

// ikeEntry is the worker's record of one IKE SA. Only its owner touches it
// (other goroutines may read owner).
type ikeEntry struct {
	owner *worker
	sa    *sa.IKESA
	spi   uint64 // our SPI: the key in worker.sas
	conn  string // connection name; "" until a responder SA knows it
	timer timerItem

	initKey      initRequestKey // responder SAs: their key in worker.byInit
	hasInitKey   bool
	established  bool
	createdForUp bool // created by an `up` that may abort it

	// children are the CHILD_SAs installed in the data plane, by inbound
	// SPI, so that whatever the engine leaves behind is removed with it.
	children map[uint32]string

	// NAT keepalives (RFC 3948 4): sent from natLocal to natRemote when a
	// NAT is in front of us and nothing else went out for a while.
	natLocalDetected    bool
	natLocal, natRemote netip.AddrPort
	lastSent            time.Time
	lastPkts            [][]byte  // the datagrams of the last send, to recognize retransmissions
	lastHeard           time.Time // the latest inbound ESP the engine was told of (Heard)
	keepaliveAt         time.Time

	// Identities, for INITIAL_CONTACT (RFC 7296 2.4).
	localID, remoteID string

	// pendingChildren are children requested (Initiate, CreateChild) and
	// not yet up or failed, so that a second `up` waits instead of
	// creating a duplicate.
	pendingChildren map[string]bool

	waiters      []*upWaiter
	goneWaiters  []chan struct{}
	initiator    bool // we initiated it (handshake metrics by role)
	gaugeState   sa.State
	gaugeCounted bool

	// The engine's lifecycle counters are per IKE SA: counted is what the
	// metrics have of this one's, inherited the sum of its predecessors'
	// (the IKE SAs it replaced by rekeys), for status.
	counted, inherited sa.Counters

	dead    bool // failed or deleted (StateDead): only lingering
	deleted bool // Done; removed from the worker
}

func newWorker(d *Daemon, id, inbox int) *worker {
	return &worker{
		d:      d,
		id:     id,
		inbox:  make(chan work, inbox),
		sas:    make(map[uint64]*ikeEntry),
		byInit: make(map[initRequestKey]*ikeEntry),
		byConn: make(map[string]map[*ikeEntry]struct{}),
	}
}

// init builds the worker's engine environment and Responder once the daemon
// knows its ports and configuration.
func (w *worker) init() {
	d := w.d
	w.env = &sa.Env{
		Rand:        d.rand,
		Log:         d.log,
		NewIKESPI:   w.newIKESPI,
		NewChildSPI: d.dp.AllocSPI,
		// KeysDerived events, with a copy of the keys, only for a key log.
		KeyLog: d.keylog != nil,
	}
	// The half-open limit is the daemon's, shared evenly: each worker's
	// Responder only counts its own half-open SAs.
	threshold := max(1, (cookieThreshold+len(d.workers)-1)/len(d.workers))
	w.resp = sa.NewResponder(w.env, (*selector)(d), sa.ResponderOptions{CookieThreshold: threshold})
}

// newIKESPI is the worker's Env.NewIKESPI: an unused SPI that routes here.
// The engine calls it only on this worker's goroutine.
func (w *worker) newIKESPI() uint64 {
	r := w.d.rand
	if r == nil {
		r = cryptoRand
	}
	spi, err := w.d.shards.newSPI(r, w.id, func(s uint64) bool { _, ok := w.sas[s]; return ok })
	if err != nil {
		// crypto/rand does not fail; a broken test source is a bug.
		panic(fmt.Sprintf("daemon: reading randomness for an IKE SPI: %v", err))
	}
	return spi
}

func (w *worker) run(ctx context.Context) {
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	defer w.timer.Stop()
	for {
		select {
		case it := <-w.inbox:
			if it.fn != nil {
				it.fn(w)
			} else {
				w.receive(it.pkt, it.route)
			}
		case <-w.timer.C:
			w.armed = time.Time{}
			w.runTimers()
		case <-ctx.Done():
			return
		}
		w.rearm()
	}
}

// do runs fn on the worker and waits for it, or for ctx.
func (w *worker) do(ctx context.Context, fn func(w *worker)) error {
	done := make(chan struct{})
	select {
	case w.inbox <- work{fn: func(w *worker) { fn(w); close(done) }}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rearm points the worker's timer at its earliest deadline.
func (w *worker) rearm() {
	next := w.timers.next()
	if next.Equal(w.armed) {
		return
	}
	w.timer.Stop()
	w.armed = next
	if !next.IsZero() {
		w.timer.Reset(max(next.Sub(w.d.now()), 0))
	}
}

func (w *worker) runTimers() {
	now := w.d.now()
	w.due = w.timers.popDue(now, w.due[:0])
	for i, it := range w.due {
		w.due[i] = nil
		e := it.owner.(*ikeEntry)
		if e.deleted {
			continue
		}
		var out sa.Output
		if dl := e.sa.NextDeadline(); !dl.IsZero() && !dl.After(now) {
			// Traffic on a CHILD_SA proves the peer alive: a liveness
			// check may no longer be due (RFC 7296 2.4).
			if w.heard(e) {
				dl = e.sa.NextDeadline()
			}
			if !dl.IsZero() && !dl.After(now) {
				out = e.sa.Tick(now)
				w.countRetransmits(e, out.Packets)
			}
		}
		w.apply(e, out)
		if !e.deleted {
			w.keepalive(e, now)
		}
	}
}

// heard tells the engine when the data plane last received ESP for one of
// e's CHILD_SAs, if that is news; it reports whether it told it anything.
func (w *worker) heard(e *ikeEntry) bool {
	last := e.lastHeard
	for spi := range e.children {
		if c, ok := w.d.dp.Counters(spi); ok && c.LastIn.After(last) {
			last = c.LastIn
		}
	}
	if !last.After(e.lastHeard) {
		return false
	}
	e.lastHeard = last
	e.sa.Heard(last)
	return true
}

// countRetransmits counts the datagrams of a timer step that repeat what
// was sent last: retransmissions (RFC 7296 2.1 resends the same bytes).
func (w *worker) countRetransmits(e *ikeEntry, pkts []sa.Packet) {
	for _, p := range pkts {
		for _, q := range e.lastPkts {
			if bytes.Equal(p.Data, q) {
				if h, ok := peekHeader(p.Data); ok {
					w.d.stats.retransmitted(h.Exchange)
				}
				break
			}
		}
	}
}

// receive handles one IKE datagram routed to this worker.
func (w *worker) receive(p transport.Packet, r route) {
	d := w.d
	now := d.now()
	m, err := wire.Parse(p.Data)
	if r.initReq {
		h, _ := peekHeader(p.Data) // routing read it: it is there
		key := initRequestKey{p.Remote.Addr().Unmap(), h.SPIi}
		if e := w.byInit[key]; e != nil {
			if err != nil {
				d.stats.drop(dropMalformed)
				return
			}
			w.apply(e, e.sa.Handle(now, m, p.Local, p.Remote))
			return
		}
		if err != nil {
			w.send(nil, w.resp.HandleMalformed(now, p.Data, err, p.Local, p.Remote).Packets, now)
			d.stats.drop(dropMalformed)
			return
		}
		ike, out := w.resp.HandleInit(now, m, p.Local, p.Remote)
		if ike == nil {
			w.send(nil, out.Packets, now)
			return
		}
		e := w.add(ike, "")
		e.initKey, e.hasInitKey = key, true
		w.byInit[key] = e
		w.apply(e, out)
		return
	}
	e := w.sas[r.spi]
	if e == nil {
		// RFC 7296 2.21.4 allows an INVALID_IKE_SPI notify here; like
		// strongSwan we stay silent (no reflection for spoofed packets).
		d.stats.drop(dropNoSA)
		d.log.Debug("IKE message for an unknown SA dropped", "spi", fmt.Sprintf("%016x", r.spi), "peer", p.Remote.String())
		return
	}
	if err != nil {
		d.stats.drop(dropMalformed)
		d.log.Debug("malformed IKE message dropped", "spi", fmt.Sprintf("%016x", r.spi), "peer", p.Remote.String(), "err", err.Error())
		return
	}
	w.apply(e, e.sa.Handle(now, m, p.Local, p.Remote))
}

// add registers a new IKE SA on this worker.
func (w *worker) add(ike *sa.IKESA, conn string) *ikeEntry {
	e := &ikeEntry{owner: w, sa: ike, spi: ike.LocalSPI(), children: make(map[uint32]string), pendingChildren: make(map[string]bool)}
	e.timer = timerItem{index: -1, owner: e}
	w.sas[e.spi] = e
	w.setConn(e, conn)
	w.trackState(e)
	return e
}

func (w *worker) setConn(e *ikeEntry, conn string) {
	if conn == "" || conn == e.conn || e.dead {
		return
	}
	if e.conn != "" {
		delete(w.byConn[e.conn], e)
	}
	e.conn = conn
	set := w.byConn[conn]
	if set == nil {
		set = make(map[*ikeEntry]struct{})
		w.byConn[conn] = set
	}
	set[e] = struct{}{}
}

// died handles an IKE SA that failed or was deleted. The engine keeps it for
// a while (StateDead) to answer retransmissions, but for everything else it
// is gone: its CHILD_SAs leave the data plane, waiters wake up, status no
// longer shows it and the gauges no longer count it.
func (w *worker) died(e *ikeEntry) {
	if e.dead {
		return
	}
	e.dead = true
	for spi := range e.children {
		w.removeChild(e, spi)
	}
	for _, u := range e.waiters {
		u.finish(errors.New("daemon: IKE SA deleted"))
	}
	e.waiters = nil
	for _, c := range e.goneWaiters {
		close(c)
	}
	e.goneWaiters = nil
	if e.conn != "" {
		delete(w.byConn[e.conn], e)
		if len(w.byConn[e.conn]) == 0 {
			delete(w.byConn, e.conn)
		}
	}
	w.trackState(e)
}

// trackState keeps the IKE SA state gauges in step with e.
func (w *worker) trackState(e *ikeEntry) {
	st := e.sa.State()
	if e.dead {
		st = sa.StateDead
	}
	if !e.gaugeCounted {
		e.gaugeCounted, e.gaugeState = true, st
		w.d.stats.ikeStateChange(sa.StateDead, st)
		return
	}
	w.d.stats.ikeStateChange(e.gaugeState, st)
	e.gaugeState = st
}

// remove forgets a finished IKE SA (Done), after died if it had not run.
func (w *worker) remove(e *ikeEntry, reason error) {
	if e.deleted {
		return
	}
	if reason != nil {
		for _, u := range e.waiters {
			u.finish(reason)
		}
	}
	w.died(e)
	e.deleted = true
	delete(w.sas, e.spi)
	if e.hasInitKey {
		delete(w.byInit, e.initKey)
	}
	w.timers.set(&e.timer, time.Time{})
}

func (w *worker) removeChild(e *ikeEntry, spi uint32) {
	delete(e.children, spi)
	w.d.children.CompareAndDelete(spi, e)
	w.d.stats.childRemoved()
	if err := w.d.dp.Remove(spi); err != nil {
		w.d.log.Debug("data plane remove", "spi_in", fmt.Sprintf("%08x", spi), "err", err.Error())
	}
}

// retireChild forgets a CHILD_SA that a rekey replaced but leaves it in
// the data plane for deleteRekeyedDelay more: ESP the peer sent on it
// before switching to the new SA may still be on its way, behind the Delete
// or crossing it (strongSwan's delete_rekeyed_delay). Nothing sends on it:
// its successor carries the outbound traffic already.
func (w *worker) retireChild(e *ikeEntry, spi uint32) {
	delete(e.children, spi)
	w.d.children.CompareAndDelete(spi, e)
	w.d.stats.childRemoved()
	w.d.retiring.add(spi, deleteRekeyedDelay, w.d.removeRetired)
}

// removeRetired removes a CHILD_SA that a rekey replaced from the data
// plane, once deleteRekeyedDelay is over or at shutdown.
func (d *Daemon) removeRetired(spi uint32) {
	if err := d.dp.Remove(spi); err != nil {
		d.log.Debug("data plane remove of a rekeyed SA", "spi_in", fmt.Sprintf("%08x", spi), "err", err.Error())
	}
}

// send transmits the engine's datagrams.
func (w *worker) send(e *ikeEntry, pkts []sa.Packet, now time.Time) {
	if e != nil && len(pkts) > 0 {
		// The engine keeps these buffers for retransmission anyway.
		e.lastPkts = e.lastPkts[:0]
		for _, p := range pkts {
			e.lastPkts = append(e.lastPkts, p.Data)
		}
	}
	for _, p := range pkts {
		if err := w.d.tr.SendIKE(transport.Packet{Local: p.Local, Remote: p.Remote, Data: p.Data}); err != nil {
			w.d.stats.sendError()
			w.d.log.Debug("sending IKE message failed", "local", p.Local.String(), "peer", p.Remote.String(), "err", err.Error())
			continue
		}
		if e != nil {
			e.lastSent = now
			if p.Local.Port() == w.d.natPort {
				e.natLocal, e.natRemote = p.Local, p.Remote
			}
		}
	}
}

// keepalive sends a NAT-keepalive if one is due (RFC 3948 4: only when no
// other packet went to the peer for the interval) and schedules the next.
func (w *worker) keepalive(e *ikeEntry, now time.Time) {
	if e.keepaliveAt.IsZero() || now.Before(e.keepaliveAt) {
		return
	}
	if err := w.d.tr.SendKeepalive(e.natLocal, e.natRemote); err != nil {
		w.d.log.Debug("NAT keepalive failed", "peer", e.natRemote.String(), "err", err.Error())
	} else {
		w.d.stats.keepalive()
	}
	e.lastSent = now
	w.keepaliveSchedule(e)
}

// schedule puts e in the timer heap at its earliest deadline.
func (w *worker) schedule(e *ikeEntry) {
	at := e.sa.NextDeadline()
	if !e.keepaliveAt.IsZero() && (at.IsZero() || e.keepaliveAt.Before(at)) {
		at = e.keepaliveAt
	}
	w.timers.set(&e.timer, at)
}

// apply carries out one step's Output for e (see the package comment).
// The engine logs each exchange and the SA's lifecycle (established, CHILD_SA
// up, failed with the reason, deleted) at info and warn; the runtime adds its
// own view of them at debug, and logs at info only what the engine cannot
// know (initiations, the data plane, the daemon's own lifecycle).
func (w *worker) apply(e *ikeEntry, out sa.Output) {
	d := w.d
	now := d.now()
	// The gauges first: whoever the events below wake may read them.
	w.trackState(e)
	var followups []sa.Output
	for _, ev := range out.Events {
		switch ev := ev.(type) {
		case sa.KeysDerived:
			// As soon as the SK_* keys exist, before IKE_AUTH (and for
			// every IKE SA a rekey creates): a capture of an IKE_AUTH that
			// fails decrypts too.
			if err := d.keylog.IKE(ev.KeyLog); err != nil {
				d.log.Warn("key log", "err", err.Error())
			}
		case sa.NATDetected:
			e.natLocalDetected = ev.Local
			d.log.Debug("NAT detection", "conn", e.conn, "nat_local", ev.Local, "nat_remote", ev.Remote)
		case sa.Established:
			w.established(e, ev)
		case sa.ChildUp:
			if f, ok := w.childUp(e, ev, now); !ok {
				followups = append(followups, f)
			}
		case sa.ChildOutbound:
			w.childOutbound(e, ev)
		case sa.ChildDown:
			w.childDown(e, ev)
		case sa.IKEAdded:
			w.ikeAdded(e, ev.SA, now)
		case sa.IKERekeyed:
			w.ikeRekeyed(e, ev.New, now)
		case sa.ChildFailed:
			if ev.SPI != 0 {
				// Frees the SPI the data plane allocated for it.
				d.dp.Remove(ev.SPI)
			}
			delete(e.pendingChildren, ev.Name)
			d.log.Debug("CHILD_SA failed", "conn", e.conn, "child", ev.Name, "reason", errText(ev.Err))
			for _, u := range e.waiters {
				u.childFailed(ev.Name, ev.Err)
			}
		case sa.Failed:
			w.failed(e, ev)
		case sa.Deleted:
			d.log.Debug("IKE SA deleted", "conn", e.conn, "spi", fmt.Sprintf("%016x", e.spi), "reason", ev.Reason)
			switch ev.Cause {
			case sa.CauseRekeyed, sa.CauseRedundant:
			default:
				d.stats.ikeDeleted(ev.Cause == sa.CausePeer)
			}
			for _, u := range e.waiters {
				u.finish(fmt.Errorf("daemon: IKE SA deleted: %s", ev.Reason))
			}
		}
	}
	w.pruneWaiters(e)
	w.countLifecycle(e)
	w.send(e, out.Packets, now)
	for _, f := range followups {
		w.apply(e, f)
		if e.deleted {
			return
		}
	}
	if e.sa.State() == sa.StateDead && !e.dead {
		w.died(e)
	}
	if e.sa.Done() {
		w.remove(e, nil)
		return
	}
	w.trackState(e)
	w.keepaliveSchedule(e)
}

// keepaliveSchedule arms the entry's timer after a step.
func (w *worker) keepaliveSchedule(e *ikeEntry) {
	if e.natLocalDetected && e.established && e.natLocal.IsValid() {
		e.keepaliveAt = e.lastSent.Add(KeepaliveInterval)
	} else {
		e.keepaliveAt = time.Time{}
	}
	w.schedule(e)
}

func (w *worker) established(e *ikeEntry, ev sa.Established) {
	d := w.d
	e.established = true
	s := ev.SA
	w.setConn(e, s.Connection)
	e.localID, e.remoteID = s.LocalID, s.RemoteID
	// Its key log record went out with KeysDerived (Established.KeyLog
	// repeats it).
	d.stats.handshakeEstablished(e.initiator)
	d.log.Debug("IKE SA established", "conn", s.Connection, "initiator", s.Initiator,
		"spi_i", fmt.Sprintf("%016x", s.SPIi), "spi_r", fmt.Sprintf("%016x", s.SPIr),
		"local", s.Local.String(), "peer", s.Remote.String(),
		"local_id", s.LocalID, "remote_id", s.RemoteID, "proposal", s.Proposal,
		"nat_local", s.NATLocal, "nat_remote", s.NATRemote)
	for _, u := range e.waiters {
		u.ikeUp()
	}
	if ev.InitialContact {
		// RFC 7296 2.4: the peer says this is now the only IKE SA between
		// the two identities; it has lost the others.
		// Not on this worker: the others may be on any worker. A daemon
		// shutting down drops them all anyway.
		spi := e.spi
		d.background(func(ctx context.Context) { d.dropOthers(ctx, spi, s.LocalID, s.RemoteID) })
	}
}

// childUp installs a new CHILD_SA in the data plane. When the data plane
// refuses, it returns the engine's answer to ChildInstallFailed and false.
func (w *worker) childUp(e *ikeEntry, ev sa.ChildUp, now time.Time) (sa.Output, bool) {
	d := w.d
	c := ev.Child
	var replaces uint32
	if ev.Replaces != nil {
		replaces = ev.Replaces.InSPI
	}
	dsa := dataplaneSA(c)
	// RFC 7296 2.8: the responder of a rekey receives on the new SA at
	// once but sends on it only when the engine says (ChildOutbound).
	dsa.DeferOutbound = ev.OutboundDeferred
	dsa.IfID = d.ifIDs.of(d.cfgs.Load(), c.ReqID) // route-based mode (kernel.go)
	if err := d.dp.Install(dsa, replaces); err != nil {
		dsa.Zero()
		d.log.Warn("data plane refused the CHILD_SA", "conn", e.conn, "child", c.Name,
			"spi_in", fmt.Sprintf("%08x", c.InSPI), "err", err.Error())
		return e.sa.ChildInstallFailed(now, c.InSPI, err), false
	}
	e.children[c.InSPI] = c.Name
	d.children.Store(c.InSPI, e)
	delete(e.pendingChildren, c.Name)
	if d.keylog != nil {
		if err := d.keylog.ESP(espRecords(c)...); err != nil {
			d.log.Warn("key log", "err", err.Error())
		}
	}
	d.stats.childInstalledInc()
	d.log.Debug("CHILD_SA installed", "conn", e.conn, "child", c.Name,
		"spi_in", fmt.Sprintf("%08x", c.InSPI), "spi_out", fmt.Sprintf("%08x", c.OutSPI),
		"mode", c.Mode.String(), "encap", c.Encap, "proposal", c.Suite.String(),
		"local_ts", tsList(c.LocalTS), "remote_ts", tsList(c.RemoteTS))
	for _, u := range e.waiters {
		u.childUp(c.Name)
	}
	return sa.Output{}, true
}

// childOutbound switches a child's outbound traffic to the SA installed
// with its outbound deferred (make-before-break, RFC 7296 2.8).
func (w *worker) childOutbound(e *ikeEntry, ev sa.ChildOutbound) {
	c := ev.Child
	if err := w.d.dp.ActivateOutbound(c.InSPI); err != nil {
		w.d.log.Warn("data plane did not switch the CHILD_SA's outbound traffic", "conn", e.conn, "child", c.Name,
			"spi_in", fmt.Sprintf("%08x", c.InSPI), "err", err.Error())
		return
	}
	w.d.log.Debug("CHILD_SA outbound switched", "conn", e.conn, "child", c.Name,
		"spi_in", fmt.Sprintf("%08x", c.InSPI), "spi_out", fmt.Sprintf("%08x", c.OutSPI))
}

func (w *worker) childDown(e *ikeEntry, ev sa.ChildDown) {
	c := ev.Child
	_, installed := e.children[c.InSPI]
	if installed {
		if ev.Cause == sa.CauseRekeyed {
			w.retireChild(e, c.InSPI)
		} else {
			w.removeChild(e, c.InSPI)
		}
		switch ev.Cause {
		case sa.CauseRekeyed, sa.CauseRedundant:
		case sa.CauseDeadPeer:
			// Counted once for the IKE SA (cygnet_dead_peers_total).
		default:
			w.d.stats.childDeleted(ev.Cause == sa.CausePeer)
		}
	}
	w.d.log.Debug("CHILD_SA removed", "conn", e.conn, "child", c.Name,
		"spi_in", fmt.Sprintf("%08x", c.InSPI), "spi_out", fmt.Sprintf("%08x", c.OutSPI), "reason", ev.Reason, "cause", ev.Cause.String())
	if !installed {
		return
	}
	// The connection's policy for a CHILD_SA the peer closed or lost
	// (strongSwan's close_action and dpd_action; lifecycle.go).
	switch ev.Cause {
	case sa.CausePeer:
		w.d.afterDown(e.conn, c.Name, triggerClose)
	case sa.CauseDeadPeer:
		w.d.afterDown(e.conn, c.Name, triggerDPD)
	}
}

// ikeAdded registers an IKE SA that a rekey of e created (RFC 7296 1.3.2)
// on this worker: the engine drew its SPI from this worker's generator, so
// its datagrams route here. It has no CHILD_SAs until an IKERekeyed.
func (w *worker) ikeAdded(e *ikeEntry, ike *sa.IKESA, now time.Time) *ikeEntry {
	n := w.add(ike, e.conn)
	n.established, n.initiator = true, ike.Initiator()
	n.localID, n.remoteID = e.localID, e.remoteID
	n.natLocalDetected, n.natLocal, n.natRemote = e.natLocalDetected, e.natLocal, e.natRemote
	n.lastSent, n.lastHeard = now, e.lastHeard
	w.trackState(n)
	// Its NextDeadline may be due already (work the old SA handed over).
	w.keepaliveSchedule(n)
	return n
}

// ikeRekeyed moves e's CHILD_SAs, pending children and waiters to the IKE
// SA that replaces it; e only finishes its own deletion.
func (w *worker) ikeRekeyed(e *ikeEntry, ike *sa.IKESA, now time.Time) {
	n := w.sas[ike.LocalSPI()]
	if n == nil || n.sa != ike {
		n = w.ikeAdded(e, ike, now)
	}
	for spi, name := range e.children {
		n.children[spi] = name
		w.d.children.Store(spi, n)
	}
	n.inherited = addCounters(e.inherited, e.sa.Counters())
	clear(e.children)
	for name := range e.pendingChildren {
		n.pendingChildren[name] = true
	}
	clear(e.pendingChildren)
	n.waiters = append(n.waiters, e.waiters...)
	e.waiters = nil
	w.d.log.Debug("IKE SA rekeyed", "conn", e.conn, "old_spi", fmt.Sprintf("%016x", e.spi), "new_spi", fmt.Sprintf("%016x", n.spi))
}

func (w *worker) failed(e *ikeEntry, ev sa.Failed) {
	d := w.d
	switch {
	case !e.established:
		d.stats.handshakeFailed(e.initiator, ev.Err)
	case ev.Cause == sa.CauseDeadPeer:
		// RFC 7296 2.4: its CHILD_SAs are gone too (their ChildDowns came
		// first and applied dpd_action).
		d.stats.deadPeer()
		d.log.Info("dead peer: IKE SA and its CHILD_SAs removed", "conn", e.conn,
			"spi", fmt.Sprintf("%016x", e.spi), "peer", e.sa.Snapshot().Remote.String(), "reason", errText(ev.Err))
	}
	d.log.Debug("IKE SA failed", "conn", e.conn, "spi", fmt.Sprintf("%016x", e.spi), "reason", errText(ev.Err), "cause", ev.Cause.String())
	for _, u := range e.waiters {
		u.finish(ev.Err)
	}
}

// countLifecycle exports what e's engine counters gained (rekeys,
// collisions, TEMPORARY_FAILUREs) to the metrics.
func (w *worker) countLifecycle(e *ikeEntry) {
	if c := e.sa.Counters(); c != e.counted {
		w.d.stats.lifecycle(c, e.counted)
		e.counted = c
	}
}

// pruneWaiters drops the waiters that have their answer.
func (w *worker) pruneWaiters(e *ikeEntry) {
	keep := e.waiters[:0]
	for _, u := range e.waiters {
		if !u.done() {
			keep = append(keep, u)
		}
	}
	clear(e.waiters[len(keep):])
	e.waiters = keep
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
