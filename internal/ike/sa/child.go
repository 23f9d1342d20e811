package sa

import (
	"cmp"
	"encoding/binary"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// childOffer is our side of a CHILD_SA negotiation as initiator of the
// exchange: in IKE_AUTH (RFC 7296 1.2) or CREATE_CHILD_SA (1.3.1).
type childOffer struct {
	cfg       *ChildConfig
	spi       uint32          // our inbound SPI
	proposals []algs.Proposal // as offered
	tsi, tsr  []wire.TrafficSelector
	mode      Mode
	// CREATE_CHILD_SA only.
	ni    []byte
	ke    algs.KeyExchange // PFS
	group wire.KEID
}

// newChildOffer prepares the offer for child configuration cfg: an inbound
// SPI, the proposals (without key exchange in IKE_AUTH, whose CHILD_SA
// takes its keys from the IKE SA, RFC 7296 1.2) and the traffic selectors
// with "dynamic" resolved to the IKE addresses.
func (sa *IKESA) newChildOffer(cfg *ChildConfig, inAuth bool) (*childOffer, error) {
	if len(cfg.Proposals) == 0 {
		return nil, errorf("child %q has no ESP proposals", cfg.Name)
	}
	spi, err := sa.newChildSPI()
	if err != nil {
		return nil, err
	}
	props := cfg.Proposals
	if inAuth {
		props = withoutKE(props)
	}
	return &childOffer{
		cfg:       cfg,
		spi:       spi,
		proposals: props,
		tsi:       resolveTS(cfg.LocalTS, sa.local.Addr()),
		tsr:       resolveTS(cfg.RemoteTS, sa.remote.Addr()),
		mode:      cfg.Mode,
	}, nil
}

func withoutKE(ps []algs.Proposal) []algs.Proposal {
	out := make([]algs.Proposal, len(ps))
	for i, p := range ps {
		out[i] = p.WithoutKE()
	}
	return out
}

// newChildSPI returns a fresh inbound ESP SPI from the data plane.
func (sa *IKESA) newChildSPI() (uint32, error) {
	if sa.env.NewChildSPI != nil {
		spi, err := sa.env.NewChildSPI()
		if err != nil {
			return 0, errorf("allocating an SPI: %v", err)
		}
		return spi, nil
	}
	// No data plane: a random SPI outside the reserved 0-255 (RFC 4303 2.1).
	var b [4]byte
	for {
		if _, err := io.ReadFull(sa.rand, b[:]); err != nil {
			return 0, errorf("allocating an SPI: %v", err)
		}
		if spi := binary.BigEndian.Uint32(b[:]); spi > 255 {
			return spi, nil
		}
	}
}

func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

// payloads returns the request's CHILD_SA payloads: [N(USE_TRANSPORT_MODE)],
// SA, [Ni, [KE]], TSi, TSr (RFC 7296 1.3.1, 2.17).
func (o *childOffer) payloads(ni []byte, ke *wire.KE) []wire.Payload {
	var ps []wire.Payload
	if o.mode == ModeTransport {
		ps = append(ps, &wire.Notify{NotifyType: wire.USE_TRANSPORT_MODE})
	}
	ps = append(ps, &wire.SA{Proposals: wireProposals(o.proposals, spiBytes(o.spi))})
	if ni != nil {
		ps = append(ps, &wire.Nonce{Data: ni})
	}
	if ke != nil {
		ps = append(ps, ke)
	}
	return append(ps,
		&wire.TS{Kind: wire.PayloadTSi, Selectors: o.tsi},
		&wire.TS{Kind: wire.PayloadTSr, Selectors: o.tsr},
	)
}

// completeChild takes the responder's answer to offer o and reports the
// CHILD_SA (ChildUp) or why it failed (ChildFailed). A CHILD_SA the peer
// created but we cannot accept is deleted (RFC 7296 1.3.1: e.g. transport
// mode declined).
func (sa *IKESA) completeChild(now time.Time, o *childOffer, s *payloadSet, ni, nr []byte, secrets [][]byte, out *Output) {
	cs, err := sa.acceptChild(now, o, s, ni, nr, secrets)
	if err != nil {
		sa.log.Warn("CHILD_SA failed", slog.String("child", o.cfg.Name), slog.String("reason", err.Error()))
		out.event(ChildFailed{Name: o.cfg.Name, Err: err, SPI: o.spi})
		if s.sa != nil && len(s.sa.Proposals) > 0 {
			sa.queueOrphanDelete(o.spi)
		}
		return
	}
	c := sa.newChild(cs, o.cfg, nil)
	if o.ni != nil {
		c.ni, c.nr = ni, clone(nr)
	}
	sa.install(c, nil, false, out)
}

// acceptChild checks the responder's answer against our offer.
func (sa *IKESA) acceptChild(now time.Time, o *childOffer, s *payloadSet, ni, nr []byte, secrets [][]byte) (*ChildSA, error) {
	if s.sa == nil || s.tsi == nil || s.tsr == nil {
		if n := s.firstError(); n != nil {
			switch n.NotifyType {
			case wire.NO_PROPOSAL_CHOSEN:
				return nil, remoteNotify(n, "peer rejected our ESP proposals %s for CHILD_SA %s", proposalsString(o.proposals), o.cfg.Name)
			case wire.TS_UNACCEPTABLE:
				return nil, remoteNotify(n, "peer rejected our traffic selectors %s === %s for CHILD_SA %s",
					tsListString(o.tsi), tsListString(o.tsr), o.cfg.Name)
			}
			return nil, remoteNotify(n, "peer rejected CHILD_SA %s", o.cfg.Name)
		}
		return nil, errorf("CHILD_SA %s: peer's answer has no SA, TSi or TSr", o.cfg.Name)
	}
	if len(s.sa.Proposals) != 1 {
		return nil, errorf("CHILD_SA %s: peer answered with %d proposals", o.cfg.Name, len(s.sa.Proposals))
	}
	p := s.sa.Proposals[0]
	suite, err := algs.Confirm(o.proposals, p)
	if err != nil {
		return nil, errorf("CHILD_SA %s: %v", o.cfg.Name, err)
	}
	if suite.Protocol != wire.ProtoESP || len(p.SPI) != 4 {
		return nil, errorf("CHILD_SA %s: peer answered with a %v proposal with a %d-octet SPI", o.cfg.Name, suite.Protocol, len(p.SPI))
	}
	outSPI := binary.BigEndian.Uint32(p.SPI)
	// RFC 7296 2.9: the responder may only narrow what we proposed.
	tsi := narrowTS(o.tsi, s.tsi.Selectors)
	tsr := narrowTS(o.tsr, s.tsr.Selectors)
	if len(tsi) == 0 || len(tsr) == 0 {
		return nil, errorf("CHILD_SA %s: peer's traffic selectors %s === %s are not within ours %s === %s", o.cfg.Name,
			tsListString(s.tsi.Selectors), tsListString(s.tsr.Selectors), tsListString(o.tsi), tsListString(o.tsr))
	}
	mode := ModeTunnel
	if o.mode == ModeTransport {
		// RFC 7296 1.3.1: a responder that declines transport mode leaves
		// the notify out, and the initiator then deletes the SA.
		if s.notify(wire.USE_TRANSPORT_MODE) == nil {
			return nil, errorf("CHILD_SA %s: peer declined transport mode", o.cfg.Name)
		}
		mode = ModeTransport
	}
	if suite.KE.ID != 0 {
		if o.ke == nil || s.ke == nil || uint16(s.ke.Group) != suite.KE.ID || uint16(o.group) != suite.KE.ID {
			return nil, errorf("CHILD_SA %s: peer chose key exchange %s without a matching KE payload", o.cfg.Name, keName(wire.KEID(suite.KE.ID)))
		}
		secret, err := o.ke.SharedSecret(s.ke.Data)
		if err != nil {
			return nil, errorf("CHILD_SA %s: peer's key exchange data: %v", o.cfg.Name, err)
		}
		secrets = append(secrets, secret)
	}
	defer clearAll(secrets)
	k, err := keys.DeriveChildKeys(sa.prf, sa.keys.SKd, suite, ni, nr, secrets...)
	if err != nil {
		return nil, errorf("CHILD_SA %s: %v", o.cfg.Name, err)
	}
	return sa.makeChild(now, o.cfg, suite, o.spi, outSPI, tsi, tsr, mode, k, true), nil
}

func clearAll(bs [][]byte) {
	for _, b := range bs {
		clear(b)
	}
}

// makeChild builds the ChildSA from negotiated values. weInitiated says
// whether we initiated the exchange that created it: its "I" keys are then
// our outbound keys (RFC 7296 2.17).
func (sa *IKESA) makeChild(now time.Time, cfg *ChildConfig, suite algs.Suite, inSPI, outSPI uint32,
	localTS, remoteTS []wire.TrafficSelector, mode Mode, k *keys.ChildKeys, weInitiated bool) *ChildSA {
	cs := &ChildSA{
		Name:         cfg.Name,
		ReqID:        cfg.ReqID,
		Mode:         mode,
		Encap:        sa.behindNAT(),
		Local:        sa.local,
		Remote:       sa.remote,
		InSPI:        inSPI,
		OutSPI:       outSPI,
		Suite:        suite,
		LocalTS:      localTS,
		RemoteTS:     remoteTS,
		ReplayWindow: cfg.ReplayWindow,
		Created:      now,
		RekeyBytes:   cfg.RekeyBytes,
		RekeyPackets: cfg.RekeyPackets,
		LifeBytes:    cfg.LifeBytes,
		LifePackets:  cfg.LifePackets,
	}
	// RFC 7296 2.8.1: the rekey time is jittered, so that both ends do
	// not start the rekey at once.
	cs.RekeyAt = sa.softLifetime(now, cfg.RekeyTime, cfg.RandTime, cfg.LifeTime)
	if cfg.LifeTime > 0 {
		cs.ExpireAt = now.Add(cfg.LifeTime)
	}
	if weInitiated {
		cs.OutEncr, cs.OutInteg, cs.InEncr, cs.InInteg = k.EncrI, k.IntegI, k.EncrR, k.IntegR
	} else {
		cs.OutEncr, cs.OutInteg, cs.InEncr, cs.InInteg = k.EncrR, k.IntegR, k.EncrI, k.IntegI
	}
	return cs
}

// answerChild is the responder's CHILD_SA negotiation, in IKE_AUTH (inAuth)
// or CREATE_CHILD_SA: it picks the child configuration whose traffic
// selectors fit the proposed ones best (RFC 7296 2.9; rankChildren), narrows them,
// selects a proposal, and returns the response payloads (SA, [Nr, [KE]],
// TSi, TSr, [N(USE_TRANSPORT_MODE)]) or the error notify. A failure leaves
// the IKE SA up (2.21.3) and is reported as ChildFailed. The new CHILD_SA
// is installed.
func (sa *IKESA) answerChild(now time.Time, s *payloadSet, inAuth bool, out *Output) []wire.Payload {
	resp, c := sa.negotiateChild(now, s, inAuth, nil, nil, out)
	if c != nil {
		sa.install(c, nil, false, out)
	}
	return resp
}

// negotiateChild is answerChild's negotiation. With only set (a rekey,
// RFC 7296 1.3.3) the CHILD_SA must be of that configuration, and a
// failure reports rekeying as the SA that stays. It returns the new
// CHILD_SA, not yet installed, or nil.
func (sa *IKESA) negotiateChild(now time.Time, s *payloadSet, inAuth bool, only *ChildConfig, rekeying *child, out *Output) ([]wire.Payload, *child) {
	if inAuth && s.sa == nil && s.tsi == nil && s.tsr == nil {
		return nil, nil // no CHILD_SA requested (RFC 6023)
	}
	name := ""
	fail := func(nerr *NotifyError, data []byte) ([]wire.Payload, *child) {
		sa.log.Warn("CHILD_SA failed", slog.String("child", name), slog.String("reason", nerr.Error()))
		ev := ChildFailed{Name: name, Err: nerr}
		if rekeying != nil {
			ev.Rekeying = rekeying.sa
		}
		out.event(ev)
		return []wire.Payload{&wire.Notify{NotifyType: nerr.Type, Data: data}}, nil
	}
	if s.sa == nil || s.tsi == nil || s.tsr == nil || (!inAuth && s.nonce == nil) {
		return fail(localNotify(wire.INVALID_SYNTAX, nil, "CHILD_SA request without SA, Nonce, TSi or TSr"), nil)
	}

	// RFC 7296 2.9: TSi is the initiator's side, our remote one. The child
	// is the one whose selectors fit the proposed ones best (strongSwan's
	// select_child_cfg, see tsFit; config order breaks ties) among those
	// whose proposals match: strongSwan stops at the selectors, which would
	// make two children with the same selectors and different proposals
	// fail.
	var peerKE wire.KEID
	if !inAuth && s.ke != nil {
		peerKE = s.ke.Group
	}
	var cfg *ChildConfig
	var tsi, tsr []wire.TrafficSelector
	var suite algs.Suite
	var chosen *wire.Proposal
	var noProposal *NotifyError
	candidates := sa.cfg.Children
	if only != nil {
		candidates = []*ChildConfig{only}
		name = only.Name
	}
	for _, c := range sa.rankChildren(candidates, s.tsi.Selectors, s.tsr.Selectors) {
		ci := narrowTS(resolveTS(c.RemoteTS, sa.remote.Addr()), s.tsi.Selectors)
		cr := narrowTS(resolveTS(c.LocalTS, sa.local.Addr()), s.tsr.Selectors)
		props := c.Proposals
		if inAuth {
			props = withoutKE(props)
		}
		st, p, err := algs.Select(props, s.sa.Proposals, peerKE)
		if err != nil {
			if noProposal == nil {
				theirs := ""
				if npe, ok := err.(*algs.NoProposalError); ok {
					theirs = npe.Theirs
				}
				name = c.Name
				noProposal = localNotify(wire.NO_PROPOSAL_CHOSEN, err, "no proposal chosen for CHILD_SA %s: we offered %s, peer offered %s",
					c.Name, proposalsString(props), theirs)
			}
			continue
		}
		cfg, tsi, tsr, suite, chosen = c, ci, cr, st, p
		break
	}
	switch {
	case cfg == nil && noProposal != nil:
		return fail(noProposal, nil)
	case cfg == nil && only != nil:
		return fail(localNotify(wire.TS_UNACCEPTABLE, nil, "traffic selectors %s === %s of the rekey do not match child %s",
			tsListString(s.tsi.Selectors), tsListString(s.tsr.Selectors), only.Name), nil)
	case cfg == nil:
		return fail(localNotify(wire.TS_UNACCEPTABLE, nil, "traffic selectors %s === %s match no child of connection %q",
			tsListString(s.tsi.Selectors), tsListString(s.tsr.Selectors), sa.cfg.Name), nil)
	}
	name = cfg.Name
	if len(chosen.SPI) != 4 {
		return fail(localNotify(wire.INVALID_SYNTAX, nil, "ESP proposal with a %d-octet SPI", len(chosen.SPI)), nil)
	}
	outSPI := binary.BigEndian.Uint32(chosen.SPI)

	var secrets [][]byte
	var keResp *wire.KE
	if g := wire.KEID(suite.KE.ID); g != wire.KE_NONE {
		if s.ke == nil || s.ke.Group != g {
			// RFC 7296 1.3.1 (and 1.3 for IKE): tell the initiator which
			// group we want; it retries. Not a failure yet.
			sa.log.Info("requesting another key exchange method for CHILD_SA", slog.String("child", name), slog.String("requested", keName(g)))
			return []wire.Payload{&wire.Notify{NotifyType: wire.INVALID_KE_PAYLOAD, Data: binary.BigEndian.AppendUint16(nil, uint16(g))}}, nil
		}
		pub, secret, err := suite.KEMethod().Respond(sa.rand, s.ke.Data)
		if err != nil {
			return fail(localNotify(wire.INVALID_SYNTAX, err, "CHILD_SA %s: peer's key exchange data: %v", name, err), nil)
		}
		secrets = append(secrets, secret)
		keResp = &wire.KE{Group: g, Data: pub}
	}
	defer clearAll(secrets)

	mode := ModeTunnel
	if s.notify(wire.USE_TRANSPORT_MODE) != nil {
		if cfg.Mode == ModeTransport {
			mode = ModeTransport
		} else {
			// RFC 7296 1.3.1: we may decline; the initiator decides.
			sa.log.Info("declining transport mode: the child is configured for tunnel mode", slog.String("child", name))
		}
	}
	inSPI, err := sa.newChildSPI()
	if err != nil {
		t := wire.TEMPORARY_FAILURE
		if inAuth {
			t = wire.NO_PROPOSAL_CHOSEN
		}
		return fail(localNotify(t, err, "CHILD_SA %s: %v", name, err), nil)
	}
	ni, nr := sa.ni, sa.nr
	var nonce []byte
	if !inAuth {
		ni = s.nonce.Data
		if nonce, err = sa.newNonce(); err != nil {
			return fail(localNotify(wire.TEMPORARY_FAILURE, err, "%v", err), nil)
		}
		nr = nonce
	}
	k, err := keys.DeriveChildKeys(sa.prf, sa.keys.SKd, suite, ni, nr, secrets...)
	if err != nil {
		return fail(localNotify(wire.NO_PROPOSAL_CHOSEN, err, "CHILD_SA %s: %v", name, err), nil)
	}
	cs := sa.makeChild(now, cfg, suite, inSPI, outSPI, tsr, tsi, mode, k, false)
	var lin *lineage
	if rekeying != nil {
		lin = rekeying.lin
	}
	c := sa.newChild(cs, cfg, lin)
	if !inAuth {
		c.ni, c.nr = clone(ni), nr
	}

	var ps []wire.Payload
	if mode == ModeTransport {
		ps = append(ps, &wire.Notify{NotifyType: wire.USE_TRANSPORT_MODE})
	}
	ps = append(ps, &wire.SA{Proposals: []wire.Proposal{suite.Wire(chosen.Num, spiBytes(inSPI))}})
	if nonce != nil {
		ps = append(ps, &wire.Nonce{Data: nonce})
	}
	if keResp != nil {
		ps = append(ps, keResp)
	}
	return append(ps,
		&wire.TS{Kind: wire.PayloadTSi, Selectors: tsi},
		&wire.TS{Kind: wire.PayloadTSr, Selectors: tsr},
	), c
}

// rankChildren returns the child configurations whose selectors intersect
// the proposed ones (tsi: the initiator's side, our remote one), the best
// fit first (tsFit of both sides summed), in config order among equals.
func (sa *IKESA) rankChildren(children []*ChildConfig, tsi, tsr []wire.TrafficSelector) []*ChildConfig {
	type ranked struct {
		cfg *ChildConfig
		fit int
	}
	var rs []ranked
	for _, c := range children {
		local := tsFit(resolveTS(c.LocalTS, sa.local.Addr()), tsr)
		remote := tsFit(resolveTS(c.RemoteTS, sa.remote.Addr()), tsi)
		if local == 0 || remote == 0 {
			continue
		}
		rs = append(rs, ranked{c, local + remote})
	}
	slices.SortStableFunc(rs, func(a, b ranked) int { return cmp.Compare(b.fit, a.fit) })
	out := make([]*ChildConfig, len(rs))
	for i, r := range rs {
		out[i] = r.cfg
	}
	return out
}

// freshenOffer draws what each CREATE_CHILD_SA request of the offer sends
// anew (a first one, and a retry after INVALID_KE_PAYLOAD or
// TEMPORARY_FAILURE): the nonce Ni (RFC 7296 2.10) and, for PFS, a key pair
// of the offer's group for KEi (1.3.1), replacing the previous one.
func (sa *IKESA) freshenOffer(o *childOffer) (ni []byte, ke *wire.KE, err error) {
	if ni, err = sa.newNonce(); err != nil {
		return nil, nil, err
	}
	o.ni = ni
	if o.group == wire.KE_NONE {
		return ni, nil, nil
	}
	m := algs.LookupKE(o.group)
	if m == nil {
		return nil, nil, errorf("key exchange method %s is not available", keName(o.group))
	}
	if o.ke != nil {
		o.ke.Destroy()
	}
	if o.ke, err = m.Generate(sa.rand); err != nil {
		return nil, nil, errorf("key exchange %s: %v", keName(o.group), err)
	}
	return ni, &wire.KE{Group: o.group, Data: o.ke.Public()}, nil
}

// createChildTask creates one more CHILD_SA with CREATE_CHILD_SA (RFC 7296
// 1.3.1): SA, Ni, [KE], TSi, TSr, and with PFS one retry after
// INVALID_KE_PAYLOAD. After TEMPORARY_FAILURE (2.25: the peer is rekeying
// or deleting the IKE SA) it is retried a little later, with the same SPI.
type createChildTask struct {
	cfg       *ChildConfig
	offer     *childOffer
	keRetried bool
}

func (t *createChildTask) exchange() wire.ExchangeType { return wire.CREATE_CHILD_SA }
func (t *createChildTask) handshake() bool             { return false }

func (t *createChildTask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	if t.offer == nil {
		o, err := sa.newChildOffer(t.cfg, false)
		if err != nil {
			return nil, err
		}
		t.offer = o
		o.group = firstKE(o.proposals)
	}
	o := t.offer
	ni, ke, err := sa.freshenOffer(o)
	if err != nil {
		return nil, err
	}
	return o.payloads(ni, ke), nil
}

func (t *createChildTask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	o := t.offer
	s := collect(payloads)
	if n := s.notify(wire.INVALID_KE_PAYLOAD); n != nil && s.sa == nil {
		if len(n.Data) != 2 {
			return false, remoteNotify(n, "peer sent INVALID_KE_PAYLOAD with %d octets of data", len(n.Data))
		}
		g := wire.KEID(binary.BigEndian.Uint16(n.Data))
		if t.keRetried || g == o.group || !offersKE(o.proposals, g) || algs.LookupKE(g) == nil {
			return false, remoteNotify(n, "peer requested key exchange %s for CHILD_SA %s, which we did not offer (we offered %s)",
				keName(g), o.cfg.Name, proposalsString(o.proposals))
		}
		t.keRetried = true
		o.group = g
		return true, nil
	}
	if n := s.firstError(); s.sa == nil && n != nil && n.NotifyType == wire.TEMPORARY_FAILURE && sa.state == StateEstablished {
		// RFC 7296 2.25: wait, then try again.
		sa.noteTempFail(now, out)
		if !sa.deleteRequested {
			d := sa.retryDelay()
			sa.log.Info("peer answered TEMPORARY_FAILURE, retrying CHILD_SA", slog.String("child", o.cfg.Name), slog.Duration("in", d))
			sa.later(now.Add(d), t)
			return false, nil
		}
	}
	var nr []byte
	if s.nonce != nil {
		nr = s.nonce.Data
	} else if s.sa != nil {
		return false, errorf("CHILD_SA %s: peer's answer has no nonce", o.cfg.Name)
	}
	if s.sa != nil {
		sa.tempFailSince = time.Time{}
	}
	t.offer = nil
	sa.completeChild(now, o, &s, o.ni, nr, nil, out)
	o.destroy()
	return false, nil
}

func (t *createChildTask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	t.abort(sa, now, err, out)
}

func (t *createChildTask) abort(sa *IKESA, now time.Time, err error, out *Output) {
	var spi uint32
	if t.offer != nil {
		spi = t.offer.spi
		t.offer.destroy()
		t.offer = nil
	}
	sa.log.Warn("CHILD_SA failed", slog.String("child", t.cfg.Name), slog.String("reason", err.Error()))
	out.event(ChildFailed{Name: t.cfg.Name, Err: err, SPI: spi})
}

func (o *childOffer) destroy() {
	if o.ke != nil {
		o.ke.Destroy()
		o.ke = nil
	}
}

// answerCreateChild is the responder's CREATE_CHILD_SA (RFC 7296 1.3): a
// rekey of the IKE SA (1.3.2), of a CHILD_SA (1.3.3), or a new CHILD_SA
// (1.3.1).
func (sa *IKESA) answerCreateChild(now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) []wire.Payload {
	s := collect(payloads)
	if s.sa != nil && len(s.sa.Proposals) > 0 && s.sa.Proposals[0].Protocol == wire.ProtoIKE {
		return sa.answerRekeyIKE(now, &s, out)
	}
	if sa.state != StateEstablished || sa.deleteRequested {
		// RFC 7296 2.25: we are rekeying or deleting the IKE SA; the peer
		// tries again later (on the new IKE SA).
		sa.log.Info("declining CREATE_CHILD_SA while the IKE SA is being rekeyed or deleted", slog.String("state", sa.state.String()))
		return []wire.Payload{&wire.Notify{NotifyType: wire.TEMPORARY_FAILURE}}
	}
	if n := s.notify(wire.REKEY_SA); n != nil {
		return sa.answerRekeyChild(now, m, &s, n, out)
	}
	return sa.answerChild(now, &s, false, out)
}
