package sa

import (
	"encoding/binary"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// deleteIKETask deletes the IKE SA with an INFORMATIONAL carrying a Delete
// payload for it (RFC 7296 1.4.1). Whatever the answer, or none, the SA is
// gone afterwards.
type deleteIKETask struct{}

func (t *deleteIKETask) exchange() wire.ExchangeType { return wire.INFORMATIONAL }
func (t *deleteIKETask) handshake() bool             { return false }

func (t *deleteIKETask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	sa.state = StateDeleting
	for _, c := range sa.children {
		c.state = ChildDeleting
	}
	return []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}, nil
}

func (t *deleteIKETask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	sa.die(now, out, nil, "deleted", false)
	return false, nil
}

func (t *deleteIKETask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	sa.die(now, out, nil, "deleted (peer did not confirm: "+err.Error()+")", false)
}

func (t *deleteIKETask) abort(sa *IKESA, now time.Time, err error, out *Output) {}

// deleteChildTask deletes CHILD_SAs, named by our inbound SPIs, with an
// INFORMATIONAL Delete (RFC 7296 1.4.1). The peer answers with the SPIs of
// its side.
type deleteChildTask struct {
	spis []uint32
}

func (t *deleteChildTask) exchange() wire.ExchangeType { return wire.INFORMATIONAL }
func (t *deleteChildTask) handshake() bool             { return false }

func (t *deleteChildTask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	d := &wire.Delete{Protocol: wire.ProtoESP}
	for _, spi := range t.spis {
		if c := sa.childByInSPI(spi); c != nil {
			c.state = ChildDeleting
		}
		d.SPIs = append(d.SPIs, spiBytes(spi))
	}
	return []wire.Payload{d}, nil
}

func (t *deleteChildTask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	t.finish(sa, "deleted", out)
	return false, nil
}

func (t *deleteChildTask) finish(sa *IKESA, reason string, out *Output) {
	for _, spi := range t.spis {
		if c := sa.childByInSPI(spi); c != nil {
			sa.removeChild(c)
			out.event(ChildDown{Child: c.sa, Reason: reason})
		}
	}
}

func (t *deleteChildTask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	t.finish(sa, "deleted (peer did not confirm)", out)
}

func (t *deleteChildTask) abort(sa *IKESA, now time.Time, err error, out *Output) {}

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
// INFORMATIONAL Delete (RFC 7296 1.4.1), queued behind the exchange in
// flight. The result is a ChildDown event.
func (sa *IKESA) DeleteChild(now time.Time, inSPI uint32) Output {
	var out Output
	if sa.state != StateEstablished || sa.childByInSPI(inSPI) == nil {
		return out
	}
	sa.queue = append(sa.queue, &deleteChildTask{spis: []uint32{inSPI}})
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
			return []wire.Payload{}, func() { sa.die(now, out, nil, "deleted by peer", true) }
		case wire.ProtoESP:
			ours := &wire.Delete{Protocol: d.Protocol}
			for _, b := range d.SPIs {
				if len(b) != 4 {
					continue
				}
				// The peer names its inbound SPIs: our outbound ones. We
				// answer with ours (1.4.1).
				c := sa.childByOutSPI(binary.BigEndian.Uint32(b))
				if c == nil {
					continue
				}
				sa.removeChild(c)
				out.event(ChildDown{Child: c.sa, Reason: "deleted by peer"})
				ours.SPIs = append(ours.SPIs, spiBytes(c.sa.InSPI))
			}
			if len(ours.SPIs) > 0 {
				resp = append(resp, ours)
			}
		}
	}
	if n := s.notify(wire.AUTHENTICATION_FAILED); n != nil && !sa.initiator {
		err := remoteNotify(n, "peer rejected our authentication as %s", sa.localID)
		return []wire.Payload{}, func() { sa.die(now, out, err, "", true) }
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
