package sa

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// payloadSet sorts a message's payloads by kind. Where a kind may appear
// once, the first one counts.
type payloadSet struct {
	sa        *wire.SA
	ke        *wire.KE
	nonce     *wire.Nonce
	idi, idr  *wire.ID
	auth      *wire.Auth
	certs     []*wire.Cert
	certReqs  []*wire.CertReq
	tsi, tsr  *wire.TS
	notifies  []*wire.Notify
	deletes   []*wire.Delete
	eap       bool
	encrypted bool // an SK or SKF payload (never valid in a plaintext message)
}

func collect(ps []wire.Payload) payloadSet {
	var s payloadSet
	for _, p := range ps {
		switch p := p.(type) {
		case *wire.SA:
			if s.sa == nil {
				s.sa = p
			}
		case *wire.KE:
			if s.ke == nil {
				s.ke = p
			}
		case *wire.Nonce:
			if s.nonce == nil {
				s.nonce = p
			}
		case *wire.ID:
			if p.Kind == wire.PayloadIDi && s.idi == nil {
				s.idi = p
			} else if p.Kind == wire.PayloadIDr && s.idr == nil {
				s.idr = p
			}
		case *wire.Auth:
			if s.auth == nil {
				s.auth = p
			}
		case *wire.Cert:
			s.certs = append(s.certs, p)
		case *wire.CertReq:
			s.certReqs = append(s.certReqs, p)
		case *wire.TS:
			if p.Kind == wire.PayloadTSi && s.tsi == nil {
				s.tsi = p
			} else if p.Kind == wire.PayloadTSr && s.tsr == nil {
				s.tsr = p
			}
		case *wire.Notify:
			s.notifies = append(s.notifies, p)
		case *wire.Delete:
			s.deletes = append(s.deletes, p)
		case *wire.EAP:
			s.eap = true
		case *wire.Encrypted, *wire.EncryptedFragment:
			s.encrypted = true
		}
	}
	return s
}

// notify returns the first notify of type t, or nil.
func (s payloadSet) notify(t wire.NotifyType) *wire.Notify {
	for _, n := range s.notifies {
		if n.NotifyType == t {
			return n
		}
	}
	return nil
}

// firstError returns the first notify of an error type (RFC 7296 3.10.1),
// or nil.
func (s payloadSet) firstError() *wire.Notify {
	for _, n := range s.notifies {
		if n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

// randomBytes returns n octets from r.
func randomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, errorf("reading random octets: %v", err)
	}
	return b, nil
}

// newNonce draws a nonce for a CREATE_CHILD_SA exchange (RFC 7296 2.10).
func (sa *IKESA) newNonce() ([]byte, error) {
	n, err := randomBytes(sa.rand, nonceLen)
	if err == nil && sa.env.nonceHook != nil {
		sa.env.nonceHook(n)
	}
	return n, err
}

// hashAlgorithmsNotify is our SIGNATURE_HASH_ALGORITHMS (RFC 7427 4).
func hashAlgorithmsNotify() *wire.Notify {
	hs := auth.SupportedHashes()
	data := make([]byte, 0, 2*len(hs))
	for _, h := range hs {
		data = binary.BigEndian.AppendUint16(data, uint16(h))
	}
	return &wire.Notify{NotifyType: wire.SIGNATURE_HASH_ALGORITHMS, Data: data}
}

// parseHashAlgorithms reads a SIGNATURE_HASH_ALGORITHMS notification (RFC
// 7427 4: a list of 2-octet identifiers). An odd trailing octet is ignored.
func parseHashAlgorithms(data []byte) []wire.HashAlgorithm {
	out := make([]wire.HashAlgorithm, 0, len(data)/2)
	for len(data) >= 2 {
		out = append(out, wire.HashAlgorithm(binary.BigEndian.Uint16(data)))
		data = data[2:]
	}
	return out
}

// noteInitExtras records what the peer announced in IKE_SA_INIT:
// fragmentation (RFC 7383 2.3), signature hashes (RFC 7427 4), CERTREQs
// (RFC 7296 3.7).
func (sa *IKESA) noteInitExtras(s *payloadSet) {
	sa.peerFrag = s.notify(wire.IKEV2_FRAGMENTATION_SUPPORTED) != nil
	if n := s.notify(wire.SIGNATURE_HASH_ALGORITHMS); n != nil {
		sa.peerHashes = parseHashAlgorithms(n.Data)
	}
	sa.noteCertReqs(s.certReqs)
}

func (sa *IKESA) noteCertReqs(crs []*wire.CertReq) {
	for _, cr := range crs {
		if cr.Encoding != wire.CertX509Signature {
			continue
		}
		sa.peerAskedCert = true
		if hs, err := auth.ParseCertReqData(cr.Data); err == nil {
			sa.peerCertReqs = append(sa.peerCertReqs, hs...)
		}
	}
}

// certReqPayload is our CERTREQ naming the trust anchors of cfg (RFC 7296
// 3.7), or nil if we ask for nothing.
func certReqPayload(cfg *Config) wire.Payload {
	if cfg == nil || !cfg.SendCertReq || cfg.Remote.Method != AuthPubKey || len(cfg.Remote.CACerts) == 0 {
		return nil
	}
	return &wire.CertReq{Encoding: wire.CertX509Signature, Data: auth.CertReqData(cfg.Remote.CACerts)}
}

// proposalsString prints proposals in strongSwan's syntax, joined with ", ".
func proposalsString(ps []algs.Proposal) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// wireProposals numbers proposals from 1 for an offer (RFC 7296 3.3.1).
func wireProposals(ps []algs.Proposal, spi []byte) []wire.Proposal {
	out := make([]wire.Proposal, len(ps))
	for i, p := range ps {
		out[i] = p.Wire(uint8(i+1), spi)
	}
	return out
}

// offersKE reports whether any of ps lists key exchange method id (as
// transform type 4).
func offersKE(ps []algs.Proposal, id wire.KEID) bool {
	for _, p := range ps {
		for _, t := range p.Of(wire.TransformKE) {
			if t.ID == uint16(id) && id != wire.KE_NONE {
				return true
			}
		}
	}
	return false
}

// firstKE returns the first key exchange method of ps (our preferred one),
// or KE_NONE.
func firstKE(ps []algs.Proposal) wire.KEID {
	for _, p := range ps {
		for _, t := range p.Of(wire.TransformKE) {
			if t.ID != uint16(wire.KE_NONE) {
				return wire.KEID(t.ID)
			}
		}
	}
	return wire.KE_NONE
}

func clone(b []byte) []byte { return bytes.Clone(b) }

// keName names a key exchange method by its strongSwan keyword ("ecp384"),
// or its IANA name if Cygnet has no implementation.
func keName(g wire.KEID) string {
	if m := algs.LookupKE(g); m != nil {
		return m.Keyword
	}
	return g.String()
}
