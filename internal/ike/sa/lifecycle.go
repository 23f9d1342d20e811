package sa

import (
	"encoding/binary"
	"io"
	"log/slog"
	"slices"
	"time"
)

// Lifetimes, retries and the make-before-break bookkeeping of CHILD_SAs:
// which SA of a child carries its outbound traffic (RFC 7296 2.8: "a node
// MUST accept incoming packets through either SA" while two exist).

const (
	// retryInterval less a random part of up to retryJitter is how long we
	// wait before retrying an exchange the peer answered with
	// TEMPORARY_FAILURE (RFC 7296 2.25: "it MUST NOT immediately retry";
	// strongSwan's 15 s less up to 10 s). Other failed rekeys are retried
	// the same way until the hard lifetime ends the SA.
	retryInterval = 15 * time.Second
	retryJitter   = 10 * time.Second
	// tempFailLimit: RFC 7296 2.25, "If a peer continues to receive
	// TEMPORARY_FAILURE on the same IKE SA after several minutes, it SHOULD
	// conclude that the state information is out of sync and close the IKE
	// SA."
	tempFailLimit = 5 * time.Minute
	// defaultRekeyOutboundTimeout is Config.RekeyOutboundTimeout's default.
	defaultRekeyOutboundTimeout = 5 * time.Second
	// replacedTimeout: an IKE SA the peer replaced by a rekey is deleted by
	// the peer (RFC 7296 2.18); if that does not happen, we delete it
	// ourselves after this long without a sign of use (strongSwan waits
	// 90 s), or the retransmission schedule if that is longer
	// (replacedWait).
	replacedTimeout = 90 * time.Second
	// redundantTimeout: the same for the redundant IKE SA the peer created
	// in a rekey collision it lost (RFC 7296 2.8.2).
	redundantTimeout = 30 * time.Second
	// selfDeleteGiveUp bounds the Delete exchange of a replaced or
	// redundant IKE SA: the peer may never have learnt it (its answer
	// creating it was lost), or stopped answering retransmissions of the
	// Delete (lingerTime) while ours were lost.
	selfDeleteGiveUp = 30 * time.Second
)

// delayedTask is a task queued when its time comes (Tick).
type delayedTask struct {
	at time.Time
	t  task
}

// later queues t at time at.
func (sa *IKESA) later(at time.Time, t task) {
	sa.delayed = append(sa.delayed, delayedTask{at: at, t: t})
}

// randDuration returns a random duration in [0, n).
func (sa *IKESA) randDuration(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	var b [8]byte
	if _, err := io.ReadFull(sa.rand, b[:]); err != nil {
		return 0
	}
	return time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(n))
}

// retryDelay is the random wait before a retry (RFC 7296 2.25).
func (sa *IKESA) retryDelay() time.Duration {
	return retryInterval - sa.randDuration(retryJitter)
}

// softLifetime is when an SA created at start is rekeyed: rekey less a
// random part of up to rnd (0: a tenth of rekey; negative: none), RFC 7296
// 2.8.1's jitter, and before the hard lifetime life if there is one. Zero
// if rekey is 0 (never).
func (sa *IKESA) softLifetime(start time.Time, rekey, rnd, life time.Duration) time.Time {
	if rekey <= 0 {
		return time.Time{}
	}
	if rnd == 0 {
		rnd = rekey / 10
	}
	if rnd >= rekey {
		rnd = rekey - 1
	}
	d := rekey - sa.randDuration(rnd+1)
	if life > 0 && d >= life {
		// A rekey at or after the hard lifetime would come too late.
		d = life - life/10 - sa.randDuration(life/10+1)
	}
	return start.Add(max(d, time.Second))
}

// outboundTimeout is Config.RekeyOutboundTimeout with its default.
func (sa *IKESA) outboundTimeout() time.Duration {
	if sa.cfg != nil && sa.cfg.RekeyOutboundTimeout > 0 {
		return sa.cfg.RekeyOutboundTimeout
	}
	return defaultRekeyOutboundTimeout
}

// newChild wraps a negotiated CHILD_SA with its timers; lin is the line it
// continues (nil: a new one).
func (sa *IKESA) newChild(cs *ChildSA, cfg *ChildConfig, lin *lineage) *child {
	if lin == nil {
		lin = &lineage{}
	}
	return &child{sa: cs, cfg: cfg, lin: lin, rekeyAt: cs.RekeyAt, expireAt: cs.ExpireAt}
}

// install records c and reports it (ChildUp). Without deferred, c carries
// its child's outbound traffic from now on.
func (sa *IKESA) install(c *child, replaces *child, deferred bool, out *Output) {
	sa.children = append(sa.children, c)
	ev := ChildUp{Child: c.sa, OutboundDeferred: deferred}
	if replaces != nil {
		ev.Replaces = replaces.sa
	}
	if deferred {
		c.pendingOut = true
	} else {
		c.lin.outbound = c
	}
	if sa.logEnabled(slog.LevelInfo) {
		cs := c.sa
		attrs := []any{slog.String("child", cs.Name),
			slog.String("spi_in", spi32String(cs.InSPI)), slog.String("spi_out", spi32String(cs.OutSPI)),
			slog.String("proposal", cs.Suite.String()), slog.String("mode", cs.Mode.String()),
			slog.String("local_ts", tsListString(cs.LocalTS)), slog.String("remote_ts", tsListString(cs.RemoteTS))}
		if replaces != nil {
			attrs = append(attrs, slog.String("replaces", spi32String(replaces.sa.InSPI)))
		}
		if deferred {
			attrs = append(attrs, slog.Bool("outbound_deferred", true))
		}
		sa.log.Info("CHILD_SA up", attrs...)
	}
	out.event(ev)
}

// activate switches c's child's outbound traffic to c (ChildOutbound).
func (sa *IKESA) activate(c *child, why string, out *Output) {
	c.pendingOut = false
	c.outboundAt = time.Time{}
	c.lin.outbound = c
	sa.log.Info("CHILD_SA outbound switched", slog.String("child", c.sa.Name),
		slog.String("spi_in", spi32String(c.sa.InSPI)), slog.String("spi_out", spi32String(c.sa.OutSPI)),
		slog.String("reason", why))
	out.event(ChildOutbound{Child: c.sa})
}

// dropChild removes c and reports it (ChildDown). If it carried its child's
// outbound traffic, another SA of the child takes over first, so that the
// data plane is never without one while the child has any.
func (sa *IKESA) dropChild(c *child, reason string, cause Cause, out *Output) {
	sa.removeChild(c)
	if c.lin.outbound == c {
		c.lin.outbound = nil
		if h := sa.heir(c); h != nil {
			sa.activate(h, "the SA it replaces is going", out)
		}
	}
	switch cause {
	case CauseRekeyed:
		// The surviving rekey's: our successor's, else the peer's.
		if h := c.successor; (h != nil && h.byPeer) || (h == nil && c.peerNew != nil) {
			sa.counters.ChildRekeysResponded++
		} else {
			sa.counters.ChildRekeysInitiated++
		}
		c.lin.rekeys++
	case CauseRedundant:
	case CausePeer:
		sa.counters.ChildDeletesRemote++
	default:
		sa.counters.ChildDeletesLocal++
	}
	c.pendingOut = false
	c.outboundAt = time.Time{}
	sa.log.Info("CHILD_SA down", slog.String("child", c.sa.Name),
		slog.String("spi_in", spi32String(c.sa.InSPI)), slog.String("spi_out", spi32String(c.sa.OutSPI)),
		slog.String("reason", reason), slog.String("cause", cause.String()))
	out.event(ChildDown{Child: c.sa, Reason: reason, Cause: cause})
}

// heir picks the SA of c's child that takes over its outbound traffic: its
// successor, else one that did not lose a collision, else any.
func (sa *IKESA) heir(c *child) *child {
	if s := c.successor; sa.hasChild(s) && !s.redundant {
		return s
	}
	var any *child
	for i := len(sa.children) - 1; i >= 0; i-- {
		x := sa.children[i]
		if x.lin != c.lin {
			continue
		}
		if !x.redundant {
			return x
		}
		if any == nil {
			any = x
		}
	}
	return any
}

// downCause says why c goes away when it is deleted (by either side).
func (c *child) downCause(byPeer bool) (Cause, string) {
	switch {
	case c.failedNext:
		return CauseFailed, "its replacement could not be installed"
	case c.successor != nil || (c.peerNew != nil && !c.peerNew.redundant):
		return CauseRekeyed, "rekeyed"
	case c.redundant, c.contested && byPeer:
		// A contested SA the peer deletes lost the collision in the
		// peer's eyes (it compared the nonces first).
		return CauseRedundant, "redundant after a rekey collision"
	case c.deleting:
		switch c.delCause {
		case CauseExpired:
			return CauseExpired, "hard lifetime expired"
		case CauseLocal:
			return CauseLocal, "deleted"
		}
		return c.delCause, "deleted"
	case byPeer:
		return CausePeer, "deleted by peer"
	}
	return CauseLocal, "deleted"
}

// noteAck marks the CHILD_SAs we created answering a request before msgID
// as known to the peer: it sent msgID only after it had our answer
// (window size 1, RFC 7296 2.3).
func (sa *IKESA) noteAck(msgID uint32) {
	for _, c := range sa.children {
		if c.pendingOut && !c.acked && c.respMsgID < msgID {
			c.acked = true
		}
	}
}

// queueDelete schedules the deletion of c with the peer (RFC 7296 1.4.1),
// in one Delete payload with any other deletion not sent yet, ahead of
// other queued work.
func (sa *IKESA) queueDelete(c *child, cause Cause) {
	if c.deleting {
		return
	}
	c.deleting, c.delCause = true, cause
	for _, t := range sa.queue {
		if d, ok := t.(*deleteChildTask); ok {
			d.spis = append(d.spis, c.sa.InSPI)
			return
		}
	}
	sa.queue = append([]task{&deleteChildTask{spis: []uint32{c.sa.InSPI}}}, sa.queue...)
}

// queueOrphanDelete schedules a Delete for an inbound SPI of an SA we do not
// keep (the peer created it, we could not use it).
func (sa *IKESA) queueOrphanDelete(spi uint32) {
	for _, t := range sa.queue {
		if d, ok := t.(*deleteChildTask); ok {
			d.orphans = append(d.orphans, spi)
			return
		}
	}
	sa.queue = append(sa.queue, &deleteChildTask{orphans: []uint32{spi}})
}

// unqueueDelete takes spi out of a Delete not sent yet; false if there is
// none with it.
func (sa *IKESA) unqueueDelete(spi uint32) bool {
	for _, t := range sa.queue {
		if d, ok := t.(*deleteChildTask); ok {
			if i := slices.Index(d.spis, spi); i >= 0 {
				d.spis = slices.Delete(d.spis, i, i+1)
				return true
			}
		}
	}
	return false
}

// rekeyable reports whether c may be rekeyed by us now.
func (sa *IKESA) rekeyable(c *child) bool {
	return sa.hasChild(c) && !c.deleting && !c.redundant && !c.pendingOut &&
		c.successor == nil && c.peerNew == nil && c.rekeying == nil
}

// queueRekeyChild queues a rekey of c unless one is pending.
func (sa *IKESA) queueRekeyChild(c *child) {
	if !sa.rekeyable(c) {
		return
	}
	pending := func(t task) bool { r, ok := t.(*rekeyChildTask); return ok && r.old == c }
	if slices.ContainsFunc(sa.queue, pending) {
		return
	}
	for _, d := range sa.delayed {
		if pending(d.t) {
			return
		}
	}
	sa.queue = append(sa.queue, &rekeyChildTask{old: c})
}

// queueRekeyIKE queues a rekey of the IKE SA unless one is pending.
func (sa *IKESA) queueRekeyIKE() {
	if sa.state != StateEstablished || sa.deleteRequested || sa.rekeyedTo != nil || sa.peerRekey != nil {
		return
	}
	pending := func(t task) bool { _, ok := t.(*rekeyIKETask); return ok }
	if slices.ContainsFunc(sa.queue, pending) || (sa.active != nil && pending(sa.active.task)) {
		return
	}
	for _, d := range sa.delayed {
		if pending(d.t) {
			return
		}
	}
	sa.queue = append(sa.queue, &rekeyIKETask{})
}

// expireChild handles the hard lifetime of c (by time, or the data plane's
// byte, packet or sequence number limits): it is deleted. The data plane
// no longer sends on it, so a successor waiting for the outbound traffic
// takes it now.
func (sa *IKESA) expireChild(now time.Time, c *child, out *Output) {
	sa.log.Info("CHILD_SA hard lifetime reached", slog.String("child", c.sa.Name),
		slog.String("spi_in", spi32String(c.sa.InSPI)))
	if s := c.successor; sa.hasChild(s) && s.pendingOut && !s.redundant {
		sa.activate(s, "the SA it replaces expired", out)
	}
	sa.queueDelete(c, CauseExpired)
}

// noteTempFail records a TEMPORARY_FAILURE answer (RFC 7296 2.25); after
// several minutes of them the IKE SA is closed as out of sync.
func (sa *IKESA) noteTempFail(now time.Time, out *Output) {
	sa.counters.TempFailures++
	if sa.tempFailSince.IsZero() {
		sa.tempFailSince = now
		return
	}
	// The peer may be busy with an exchange of its own that long (RFC 7296
	// 2.25.2: it declines an IKE SA rekey meanwhile).
	if now.Sub(sa.tempFailSince) >= max(tempFailLimit, sa.retransmitBudget()) {
		sa.log.Warn("closing the IKE SA: the peer keeps answering TEMPORARY_FAILURE",
			slog.Duration("since", now.Sub(sa.tempFailSince)))
		sa.requestDelete(now, "out of sync: TEMPORARY_FAILURE for "+now.Sub(sa.tempFailSince).Round(time.Second).String(), CauseFailed, out)
	}
}

// retransmitBudget is how long an exchange may go unanswered before it
// fails: the whole retransmission schedule (jitter aside).
func (sa *IKESA) retransmitBudget() time.Duration {
	var d time.Duration
	for n := 0; n <= sa.retransmitTries(); n++ {
		d += sa.retransmitInterval(n)
	}
	return d
}

// stillUsed postpones the self-deletion of a replaced IKE SA while the
// peer evidently still uses it: it is, for instance, retransmitting its
// own rekey request of a collision whose answers get lost, and would take
// our Delete for a sign that our rekey won (RFC 7296 2.8.2).
func (sa *IKESA) stillUsed(now time.Time) {
	if sa.rekeyedTo != nil && !sa.selfDeleteAt.IsZero() {
		sa.selfDeleteAt = now.Add(sa.replacedWait())
	}
}

// replacedWait is how long a replaced IKE SA waits for the peer's Delete:
// the peer may keep retransmitting on it for its whole schedule (we take
// ours as its measure).
func (sa *IKESA) replacedWait() time.Duration {
	return max(replacedTimeout, sa.retransmitBudget())
}

// lifecycle runs the lifetime timers that are due (Tick).
func (sa *IKESA) lifecycle(now time.Time, out *Output) {
	if sa.state == StateConnecting || sa.state == StateDead {
		return
	}
	for _, c := range slices.Clone(sa.children) {
		if !sa.hasChild(c) {
			continue
		}
		if !c.expireAt.IsZero() && !now.Before(c.expireAt) {
			c.expireAt, c.rekeyAt = time.Time{}, time.Time{}
			sa.expireChild(now, c, out)
			continue
		}
		if c.pendingOut && c.acked && !c.redundant && !c.outboundAt.IsZero() && !now.Before(c.outboundAt) {
			sa.activate(c, "the peer did not delete the old SA in time", out)
		}
		if !c.rekeyAt.IsZero() && !now.Before(c.rekeyAt) {
			c.rekeyAt = time.Time{}
			if sa.rekeyable(c) {
				sa.log.Info("CHILD_SA soft lifetime reached, rekeying", slog.String("child", c.sa.Name),
					slog.String("spi_in", spi32String(c.sa.InSPI)))
			}
			sa.queueRekeyChild(c)
		}
	}
	if len(sa.delayed) > 0 {
		keep := sa.delayed[:0]
		for _, d := range sa.delayed {
			if now.Before(d.at) {
				keep = append(keep, d)
				continue
			}
			sa.queue = append(sa.queue, d.t)
		}
		clear(sa.delayed[len(keep):])
		sa.delayed = keep
	}
	if sa.state == StateEstablished && !sa.rekeyAt.IsZero() && !now.Before(sa.rekeyAt) {
		sa.rekeyAt = time.Time{}
		sa.log.Info("IKE SA rekey time reached")
		sa.queueRekeyIKE()
	}
	if !sa.selfDeleteAt.IsZero() && !now.Before(sa.selfDeleteAt) {
		sa.selfDeleteAt = time.Time{}
		cause, reason := CauseRedundant, "redundant after a rekey collision; the peer did not delete it"
		if sa.rekeyedTo != nil {
			cause, reason = CauseRekeyed, "rekeyed; the peer did not delete it"
		}
		sa.requestDelete(now, reason, cause, out)
	}
}

// lifecycleDeadline is the earliest lifetime timer.
func (sa *IKESA) lifecycleDeadline() time.Time {
	if sa.state == StateConnecting || sa.state == StateDead {
		return time.Time{}
	}
	var d time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, c := range sa.children {
		earliest(c.expireAt)
		earliest(c.rekeyAt)
		if c.pendingOut && c.acked && !c.redundant {
			earliest(c.outboundAt)
		}
	}
	for _, t := range sa.delayed {
		earliest(t.at)
	}
	if sa.state == StateEstablished {
		earliest(sa.rekeyAt)
	}
	earliest(sa.selfDeleteAt)
	return d
}

// RekeyChild starts a rekey of the CHILD_SA with inbound SPI inSPI (RFC
// 7296 1.3.3) as its soft lifetime would; nothing happens if it is being
// rekeyed or deleted already.
func (sa *IKESA) RekeyChild(now time.Time, inSPI uint32) Output {
	var out Output
	if sa.state != StateEstablished && sa.state != StateRekeying {
		return out
	}
	if c := sa.childByInSPI(inSPI); c != nil {
		c.rekeyAt = time.Time{}
		sa.queueRekeyChild(c)
	}
	sa.step(now, &out)
	return out
}

// Rekey starts a rekey of the IKE SA (RFC 7296 1.3.2) as its rekey time
// would; nothing happens if one is in progress or the SA is going away.
func (sa *IKESA) Rekey(now time.Time) Output {
	var out Output
	sa.rekeyAt = time.Time{}
	sa.queueRekeyIKE()
	sa.step(now, &out)
	return out
}

// ChildExpired is the data plane's report that the CHILD_SA with inbound
// SPI inSPI reached a byte, packet or sequence number limit: soft starts a
// rekey (RFC 7296 2.8), hard deletes it (the data plane no longer uses it).
func (sa *IKESA) ChildExpired(now time.Time, inSPI uint32, hard bool) Output {
	var out Output
	c := sa.childByInSPI(inSPI)
	if c == nil || sa.state == StateConnecting || sa.state == StateDead {
		return out
	}
	if hard {
		c.expireAt, c.rekeyAt = time.Time{}, time.Time{}
		sa.expireChild(now, c, &out)
	} else {
		c.rekeyAt = time.Time{}
		sa.queueRekeyChild(c)
	}
	sa.step(now, &out)
	return out
}
