package sa

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/cookie"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// defaultCookieThreshold is strongSwan's charon.cookie_threshold.
const defaultCookieThreshold = 30

// defaultHalfOpenTimeout is how long a responder waits for IKE_AUTH
// (strongSwan's charon.half_open_timeout).
const defaultHalfOpenTimeout = 30 * time.Second

// Responder is the stateless front door for IKE_SA_INIT requests (SPIr ==
// 0). It is safe for concurrent use.
//
// Half-open accounting: an IKE SA created by HandleInit counts as half-open
// until its IKE_AUTH completes or it dies; the SA tells its Responder itself
// (atomically), so the runtime has nothing to report. Above the cookie
// threshold, requests without a valid COOKIE get one (RFC 7296 2.6) and no
// state; above MaxHalfOpen they are dropped.
type Responder struct {
	env           *Env
	sel           ConfigSelector
	opts          ResponderOptions
	jar           *cookie.Jar
	log           *slog.Logger
	rand          io.Reader
	halfOpenCount atomic.Int64
}

// NewResponder returns a Responder that finds configurations with sel.
func NewResponder(env *Env, sel ConfigSelector, opts ResponderOptions) *Responder {
	if env == nil {
		env = &Env{}
	}
	r := &Responder{env: env, sel: sel, opts: opts, rand: env.Rand, log: env.Log}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	if r.log == nil {
		r.log = discardLogger
	}
	if r.opts.CookieThreshold == 0 {
		r.opts.CookieThreshold = defaultCookieThreshold
	}
	r.jar = cookie.New(r.rand, opts.CookieRotate)
	return r
}

// HalfOpen returns the number of half-open IKE SAs created by r.
func (r *Responder) HalfOpen() int { return int(r.halfOpenCount.Load()) }

// needCookie reports whether requests must carry a valid COOKIE.
func (r *Responder) needCookie(halfOpen int64) bool {
	return r.opts.CookieThreshold < 0 || halfOpen >= int64(r.opts.CookieThreshold)
}

// HandleInit answers an IKE_SA_INIT request (a message that wire.Parse
// accepted, with SPIr zero). It returns a new half-open IKE SA whose response
// is in the Output, or nil and an Output holding a stateless answer (COOKIE,
// INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, INVALID_SYNTAX) or nothing (garbage
// is dropped, no state is kept). Retransmitted requests for an existing
// half-open SA are routed to that SA by the runtime (keyed by remote address
// and SPIi), which answers them from its cache.
func (r *Responder) HandleInit(now time.Time, m *wire.Message, local, remote netip.AddrPort) (*IKESA, Output) {
	var out Output
	if m == nil || m.Raw == nil || m.Exchange != wire.IKE_SA_INIT || m.IsResponse() || !m.IsInitiator() ||
		m.SPIi == 0 || m.SPIr != 0 || m.MessageID != 0 {
		return nil, out
	}
	log := r.log.With(slog.String("spi_i", spiString(m.SPIi)), slog.String("peer", remote.String()))
	s := collect(m.Payloads)
	if s.encrypted {
		return nil, out
	}
	if s.sa == nil || s.ke == nil || s.nonce == nil {
		log.Info("IKE_SA_INIT without SA, KE or Nonce; sending INVALID_SYNTAX")
		return nil, stateless(m, local, remote, &wire.Notify{NotifyType: wire.INVALID_SYNTAX})
	}

	// RFC 7296 2.6: under load, state is kept only for initiators that
	// prove they receive at their address.
	halfOpen := r.halfOpenCount.Load()
	if r.opts.MaxHalfOpen > 0 && halfOpen >= int64(r.opts.MaxHalfOpen) {
		log.Debug("dropping IKE_SA_INIT: too many half-open IKE SAs", slog.Int64("half_open", halfOpen))
		return nil, out
	}
	if r.needCookie(halfOpen) {
		n := s.notify(wire.COOKIE)
		if n == nil || !r.jar.Verify(now, n.Data, s.nonce.Data, remote.Addr(), m.SPIi) {
			c, err := r.jar.Make(now, s.nonce.Data, remote.Addr(), m.SPIi)
			if err != nil {
				return nil, out
			}
			log.Debug("demanding a COOKIE", slog.Int64("half_open", halfOpen))
			return nil, stateless(m, local, remote, &wire.Notify{NotifyType: wire.COOKIE, Data: c})
		}
	}

	var cfg *Config
	var suite algs.Suite
	var chosen *wire.Proposal
	var ours []algs.Proposal
	theirs := ""
	for _, c := range r.sel.ForInit(local, remote) {
		st, p, err := algs.Select(c.IKEProposals, s.sa.Proposals, s.ke.Group)
		if err == nil {
			cfg, suite, chosen = c, st, p
			break
		}
		ours = append(ours, c.IKEProposals...)
		var npe *algs.NoProposalError
		if errors.As(err, &npe) {
			theirs = npe.Theirs
		}
	}
	if cfg == nil {
		nerr := localNotify(wire.NO_PROPOSAL_CHOSEN, nil, "no proposal chosen: we offered %s, peer offered %s", proposalsString(ours), theirs)
		if len(ours) == 0 {
			nerr.Reason = "no connection for " + local.Addr().String() + " from " + remote.Addr().String()
		}
		log.Warn("rejecting IKE_SA_INIT", slog.String("reason", nerr.Error()))
		return nil, stateless(m, local, remote, &wire.Notify{NotifyType: wire.NO_PROPOSAL_CHOSEN})
	}
	if g := wire.KEID(suite.KE.ID); g != s.ke.Group {
		// RFC 7296 1.3: the request's KE is for another group than the
		// one we chose; tell the initiator which one.
		log.Info("requesting another key exchange method",
			slog.String("received", keName(s.ke.Group)), slog.String("requested", keName(g)))
		return nil, stateless(m, local, remote, &wire.Notify{NotifyType: wire.INVALID_KE_PAYLOAD, Data: binary.BigEndian.AppendUint16(nil, uint16(g))})
	}
	pub, secret, err := suite.KEMethod().Respond(r.rand, s.ke.Data)
	if err != nil {
		log.Info("invalid key exchange data; sending INVALID_SYNTAX", slog.String("reason", err.Error()))
		return nil, stateless(m, local, remote, &wire.Notify{NotifyType: wire.INVALID_SYNTAX})
	}

	sa := newIKESA(r.env, cfg, false, local, remote)
	sa.sel = r.sel
	sa.spii = m.SPIi
	sa.spir = sa.newIKESPI()
	sa.created = now
	sa.lastHeard = now
	sa.setLogger()
	sa.ni = clone(s.nonce.Data)
	if sa.nr, err = randomBytes(sa.rand, nonceLen); err != nil {
		clear(secret)
		return nil, out
	}
	sa.initReq = m.Raw
	if err := sa.deriveKeys(suite, secret); err != nil {
		sa.log.Error("cannot derive keys", slog.String("reason", err.Error()))
		return nil, out
	}
	sa.noteInitExtras(&s)
	// The request's hashes were made with SPIr zero (RFC 7296 2.23).
	natT := sa.checkNAT(0, s.notifies)

	// The payload order is strongSwan's.
	ps := []wire.Payload{
		&wire.SA{Proposals: []wire.Proposal{suite.Wire(chosen.Num, nil)}},
		&wire.KE{Group: s.ke.Group, Data: pub},
		&wire.Nonce{Data: sa.nr},
	}
	if natT {
		ps = append(ps, sa.natNotifies(sa.spir)...)
	}
	if cfg.Fragmentation {
		ps = append(ps, &wire.Notify{NotifyType: wire.IKEV2_FRAGMENTATION_SUPPORTED})
	}
	ps = append(ps, hashAlgorithmsNotify())
	if cr := certReqPayload(cfg); cr != nil {
		ps = append(ps, cr) // RFC 7296 2.2, 3.7
	}
	h := sa.header(wire.IKE_SA_INIT, 0, true)
	b, err := (&wire.Message{Header: h, Payloads: ps}).Marshal()
	if err != nil {
		sa.log.Error("cannot build IKE_SA_INIT response", slog.String("reason", err.Error()))
		return nil, out
	}
	sa.logExchange("received", m.Header, m.Payloads, 1)
	sa.initResp = b
	sa.cached = &response{msgID: 0, exchange: wire.IKE_SA_INIT, packets: [][]byte{b}, request: m.Raw}
	sa.peerID = 1
	sa.nextID = 0
	sa.halfOpen = now.Add(sa.halfOpenTimeout())
	r.halfOpenCount.Add(1)
	sa.resp = r
	sa.reportKeys(&out)
	if sa.behindNAT() {
		out.event(NATDetected{Local: sa.natLocal, Remote: sa.natRemote})
	}
	sa.logExchange("sending", h, ps, 1)
	out.send(local, remote, [][]byte{b})
	return sa, out
}

func (sa *IKESA) halfOpenTimeout() time.Duration {
	if sa.cfg != nil && sa.cfg.HalfOpenTimeout > 0 {
		return sa.cfg.HalfOpenTimeout
	}
	return defaultHalfOpenTimeout
}

// stateless builds an unencrypted IKE_SA_INIT response carrying one notify,
// with SPIr zero: no state is kept for it (RFC 7296 2.6, 2.21.1).
func stateless(m *wire.Message, local, remote netip.AddrPort, n *wire.Notify) Output {
	return statelessTo(m.Header, local, remote, n)
}

func statelessTo(req wire.Header, local, remote netip.AddrPort, n *wire.Notify) Output {
	h := wire.Header{SPIi: req.SPIi, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagResponse, MessageID: req.MessageID}
	b, err := (&wire.Message{Header: h, Payloads: []wire.Payload{n}}).Marshal()
	if err != nil {
		return Output{}
	}
	return Output{Packets: []Packet{{Local: local, Remote: remote, Data: b}}}
}

// HandleMalformed answers a datagram that wire.Parse rejected with err and
// that no IKE SA claims. An IKE_SA_INIT request gets the notify the wire
// error names, unencrypted and without state: INVALID_MAJOR_VERSION for a
// major version above 2 (RFC 7296 2.5), UNSUPPORTED_CRITICAL_PAYLOAD,
// INVALID_SYNTAX (2.21.1). Everything else is dropped.
func (r *Responder) HandleMalformed(now time.Time, datagram []byte, err error, local, remote netip.AddrPort) Output {
	var werr *wire.Error
	if !errors.As(err, &werr) || werr.Notify == 0 {
		return Output{}
	}
	if len(datagram) < wire.HeaderLen {
		return Output{}
	}
	h, _ := wire.ParseHeader(datagram)
	if h.Exchange != wire.IKE_SA_INIT || h.IsResponse() || !h.IsInitiator() || h.SPIi == 0 || h.SPIr != 0 || h.MessageID != 0 {
		return Output{}
	}
	r.log.Info("malformed IKE_SA_INIT", slog.String("peer", remote.String()), slog.String("spi_i", spiString(h.SPIi)),
		slog.String("reason", err.Error()), slog.String("notify", werr.Notify.String()))
	return statelessTo(h, local, remote, &wire.Notify{NotifyType: werr.Notify, Data: werr.Data})
}
