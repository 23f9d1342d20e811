package sa

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// ikeAuthTask is the initiator's IKE_AUTH exchange (RFC 7296 1.2, 2.15),
// which also creates the first CHILD_SA (childCfg; nil: none).
type ikeAuthTask struct {
	childCfg *ChildConfig
	offer    *childOffer
}

func (t *ikeAuthTask) exchange() wire.ExchangeType { return wire.IKE_AUTH }
func (t *ikeAuthTask) handshake() bool             { return true }

func (t *ikeAuthTask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	cfg := sa.cfg
	id, err := sa.ourIdentity()
	if err != nil {
		return nil, err
	}
	sa.localID = id
	idi := idPayload(wire.PayloadIDi, id)
	ps := []wire.Payload{idi}
	ps = append(ps, sa.certPayloads()...)
	if cfg.InitialContact {
		ps = append(ps, &wire.Notify{NotifyType: wire.INITIAL_CONTACT})
	}
	if cr := certReqPayload(cfg); cr != nil {
		ps = append(ps, cr)
	}
	// RFC 7296 3.5: IDr in the request names the identity we want to talk
	// to, when there is one concrete identity.
	if r := cfg.Remote.ID; !r.Any() && !r.HasWildcards() {
		ps = append(ps, idPayload(wire.PayloadIDr, r))
	}
	a, err := sa.ourAuth(idi)
	if err != nil {
		return nil, err
	}
	ps = append(ps, a)
	if t.childCfg != nil {
		o, err := sa.newChildOffer(t.childCfg, true)
		if err != nil {
			// The IKE SA can still come up without it.
			out.event(ChildFailed{Name: t.childCfg.Name, Err: err})
		} else {
			t.offer = o
			ps = append(ps, o.payloads(nil, nil)...)
		}
	}
	return ps, nil
}

func (t *ikeAuthTask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	s := collect(payloads)
	if s.auth == nil || s.idr == nil {
		if n := s.firstError(); n != nil {
			if n.NotifyType == wire.AUTHENTICATION_FAILED {
				return false, remoteNotify(n, "peer rejected our authentication as %s (%v)", sa.localID, sa.cfg.Local.Method)
			}
			return false, remoteNotify(n, "peer answered IKE_AUTH with %v", n.NotifyType)
		}
		return false, errorf("invalid IKE_AUTH response: IDr or AUTH missing")
	}
	peer := auth.Identity{Type: s.idr.IDType, Data: s.idr.Data}
	if err := sa.verifyPeerAuth(sa.cfg, &s, peer, now); err != nil {
		// RFC 7296 2.21.2: an initiator that rejects the responder's AUTH
		// may tell it in a separate INFORMATIONAL; strongSwan does.
		sa.sendOneShot(wire.INFORMATIONAL, []wire.Payload{&wire.Notify{NotifyType: wire.AUTHENTICATION_FAILED}}, out)
		return false, localNotify(wire.AUTHENTICATION_FAILED, err, "%s", authReason(err))
	}
	sa.remoteID = peer
	sa.authenticated = true
	// RFC 7296 3.10.1: INITIAL_CONTACT; honoured from the responder too.
	sa.peerContact = s.notify(wire.INITIAL_CONTACT) != nil
	sa.establish(now, out)
	if t.offer != nil {
		o := t.offer
		t.offer = nil
		sa.completeChild(now, o, &s, sa.ni, sa.nr, nil, out)
	}
	return false, nil
}

func (t *ikeAuthTask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	t.abort(sa, now, err, out)
	sa.die(now, out, err, "", CauseFailed, false)
}

func (t *ikeAuthTask) abort(sa *IKESA, now time.Time, err error, out *Output) {
	if t.offer != nil {
		out.event(ChildFailed{Name: t.offer.cfg.Name, Err: err, SPI: t.offer.spi})
		t.offer = nil
	}
}

// answerAuth is the responder's IKE_AUTH (RFC 7296 1.2, 2.15): it picks the
// connection for the identities, verifies the initiator's AUTH against it,
// authenticates itself and answers the CHILD_SA request. Any failure of
// authentication is answered with AUTHENTICATION_FAILED (2.21.2) and ends
// the IKE SA; nothing the peer claims is used before its AUTH verifies.
func (sa *IKESA) answerAuth(now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) ([]wire.Payload, func()) {
	s := collect(payloads)
	reject := func(nerr *NotifyError) ([]wire.Payload, func()) {
		return []wire.Payload{&wire.Notify{NotifyType: nerr.Type}}, func() { sa.die(now, out, nerr, "", CauseFailed, true) }
	}
	if s.idi == nil {
		return reject(localNotify(wire.INVALID_SYNTAX, nil, "IKE_AUTH request without IDi"))
	}
	peer := auth.Identity{Type: s.idi.IDType, Data: s.idi.Data}
	if s.auth == nil {
		// RFC 7296 2.16: no AUTH asks for EAP.
		return reject(localNotify(wire.AUTHENTICATION_FAILED, nil, "peer %s asked for EAP authentication, which is not supported", peer))
	}
	if err := peer.Validate(); err != nil {
		return reject(localNotify(wire.AUTHENTICATION_FAILED, err, "peer identity: %v", err))
	}
	var hint *auth.Identity
	if s.idr != nil {
		h := auth.Identity{Type: s.idr.IDType, Data: s.idr.Data}
		if h.Validate() == nil {
			hint = &h
		}
	}
	sa.noteCertReqs(s.certReqs)
	var cfg *Config
	var err error
	if sa.sel != nil {
		cfg, err = sa.sel.ForAuth(sa.local, sa.remote, peer, hint, sa.suite)
	}
	if cfg == nil {
		if err == nil {
			err = errors.New("no configuration")
		}
		return reject(localNotify(wire.AUTHENTICATION_FAILED, err, "no connection for peer identity %s: %v", peer, err))
	}
	if err := sa.verifyPeerAuth(cfg, &s, peer, now); err != nil {
		return reject(localNotify(wire.AUTHENTICATION_FAILED, err, "%s", authReason(err)))
	}
	// Authenticated: from here the connection is the peer's.
	sa.cfg = cfg
	sa.remoteID = peer
	sa.authenticated = true
	sa.peerContact = s.notify(wire.INITIAL_CONTACT) != nil
	sa.setLogger()

	id, err := sa.ourIdentity()
	if err != nil {
		return reject(localNotify(wire.AUTHENTICATION_FAILED, err, "%v", err))
	}
	sa.localID = id
	idr := idPayload(wire.PayloadIDr, id)
	a, err := sa.ourAuth(idr)
	if err != nil {
		return reject(localNotify(wire.AUTHENTICATION_FAILED, err, "%v", err))
	}
	resp := []wire.Payload{idr}
	resp = append(resp, sa.certPayloads()...)
	resp = append(resp, a)
	sa.establish(now, out)
	resp = append(resp, sa.answerChild(now, &s, true, out)...)
	return resp, nil
}

// authReason is the one line of an authentication failure.
func authReason(err error) string {
	var ae *auth.Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return err.Error()
}

// ourIdentity is the identity we send (RFC 7296 3.5): the configured one or
// strongSwan's default, our certificate's subject or our IKE address.
func (sa *IKESA) ourIdentity() (auth.Identity, error) { return sa.identityFor(sa.cfg) }

func (sa *IKESA) identityFor(cfg *Config) (auth.Identity, error) {
	l := cfg.Local
	if !l.ID.Any() {
		if l.ID.HasWildcards() {
			return auth.Identity{}, errorf("our identity %s is a pattern", l.ID)
		}
		return l.ID, nil
	}
	if l.Method == AuthPubKey {
		if l.Cred == nil {
			return auth.Identity{}, errorf("connection %q: pubkey authentication without a certificate", cfg.Name)
		}
		return l.Cred.DefaultIdentity(), nil
	}
	return addrIdentity(sa.local.Addr()), nil
}

func addrIdentity(a netip.Addr) auth.Identity {
	a = a.Unmap()
	if a.Is4() {
		return auth.Identity{Type: wire.IDIPv4Addr, Data: a.AsSlice()}
	}
	return auth.Identity{Type: wire.IDIPv6Addr, Data: a.AsSlice()}
}

func idPayload(kind wire.PayloadType, id auth.Identity) *wire.ID {
	return &wire.ID{Kind: kind, IDType: id.Type, Data: id.Data}
}

// signedOctets returns the octets the AUTH of one side covers (RFC 7296
// 2.15): that side's IKE_SA_INIT message, the other side's nonce, and the
// prf of its ID payload with its SK_p.
func (sa *IKESA) signedOctets(ofInitiator bool, id *wire.ID) []byte {
	if ofInitiator {
		return keys.SignedOctets(sa.prf, sa.initReq, sa.nr, sa.keys.SKpi, id.Body())
	}
	return keys.SignedOctets(sa.prf, sa.initResp, sa.ni, sa.keys.SKpr, id.Body())
}

// ourAuth computes our AUTH payload over our signed octets.
func (sa *IKESA) ourAuth(id *wire.ID) (*wire.Auth, error) {
	octets := sa.signedOctets(sa.initiator, id)
	l := sa.cfg.Local
	switch l.Method {
	case AuthPSK:
		psk, err := sa.psk(sa.cfg, sa.localID, sa.peerIDForPSK())
		if err != nil {
			return nil, err
		}
		return &wire.Auth{Method: wire.AuthSharedKey, Data: keys.PSKAuth(sa.prf, psk, octets)}, nil
	case AuthPubKey:
		if l.Cred == nil {
			return nil, errorf("connection %q: pubkey authentication without a certificate", sa.cfg.Name)
		}
		method, scheme, err := auth.ChooseScheme(l.Cred.Key, sa.peerHashes, l.PreferPSS)
		if err != nil {
			return nil, errorf("choosing a signature scheme: %v", err)
		}
		data, err := auth.Sign(sa.rand, l.Cred.Key, method, scheme, octets)
		if err != nil {
			return nil, errorf("signing AUTH with %v: %v", scheme, err)
		}
		return &wire.Auth{Method: method, Data: data}, nil
	}
	return nil, errorf("connection %q: no local authentication method", sa.cfg.Name)
}

// peerIDForPSK is the peer identity our PSK is looked up with: the one it
// authenticated with if known, else the configured one (an initiator's
// AUTH goes out before the responder's ID is known).
func (sa *IKESA) peerIDForPSK() auth.Identity {
	if sa.authenticated {
		return sa.remoteID
	}
	return sa.cfg.Remote.ID
}

func (sa *IKESA) psk(cfg *Config, local, remote auth.Identity) ([]byte, error) {
	if cfg.PSK != nil {
		if psk, ok := cfg.PSK(local, remote); ok && len(psk) > 0 {
			return psk, nil
		}
	}
	return nil, errorf("no pre-shared key for %s - %s", local, remote)
}

// certPayloads returns our CERT payloads (RFC 7296 3.6): our end-entity
// certificate first, then intermediates.
func (sa *IKESA) certPayloads() []wire.Payload {
	l := sa.cfg.Local
	if l.Method != AuthPubKey || l.Cred == nil {
		return nil
	}
	switch l.SendCert {
	case CertNever:
		return nil
	case CertIfAsked:
		if !sa.peerAskedCert {
			return nil
		}
	}
	var ps []wire.Payload
	for _, c := range l.Cred.CertsToSend() {
		ps = append(ps, &wire.Cert{Encoding: wire.CertX509Signature, Data: c.Raw})
	}
	return ps
}

// verifyPeerAuth checks the peer's identity and AUTH payload against cfg
// (RFC 7296 2.15): the configured identity must accept the claimed one, and
// the AUTH must verify with the pre-shared key between the two identities,
// or with the key of a certificate that chains to cfg's roots and proves
// the identity. Errors are *auth.Error (ErrAuthenticationFailed).
func (sa *IKESA) verifyPeerAuth(cfg *Config, s *payloadSet, peer auth.Identity, now time.Time) error {
	fail := func(format string, args ...any) error {
		return &auth.Error{Reason: fmt.Sprintf(format, args...)}
	}
	if err := peer.Validate(); err != nil {
		return fail("peer identity: %v", err)
	}
	if !cfg.Remote.ID.Matches(peer) {
		return fail("peer identity %s does not match %s, the identity connection %q requires", peer, cfg.Remote.ID, cfg.Name)
	}
	var id *wire.ID
	if sa.initiator {
		id = s.idr
	} else {
		id = s.idi
	}
	octets := sa.signedOctets(!sa.initiator, id)
	method := s.auth.Method
	switch cfg.Remote.Method {
	case AuthPSK:
		if method != wire.AuthSharedKey {
			return fail("peer %s authenticated with %v; connection %q requires a pre-shared key", peer, method, cfg.Name)
		}
		local := sa.localID
		if !sa.initiator {
			// Not sent yet: the identity we will answer with.
			l, err := sa.identityFor(cfg)
			if err != nil {
				return fail("%v", err)
			}
			local = l
		}
		psk, err := sa.psk(cfg, local, peer)
		if err != nil {
			return fail("%v", err)
		}
		if err := auth.VerifyPSK(keys.PSKAuth(sa.prf, psk, octets), s.auth.Data); err != nil {
			return fail("pre-shared key AUTH of %s does not verify (different keys?)", peer)
		}
		return nil
	case AuthPubKey:
		if method == wire.AuthSharedKey || method == wire.AuthNULL {
			return fail("peer %s authenticated with %v; connection %q requires a certificate", peer, method, cfg.Name)
		}
		var chain []*x509.Certificate
		for _, c := range s.certs {
			if c.Encoding != wire.CertX509Signature {
				continue
			}
			cert, err := x509.ParseCertificate(c.Data)
			if err != nil {
				return fail("peer %s sent an unparsable certificate: %v", peer, err)
			}
			chain = append(chain, cert)
		}
		if len(chain) == 0 {
			return fail("peer %s sent no certificate (we hold none for it)", peer)
		}
		if cfg.Remote.Roots == nil {
			return fail("connection %q has no CA certificates to verify %s", cfg.Name, peer)
		}
		leaf, err := auth.VerifyPeer(chain, cfg.Remote.Roots, peer, now)
		if err != nil {
			return fail("peer %s: %s", peer, authReason(err))
		}
		var allowed []wire.HashAlgorithm
		if cfg.Remote.AllowSHA1 {
			allowed = append(auth.SupportedHashes(), wire.HashSHA1)
		}
		if err := auth.VerifyWithCertificate(leaf, method, s.auth.Data, octets, allowed); err != nil {
			return fail("peer %s: %s", peer, authReason(err))
		}
		return nil
	}
	return fail("connection %q has no remote authentication method", cfg.Name)
}
