package sa

import (
	"encoding/binary"
	"log/slog"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// deleteIKETask deletes the IKE SA with an INFORMATIONAL carrying a Delete
// payload for it (RFC 7296 1.4.1). Whatever the answer, or none, the SA is
// gone afterwards.
type deleteIKETask struct {
	reason string
	cause  Cause // a replaced or redundant IKE SA's Delete is bounded (selfDeleteGiveUp)
}

func (t *deleteIKETask) exchange() wire.ExchangeType { return wire.INFORMATIONAL }
func (t *deleteIKETask) handshake() bool             { return false }

func (t *deleteIKETask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	sa.state = StateDeleting
	return []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}, nil
}

func (t *deleteIKETask) why() (string, Cause) {
	if t.reason == "" {
		return "deleted", CauseLocal
	}
	return t.reason, t.cause
}

func (t *deleteIKETask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	reason, cause := t.why()
	sa.die(now, out, nil, reason, cause, false)
	return false, nil
}

func (t *deleteIKETask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	reason, cause := t.why()
	sa.die(now, out, nil, reason+" (peer did not confirm: "+err.Error()+")", cause, false)
}

func (t *deleteIKETask) abort(sa *IKESA, now time.Time, err error, out *Output) {}

// deleteChildTask deletes CHILD_SAs, named by our inbound SPIs, with one
// INFORMATIONAL Delete payload (RFC 7296 1.4.1). The peer answers with the
// SPIs of its side. orphans are inbound SPIs of SAs we no longer hold (the
// peer created them, we could not use them): only the peer has them.
type deleteChildTask struct {
	spis    []uint32
	orphans []uint32
	sent    []uint32 // spis of the SAs the request named
}

func (t *deleteChildTask) exchange() wire.ExchangeType { return wire.INFORMATIONAL }
func (t *deleteChildTask) handshake() bool             { return false }

func (t *deleteChildTask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	d := &wire.Delete{Protocol: wire.ProtoESP}
	t.sent = t.sent[:0]
	for _, spi := range t.spis {
		if c := sa.childByInSPI(spi); c != nil && c.deleting {
			t.sent = append(t.sent, spi)
			d.SPIs = append(d.SPIs, spiBytes(spi))
		}
	}
	for _, spi := range t.orphans {
		d.SPIs = append(d.SPIs, spiBytes(spi))
	}
	if len(d.SPIs) == 0 {
		return nil, errSkip // the peer deleted them meanwhile
	}
	return []wire.Payload{d}, nil
}

func (t *deleteChildTask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	t.finish(sa, "", out)
	return false, nil
}

func (t *deleteChildTask) finish(sa *IKESA, note string, out *Output) {
	for _, spi := range t.sent {
		if c := sa.childByInSPI(spi); c != nil {
			cause, reason := c.downCause(false)
			sa.dropChild(c, reason+note, cause, out)
		}
	}
}

func (t *deleteChildTask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	t.finish(sa, " (peer did not confirm)", out)
}

func (t *deleteChildTask) abort(sa *IKESA, now time.Time, err error, out *Output) {
	for _, spi := range t.spis {
		if c := sa.childByInSPI(spi); c != nil {
			c.deleting = false
		}
	}
}

// livenessTask is an empty INFORMATIONAL: the peer must answer (RFC 7296
// 2.4). If it never does, the retransmission schedule ends the IKE SA.
type livenessTask struct{}

func (t *livenessTask) exchange() wire.ExchangeType { return wire.INFORMATIONAL }
func (t *livenessTask) handshake() bool             { return false }
func (t *livenessTask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	return nil, nil
}
func (t *livenessTask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	return false, nil
}
func (t *livenessTask) fail(sa *IKESA, now time.Time, err error, out *Output)  {}
func (t *livenessTask) abort(sa *IKESA, now time.Time, err error, out *Output) {}

// DeleteChild deletes the CHILD_SA with inbound SPI inSPI with an
// INFORMATIONAL Delete (RFC 7296 1.4.1), queued ahead of other work not
// started yet. The result is a ChildDown event.
func (sa *IKESA) DeleteChild(now time.Time, inSPI uint32) Output {
	var out Output
	c := sa.childByInSPI(inSPI)
	if (sa.state != StateEstablished && sa.state != StateRekeying) || c == nil {
		return out
	}
	sa.queueDelete(c, CauseLocal)
	sa.step(now, &out)
	return out
}

// Liveness queues an empty INFORMATIONAL (a liveness check, RFC 7296 2.4)
// unless an exchange is already pending; an unanswered check fails the IKE
// SA after the retransmission schedule.
func (sa *IKESA) Liveness(now time.Time) Output {
	var out Output
	if sa.state != StateEstablished || sa.active != nil || len(sa.queue) > 0 {
		return out
	}
	sa.queue = append(sa.queue, &livenessTask{})
	sa.step(now, &out)
	return out
}

// answerInformational is the responder's INFORMATIONAL (RFC 7296 1.4):
// Delete payloads for the IKE SA or CHILD_SAs, the AUTHENTICATION_FAILED
// an initiator sends after rejecting our AUTH (2.21.2), or nothing
// (liveness). The response is never nil, so that it is always sent.
func (sa *IKESA) answerInformational(now time.Time, payloads []wire.Payload, out *Output) ([]wire.Payload, func()) {
	s := collect(payloads)
	resp := []wire.Payload{}
	for _, d := range s.deletes {
		switch d.Protocol {
		case wire.ProtoIKE:
			// RFC 7296 1.4.1: answer with an empty INFORMATIONAL; the IKE
			// SA and its CHILD_SAs are gone.
			if p := sa.peerRekey; p != nil && p.state != StateDead {
				// The peer finished its rekey of this IKE SA without seeing
				// ours (RFC 7296 2.8.2): its new IKE SA takes over.
				sa.peerRekey = nil
				p.contested = false
				sa.counters.IKECollisionsLost++
				sa.handover(now, p, "the peer deleted the old IKE SA", out)
			}
			reason, cause := "deleted by peer", CausePeer
			switch {
			case sa.rekeyedTo != nil:
				reason, cause = "rekeyed", CauseRekeyed
			case sa.redundant, sa.contested:
				// A contested IKE SA the peer deletes lost the collision in
				// the peer's eyes.
				reason, cause = "redundant after a rekey collision", CauseRedundant
			}
			return []wire.Payload{}, func() { sa.die(now, out, nil, reason, cause, true) }
		case wire.ProtoESP:
			ours := &wire.Delete{Protocol: d.Protocol}
			for _, b := range d.SPIs {
				if len(b) != 4 {
					continue
				}
				// The peer names its inbound SPIs: our outbound ones. We
				// answer with ours (1.4.1). SPIs we do not know are ignored.
				c := sa.childByOutSPI(binary.BigEndian.Uint32(b))
				if c == nil {
					sa.log.Debug("peer deleted an unknown CHILD_SA", slog.String("spi", spi32String(binary.BigEndian.Uint32(b))))
					continue
				}
				if c.deleting {
					// RFC 7296 1.4.1: our deletes crossed; the response
					// MUST NOT name the SA again.
					sa.unqueueDelete(c.sa.InSPI)
				} else {
					ours.SPIs = append(ours.SPIs, spiBytes(c.sa.InSPI))
				}
				cause, reason := c.downCause(true)
				sa.dropChild(c, reason, cause, out)
			}
			if len(ours.SPIs) > 0 {
				resp = append(resp, ours)
			}
		}
	}
	if n := s.notify(wire.AUTHENTICATION_FAILED); n != nil && !sa.initiator {
		err := remoteNotify(n, "peer rejected our authentication as %s", sa.localID)
		return []wire.Payload{}, func() { sa.die(now, out, err, "", CauseFailed, true) }
	}
	return resp, nil
}

// Heard tells the SA that authentic traffic from the peer arrived outside
// IKE, such as inbound ESP on one of its CHILD_SAs: the next liveness check
// is postponed (RFC 7296 2.4: a check is due only when nothing has been
// heard from the peer).
func (sa *IKESA) Heard(now time.Time) {
	if now.After(sa.lastHeard) {
		sa.lastHeard = now
	}
}
