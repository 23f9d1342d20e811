package sa

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// IKE SA rekeying (RFC 7296 1.3.2, 2.18) and its collisions (2.8.2,
// 2.25.2). The exchange runs on the old IKE SA: SA (an IKE proposal with
// the new SPI), Ni, KEi / SA, Nr, KEr. Both ends then derive the new IKE
// SA from the old one's SK_d; the initiator of the exchange is the
// "original initiator" of the new IKE SA, message IDs restart at 0, the
// CHILD_SAs move to it, and the initiator deletes the old IKE SA.

// spi64Bytes encodes an IKE SPI for a proposal.
func spi64Bytes(spi uint64) []byte { return binary.BigEndian.AppendUint64(nil, spi) }

// rekeyIKETask rekeys the IKE SA, with one retry after INVALID_KE_PAYLOAD.
type rekeyIKETask struct {
	spi       uint64 // our SPI of the new IKE SA
	ni        []byte
	ke        algs.KeyExchange
	group     wire.KEID
	keRetried bool
}

func (t *rekeyIKETask) exchange() wire.ExchangeType { return wire.CREATE_CHILD_SA }
func (t *rekeyIKETask) handshake() bool             { return false }

func (t *rekeyIKETask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	if sa.deleteRequested || sa.rekeyedTo != nil || sa.peerRekey != nil ||
		(sa.state != StateEstablished && !(sa.state == StateRekeying && t.spi != 0)) {
		return nil, errSkip
	}
	cfg := sa.cfg
	if len(cfg.IKEProposals) == 0 {
		return nil, errorf("connection %q has no IKE proposals", cfg.Name)
	}
	if t.spi == 0 {
		t.spi = sa.newIKESPI()
	}
	if t.group == wire.KE_NONE {
		// The group in use first, as strongSwan does.
		t.group = firstKE(cfg.IKEProposals)
		if g := wire.KEID(sa.suite.KE.ID); offersKE(cfg.IKEProposals, g) {
			t.group = g
		}
	}
	m := algs.LookupKE(t.group)
	if m == nil {
		return nil, errorf("key exchange method %s is not available", keName(t.group))
	}
	ni, err := sa.newNonce()
	if err != nil {
		return nil, err
	}
	if t.ke != nil {
		t.ke.Destroy()
	}
	if t.ke, err = m.Generate(sa.rand); err != nil {
		return nil, errorf("key exchange %s: %v", keName(t.group), err)
	}
	t.ni = ni
	sa.state = StateRekeying
	sa.log.Info("rekeying IKE SA", slog.String("new_spi", spiString(t.spi)))
	return []wire.Payload{
		&wire.SA{Proposals: wireProposals(cfg.IKEProposals, spi64Bytes(t.spi))},
		&wire.Nonce{Data: ni},
		&wire.KE{Group: t.group, Data: t.ke.Public()},
	}, nil
}

func (t *rekeyIKETask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	s := collect(payloads)
	if n := s.notify(wire.INVALID_KE_PAYLOAD); n != nil && s.sa == nil && sa.peerRekey == nil {
		if len(n.Data) == 2 {
			g := wire.KEID(binary.BigEndian.Uint16(n.Data))
			if !t.keRetried && g != t.group && offersKE(sa.cfg.IKEProposals, g) && algs.LookupKE(g) != nil {
				sa.log.Info("peer requested another key exchange method for the IKE SA rekey", slog.String("requested", keName(g)))
				t.keRetried = true
				t.group = g
				return true, nil
			}
		}
	}
	n, err := t.newSA(sa, now, &s)
	t.destroy()
	if err != nil {
		sa.rekeyIKEFailed(now, &s, err, out)
		return false, nil
	}
	n.reportKeys(out)
	sa.concludeIKERekey(now, n, out)
	return false, nil
}

// newSA checks the responder's answer and derives the new IKE SA.
func (t *rekeyIKETask) newSA(sa *IKESA, now time.Time, s *payloadSet) (*IKESA, error) {
	if s.sa == nil {
		if n := s.firstError(); n != nil {
			if n.NotifyType == wire.NO_PROPOSAL_CHOSEN {
				return nil, remoteNotify(n, "peer rejected our proposals %s for the IKE SA rekey", proposalsString(sa.cfg.IKEProposals))
			}
			return nil, remoteNotify(n, "peer refused to rekey the IKE SA")
		}
		return nil, errorf("invalid IKE SA rekey response: no SA payload")
	}
	switch {
	case len(s.sa.Proposals) != 1:
		return nil, errorf("invalid IKE SA rekey response: %d proposals", len(s.sa.Proposals))
	case s.nonce == nil || s.ke == nil:
		return nil, errorf("invalid IKE SA rekey response: Nonce or KE missing")
	}
	p := s.sa.Proposals[0]
	suite, err := algs.Confirm(sa.cfg.IKEProposals, p)
	if err != nil {
		return nil, errorf("invalid IKE SA rekey response: %v", err)
	}
	if suite.Protocol != wire.ProtoIKE || len(p.SPI) != 8 {
		return nil, errorf("invalid IKE SA rekey response: a %v proposal with a %d-octet SPI", suite.Protocol, len(p.SPI))
	}
	if wire.KEID(suite.KE.ID) != t.group || s.ke.Group != t.group {
		return nil, errorf("invalid IKE SA rekey response: key exchange %s in the proposal and %s in KE, we sent %s",
			keName(wire.KEID(suite.KE.ID)), keName(s.ke.Group), keName(t.group))
	}
	secret, err := t.ke.SharedSecret(s.ke.Data)
	if err != nil {
		return nil, errorf("peer's key exchange data in the IKE SA rekey: %v", err)
	}
	spir := binary.BigEndian.Uint64(p.SPI)
	if spir == 0 {
		return nil, errorf("invalid IKE SA rekey response: SPI zero")
	}
	return sa.spawn(now, true, t.spi, spir, suite, t.ni, clone(s.nonce.Data), secret)
}

func (t *rekeyIKETask) destroy() {
	if t.ke != nil {
		t.ke.Destroy()
		t.ke = nil
	}
}

func (t *rekeyIKETask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	t.destroy()
	if sa.state == StateRekeying {
		sa.state = StateEstablished
	}
}

func (t *rekeyIKETask) abort(sa *IKESA, now time.Time, err error, out *Output) {
	t.destroy()
	if sa.state == StateRekeying {
		sa.state = StateEstablished
	}
}

// rekeyIKEFailed handles a rekey the peer refused or answered badly.
func (sa *IKESA) rekeyIKEFailed(now time.Time, s *payloadSet, err error, out *Output) {
	if sa.state == StateRekeying {
		sa.state = StateEstablished
	}
	if p := sa.peerRekey; p != nil && p.state != StateDead {
		// The peer completed its own rekey (an undetected collision, RFC
		// 7296 2.8.2): its IKE SA takes over and it deletes this one.
		sa.peerRekey = nil
		p.contested = false
		sa.counters.IKECollisionsLost++
		sa.log.Info("IKE SA was rekeyed by the peer; our rekey is moot", slog.String("answer", err.Error()))
		sa.handover(now, p, "rekeyed by the peer", out)
		sa.selfDeleteAt = now.Add(sa.replacedWait())
		return
	}
	var nerr *NotifyError
	if errors.As(err, &nerr) && nerr.Remote && nerr.Type == wire.TEMPORARY_FAILURE {
		sa.noteTempFail(now, out)
	}
	if sa.deleteRequested || sa.state != StateEstablished {
		return
	}
	d := sa.retryDelay()
	sa.log.Warn("rekeying the IKE SA failed, retrying later", slog.String("reason", err.Error()), slog.Duration("in", d))
	sa.later(now.Add(d), &rekeyIKETask{})
}

// spawn creates the IKE SA a rekey of this one made (RFC 7296 2.18):
// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the old IKE SA's
// PRF ("Because the rekeying exchange belongs to the old IKE SA, it is the
// old IKE SA's PRF that is used to generate SKEYSEED"), then SK_* with the
// new suite and the new SPIs. initiator: we initiated the rekey, which
// makes us the new SA's original initiator.
func (sa *IKESA) spawn(now time.Time, initiator bool, spii, spir uint64, suite algs.Suite, ni, nr, secret []byte) (*IKESA, error) {
	defer clear(secret)
	prf := suite.PRFAlg()
	if prf == nil {
		return nil, errorf("negotiated suite has no PRF")
	}
	skeyseed := keys.RekeySKEYSEED(sa.prf, sa.keys.SKd, ni, nr, secret)
	defer clear(skeyseed)
	k, err := keys.DeriveIKEKeys(suite, skeyseed, ni, nr, spii, spir)
	if err != nil {
		return nil, errorf("deriving the rekeyed IKE SA's keys: %v", err)
	}
	prot, err := keys.NewProtector(suite, k, initiator)
	if err != nil {
		k.Zero()
		return nil, errorf("rekeyed IKE SA keys: %v", err)
	}
	n := newIKESA(sa.env, sa.cfg, initiator, sa.local, sa.remote)
	n.spii, n.spir = spii, spir
	n.state = StateEstablished
	n.created, n.lastHeard, n.establishedAt = now, now, now
	n.natLocal, n.natRemote = sa.natLocal, sa.natRemote
	n.suite, n.prf, n.keys, n.prot = suite, prf, k, prot
	n.ni, n.nr = ni, nr
	n.rekeyNi, n.rekeyNr = ni, nr
	n.peerFrag, n.peerHashes = sa.peerFrag, sa.peerHashes
	n.localID, n.remoteID, n.authenticated = sa.localID, sa.remoteID, true
	n.rekeyAt = n.softLifetime(now, n.cfg.RekeyTime, n.cfg.RandTime, 0)
	n.setLogger()
	return n, nil
}

// concludeIKERekey takes n, the IKE SA our rekey created, and settles a
// collision with the peer's rekey (RFC 7296 2.8.2).
func (sa *IKESA) concludeIKERekey(now time.Time, n *IKESA, out *Output) {
	if p := sa.peerRekey; p != nil {
		sa.peerRekey = nil
		p.contested = false
		// A peer's IKE SA that is gone already lost in the peer's eyes.
		if p.state != StateDead && bytes.Compare(lowerNonce(n.rekeyNi, n.rekeyNr), lowerNonce(p.rekeyNi, p.rekeyNr)) < 0 {
			// Ours has the lowest nonce: redundant, and ours to delete. The
			// peer's IKE SA takes over; the peer deletes this one.
			sa.counters.IKECollisionsLost++
			sa.log.Info("IKE SA rekey collision lost, deleting the redundant IKE SA",
				slog.String("redundant_spi_i", spiString(n.spii)), slog.String("redundant_spi_r", spiString(n.spir)))
			sa.handover(now, p, "the peer's rekey won the collision", out)
			sa.selfDeleteAt = now.Add(sa.replacedWait())
			out.event(IKEAdded{SA: n})
			n.redundant = true
			n.requestDelete(now, "redundant after a rekey collision", CauseRedundant, out)
			return
		}
		sa.counters.IKECollisionsWon++
		sa.log.Info("IKE SA rekey collision won, waiting for the peer to delete its redundant IKE SA",
			slog.String("redundant_spi_i", spiString(p.spii)), slog.String("redundant_spi_r", spiString(p.spir)))
		p.redundant = true
		p.selfDeleteAt = now.Add(redundantTimeout)
	}
	sa.handover(now, n, "rekeyed", out)
	// RFC 7296 1.3.2: the initiator of the surviving rekey deletes the old
	// IKE SA.
	sa.queue = append([]task{&deleteIKETask{reason: "rekeyed", cause: CauseRekeyed}}, sa.queue...)
}

// handover makes n the IKE SA of our CHILD_SAs (IKERekeyed): they move to
// it with the work queued for them, and this SA only waits for its
// deletion.
func (sa *IKESA) handover(now time.Time, n *IKESA, why string, out *Output) {
	if n.initiator {
		sa.counters.IKERekeysInitiated++
	} else {
		sa.counters.IKERekeysResponded++
	}
	for _, c := range sa.children {
		// Nothing of this IKE SA's is in flight at the peer (RFC 7296
		// 2.25.2): it holds every answer we sent.
		c.acked = true
	}
	n.children = append(n.children, sa.children...)
	sa.children = nil
	stays := func(t task) bool {
		switch t.(type) {
		case *deleteIKETask, *rekeyIKETask, *livenessTask:
			return true
		}
		return false
	}
	keep := sa.queue[:0]
	for _, t := range sa.queue {
		if stays(t) {
			keep = append(keep, t)
		} else {
			n.queue = append(n.queue, t)
		}
	}
	clear(sa.queue[len(keep):])
	sa.queue = keep
	for _, d := range sa.delayed {
		if !stays(d.t) {
			n.delayed = append(n.delayed, d)
		}
	}
	sa.delayed = nil
	if sa.deleteRequested {
		n.requestDelete(now, "deleted", CauseLocal, out)
	}
	n.kickAt = now
	sa.rekeyedTo = n
	sa.state = StateDeleting
	sa.rekeyAt = time.Time{}
	sa.log.Info("IKE SA rekeyed", slog.String("new_spi_i", spiString(n.spii)), slog.String("new_spi_r", spiString(n.spir)),
		slog.String("reason", why), slog.Int("children", len(n.children)))
	out.event(IKERekeyed{New: n})
}

// childBusy reports whether one of our CHILD_SA exchanges is in flight
// (RFC 7296 2.25.2: then a rekey of the IKE SA is answered with
// TEMPORARY_FAILURE).
func (sa *IKESA) childBusy() bool {
	switch sa.activeTask().(type) {
	case *createChildTask, *rekeyChildTask, *deleteChildTask:
		return true
	}
	return false
}

// answerRekeyIKE is the responder's side of an IKE SA rekey (RFC 7296
// 1.3.2) and of its collisions (2.25.2).
func (sa *IKESA) answerRekeyIKE(now time.Time, s *payloadSet, out *Output) []wire.Payload {
	tempFail := func(why string) []wire.Payload {
		sa.log.Info("declining the IKE SA rekey", slog.String("reason", why))
		return []wire.Payload{&wire.Notify{NotifyType: wire.TEMPORARY_FAILURE}}
	}
	switch {
	case sa.state == StateDeleting || sa.deleteRequested:
		// RFC 7296 2.25.2: "If a peer receives a request to rekey an IKE
		// SA that it is currently trying to close, it SHOULD reply with
		// TEMPORARY_FAILURE."
		return tempFail("we are deleting it")
	case sa.rekeyedTo != nil || sa.peerRekey != nil:
		return tempFail("it was rekeyed already")
	case sa.childBusy():
		// RFC 7296 2.25.2: "... currently creating, rekeying, or closing a
		// Child SA of that IKE SA, it SHOULD reply with TEMPORARY_FAILURE."
		return tempFail("a CHILD_SA exchange of ours is in flight")
	case s.nonce == nil || s.ke == nil:
		return []wire.Payload{&wire.Notify{NotifyType: wire.INVALID_SYNTAX}}
	}
	suite, chosen, err := algs.Select(sa.cfg.IKEProposals, s.sa.Proposals, s.ke.Group)
	if err != nil {
		theirs := ""
		var npe *algs.NoProposalError
		if errors.As(err, &npe) {
			theirs = npe.Theirs
		}
		sa.log.Warn("declining the IKE SA rekey", slog.String("reason",
			"no proposal chosen: we offered "+proposalsString(sa.cfg.IKEProposals)+", peer offered "+theirs))
		return []wire.Payload{&wire.Notify{NotifyType: wire.NO_PROPOSAL_CHOSEN}}
	}
	if len(chosen.SPI) != 8 || binary.BigEndian.Uint64(chosen.SPI) == 0 {
		return []wire.Payload{&wire.Notify{NotifyType: wire.INVALID_SYNTAX}}
	}
	if g := wire.KEID(suite.KE.ID); g != s.ke.Group {
		// RFC 7296 1.3.2 (via 1.3): name the group we want; the peer
		// retries.
		sa.log.Info("requesting another key exchange method for the IKE SA rekey", slog.String("requested", keName(g)))
		return []wire.Payload{&wire.Notify{NotifyType: wire.INVALID_KE_PAYLOAD, Data: binary.BigEndian.AppendUint16(nil, uint16(g))}}
	}
	pub, secret, err := suite.KEMethod().Respond(sa.rand, s.ke.Data)
	if err != nil {
		sa.log.Info("invalid key exchange data in the IKE SA rekey", slog.String("reason", err.Error()))
		return []wire.Payload{&wire.Notify{NotifyType: wire.INVALID_SYNTAX}}
	}
	nr, err := sa.newNonce()
	if err != nil {
		clear(secret)
		return []wire.Payload{&wire.Notify{NotifyType: wire.TEMPORARY_FAILURE}}
	}
	spir := sa.newIKESPI()
	p, err := sa.spawn(now, false, binary.BigEndian.Uint64(chosen.SPI), spir, suite, clone(s.nonce.Data), nr, secret)
	if err != nil {
		sa.log.Warn("declining the IKE SA rekey", slog.String("reason", err.Error()))
		return []wire.Payload{&wire.Notify{NotifyType: wire.NO_PROPOSAL_CHOSEN}}
	}
	p.reportKeys(out)
	resp := []wire.Payload{
		&wire.SA{Proposals: []wire.Proposal{suite.Wire(chosen.Num, spi64Bytes(spir))}},
		&wire.Nonce{Data: nr},
		&wire.KE{Group: s.ke.Group, Data: pub},
	}
	if sa.state == StateRekeying {
		// RFC 7296 2.25.2: "If a peer receives a request to rekey an IKE
		// SA that it is currently rekeying, it SHOULD reply as usual, and
		// SHOULD prepare to close redundant SAs and move inherited Child
		// SAs later based on the nonces."
		sa.log.Info("IKE SA rekey collision", slog.String("peer_spi_i", spiString(p.spii)), slog.String("peer_spi_r", spiString(p.spir)))
		sa.peerRekey = p
		p.contested = true
		out.event(IKEAdded{SA: p})
		return resp
	}
	sa.handover(now, p, "rekeyed by the peer", out)
	// RFC 7296 1.3.2: the peer deletes this IKE SA; in case it does not:
	sa.selfDeleteAt = now.Add(sa.replacedWait())
	return resp
}
