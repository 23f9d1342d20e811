package sa

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/cookie"
	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// maxCookieRetries bounds how often we retry IKE_SA_INIT with a fresh
// COOKIE (RFC 7296 2.6); a responder that keeps asking is broken or hostile.
const maxCookieRetries = 3

// ikeInitTask is the initiator's IKE_SA_INIT exchange (RFC 7296 1.2), with
// its COOKIE (2.6) and INVALID_KE_PAYLOAD (1.3, 2.7) retries. A retry keeps
// our SPI and nonce (as strongSwan does) and message ID 0; after
// INVALID_KE_PAYLOAD it brings a new KE of the requested group.
type ikeInitTask struct {
	ke          algs.KeyExchange
	group       wire.KEID
	cookie      []byte
	cookieTries int
	keRetried   bool
}

func (t *ikeInitTask) exchange() wire.ExchangeType { return wire.IKE_SA_INIT }
func (t *ikeInitTask) handshake() bool             { return true }

func (t *ikeInitTask) build(sa *IKESA, now time.Time, out *Output) ([]wire.Payload, error) {
	cfg := sa.cfg
	if len(cfg.IKEProposals) == 0 {
		return nil, errorf("connection %q has no IKE proposals", cfg.Name)
	}
	if sa.ni == nil {
		ni, err := randomBytes(sa.rand, nonceLen)
		if err != nil {
			return nil, err
		}
		sa.ni = ni
	}
	if t.ke == nil {
		if t.group == wire.KE_NONE {
			t.group = firstKE(cfg.IKEProposals)
		}
		m := algs.LookupKE(t.group)
		if m == nil {
			return nil, errorf("key exchange method %s is not available", keName(t.group))
		}
		ke, err := m.Generate(sa.rand)
		if err != nil {
			return nil, errorf("key exchange %s: %v", keName(t.group), err)
		}
		t.ke = ke
	}
	var ps []wire.Payload
	if t.cookie != nil {
		// RFC 7296 2.6: the COOKIE notify comes first.
		ps = append(ps, &wire.Notify{NotifyType: wire.COOKIE, Data: t.cookie})
	}
	ps = append(ps,
		&wire.SA{Proposals: wireProposals(cfg.IKEProposals, nil)},
		&wire.KE{Group: t.group, Data: t.ke.Public()},
		&wire.Nonce{Data: sa.ni},
	)
	ps = append(ps, sa.natNotifies(0)...)
	if cfg.Fragmentation {
		ps = append(ps, &wire.Notify{NotifyType: wire.IKEV2_FRAGMENTATION_SUPPORTED})
	}
	ps = append(ps, hashAlgorithmsNotify())
	return ps, nil
}

func (t *ikeInitTask) process(sa *IKESA, now time.Time, m *wire.Message, payloads []wire.Payload, out *Output) (bool, error) {
	cfg := sa.cfg
	s := collect(payloads)
	for _, n := range s.notifies {
		switch n.NotifyType {
		case wire.COOKIE:
			if t.cookie != nil && bytes.Equal(n.Data, t.cookie) {
				return false, errStale // a duplicate of the answer we acted on
			}
			if t.cookieTries >= maxCookieRetries {
				return false, remoteNotify(n, "peer still demands a COOKIE after %d retries", t.cookieTries)
			}
			if len(n.Data) < 1 || len(n.Data) > cookie.MaxLen {
				return false, remoteNotify(n, "peer sent a COOKIE of %d octets (RFC 7296 3.10.1: 1 to 64)", len(n.Data))
			}
			t.cookie = clone(n.Data)
			t.cookieTries++
			sa.spir = 0
			return true, nil
		case wire.INVALID_KE_PAYLOAD:
			if len(n.Data) != 2 {
				return false, remoteNotify(n, "peer sent INVALID_KE_PAYLOAD with %d octets of data", len(n.Data))
			}
			g := wire.KEID(binary.BigEndian.Uint16(n.Data))
			switch {
			case t.keRetried && g == t.group:
				return false, errStale // a duplicate of the answer we acted on
			case t.keRetried:
				return false, remoteNotify(n, "peer rejected key exchange %s too, requesting %s", keName(t.group), keName(g))
			case g == t.group || !offersKE(cfg.IKEProposals, g) || algs.LookupKE(g) == nil:
				return false, remoteNotify(n, "peer requested key exchange %s, which we did not offer (we offered %s)", keName(g), proposalsString(cfg.IKEProposals))
			}
			sa.log.Info("peer requested another key exchange method, retrying")
			t.keRetried = true
			t.group = g
			t.ke.Destroy()
			t.ke = nil
			sa.spir = 0
			return true, nil
		}
	}
	if n := s.firstError(); n != nil {
		if n.NotifyType == wire.NO_PROPOSAL_CHOSEN {
			return false, remoteNotify(n, "peer rejected our proposals %s", proposalsString(cfg.IKEProposals))
		}
		return false, remoteNotify(n, "peer answered IKE_SA_INIT with %v", n.NotifyType)
	}
	switch {
	case m.SPIr == 0:
		return false, errorf("invalid IKE_SA_INIT response: no responder SPI")
	case s.sa == nil || s.ke == nil || s.nonce == nil:
		return false, errorf("invalid IKE_SA_INIT response: SA, KE or Nonce missing")
	case len(s.sa.Proposals) != 1:
		return false, errorf("invalid IKE_SA_INIT response: %d proposals in the answer", len(s.sa.Proposals))
	}
	suite, err := algs.Confirm(cfg.IKEProposals, s.sa.Proposals[0])
	if err != nil {
		return false, errorf("invalid IKE_SA_INIT response: %v", err)
	}
	if wire.KEID(suite.KE.ID) != t.group || s.ke.Group != t.group {
		return false, errorf("invalid IKE_SA_INIT response: key exchange %s in the proposal and %s in KE, we sent %s",
			keName(wire.KEID(suite.KE.ID)), keName(s.ke.Group), keName(t.group))
	}
	secret, err := t.ke.SharedSecret(s.ke.Data)
	t.ke.Destroy()
	t.ke = nil
	if err != nil {
		return false, errorf("peer's key exchange data: %v", err)
	}
	sa.spir = m.SPIr
	sa.nr = clone(s.nonce.Data)
	sa.initResp = m.Raw
	sa.setLogger()
	if err := sa.deriveKeys(suite, secret); err != nil {
		return false, err
	}
	sa.reportKeys(out)
	sa.noteInitExtras(&s)
	// RFC 7296 2.23: only a peer that sent NAT detection notifies does NAT
	// traversal; with it, a NAT on either side (or a faked one) floats.
	if sa.checkNAT(sa.spir, s.notifies) && sa.behindNAT() {
		sa.floatPorts()
		out.event(NATDetected{Local: sa.natLocal, Remote: sa.natRemote})
	}
	return false, nil
}

func (t *ikeInitTask) fail(sa *IKESA, now time.Time, err error, out *Output) {
	t.abort(sa, now, err, out)
	sa.die(now, out, err, "", CauseFailed, false)
}

func (t *ikeInitTask) abort(sa *IKESA, now time.Time, err error, out *Output) {
	if t.ke != nil {
		t.ke.Destroy()
		t.ke = nil
	}
}

// deriveKeys computes SKEYSEED and the SK_* keys of a new IKE SA (RFC 7296
// 2.14) and the Protector of its SK payloads.
func (sa *IKESA) deriveKeys(suite algs.Suite, secret []byte) error {
	defer clear(secret)
	prf := suite.PRFAlg()
	if prf == nil {
		return errors.New("ike: negotiated suite has no PRF")
	}
	skeyseed := keys.SKEYSEED(prf, sa.ni, sa.nr, secret)
	defer clear(skeyseed)
	k, err := keys.DeriveIKEKeys(suite, skeyseed, sa.ni, sa.nr, sa.spii, sa.spir)
	if err != nil {
		return errorf("deriving IKE SA keys: %v", err)
	}
	prot, err := keys.NewProtector(suite, k, sa.initiator)
	if err != nil {
		k.Zero()
		return errorf("IKE SA keys: %v", err)
	}
	sa.suite, sa.prf, sa.keys, sa.prot = suite, prf, k, prot
	return nil
}

// reportKeys reports the IKE SA's keys in a KeysDerived event if the
// runtime asked for them (Env.KeyLog).
func (sa *IKESA) reportKeys(out *Output) {
	if sa.env.KeyLog {
		out.event(KeysDerived{SPIi: sa.spii, SPIr: sa.spir, KeyLog: sa.keyLog()})
	}
}

// keyLog is the IKE SA's Wireshark ikev2_decryption_table record.
func (sa *IKESA) keyLog() string {
	return keys.IKEDecryptionRecord(sa.spii, sa.spir, sa.suite, sa.keys)
}
