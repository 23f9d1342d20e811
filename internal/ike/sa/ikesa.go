package sa

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// nonceLen is the length of our nonces: RFC 7296 2.10 asks for at least half
// the PRF's key size and at least 16 octets; 32 covers every PRF we have.
const nonceLen = 32

// lingerTime is how long a dead IKE SA keeps answering retransmissions of
// the request that ended it (an IKE_AUTH we rejected, a Delete), so that a
// lost final response does not leave the peer retransmitting into the void.
const lingerTime = 20 * time.Second

// IKESA is one IKE SA. It is not safe for concurrent use: one goroutine (or
// one worker at a time) owns it.
//
// An IKE SA runs at most one exchange at a time as initiator (window size 1,
// RFC 7296 2.3) from a queue of tasks, and answers the peer's requests as
// responder independently. See docs/engine.md.
type IKESA struct {
	env  *Env
	rand io.Reader
	log  *slog.Logger
	cfg  *Config // responder: the IKE_SA_INIT match, then ForAuth's choice
	sel  ConfigSelector
	resp *Responder // counts us as half-open while set

	initiator bool // we are the original initiator (RFC 7296 2.2)
	state     State
	done      bool
	lingerTil time.Time // while dead: answer retransmissions until then
	created   time.Time

	spii, spir    uint64
	local, remote netip.AddrPort
	natLocal      bool // NAT in front of us (or faked with ForceEncap)
	natRemote     bool // NAT in front of the peer

	// From IKE_SA_INIT.
	suite    algs.Suite
	prf      *algs.PRF
	keys     *keys.IKEKeys
	prot     *keys.Protector
	ni, nr   []byte
	initReq  []byte // the last IKE_SA_INIT request as sent: AUTH signs it (RFC 7296 2.15)
	initResp []byte // the IKE_SA_INIT response as sent
	peerFrag bool   // the peer announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 2.3)
	// peerHashes is the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 4), nil
	// if it sent none.
	peerHashes []wire.HashAlgorithm
	// peerCertReqs are the CA hashes of the peer's CERTREQs; peerAskedCert
	// records that it sent any CERTREQ (RFC 7296 3.7).
	peerCertReqs  [][20]byte
	peerAskedCert bool

	localID, remoteID auth.Identity
	authenticated     bool // the peer's AUTH verified
	establishedAt     time.Time
	peerContact       bool // the peer sent INITIAL_CONTACT

	children []*child

	// Exchanges we initiate (RFC 7296 2.3: window size 1).
	queue  []task
	active *request
	nextID uint32 // Message ID of our next request

	// Exchanges the peer initiates.
	peerID    uint32    // Message ID expected in the peer's next request
	cached    *response // our response to the peer's previous request
	reqFrags  reassembly
	respFrags reassembly

	lastHeard time.Time // last authenticated message from the peer (liveness)
	halfOpen  time.Time // responder: IKE_AUTH must arrive before this

	// Lifetimes and retries (lifecycle.go).
	rekeyAt         time.Time // the next IKE SA rekey (jittered); zero: none
	delayed         []delayedTask
	kickAt          time.Time // queued tasks wait for a Tick (handed over by an IKE SA rekey)
	tempFailSince   time.Time // the first of a run of TEMPORARY_FAILURE answers (RFC 7296 2.25)
	deleteRequested bool      // Delete was called: no new work, rekeys answered with TEMPORARY_FAILURE
	selfDeleteAt    time.Time // replaced or redundant: delete ourselves if the peer has not by then
	counters        Counters

	// IKE SA rekeying (rekey_ike.go).
	peerRekey *IKESA // created answering the peer's rekey while ours was in flight: a collision (2.8.2)
	rekeyedTo *IKESA // took over our CHILD_SAs; we only wait for our deletion
	redundant bool   // lost a rekey collision (2.8.2): the side that created it deletes it
	contested bool   // created answering a rekey that collides with ours; not decided yet
	// rekeyNi, rekeyNr are the nonces of the CREATE_CHILD_SA exchange that
	// created this IKE SA (nil for one made by IKE_SA_INIT): RFC 7296
	// 2.8.2 compares them in a collision.
	rekeyNi, rekeyNr []byte
}

// child is a CHILD_SA of this IKE SA with the engine's view of it.
type child struct {
	sa  *ChildSA
	cfg *ChildConfig
	lin *lineage // the rekey generations of one CHILD_SA

	// Timers; zero: none.
	rekeyAt    time.Time // soft lifetime (jittered): start a rekey
	expireAt   time.Time // hard lifetime: delete
	outboundAt time.Time // deferred outbound: switch then, once acked

	// The CREATE_CHILD_SA exchange that created the SA (RFC 7296 2.8.1
	// compares these nonces in a collision); nil for the IKE_AUTH child.
	ni, nr []byte
	// For an SA created answering the peer's request: its message ID;
	// acked once the peer sent a later request (so it holds our answer).
	respMsgID uint32
	acked     bool

	pendingOut bool            // outbound deferred (ChildUp.OutboundDeferred) and not switched yet
	contested  bool            // created answering a rekey that collides with ours; not decided yet
	redundant  bool            // lost a rekey collision: deleted by whoever created it
	rekeying   *rekeyChildTask // our rekey of this SA is in flight
	successor  *child          // the SA that replaced this one; it waits for its delete
	peerNew    *child          // created answering the peer's rekey of this SA
	deleting   bool            // our delete of it is queued or in flight
	delCause   Cause           // why we delete it
	failedNext bool            // its replacement could not be installed
	byPeer     bool            // created answering the peer's rekey request
}

// lineage is what the generations of one CHILD_SA share: which of them
// carries the outbound traffic, and how often it was rekeyed.
type lineage struct {
	outbound *child
	rekeys   uint64
}

// NewInitiator returns an IKE SA of connection cfg that will initiate from
// local to remote (normally port 500; it floats to the NAT-T ports itself
// when a NAT is detected, RFC 7296 2.23). Nothing is sent before Initiate.
func NewInitiator(env *Env, cfg *Config, local, remote netip.AddrPort) *IKESA {
	sa := newIKESA(env, cfg, true, local, remote)
	sa.spii = sa.newIKESPI()
	sa.setLogger()
	return sa
}

func newIKESA(env *Env, cfg *Config, initiator bool, local, remote netip.AddrPort) *IKESA {
	if env == nil {
		env = &Env{}
	}
	r := env.Rand
	if r == nil {
		r = rand.Reader
	}
	return &IKESA{
		env:       env,
		rand:      r,
		cfg:       cfg,
		initiator: initiator,
		local:     local,
		remote:    remote,
	}
}

// newIKESPI returns a fresh non-zero local IKE SPI.
func (sa *IKESA) newIKESPI() uint64 {
	if sa.env.NewIKESPI != nil {
		if spi := sa.env.NewIKESPI(); spi != 0 {
			return spi
		}
	}
	var b [8]byte
	for {
		if _, err := io.ReadFull(sa.rand, b[:]); err != nil {
			// A broken random source: fall back to the system's.
			rand.Read(b[:])
		}
		if spi := binary.BigEndian.Uint64(b[:]); spi != 0 {
			return spi
		}
	}
}

// setLogger (re)builds the SA's logger with its SPIs and peer.
func (sa *IKESA) setLogger() {
	base := sa.env.Log
	if base == nil {
		sa.log = discardLogger
		return
	}
	name := ""
	if sa.cfg != nil {
		name = sa.cfg.Name
	}
	sa.log = base.With(
		slog.String("conn", name),
		slog.String("spi_i", spiString(sa.spii)),
		slog.String("spi_r", spiString(sa.spir)),
		slog.String("peer", sa.remote.String()),
	)
}

var discardLogger = slog.New(slog.DiscardHandler)

// Initiate starts IKE_SA_INIT. The first named child (or the first
// configured one when none is named) is created in IKE_AUTH (RFC 7296 1.2);
// further children are queued as CREATE_CHILD_SA exchanges that run once the
// IKE SA is established. Unknown names are reported as ChildFailed. Calling
// Initiate on an SA that is not a fresh initiator does nothing.
func (sa *IKESA) Initiate(now time.Time, children ...string) Output {
	var out Output
	if !sa.initiator || sa.created != (time.Time{}) || sa.done {
		return out
	}
	sa.created = now
	sa.lastHeard = now
	var cfgs []*ChildConfig
	if len(children) == 0 {
		if len(sa.cfg.Children) > 0 {
			cfgs = append(cfgs, sa.cfg.Children[0])
		}
	} else {
		for _, name := range children {
			c := sa.cfg.Child(name)
			if c == nil {
				out.event(ChildFailed{Name: name, Err: errorf("connection %q has no child %q", sa.cfg.Name, name)})
				continue
			}
			cfgs = append(cfgs, c)
		}
	}
	var first *ChildConfig
	if len(cfgs) > 0 {
		first = cfgs[0]
	}
	// The handshake goes first, before anything CreateChild queued earlier.
	sa.queue = append([]task{&ikeInitTask{}, &ikeAuthTask{childCfg: first}}, sa.queue...)
	for _, c := range cfgs[min(1, len(cfgs)):] {
		sa.queue = append(sa.queue, &createChildTask{cfg: c})
	}
	sa.step(now, &out)
	return out
}

// CreateChild creates the CHILD_SA of the configuration's child called name
// with a CREATE_CHILD_SA exchange (RFC 7296 1.3.1), queued behind the
// exchange in flight; before the IKE SA is established it waits for it. The
// result is a ChildUp or ChildFailed event.
func (sa *IKESA) CreateChild(now time.Time, name string) Output {
	var out Output
	if sa.state >= StateDeleting || sa.cfg == nil {
		out.event(ChildFailed{Name: name, Err: errorf("IKE SA is %v", sa.state)})
		return out
	}
	c := sa.cfg.Child(name)
	if c == nil {
		out.event(ChildFailed{Name: name, Err: errorf("connection %q has no child %q", sa.cfg.Name, name)})
		return out
	}
	sa.queue = append(sa.queue, &createChildTask{cfg: c})
	sa.step(now, &out)
	return out
}

// Delete deletes the IKE SA politely: an INFORMATIONAL with a Delete payload
// (RFC 7296 1.4.1) once the exchange in flight is done; tasks not started
// yet are dropped. An SA that is not established yet is dropped at once
// (no INFORMATIONAL exchange may precede IKE_AUTH). The result is a Deleted
// event, after ChildDown for each CHILD_SA. If a rekey of the IKE SA
// completes meanwhile, the new IKE SA is deleted too.
func (sa *IKESA) Delete(now time.Time) Output {
	var out Output
	switch {
	case sa.state == StateDead:
		return out
	case sa.state == StateConnecting:
		sa.die(now, &out, nil, "deleted before it was established", CauseLocal, false)
		return out
	}
	sa.requestDelete(now, "deleted", CauseLocal, &out)
	sa.step(now, &out)
	return out
}

// requestDelete drops the work not started yet and queues the deletion of
// the IKE SA (unless it is queued or in flight already).
func (sa *IKESA) requestDelete(now time.Time, reason string, cause Cause, out *Output) {
	sa.deleteRequested = true
	if d, ok := sa.activeTask().(*deleteIKETask); ok && d != nil {
		return
	}
	for _, t := range sa.queue {
		if _, ok := t.(*deleteIKETask); ok {
			return
		}
	}
	for _, t := range sa.queue {
		t.abort(sa, now, errorf("IKE SA is being deleted"), out)
	}
	for _, d := range sa.delayed {
		d.t.abort(sa, now, errorf("IKE SA is being deleted"), out)
	}
	sa.delayed = nil
	sa.queue = append(sa.queue[:0], &deleteIKETask{reason: reason, cause: cause})
	sa.kickAt = now
}

// ChildInstallFailed tells the SA that the data plane refused the CHILD_SA
// with inbound SPI inSPI: it is reported as ChildFailed and deleted with the
// peer (INFORMATIONAL Delete, RFC 7296 1.4.1). The runtime removes whatever
// part of it the data plane did install. If it was to replace a rekeyed
// CHILD_SA, that one stays (if its Delete has not gone out yet) and its
// rekey is retried later: ChildFailed.Rekeying names it.
func (sa *IKESA) ChildInstallFailed(now time.Time, inSPI uint32, err error) Output {
	var out Output
	c := sa.childByInSPI(inSPI)
	if c == nil {
		return out
	}
	var old *child
	for _, x := range sa.children {
		if x != c && (x.successor == c || x.peerNew == c) {
			old = x
		}
	}
	sa.removeChild(c)
	ev := ChildFailed{Name: c.sa.Name, Err: errorf("installing CHILD_SA %s (SPI %08x): %v", c.sa.Name, inSPI, err), SPI: inSPI}
	if c.lin.outbound == c {
		// The data plane did not switch: the old SA still carries it.
		c.lin.outbound = old
	}
	if old != nil {
		ev.Rekeying = old.sa
		if old.successor == c {
			old.successor = nil
		}
		if old.peerNew == c {
			old.peerNew = nil
		}
		switch {
		case old.deleting && old.delCause == CauseRekeyed && sa.unqueueDelete(old.sa.InSPI):
			// Our Delete of it has not gone out: keep it, rekey later.
			old.deleting = false
			sa.later(now.Add(sa.retryDelay()), &rekeyChildTask{old: old})
		case old.deleting:
			old.failedNext = true
		}
	}
	sa.log.Warn("CHILD_SA failed", slog.String("child", c.sa.Name), slog.String("reason", ev.Err.Error()))
	out.event(ev)
	if sa.state == StateEstablished {
		sa.queueOrphanDelete(inSPI)
		sa.step(now, &out)
	}
	return out
}

// LocalSPI is our own IKE SPI (SPIi as initiator, SPIr as responder): the
// runtime's routing key.
func (sa *IKESA) LocalSPI() uint64 {
	if sa.initiator {
		return sa.spii
	}
	return sa.spir
}

// SPIs returns the IKE SA's SPIs; spir is zero until IKE_SA_INIT is answered.
func (sa *IKESA) SPIs() (spii, spir uint64) { return sa.spii, sa.spir }

// State returns the SA's state.
func (sa *IKESA) State() State { return sa.state }

// Counters returns the SA's lifecycle counters (also in Snapshot, which
// costs more).
func (sa *IKESA) Counters() Counters { return sa.counters }

// Done reports that the SA is finished: the runtime removes it. An SA that
// failed or was deleted may stay in StateDead for a few seconds before it is
// done, answering retransmissions of the request that ended it; NextDeadline
// says when to Tick it.
func (sa *IKESA) Done() bool { return sa.done }

// Initiator reports whether we are the IKE SA's original initiator.
func (sa *IKESA) Initiator() bool { return sa.initiator }

// Config returns the SA's connection (for a responder, nil before
// IKE_SA_INIT matched one; it may change when IKE_AUTH picks another).
func (sa *IKESA) Config() *Config { return sa.cfg }

// Children returns the CHILD_SAs that are up.
func (sa *IKESA) Children() []*ChildSA {
	out := make([]*ChildSA, len(sa.children))
	for i, c := range sa.children {
		out[i] = c.sa
	}
	return out
}

// Handle processes one datagram already parsed by wire.Parse (m.Raw set)
// that the runtime routed to this SA by SPI. local and remote are where it
// arrived and where it came from.
func (sa *IKESA) Handle(now time.Time, m *wire.Message, local, remote netip.AddrPort) Output {
	var out Output
	if sa.done || m == nil || m.Raw == nil {
		return out
	}
	if !sa.addressedToUs(m) {
		sa.log.Debug("dropping message not for this IKE SA", msgAttrs(m)...)
		return out
	}
	if m.IsResponse() {
		sa.handleResponse(now, m, local, remote, &out)
	} else {
		sa.handleRequest(now, m, local, remote, &out)
	}
	sa.step(now, &out)
	return out
}

// addressedToUs checks the header against the SA: the I flag names the
// peer's role (RFC 7296 3.1), the SPIs are ours. The responder SPI may be
// zero in IKE_SA_INIT messages.
func (sa *IKESA) addressedToUs(m *wire.Message) bool {
	if m.IsInitiator() == sa.initiator || m.SPIi != sa.spii {
		return false
	}
	if m.Exchange == wire.IKE_SA_INIT && m.MessageID == 0 {
		// A retransmitted request carries SPIr 0; a response carries the
		// responder's new SPI (or 0 with COOKIE and error notifies).
		return m.SPIr == 0 || m.SPIr == sa.spir || (sa.initiator && sa.spir == 0)
	}
	return m.SPIr == sa.spir
}

// Tick runs the timers that are due: retransmission, the half-open and
// reassembly timeouts, liveness checks and the end of lingering. The
// runtime calls it at or after NextDeadline.
func (sa *IKESA) Tick(now time.Time) Output {
	var out Output
	if sa.done {
		return out
	}
	if sa.state == StateDead {
		if !now.Before(sa.lingerTil) {
			sa.finish()
		}
		return out
	}
	sa.reqFrags.expire(now)
	sa.respFrags.expire(now)
	if r := sa.active; r != nil && (!now.Before(r.deadline) || (!r.giveUp.IsZero() && !now.Before(r.giveUp))) {
		sa.retransmit(now, &out)
	}
	if sa.state == StateConnecting && !sa.initiator && !sa.halfOpen.IsZero() && !now.Before(sa.halfOpen) {
		sa.die(now, &out, fmt.Errorf("%w with IKE_AUTH within %v of IKE_SA_INIT", ErrNoAnswer, sa.halfOpenTimeout()), "", CauseFailed, false)
		return out
	}
	sa.kickAt = time.Time{}
	sa.lifecycle(now, &out)
	if sa.state == StateEstablished && sa.active == nil && len(sa.queue) == 0 {
		if d := sa.dpdDeadline(); !d.IsZero() && !now.Before(d) {
			sa.queue = append(sa.queue, &livenessTask{})
		}
	}
	sa.step(now, &out)
	return out
}

// NextDeadline is when Tick must next be called; zero: no timer armed.
func (sa *IKESA) NextDeadline() time.Time {
	if sa.done {
		return time.Time{}
	}
	if sa.state == StateDead {
		return sa.lingerTil
	}
	var d time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if sa.active != nil {
		earliest(sa.active.deadline)
		earliest(sa.active.giveUp)
	}
	if sa.state == StateConnecting && !sa.initiator {
		earliest(sa.halfOpen)
	}
	earliest(sa.reqFrags.deadline())
	earliest(sa.respFrags.deadline())
	if sa.state == StateEstablished && sa.active == nil && len(sa.queue) == 0 {
		earliest(sa.dpdDeadline())
	}
	if sa.active == nil && len(sa.queue) > 0 && sa.canStart(sa.queue[0]) {
		earliest(sa.kickAt)
	}
	earliest(sa.lifecycleDeadline())
	return d
}

// dpdDeadline is when the next liveness check is due (RFC 7296 2.4), zero
// if none is configured.
func (sa *IKESA) dpdDeadline() time.Time {
	if sa.cfg == nil || sa.cfg.DPDDelay <= 0 {
		return time.Time{}
	}
	return sa.lastHeard.Add(sa.cfg.DPDDelay)
}

// step starts queued tasks while no exchange of ours is in flight.
func (sa *IKESA) step(now time.Time, out *Output) {
	for !sa.done && sa.state != StateDead && sa.active == nil && len(sa.queue) > 0 {
		t := sa.queue[0]
		if !sa.canStart(t) {
			return // waits for IKE_AUTH, or for the IKE SA rekey in flight
		}
		sa.queue = sa.queue[1:]
		sa.start(now, t, out)
	}
}

// canStart reports whether task t may start in the SA's state: handshake
// tasks before IKE_AUTH completes, the others on an established SA, and
// the deletion of the IKE SA also while it waits to be deleted after a
// rekey replaced it.
func (sa *IKESA) canStart(t task) bool {
	if t.handshake() {
		return true
	}
	switch sa.state {
	case StateEstablished:
		return true
	case StateDeleting:
		_, ok := t.(*deleteIKETask)
		return ok && sa.authenticated
	}
	return false
}

// activeTask returns the task whose exchange is in flight, or nil.
func (sa *IKESA) activeTask() task {
	if sa.active == nil {
		return nil
	}
	return sa.active.task
}

// die ends the IKE SA: its CHILD_SAs go down, pending tasks are aborted,
// and a Failed (err != nil) or Deleted event reports why. With linger, the
// SA stays in StateDead for lingerTime to answer retransmissions of the
// request whose response we just sent.
func (sa *IKESA) die(now time.Time, out *Output, err error, reason string, cause Cause, linger bool) {
	if sa.state == StateDead {
		return
	}
	why := reason
	if err != nil {
		why = err.Error()
	}
	for _, c := range sa.children {
		out.event(ChildDown{Child: c.sa, Reason: why, Cause: cause})
	}
	sa.children = nil
	if r := sa.active; r != nil {
		sa.active = nil
		r.task.abort(sa, now, errorf("IKE SA is gone: %s", why), out)
	}
	for _, t := range sa.queue {
		t.abort(sa, now, errorf("IKE SA is gone: %s", why), out)
	}
	for _, d := range sa.delayed {
		d.t.abort(sa, now, errorf("IKE SA is gone: %s", why), out)
	}
	sa.queue, sa.delayed = nil, nil
	if p := sa.peerRekey; p != nil && p.state != StateDead {
		// The IKE SA of an unsettled rekey collision gets nothing now:
		// it goes too (its own Tick sends the Delete).
		sa.peerRekey = nil
		p.contested, p.redundant = false, true
		p.selfDeleteAt = now
	}
	sa.state = StateDead
	sa.leaveHalfOpen()
	if err != nil {
		sa.log.Warn("IKE SA failed", slog.String("reason", why), slog.String("cause", cause.String()))
		out.event(Failed{Err: err, Cause: cause})
	} else {
		sa.log.Info("IKE SA deleted", slog.String("reason", why), slog.String("cause", cause.String()))
		out.event(Deleted{Reason: reason, Cause: cause})
	}
	if sa.keys != nil {
		sa.keys.Zero()
	}
	if linger && sa.cached != nil {
		sa.lingerTil = now.Add(lingerTime)
		return
	}
	sa.finish()
}

// finish marks the SA done and drops its remaining secrets.
func (sa *IKESA) finish() {
	sa.done = true
	sa.prot = nil
	sa.cached = nil
	sa.reqFrags.reset()
	sa.respFrags.reset()
}

// leaveHalfOpen stops counting the SA as half-open at its Responder.
func (sa *IKESA) leaveHalfOpen() {
	if sa.resp != nil {
		sa.resp.halfOpenCount.Add(-1)
		sa.resp = nil
	}
}

// establish marks the IKE SA established and reports it.
func (sa *IKESA) establish(now time.Time, out *Output) {
	sa.state = StateEstablished
	sa.establishedAt = now
	sa.rekeyAt = sa.softLifetime(now, sa.cfg.RekeyTime, sa.cfg.RandTime, 0)
	sa.leaveHalfOpen()
	snap := sa.Snapshot()
	sa.log.Info("IKE SA established",
		slog.String("local_id", snap.LocalID), slog.String("remote_id", snap.RemoteID),
		slog.String("proposal", snap.Proposal), slog.String("local", sa.local.String()))
	out.event(Established{
		SA:             snap,
		KeyLog:         sa.keyLog(),
		InitialContact: sa.peerContact,
	})
}

func (sa *IKESA) childByInSPI(spi uint32) *child {
	for _, c := range sa.children {
		if c.sa.InSPI == spi {
			return c
		}
	}
	return nil
}

func (sa *IKESA) childByOutSPI(spi uint32) *child {
	for _, c := range sa.children {
		if c.sa.OutSPI == spi {
			return c
		}
	}
	return nil
}

func (sa *IKESA) removeChild(c *child) {
	for i, x := range sa.children {
		if x == c {
			sa.children = append(sa.children[:i], sa.children[i+1:]...)
			return
		}
	}
}

func (sa *IKESA) hasChild(c *child) bool {
	return c != nil && slices.Contains(sa.children, c)
}

func (o *Output) event(e Event) { o.Events = append(o.Events, e) }

func (o *Output) send(local, remote netip.AddrPort, datagrams [][]byte) {
	for _, d := range datagrams {
		o.Packets = append(o.Packets, Packet{Local: local, Remote: remote, Data: d})
	}
}

// logEnabled avoids building attributes for disabled levels.
func (sa *IKESA) logEnabled(l slog.Level) bool {
	return sa.log.Enabled(context.Background(), l)
}
