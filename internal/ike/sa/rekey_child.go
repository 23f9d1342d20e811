package sa

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// CHILD_SA rekeying (RFC 7296 1.3.3, 2.8) and its collisions (2.8.1,
// 2.25.1), make-before-break:
//
//   - The initiator of the rekey installs the new SA and switches its
//     outbound traffic to it when the response arrives (ChildUp with
//     Replaces), then deletes the old SA; the old inbound SA lives until
//     that exchange completes.
//   - The responder installs the new SA with its outbound half deferred
//     (ChildUp.OutboundDeferred): the initiator may not hold it before our
//     answer arrives. It switches (ChildOutbound) when the initiator's
//     Delete of the old SA arrives, or after RekeyOutboundTimeout once the
//     peer evidently has our answer.
//   - When both ends rekey the same SA at once, both answer the other's
//     request as usual and, once their own response arrives, compare the
//     four nonces: the new SA created with the lowest nonce is deleted by
//     the end that created it, and the end that created the other one
//     deletes the old SA. Both ends reach the same verdict.

// lowerNonce is the lower of an exchange's two nonces, compared octet by
// octet, a prefix being lower (RFC 7296 2.8.1).
func lowerNonce(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// rekeyChildTask rekeys a CHILD_SA: CREATE_CHILD_SA with N(REKEY_SA) naming
// the SPI we receive it with, SA (new SPI), Ni, [KEi,] TSi, TSr with the
// old SA's selectors and mode (RFC 7296 1.3.3, 2.8: "SHOULD NOT have
// different Traffic Selectors and algorithms").
type rekeyChildTask struct {
	old       *child
	offer     *childOffer
	keRetried bool
}

func (t *rekeyChildTask) exchange() wire.ExchangeType { return wire.CREATE_CHILD_SA }
func (t *rekeyChildTask) handshake() bool             { return false }

func (t *rekeyChildTask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	o := t.old
	if !sa.rekeyable(o) {
		return nil, errSkip // deleted, or rekeyed by the peer meanwhile
	}
	if t.offer == nil {
		off, err := sa.newRekeyOffer(o)
		if err != nil {
			return nil, err
		}
		t.offer = off
	}
	off := t.offer
	ni, ke, err := sa.freshenOffer(off)
	if err != nil {
		return nil, err
	}
	o.rekeying = t
	sa.log.Info("rekeying CHILD_SA", slog.String("child", o.sa.Name), slog.String("spi_in", spi32String(o.sa.InSPI)),
		slog.String("spi_out", spi32String(o.sa.OutSPI)))
	// RFC 7296 1.3.3: the REKEY_SA notify names the SA being rekeyed by the
	// SPI we expect inbound on it.
	ps := []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: spiBytes(o.sa.InSPI), NotifyType: wire.REKEY_SA}}
	return append(ps, off.payloads(ni, ke)...), nil
}

// newRekeyOffer prepares the offer that replaces o: a new inbound SPI, its
// configuration's proposals (with a key exchange: PFS, the old SA's group
// first) and the old SA's selectors and mode.
func (sa *IKESA) newRekeyOffer(o *child) (*childOffer, error) {
	if len(o.cfg.Proposals) == 0 {
		return nil, errorf("child %q has no ESP proposals", o.cfg.Name)
	}
	spi, err := sa.newChildSPI()
	if err != nil {
		return nil, err
	}
	off := &childOffer{
		cfg:       o.cfg,
		spi:       spi,
		proposals: o.cfg.Proposals,
		tsi:       slices.Clone(o.sa.LocalTS),
		tsr:       slices.Clone(o.sa.RemoteTS),
		mode:      o.sa.Mode,
		group:     firstKE(o.cfg.Proposals),
	}
	if g := wire.KEID(o.sa.Suite.KE.ID); g != wire.KE_NONE && offersKE(off.proposals, g) {
		off.group = g
	}
	return off, nil
}

func (t *rekeyChildTask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	o, off := t.old, t.offer
	o.rekeying = nil
	s := collect(payloads)
	if n := s.notify(wire.INVALID_KE_PAYLOAD); n != nil && s.sa == nil {
		if len(n.Data) != 2 {
			return false, remoteNotify(n, "peer sent INVALID_KE_PAYLOAD with %d octets of data", len(n.Data))
		}
		g := wire.KEID(binary.BigEndian.Uint16(n.Data))
		if t.keRetried || g == off.group || !offersKE(off.proposals, g) || algs.LookupKE(g) == nil {
			return false, remoteNotify(n, "peer requested key exchange %s for the rekey of CHILD_SA %s, which we did not offer (we offered %s)",
				keName(g), o.cfg.Name, proposalsString(off.proposals))
		}
		t.keRetried = true
		off.group = g
		return true, nil // build checks that the SA is still ours to rekey
	}
	if s.sa == nil {
		sa.rekeyChildRefused(now, t, &s, out)
		return false, nil
	}
	if s.nonce == nil {
		return false, errorf("rekey of CHILD_SA %s: peer's answer has no nonce", o.cfg.Name)
	}
	nr := s.nonce.Data
	cs, err := sa.acceptChild(now, off, &s, off.ni, nr, nil)
	if err != nil {
		// The peer holds a new SA we cannot use: delete it there, keep the
		// old one and try again later.
		sa.queueOrphanDelete(off.spi)
		return false, err
	}
	t.offer = nil
	off.destroy()
	sa.tempFailSince = time.Time{}
	n := sa.newChild(cs, o.cfg, o.lin)
	n.ni, n.nr = off.ni, clone(nr)
	sa.concludeChildRekey(now, o, n, out)
	return false, nil
}

// concludeChildRekey installs n, the SA our rekey of o created, and settles
// a collision with the peer's rekey of o (RFC 7296 2.8.1).
func (sa *IKESA) concludeChildRekey(now time.Time, o, n *child, out *Output) {
	present := sa.hasChild(o)
	if p := o.peerNew; p != nil {
		p.contested = false
		if bytes.Compare(lowerNonce(n.ni, n.nr), lowerNonce(p.ni, p.nr)) < 0 {
			// We created the SA with the lowest nonce: it is redundant and
			// ours to delete. The peer's SA replaces o; the peer deletes o.
			sa.counters.ChildCollisionsLost++
			sa.log.Info("CHILD_SA rekey collision lost, deleting the redundant SA", slog.String("child", n.sa.Name),
				slog.String("spi_in", spi32String(n.sa.InSPI)))
			n.redundant = true
			var rep *child
			if present {
				rep = o
				o.successor = p
			}
			sa.install(n, rep, true, out)
			sa.queueDelete(n, CauseRedundant)
			if sa.hasChild(p) && p.pendingOut {
				p.outboundAt = now.Add(sa.outboundTimeout())
			}
			return
		}
		sa.counters.ChildCollisionsWon++
		sa.log.Info("CHILD_SA rekey collision won, waiting for the peer to delete its redundant SA",
			slog.String("child", n.sa.Name), slog.String("redundant_spi_in", spi32String(p.sa.InSPI)))
		p.redundant = true
		p.outboundAt = time.Time{}
	}
	rep := o
	if !present {
		// The peer deleted o meanwhile; replace whatever carries the
		// child's traffic now, if anything.
		rep = o.lin.outbound
	}
	sa.install(n, rep, false, out)
	if present {
		o.successor = n
		sa.queueDelete(o, CauseRekeyed) // RFC 7296 1.3.3: "delete the replaced SA"
	}
}

// rekeyChildRefused handles an answer without an SA: RFC 7296 2.25's
// TEMPORARY_FAILURE and CHILD_SA_NOT_FOUND, or another error.
func (sa *IKESA) rekeyChildRefused(now time.Time, t *rekeyChildTask, s *payloadSet, out *Output) {
	o := t.old
	n := s.firstError()
	var err error
	if n != nil {
		err = remoteNotify(n, "peer refused to rekey CHILD_SA %s (SPI %08x)", o.cfg.Name, o.sa.InSPI)
	} else {
		err = errorf("rekey of CHILD_SA %s: peer's answer has no SA", o.cfg.Name)
	}
	p := o.peerNew
	superseded := p != nil && !p.redundant
	present := sa.hasChild(o)
	tempFail := n != nil && n.NotifyType == wire.TEMPORARY_FAILURE
	if tempFail {
		sa.noteTempFail(now, out)
	}
	switch {
	case superseded:
		// The peer rekeyed o before our request reached it (an undetected
		// collision): its SA replaces o, and it deletes o.
		sa.counters.ChildCollisionsLost++
		sa.log.Info("CHILD_SA was rekeyed by the peer; our rekey is moot", slog.String("child", o.cfg.Name),
			slog.String("answer", errText(err)))
		p.contested = false
		if present {
			o.successor = p
		}
		if sa.hasChild(p) && p.pendingOut {
			p.outboundAt = now.Add(sa.outboundTimeout())
		}
		sa.releaseOffer(t, err, out)
	case !present || o.deleting:
		// Deleted meanwhile (by the peer, 2.25.1, or by us).
		sa.releaseOffer(t, err, out)
	case n != nil && n.NotifyType == wire.CHILD_SA_NOT_FOUND:
		// RFC 7296 2.25: "SHOULD silently delete the Child SA ... and send
		// a request to create a new Child SA from scratch".
		sa.log.Warn("peer does not know the CHILD_SA we rekey; creating it anew", slog.String("child", o.cfg.Name),
			slog.String("spi_in", spi32String(o.sa.InSPI)))
		sa.releaseOffer(t, err, out)
		sa.dropChild(o, "the peer does not know it", CauseFailed, out)
		sa.queue = append(sa.queue, &createChildTask{cfg: o.cfg})
	case tempFail && !sa.deleteRequested:
		d := sa.retryDelay()
		sa.log.Info("peer answered TEMPORARY_FAILURE, retrying the rekey", slog.String("child", o.cfg.Name), slog.Duration("in", d))
		sa.later(now.Add(d), t) // same SPI and proposals
	default:
		sa.log.Warn("rekeying CHILD_SA failed, retrying later", slog.String("child", o.cfg.Name), slog.String("reason", errText(err)))
		sa.releaseOffer(t, err, out)
		if !sa.deleteRequested {
			sa.later(now.Add(sa.retryDelay()), &rekeyChildTask{old: o})
		}
	}
}

// releaseOffer ends t's offer: its inbound SPI goes back to the data plane
// (ChildFailed with Rekeying set; the old SA stays as it is).
func (sa *IKESA) releaseOffer(t *rekeyChildTask, err error, out *Output) {
	if t.offer == nil {
		return
	}
	off := t.offer
	t.offer = nil
	off.destroy()
	out.event(ChildFailed{Name: off.cfg.Name, Err: err, SPI: off.spi, Rekeying: t.old.sa})
}

func (t *rekeyChildTask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	t.old.rekeying = nil
	sa.log.Warn("rekeying CHILD_SA failed", slog.String("child", t.old.cfg.Name), slog.String("reason", err.Error()))
	sa.releaseOffer(t, err, out)
	if sa.state == StateEstablished && !sa.deleteRequested && sa.rekeyable(t.old) {
		sa.later(now.Add(sa.retryDelay()), &rekeyChildTask{old: t.old})
	}
}

func (t *rekeyChildTask) abort(sa *IKESA, now time.Time, err error, out *Output) {
	if t.old.rekeying == t {
		t.old.rekeying = nil
	}
	sa.releaseOffer(t, errorf("rekey of CHILD_SA %s abandoned: %v", t.old.cfg.Name, err), out)
}

// answerRekeyChild is the responder's side of a CHILD_SA rekey (RFC 7296
// 1.3.3) and of its collisions (2.25.1).
func (sa *IKESA) answerRekeyChild(now time.Time, m *wire.Message, s *payloadSet, n *wire.Notify, out *Output) []wire.Payload {
	var o *child
	if n.Protocol == wire.ProtoESP && len(n.SPI) == 4 {
		o = sa.childByOutSPI(binary.BigEndian.Uint32(n.SPI))
	}
	if o == nil {
		// RFC 7296 2.25: CHILD_SA_NOT_FOUND with the SPI of the REKEY_SA.
		sa.log.Info("peer rekeys a CHILD_SA we do not have", slog.String("spi", spiHex(n.SPI)))
		return []wire.Payload{&wire.Notify{Protocol: n.Protocol, SPI: n.SPI, NotifyType: wire.CHILD_SA_NOT_FOUND}}
	}
	if o.deleting || o.redundant || o.successor != nil || o.peerNew != nil || o.pendingOut {
		// RFC 7296 2.25.1: "If a peer receives a request to rekey a Child
		// SA that it is currently trying to close, it SHOULD reply with
		// TEMPORARY_FAILURE." So for one already replaced.
		sa.log.Info("declining the rekey of a CHILD_SA we are deleting or have replaced", slog.String("child", o.cfg.Name),
			slog.String("spi_in", spi32String(o.sa.InSPI)))
		return []wire.Payload{&wire.Notify{NotifyType: wire.TEMPORARY_FAILURE}}
	}
	resp, p := sa.negotiateChild(now, s, false, o.cfg, o, out)
	if p == nil {
		return resp
	}
	p.respMsgID = m.MessageID
	p.byPeer = true
	o.peerNew = p
	if o.rekeying == nil {
		// No collision: p replaces o; the peer deletes o.
		o.successor = p
		p.outboundAt = now.Add(sa.outboundTimeout())
	} else {
		// RFC 7296 2.25.1: "If a peer receives a request to rekey a Child
		// SA that it is currently rekeying, it SHOULD reply as usual, and
		// SHOULD prepare to close redundant SAs later based on the
		// nonces": decided when our response arrives.
		p.contested = true
		sa.log.Info("CHILD_SA rekey collision", slog.String("child", o.cfg.Name), slog.String("spi_in", spi32String(o.sa.InSPI)))
	}
	sa.install(p, o, true, out)
	return resp
}

func spiHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
