package sa

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// request is our exchange in flight (RFC 7296 2.1-2.3: window size 1).
type request struct {
	task     task
	exchange wire.ExchangeType
	msgID    uint32
	packets  [][]byte // as sent; a retransmission resends the same octets
	local    netip.AddrPort
	remote   netip.AddrPort
	sent     int       // retransmissions so far
	first    time.Time // first transmission
	deadline time.Time // next retransmission, or giving up
	giveUp   time.Time // a liveness check fails then (DPDTimeout) if the schedule has not ended it; zero: none
}

// response is our answer to the peer's last request, kept to answer its
// retransmissions without processing them again (RFC 7296 2.1).
type response struct {
	msgID    uint32
	exchange wire.ExchangeType
	packets  [][]byte
	request  []byte // IKE_SA_INIT only: the request, to recognise a retransmission
}

// task is one piece of local work that takes one or more exchanges in which
// we are the initiator: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA (new and
// rekeyed CHILD_SAs, the IKE SA rekey), delete, liveness. Collisions are
// decided where the responder handlers see the active task
// (IKESA.activeTask) and the CHILD_SAs' rekey state.
type task interface {
	// exchange is the exchange type of the task's requests.
	exchange() wire.ExchangeType
	// handshake reports whether the task is part of creating the IKE SA;
	// other tasks wait until it is established.
	handshake() bool
	// build returns the payloads of the next request. An error ends the
	// task before anything is sent (fail is called with it); errSkip ends
	// it quietly (abort is called): there is nothing left to do.
	build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error)
	// process handles the response: m is the message (for IKE_SA_INIT its
	// plaintext payloads are m.Payloads), payloads the decrypted inner
	// payloads. retry asks for another request of the same task (COOKIE,
	// INVALID_KE_PAYLOAD); an error ends the task with fail.
	process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (retry bool, err error)
	// fail ends the task with err: the response was unusable or the peer
	// never answered (for these the IKE SA usually dies too).
	fail(sa *IKESA, now time.Time, err error, out *Output)
	// abort ends a task that will not run (or not finish) because the IKE
	// SA is going away or being deleted.
	abort(sa *IKESA, now time.Time, err error, out *Output)
}

// errSkip is a task's verdict that it has nothing to do any more (the SA it
// was for is gone or was rekeyed by the peer meanwhile).
var errSkip = errors.New("nothing to do")

// start builds and sends the first request of t.
func (sa *IKESA) start(now time.Time, t task, out *Output) {
	payloads, err := t.build(sa, now, out)
	if errors.Is(err, errSkip) {
		t.abort(sa, now, err, out)
		return
	}
	if err != nil {
		t.fail(sa, now, err, out)
		return
	}
	if sa.state == StateDead {
		return
	}
	sa.sendRequest(now, t, payloads, out)
}

// sendRequest sends a new request of t with the next message ID.
func (sa *IKESA) sendRequest(now time.Time, t task, payloads []wire.Payload, out *Output) {
	exch := t.exchange()
	h := sa.header(exch, sa.nextID, false)
	var packets [][]byte
	var err error
	if exch == wire.IKE_SA_INIT {
		var b []byte
		b, err = (&wire.Message{Header: h, Payloads: payloads}).Marshal()
		packets = [][]byte{b}
		sa.initReq = b
	} else {
		packets, err = sa.seal(h, payloads)
	}
	if err != nil {
		t.fail(sa, now, errorf("building %v request: %v", exch, err), out)
		return
	}
	r := &request{
		task: t, exchange: exch, msgID: sa.nextID, packets: packets,
		local: sa.local, remote: sa.remote, first: now,
	}
	r.deadline = now.Add(sa.retransmitTimeout(0))
	switch t := t.(type) {
	case *livenessTask:
		if sa.cfg != nil && sa.cfg.DPDTimeout > 0 {
			r.giveUp = now.Add(sa.cfg.DPDTimeout)
		}
	case *deleteIKETask:
		if t.cause == CauseRekeyed || t.cause == CauseRedundant {
			// Nothing depends on it any more (its CHILD_SAs moved): an
			// answer lost after the peer stopped lingering must not keep
			// it for the whole schedule.
			r.giveUp = now.Add(selfDeleteGiveUp)
		}
	}
	sa.active = r
	sa.logExchange("sending", h, payloads, len(packets))
	out.send(r.local, r.remote, packets)
}

// sendOneShot sends a request that expects no processing of its answer and
// is never retransmitted: the INFORMATIONAL that reports an AUTH failure to
// the responder (RFC 7296 2.21.2).
func (sa *IKESA) sendOneShot(exch wire.ExchangeType, payloads []wire.Payload, out *Output) {
	h := sa.header(exch, sa.nextID, false)
	packets, err := sa.seal(h, payloads)
	if err != nil {
		return
	}
	sa.nextID++
	sa.logExchange("sending", h, payloads, len(packets))
	out.send(sa.local, sa.remote, packets)
}

// header returns the IKE header of a message of ours.
func (sa *IKESA) header(exch wire.ExchangeType, msgID uint32, response bool) wire.Header {
	h := wire.Header{SPIi: sa.spii, SPIr: sa.spir, Exchange: exch, MessageID: msgID}
	if sa.initiator {
		h.Flags |= wire.FlagInitiator // RFC 7296 3.1: set by the original initiator
	}
	if response {
		h.Flags |= wire.FlagResponse
	}
	return h
}

// seal encrypts a message, in fragments if both sides support RFC 7383 and
// it does not fit the configured size.
func (sa *IKESA) seal(h wire.Header, payloads []wire.Payload) ([][]byte, error) {
	if sa.prot == nil {
		return nil, errors.New("no keys")
	}
	if sa.fragmenting() {
		return sa.prot.SealFragments(h, payloads, sa.rand, sa.maxMessageLen())
	}
	b, err := sa.prot.Seal(h, payloads, sa.rand)
	if err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

// fragmenting reports whether we may send SKF (RFC 7383 2.3: both announced
// support in IKE_SA_INIT).
func (sa *IKESA) fragmenting() bool {
	return sa.cfg != nil && sa.cfg.Fragmentation && sa.peerFrag
}

// maxMessageLen is the largest IKE message that fits FragmentSize with the
// IP and UDP headers and, on the NAT-T port, the non-ESP marker (RFC 7383
// 2.5.1).
func (sa *IKESA) maxMessageLen() int {
	size := 1280
	if sa.cfg != nil && sa.cfg.FragmentSize > 0 {
		size = sa.cfg.FragmentSize
	}
	size -= 8 // UDP
	if sa.remote.Addr().Unmap().Is4() {
		size -= 20
	} else {
		size -= 40
	}
	if sa.local.Port() == sa.natPort() {
		size -= 4 // non-ESP marker (RFC 3948 2.2)
	}
	return max(size, wire.HeaderLen+64)
}

func (sa *IKESA) natPort() uint16 {
	if sa.cfg != nil && sa.cfg.NATPort != 0 {
		return sa.cfg.NATPort
	}
	return 4500
}

func (sa *IKESA) remoteNATPort() uint16 {
	if sa.cfg != nil && sa.cfg.RemoteNATPort != 0 {
		return sa.cfg.RemoteNATPort
	}
	return 4500
}

// retransmitTimeout is how long to wait after transmission n (0: the
// first) before the next one (RFC 7296 2.4; strongSwan's schedule).
func (sa *IKESA) retransmitTimeout(n int) time.Duration {
	d := float64(sa.retransmitInterval(n))
	if rt := sa.retransmitConfig(); rt.Jitter > 0 && rt.Jitter < 1 {
		var b [2]byte
		if _, err := io.ReadFull(sa.rand, b[:]); err == nil {
			d -= d * rt.Jitter * float64(binary.BigEndian.Uint16(b[:])) / 65536
		}
	}
	return time.Duration(d)
}

func (sa *IKESA) retransmitConfig() Retransmit {
	if sa.cfg != nil {
		return sa.cfg.Retransmit
	}
	return Retransmit{}
}

// retransmitInterval is retransmitTimeout without jitter.
func (sa *IKESA) retransmitInterval(n int) time.Duration {
	rt := sa.retransmitConfig()
	timeout, base := rt.Timeout, rt.Base
	if timeout <= 0 {
		timeout = 4 * time.Second
	}
	if base < 1 {
		base = 1.8
	}
	d := float64(timeout) * math.Pow(base, float64(n))
	if rt.Limit > 0 && d > float64(rt.Limit) {
		d = float64(rt.Limit)
	}
	if d > float64(24*time.Hour) {
		d = float64(24 * time.Hour)
	}
	return time.Duration(d)
}

func (sa *IKESA) retransmitTries() int {
	if sa.cfg != nil && sa.cfg.Retransmit.Tries > 0 {
		return sa.cfg.Retransmit.Tries
	}
	return 5
}

// retransmit resends the request in flight, or gives up on it.
func (sa *IKESA) retransmit(now time.Time, out *Output) {
	r := sa.active
	if r.sent >= sa.retransmitTries() || (!r.giveUp.IsZero() && !now.Before(r.giveUp)) {
		sa.active = nil
		elapsed := now.Sub(r.first).Round(time.Second)
		err := fmt.Errorf("%w %v request %d after %d retransmissions in %v",
			ErrNoAnswer, r.exchange, r.msgID, r.sent, elapsed)
		if _, ok := r.task.(*livenessTask); ok {
			err = fmt.Errorf("%w the liveness check for %ds", ErrNoAnswer, int64(elapsed/time.Second))
		}
		r.task.fail(sa, now, err, out)
		// RFC 7296 2.4: an unanswered request means the peer is gone.
		cause := CauseDeadPeer
		if !sa.authenticated {
			cause = CauseFailed
		}
		sa.die(now, out, err, "", cause, false)
		return
	}
	r.sent++
	r.deadline = now.Add(sa.retransmitTimeout(r.sent))
	sa.log.Debug("retransmitting", slog.String("exchange", r.exchange.String()),
		slog.Uint64("msgid", uint64(r.msgID)), slog.Int("try", r.sent))
	out.send(r.local, r.remote, r.packets)
}

// handleResponse takes a response to our request in flight.
func (sa *IKESA) handleResponse(now time.Time, m *wire.Message, local, remote netip.AddrPort, out *Output) {
	r := sa.active
	if r == nil || m.MessageID != r.msgID || m.Exchange != r.exchange {
		sa.log.Debug("dropping unexpected response", msgAttrs(m)...)
		return
	}
	var payloads []wire.Payload
	if r.exchange == wire.IKE_SA_INIT {
		payloads = m.Payloads
	} else {
		var complete bool
		var err error
		payloads, complete, err = sa.open(now, m, &sa.respFrags)
		switch {
		case errors.Is(err, keys.ErrIntegrity) || errors.Is(err, errDrop):
			sa.log.Debug("dropping response", append(msgAttrs(m), slog.String("reason", err.Error()))...)
			return
		case err != nil:
			// Authentic but malformed: the exchange failed.
			sa.lastHeard = now
			sa.active = nil
			sa.nextID++
			sa.logExchange("received", m.Header, nil, 1)
			r.task.fail(sa, now, localNotify(wire.INVALID_SYNTAX, err, "malformed %v response: %v", r.exchange, err), out)
			return
		case !complete:
			return
		}
		sa.lastHeard = now
	}
	sa.logExchange("received", m.Header, payloads, 1)
	sa.active = nil
	if r.exchange != wire.IKE_SA_INIT {
		sa.nextID++ // before process: a task may start another exchange
	}
	retry, err := r.task.process(sa, now, m, payloads, out)
	if errors.Is(err, errStale) {
		// A duplicate of an IKE_SA_INIT answer that made us retry with
		// the same message ID: keep waiting for the real one.
		sa.active = r
		return
	}
	if r.exchange == wire.IKE_SA_INIT && !retry {
		// IKE_SA_INIT is retried with message ID 0 (RFC 7296 2.6).
		sa.nextID = 1
	}
	switch {
	case err != nil:
		r.task.fail(sa, now, err, out)
	case retry && sa.state != StateDead:
		sa.start(now, r.task, out)
	}
}

// errDrop marks a message dropped without an answer.
var errDrop = errors.New("dropped")

// errStale is a task's verdict on a response that answers an earlier
// transmission with the same message ID (IKE_SA_INIT retries keep ID 0).
var errStale = errors.New("stale response")

// open decrypts the SK payload of m, or collects its SKF fragment (RFC
// 7383 2.6) in frags; complete is false while fragments are missing.
func (sa *IKESA) open(now time.Time, m *wire.Message, frags *reassembly) (payloads []wire.Payload, complete bool, err error) {
	if sa.prot == nil || len(m.Payloads) == 0 {
		return nil, false, errDrop
	}
	switch m.Payloads[len(m.Payloads)-1].(type) {
	case *wire.Encrypted:
		p, err := sa.prot.Open(m)
		return p, err == nil, err
	case *wire.EncryptedFragment:
		if !(sa.cfg != nil && sa.cfg.Fragmentation) {
			return nil, false, errDrop // we never announced support
		}
		f, err := sa.prot.OpenFragment(m)
		if err != nil {
			if errors.Is(err, keys.ErrIntegrity) {
				return nil, false, err
			}
			return nil, false, errDrop // a bad fragment number: drop it alone
		}
		return frags.add(now, m.MessageID, f)
	}
	// RFC 7296 3.14: after IKE_SA_INIT everything is encrypted.
	return nil, false, errDrop
}

// handleRequest takes a request of the peer's: a new one is processed and
// answered, a retransmission of the previous one answered from the cache
// (RFC 7296 2.1), anything else dropped (2.3).
func (sa *IKESA) handleRequest(now time.Time, m *wire.Message, local, remote netip.AddrPort, out *Output) {
	if sa.initiator && sa.spir == 0 {
		return
	}
	if c := sa.cached; c != nil && m.MessageID == c.msgID && m.Exchange == c.exchange && m.MessageID+1 == sa.peerID {
		sa.retransmitResponse(now, m, local, remote, out)
		return
	}
	if sa.state == StateDead || m.MessageID != sa.peerID || m.Exchange == wire.IKE_SA_INIT {
		sa.log.Debug("dropping unexpected request", msgAttrs(m)...)
		return
	}
	if sa.contested {
		// One of two IKE SAs of a rekey collision (RFC 7296 2.8.2) that
		// does not know yet whether it gets the CHILD_SAs: the peer, which
		// settled first, retransmits once we have (strongSwan keeps such
		// an SA checked out, to the same effect).
		sa.log.Debug("holding back a request until the rekey collision is settled", msgAttrs(m)...)
		return
	}
	payloads, complete, err := sa.open(now, m, &sa.reqFrags)
	switch {
	case errors.Is(err, keys.ErrIntegrity) || errors.Is(err, errDrop):
		// RFC 7296 2.21.2: a message that fails integrity is dropped
		// silently.
		sa.log.Debug("dropping request", append(msgAttrs(m), slog.String("reason", err.Error()))...)
		return
	case err == nil && !complete:
		return
	}
	sa.lastHeard = now
	sa.noteAck(m.MessageID)
	sa.stillUsed(now)
	sa.logExchange("received", m.Header, payloads, 1)
	// RFC 7296 2.11: answer to where the request came from, from where it
	// arrived; 2.23: behind a NAT the peer's address may change.
	if (sa.natLocal || sa.natRemote) && (local != sa.local || remote != sa.remote) {
		sa.local, sa.remote = local, remote
	}

	var resp []wire.Payload
	var after func()
	if err != nil {
		// RFC 7296 3.10.1: INVALID_SYNTAX, in an encrypted response, for an
		// authentic request we cannot parse.
		// A critical payload we do not know gets UNSUPPORTED_CRITICAL_PAYLOAD
		// with its type (RFC 7296 2.5) instead.
		n := &wire.Notify{NotifyType: wire.INVALID_SYNTAX}
		var werr *wire.Error
		if errors.As(err, &werr) && werr.Notify != 0 {
			n = &wire.Notify{NotifyType: werr.Notify, Data: werr.Data}
		}
		nerr := localNotify(n.NotifyType, err, "malformed %v request: %v", m.Exchange, err)
		resp = []wire.Payload{n}
		if sa.state == StateConnecting {
			after = func() { sa.die(now, out, nerr, "", CauseFailed, true) }
		} else {
			sa.log.Warn("malformed request", slog.String("reason", nerr.Error()))
		}
	} else {
		resp, after = sa.answer(now, m, payloads, out)
	}
	if resp == nil && after == nil {
		sa.log.Debug("dropping request", msgAttrs(m)...)
		return
	}
	sa.sendResponse(m, remote, local, resp, out)
	if after != nil {
		after()
	}
}

// answer dispatches a new authentic request to its handler. It returns the
// response payloads and, optionally, what to do once the response is
// queued (such as ending the SA). nil, nil drops the request.
func (sa *IKESA) answer(now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) ([]wire.Payload, func()) {
	switch m.Exchange {
	case wire.IKE_AUTH:
		if sa.initiator || sa.state != StateConnecting {
			return nil, nil
		}
		return sa.answerAuth(now, m, payloads, out)
	case wire.CREATE_CHILD_SA:
		if sa.state != StateEstablished && sa.state != StateRekeying && sa.state != StateDeleting {
			return nil, nil
		}
		return sa.answerCreateChild(now, m, payloads, out), nil
	case wire.INFORMATIONAL:
		if !sa.authenticated {
			return nil, nil
		}
		return sa.answerInformational(now, payloads, out)
	}
	return nil, nil
}

// sendResponse seals, caches and sends our response to the request m.
func (sa *IKESA) sendResponse(m *wire.Message, to, from netip.AddrPort, payloads []wire.Payload, out *Output) {
	h := sa.header(m.Exchange, m.MessageID, true)
	packets, err := sa.seal(h, payloads)
	if err != nil {
		sa.log.Error("cannot build response", slog.String("exchange", m.Exchange.String()), slog.String("reason", err.Error()))
		return
	}
	sa.peerID = m.MessageID + 1
	sa.cached = &response{msgID: m.MessageID, exchange: m.Exchange, packets: packets}
	sa.logExchange("sending", h, payloads, len(packets))
	out.send(from, to, packets)
}

// retransmitResponse answers a retransmitted request from the cache.
func (sa *IKESA) retransmitResponse(now time.Time, m *wire.Message, local, remote netip.AddrPort, out *Output) {
	c := sa.cached
	if m.Exchange == wire.IKE_SA_INIT {
		// Unauthenticated: it must be the very request we answered.
		if !bytes.Equal(m.Raw, c.request) {
			sa.log.Debug("dropping IKE_SA_INIT that differs from the one answered", msgAttrs(m)...)
			return
		}
	} else if !sa.authenticRetransmit(m) {
		return
	}
	sa.stillUsed(now)
	sa.log.Debug("retransmitting response", msgAttrs(m)...)
	out.send(local, remote, c.packets)
}

// authenticRetransmit checks the integrity of a retransmitted request before
// we answer it (its plaintext is not looked at again). RFC 7383 2.6.1: of a
// fragmented request, only fragment 1 triggers the retransmission.
func (sa *IKESA) authenticRetransmit(m *wire.Message) bool {
	if sa.prot == nil || len(m.Payloads) == 0 {
		return false
	}
	switch p := m.Payloads[len(m.Payloads)-1].(type) {
	case *wire.Encrypted:
		_, err := sa.prot.Open(m)
		return !errors.Is(err, keys.ErrIntegrity)
	case *wire.EncryptedFragment:
		if p.Number != 1 {
			return false
		}
		_, err := sa.prot.OpenFragment(m)
		return err == nil
	}
	return false
}

// Reassembly limits (RFC 7383 leaves them to the implementation).
const (
	maxFragments    = 128
	maxReassembled  = 64 << 10
	reassemblyLimit = 30 * time.Second
)

// reassembly collects the fragments of one message (RFC 7383 2.6).
type reassembly struct {
	msgID   uint32
	total   uint16
	frags   []keys.Fragment // by Fragment Number - 1; Total == 0 where missing
	got     int
	size    int
	started time.Time
}

func (r *reassembly) reset() { *r = reassembly{} }

func (r *reassembly) deadline() time.Time {
	if r.total == 0 {
		return time.Time{}
	}
	return r.started.Add(reassemblyLimit)
}

func (r *reassembly) expire(now time.Time) {
	if r.total != 0 && !now.Before(r.deadline()) {
		r.reset()
	}
}

// add stores an authentic fragment of message msgID and, once all are
// there, returns the reassembled payloads.
func (r *reassembly) add(now time.Time, msgID uint32, f keys.Fragment) ([]wire.Payload, bool, error) {
	if f.Total > maxFragments {
		return nil, false, errDrop
	}
	if r.total != 0 && (r.msgID != msgID || f.Total > r.total) {
		// A new message, or RFC 7383 2.6: the sender lowered its
		// fragment size and sends more fragments; start over.
		r.reset()
	}
	if r.total == 0 {
		*r = reassembly{msgID: msgID, total: f.Total, frags: make([]keys.Fragment, f.Total), started: now}
	}
	if f.Total < r.total {
		return nil, false, errDrop // RFC 7383 2.6: from an older, larger-fragment send
	}
	i := int(f.Number) - 1
	if r.frags[i].Total != 0 {
		return nil, false, nil // duplicate
	}
	if r.size+len(f.Plaintext) > maxReassembled {
		r.reset()
		return nil, false, errDrop
	}
	r.frags[i] = f
	r.got++
	r.size += len(f.Plaintext)
	if r.got < int(r.total) {
		return nil, false, nil
	}
	frags := r.frags
	r.reset()
	p, err := keys.ReassembleFragments(frags)
	return p, err == nil, err
}
