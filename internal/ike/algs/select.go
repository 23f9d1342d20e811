package algs

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Suite is a negotiated proposal: exactly one transform of each type.
type Suite struct {
	Protocol wire.ProtocolID
	Encr     Transform
	PRF      Transform // IKE only (zero value for ESP)
	Integ    Transform // zero value when Encr is an AEAD
	KE       Transform // zero value when none (ESP without PFS)
	ESN      bool      // ESP only
	// AddKE are the additional key exchanges of RFC 9370 in order
	// (ADDKE1 first), each with its Type; types negotiated as NONE are
	// left out.
	AddKE []Transform
}

// String returns the suite in strongSwan's syntax, e.g.
// "aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048" (an IKE PRF that
// mirrors the integrity algorithm is implied) or "aes256gcm16-esn".
func (s Suite) String() string {
	parts := []string{s.Encr.String()}
	if s.Integ.Type != 0 {
		parts = append(parts, s.Integ.String())
	}
	if s.PRF.Type != 0 {
		i := LookupInteg(wire.IntegID(s.Integ.ID))
		if s.Integ.Type == 0 || i == nil || uint16(i.PRF) != s.PRF.ID || s.PRF.KeyLen != 0 {
			parts = append(parts, s.PRF.String())
		}
	}
	if s.KE.Type != 0 {
		parts = append(parts, s.KE.String())
	}
	for _, t := range s.AddKE {
		parts = append(parts, t.String())
	}
	if s.ESN {
		parts = append(parts, "esn")
	}
	return strings.Join(parts, "-")
}

// Wire returns the proposal a responder answers with (RFC 7296 2.7): num
// and spi as given, and one transform of each negotiated type. Types
// negotiated as NONE are left out (as strongSwan does).
func (s Suite) Wire(num uint8, spi []byte) wire.Proposal {
	w := wire.Proposal{Num: num, Protocol: s.Protocol, SPI: spi}
	add := func(t Transform) {
		if t.Type != 0 {
			w.Transforms = append(w.Transforms, wire.Transform{Type: t.Type, ID: t.ID, KeyLen: t.KeyLen})
		}
	}
	add(s.Encr)
	add(s.PRF)
	add(s.Integ)
	add(s.KE)
	if s.Protocol == wire.ProtoESP {
		esn := wire.ESN_NO
		if s.ESN {
			esn = wire.ESN_YES
		}
		add(Transform{Type: wire.TransformESN, ID: uint16(esn)})
	}
	for _, t := range s.AddKE {
		add(t)
	}
	return w
}

// EncrAlg returns the encryption algorithm, or nil if none was negotiated.
func (s Suite) EncrAlg() *Encr {
	if s.Encr.Type == 0 {
		return nil
	}
	return LookupEncr(wire.EncrID(s.Encr.ID))
}

// PRFAlg returns the PRF, or nil (ESP).
func (s Suite) PRFAlg() *PRF {
	if s.PRF.Type == 0 {
		return nil
	}
	return LookupPRF(wire.PRFID(s.PRF.ID))
}

// IntegAlg returns the integrity algorithm, or nil (AEAD).
func (s Suite) IntegAlg() *Integ {
	if s.Integ.Type == 0 {
		return nil
	}
	return LookupInteg(wire.IntegID(s.Integ.ID))
}

// KEMethod returns the key exchange method, or nil (ESP without PFS).
func (s Suite) KEMethod() *KEMethod {
	if s.KE.Type == 0 {
		return nil
	}
	return LookupKE(wire.KEID(s.KE.ID))
}

// EncrKeyLen returns the encryption key length in bits: the negotiated Key
// Length attribute, or the cipher's fixed length.
func (s Suite) EncrKeyLen() int {
	if e := s.EncrAlg(); e != nil && e.KeyLens == nil {
		return e.FixedKeyLen
	}
	return int(s.Encr.KeyLen)
}

// NoProposalError is Select's error when no proposal of the peer's matches
// one of ours (the responder then answers NO_PROPOSAL_CHOSEN, RFC 7296
// 3.10.1). Ours and Theirs are the two sides' proposals in strongSwan's
// syntax, joined with ", ".
type NoProposalError struct {
	Ours, Theirs string
}

func (e *NoProposalError) Error() string {
	return "no proposal chosen: we offered " + e.Ours + ", peer offered " + e.Theirs
}

// ErrInvalidAnswer is wrapped by Confirm's errors: the responder's answer
// is not a choice from what we offered.
var ErrInvalidAnswer = errors.New("algs: responder's proposal does not match our offer")

// peerView is a peer's wire proposal split by transform type. A transform
// with an attribute we do not know is unacceptable (RFC 7296 3.3.6: "it
// MUST consider this transform unacceptable"), but its type still counts
// as present.
type peerView struct {
	byType  [wire.TransformADDKE7 + 1][]Transform // the acceptable transforms
	present [wire.TransformADDKE7 + 1]bool
	unknown bool // a transform type we do not know: the proposal is unacceptable
}

func viewOf(w *wire.Proposal) peerView {
	var v peerView
	for _, t := range w.Transforms {
		if t.Type == 0 || t.Type > wire.TransformADDKE7 {
			v.unknown = true
			continue
		}
		v.present[t.Type] = true
		if len(t.Attrs) == 0 {
			v.byType[t.Type] = append(v.byType[t.Type], Transform{Type: t.Type, ID: t.ID, KeyLen: t.KeyLen})
		}
	}
	return v
}

// validSPI checks the SPI size of a proposal (RFC 7296 3.3.1): 4 octets for
// ESP and AH; for IKE none in IKE_SA_INIT and 8 when rekeying.
func validSPI(proto wire.ProtocolID, spi []byte) bool {
	switch proto {
	case wire.ProtoIKE:
		return len(spi) == 0 || len(spi) == 8
	case wire.ProtoESP, wire.ProtoAH:
		return len(spi) == 4
	}
	return false
}

// Select is the responder's choice (RFC 7296 2.7): the first of our
// proposals (in our order) that one of the peer's proposals of the same
// protocol fully covers; within it, for each transform type, the first of
// our transforms the peer also offers. It returns the chosen suite and the
// peer proposal it came from (a pointer into theirs; its Num and SPI go
// into the reply, see Suite.Wire).
//
// preferKE is the group of the peer's KE payload (0 for none): when the
// chosen proposal allows it on both sides it is picked over our order,
// which avoids an INVALID_KE_PAYLOAD round trip.
//
// Peer proposals with a transform type we do not know, a wrong SPI size, a
// missing mandatory type (RFC 7296 3.3.3), or of another protocol never
// match; neither do transforms with unknown IDs, wrong key lengths or
// unrecognised attributes (RFC 7296 3.3.6). Key exchange types are optional
// in ESP proposals, and additional key exchanges (RFC 9370) in both; a side
// that lists NONE accepts the other side's leaving the type out. A key
// exchange method is chosen at most once across the KE types, as strongSwan
// does: a second exchange with the same method would add nothing.
// The only error is a *NoProposalError.
//
// For the CHILD_SA negotiated in IKE_AUTH, pass ours through
// Proposal.WithoutKE (RFC 7296 1.2).
func Select(ours []Proposal, theirs []wire.Proposal, preferKE wire.KEID) (Suite, *wire.Proposal, error) {
	views := make([]peerView, len(theirs))
	for i := range theirs {
		views[i] = viewOf(&theirs[i])
	}
	for _, p := range ours {
		for i := range theirs {
			w := &theirs[i]
			if w.Protocol != p.Protocol || !validSPI(w.Protocol, w.SPI) || views[i].unknown {
				continue
			}
			if s, ok := match(p, &views[i], preferKE); ok {
				return s, w, nil
			}
		}
	}
	return Suite{}, nil, &NoProposalError{Ours: formatProposals(ours), Theirs: formatWire(ours, theirs)}
}

// match selects a suite from our proposal p and a peer proposal.
func match(p Proposal, v *peerView, preferKE wire.KEID) (Suite, bool) {
	var mine [wire.TransformADDKE7 + 1][]Transform
	for _, t := range p.Transforms {
		if t.Type > 0 && t.Type <= wire.TransformADDKE7 {
			mine[t.Type] = append(mine[t.Type], t)
		}
	}
	s := Suite{Protocol: p.Protocol}
	var ok bool
	if s.Encr, ok = pick(mine[wire.TransformENCR], v.byType[wire.TransformENCR]); !ok {
		return Suite{}, false
	}
	e := LookupEncr(wire.EncrID(s.Encr.ID))
	if e == nil {
		return Suite{}, false
	}
	if !e.AEAD {
		// With an AEAD the peer's integrity transforms are ignored, as
		// strongSwan does (RFC 5282 8 says they must be absent or NONE).
		if s.Integ, ok = pick(mine[wire.TransformINTEG], v.byType[wire.TransformINTEG]); !ok {
			return Suite{}, false
		}
	}
	if p.Protocol == wire.ProtoIKE {
		if s.PRF, ok = pick(mine[wire.TransformPRF], v.byType[wire.TransformPRF]); !ok {
			return Suite{}, false
		}
		if v.present[wire.TransformESN] {
			return Suite{}, false
		}
	} else {
		if v.present[wire.TransformPRF] {
			return Suite{}, false
		}
		var esn Transform
		if esn, ok = pick(mine[wire.TransformESN], v.byType[wire.TransformESN]); !ok {
			return Suite{}, false
		}
		s.ESN = wire.ESNID(esn.ID) == wire.ESN_YES
	}
	var used []uint16
	for typ := wire.TransformKE; typ <= wire.TransformADDKE7; typ++ {
		if typ == wire.TransformESN {
			continue
		}
		// RFC 7296 3.3.3: D-H is mandatory for IKE, optional for ESP;
		// RFC 9370 2.2.1: additional key exchanges may be NONE.
		optional := p.Protocol != wire.ProtoIKE || typ != wire.TransformKE
		prefer := wire.KE_NONE
		if typ == wire.TransformKE {
			prefer = preferKE
		}
		id, ok := pickKE(mine[typ], v.byType[typ], v.present[typ], optional, used, prefer)
		if !ok {
			return Suite{}, false
		}
		if wire.KEID(id) == wire.KE_NONE {
			continue
		}
		used = append(used, id)
		t := Transform{Type: typ, ID: id}
		if typ == wire.TransformKE {
			s.KE = t
		} else {
			s.AddKE = append(s.AddKE, t)
		}
	}
	return s, true
}

// pick returns the first of ours that theirs also lists. Both empty is no
// match: pick is for mandatory types.
func pick(ours, theirs []Transform) (Transform, bool) {
	for _, o := range ours {
		if slices.Contains(theirs, o) {
			return o, true
		}
	}
	return Transform{}, false
}

// pickKE chooses a key exchange method of one KE type; 0 is NONE. theirs
// holds the peer's acceptable transforms of the type, present whether the
// peer sent the type at all.
func pickKE(ours, theirs []Transform, present, optional bool, used []uint16, prefer wire.KEID) (uint16, bool) {
	has := func(ts []Transform, id uint16) bool {
		for _, t := range ts {
			if t.ID == id && t.KeyLen == 0 {
				return true
			}
		}
		return false
	}
	switch {
	case len(ours) == 0 && !present:
		return 0, true
	case len(ours) == 0:
		return 0, optional && has(theirs, 0)
	case !present:
		return 0, optional && has(ours, 0)
	}
	if id := uint16(prefer); id != 0 && has(ours, id) && has(theirs, id) && !slices.Contains(used, id) {
		return id, true
	}
	for _, o := range ours {
		if o.ID != 0 && slices.Contains(used, o.ID) {
			continue
		}
		if o.KeyLen == 0 && has(theirs, o.ID) {
			return o.ID, true
		}
	}
	return 0, false
}

// Confirm is the initiator's check of the responder's answer (RFC 7296
// 2.7, 3.3.6): the answer names one of our proposals by Num (ours[i] went
// out as proposal i+1, see Proposal.Wire), is of its protocol and SPI size,
// and holds exactly one transform of each type, each one we offered there,
// with nothing mandatory missing. An optional key exchange type we offered
// NONE for may be absent or NONE. Errors wrap ErrInvalidAnswer.
func Confirm(ours []Proposal, answer wire.Proposal) (Suite, error) {
	bad := func(format string, args ...any) (Suite, error) {
		return Suite{}, fmt.Errorf("%w: %s", ErrInvalidAnswer, fmt.Sprintf(format, args...))
	}
	if answer.Num < 1 || int(answer.Num) > len(ours) {
		return bad("it accepted proposal %d, we sent %d", answer.Num, len(ours))
	}
	p := ours[answer.Num-1]
	if answer.Protocol != p.Protocol {
		return bad("it is for %s, proposal %d was for %s", protoName(answer.Protocol), answer.Num, protoName(p.Protocol))
	}
	if !validSPI(answer.Protocol, answer.SPI) {
		return bad("SPI of %d octets", len(answer.SPI))
	}
	var got [wire.TransformADDKE7 + 1]*Transform
	for i := range answer.Transforms {
		w := &answer.Transforms[i]
		t := Transform{Type: w.Type, ID: w.ID, KeyLen: w.KeyLen}
		switch {
		case w.Type == 0 || w.Type > wire.TransformADDKE7:
			return bad("transform type %d", w.Type)
		case len(w.Attrs) > 0:
			return bad("%s has attributes we did not send", t)
		case got[w.Type] != nil:
			return bad("two %s transforms", typeName(w.Type))
		}
		got[w.Type] = &t
	}
	offered := func(t *Transform) bool { return slices.Contains(p.Transforms, *t) }

	s := Suite{Protocol: p.Protocol}
	if got[wire.TransformENCR] == nil || !offered(got[wire.TransformENCR]) {
		return bad("encryption %s", describe(got[wire.TransformENCR]))
	}
	s.Encr = *got[wire.TransformENCR]
	e := LookupEncr(wire.EncrID(s.Encr.ID))
	if e == nil {
		return bad("encryption %s", s.Encr)
	}
	aead := e.AEAD
	switch integ := got[wire.TransformINTEG]; {
	case aead && integ != nil && integ.ID != uint16(wire.AUTH_NONE):
		return bad("integrity %s with an AEAD", integ)
	case aead:
	case integ == nil || !offered(integ):
		return bad("integrity %s", describe(integ))
	default:
		s.Integ = *integ
	}
	if p.Protocol == wire.ProtoIKE {
		if got[wire.TransformPRF] == nil || !offered(got[wire.TransformPRF]) {
			return bad("PRF %s", describe(got[wire.TransformPRF]))
		}
		s.PRF = *got[wire.TransformPRF]
		if got[wire.TransformESN] != nil {
			return bad("ESN in an IKE proposal")
		}
	} else {
		if got[wire.TransformPRF] != nil {
			return bad("PRF in an %s proposal", protoName(p.Protocol))
		}
		if got[wire.TransformESN] == nil || !offered(got[wire.TransformESN]) {
			return bad("ESN %s", describe(got[wire.TransformESN]))
		}
		s.ESN = wire.ESNID(got[wire.TransformESN].ID) == wire.ESN_YES
	}
	var used []uint16
	for typ := wire.TransformKE; typ <= wire.TransformADDKE7; typ++ {
		if typ == wire.TransformESN {
			continue
		}
		mine := p.Of(typ)
		optional := p.Protocol != wire.ProtoIKE || typ != wire.TransformKE
		noneOK := optional && (len(mine) == 0 || slices.Contains(mine, Transform{Type: typ}))
		t := got[typ]
		switch {
		case t == nil || t.ID == uint16(wire.KE_NONE) && t.KeyLen == 0:
			if !noneOK {
				return bad("key exchange %s", describe(t))
			}
			continue
		case !offered(t):
			return bad("key exchange %s", t)
		case slices.Contains(used, t.ID):
			return bad("key exchange %s chosen twice", t)
		}
		used = append(used, t.ID)
		if typ == wire.TransformKE {
			s.KE = *t
		} else {
			s.AddKE = append(s.AddKE, *t)
		}
	}
	return s, nil
}

func describe(t *Transform) string {
	if t == nil {
		return "missing"
	}
	return t.String()
}

// Wire returns p as proposal number num with the given SPI (empty in
// IKE_SA_INIT, 8 octets for an IKE rekey, 4 for ESP). Transforms go out in
// type order, each type's in order of preference; an ESP "none" key
// exchange goes out as transform ID 0 (RFC 7296 3.3.3: optional for the
// responder).
func (p Proposal) Wire(num uint8, spi []byte) wire.Proposal {
	w := wire.Proposal{Num: num, Protocol: p.Protocol, SPI: spi}
	ts := slices.Clone(p.Transforms)
	slices.SortStableFunc(ts, func(a, b Transform) int { return int(a.Type) - int(b.Type) })
	for _, t := range ts {
		w.Transforms = append(w.Transforms, wire.Transform{Type: t.Type, ID: t.ID, KeyLen: t.KeyLen})
	}
	return w
}

// formatWire prints the peer's proposals in strongSwan's syntax for a
// NoProposalError. A proposal of another protocol than ours is prefixed
// with it ("AH:sha256").
func formatWire(ours []Proposal, theirs []wire.Proposal) string {
	if len(theirs) == 0 {
		return "nothing"
	}
	var proto wire.ProtocolID
	if len(ours) > 0 {
		proto = ours[0].Protocol
	}
	s := make([]string, len(theirs))
	for i := range theirs {
		s[i] = formatWireProposal(&theirs[i], proto)
	}
	return strings.Join(s, ", ")
}

func formatWireProposal(w *wire.Proposal, proto wire.ProtocolID) string {
	ts := make([]Transform, len(w.Transforms))
	bad := make([]bool, len(w.Transforms))
	for i, t := range w.Transforms {
		ts[i] = Transform{Type: t.Type, ID: t.ID, KeyLen: t.KeyLen}
		bad[i] = len(t.Attrs) > 0
	}
	s := formatTransforms(w.Protocol, ts, bad)
	if s == "" {
		s = "(empty)"
	}
	if w.Protocol != proto {
		s = protoName(w.Protocol) + ":" + s
	}
	return s
}
