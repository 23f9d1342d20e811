package wire

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// SA is the Security Association payload (RFC 7296 3.3).
type SA struct {
	Proposals []Proposal // most preferred first
}

// Proposal is a proposal substructure (RFC 7296 3.3.1).
type Proposal struct {
	// Num is the Proposal Num: 1, 2, ... in an offer; in an answer, the
	// number of the proposal accepted.
	Num        uint8
	Protocol   ProtocolID
	SPI        []byte // empty in an initial IKE SA negotiation, 8 octets for IKE otherwise, 4 for ESP and AH
	Transforms []Transform
}

// Transform is a transform substructure (RFC 7296 3.3.2).
type Transform struct {
	Type TransformType
	ID   uint16 // an EncrID, PRFID, IntegID, KEID or ESNID, per Type
	// KeyLen is the Key Length attribute in bits; 0 means none is sent.
	KeyLen uint16
	// Attrs are any other attributes, kept verbatim.
	Attrs []Attribute
}

// Attribute is a transform attribute (RFC 7296 3.3.5).
type Attribute struct {
	Type  AttributeType // 15 bits; the AF bit is TV
	TV    bool          // Type/Value format: Value is 2 octets
	Value []byte
}

// Substructure markers (RFC 7296 3.3.1, 3.3.2): the Last Substructure field
// is 0 in the last proposal (transform) and 2 (3) in the ones before it.
const (
	lastSubstructure = 0
	moreProposals    = 2
	moreTransforms   = 3
)

// attrFormatTV is the AF bit of an attribute's type field (RFC 7296 3.3.5).
const attrFormatTV = 0x8000

func (p *SA) Type() PayloadType { return PayloadSA }

func parseSA(s cryptobyte.String) (*SA, error) {
	sa := new(SA)
	for i := 1; len(s) > 0; i++ {
		last, _, body, err := readStruct(&s, structName{what: "proposal", index: i})
		if err != nil {
			return nil, err
		}
		// RFC 7296 3.3.1: Last Substructure says whether another proposal
		// follows; it must agree with the payload length.
		switch {
		case last == lastSubstructure && len(s) > 0:
			return nil, syntaxError("proposal %d is marked last but %d octets follow it", i, len(s))
		case last == moreProposals && len(s) == 0:
			return nil, syntaxError("proposal %d is marked not last but ends the payload", i)
		case last != lastSubstructure && last != moreProposals:
			return nil, syntaxError("proposal %d: Last Substructure %d, want 0 or 2", i, last)
		}
		p, err := parseProposal(body)
		if err != nil {
			return nil, within(err, "proposal %d", i)
		}
		if msg := checkProposalNum(sa.Proposals, p.Num); msg != "" {
			return nil, syntaxError("%s", msg)
		}
		sa.Proposals = append(sa.Proposals, p)
	}
	if len(sa.Proposals) == 0 {
		return nil, syntaxError("no proposals")
	}
	if msg := checkFirstProposalNum(sa.Proposals); msg != "" {
		return nil, syntaxError("%s", msg)
	}
	return sa, nil
}

// RFC 7296 3.3.1: "When a proposal is made, the first proposal in an SA
// payload MUST be 1, and subsequent proposals MUST be one more than the
// previous proposal ... When a proposal is accepted, the proposal number in
// the SA payload MUST match the number on the proposal sent that was
// accepted." So: numbers count up by one, and a list of more than one
// starts at 1; a single (accepted) proposal may have any number but 0.
func checkProposalNum(before []Proposal, num uint8) string {
	switch {
	case num == 0:
		return fmt.Sprintf("proposal %d has Proposal Num 0", len(before)+1)
	case len(before) > 0 && num != before[len(before)-1].Num+1:
		return fmt.Sprintf("proposal %d has Proposal Num %d after %d", len(before)+1, num, before[len(before)-1].Num)
	}
	return ""
}

func checkFirstProposalNum(ps []Proposal) string {
	if len(ps) > 1 && ps[0].Num != 1 {
		return fmt.Sprintf("first of %d proposals has Proposal Num %d, want 1", len(ps), ps[0].Num)
	}
	return ""
}

// spiSizeOK reports whether an SPI of n octets fits protocol p in a proposal
// (RFC 7296 3.3.1). Protocols we do not know keep whatever SPI they carry;
// the proposal will not be chosen.
func spiSizeOK(p ProtocolID, n int) bool {
	switch p {
	case ProtoIKE:
		return n == 0 || n == 8
	case ProtoAH, ProtoESP:
		return n == 4
	}
	return true
}

func parseProposal(s cryptobyte.String) (Proposal, error) {
	var (
		p                           Proposal
		protocol, spiSize, numTrans uint8
	)
	if !s.ReadUint8(&p.Num) || !s.ReadUint8(&protocol) || !s.ReadUint8(&spiSize) || !s.ReadUint8(&numTrans) {
		return p, syntaxError("body truncated: want at least 4 octets")
	}
	p.Protocol = ProtocolID(protocol)
	if p.Protocol == ProtoNone {
		return p, syntaxError("Protocol ID 0")
	}
	if !spiSizeOK(p.Protocol, int(spiSize)) {
		return p, syntaxError("SPI Size %d for protocol %v", spiSize, p.Protocol)
	}
	var spi []byte
	if !s.ReadBytes(&spi, int(spiSize)) {
		return p, syntaxError("SPI of %d octets runs past the end", spiSize)
	}
	p.SPI = clip(spi)
	for j := 1; len(s) > 0; j++ {
		last, _, body, err := readStruct(&s, structName{what: "transform", index: j})
		if err != nil {
			return p, err
		}
		switch {
		case last == lastSubstructure && len(s) > 0:
			return p, syntaxError("transform %d is marked last but %d octets follow it", j, len(s))
		case last == moreTransforms && len(s) == 0:
			return p, syntaxError("transform %d is marked not last but ends the proposal", j)
		case last != lastSubstructure && last != moreTransforms:
			return p, syntaxError("transform %d: Last Substructure %d, want 0 or 3", j, last)
		}
		t, err := parseTransform(body)
		if err != nil {
			return p, within(err, "transform %d", j)
		}
		p.Transforms = append(p.Transforms, t)
	}
	// RFC 7296 3.3: "an implementation MUST check that the total Payload
	// Length is consistent with the payload's internal lengths and counts".
	if len(p.Transforms) != int(numTrans) {
		return p, syntaxError("Num Transforms %d, but %d transforms follow", numTrans, len(p.Transforms))
	}
	if len(p.Transforms) == 0 {
		return p, syntaxError("no transforms")
	}
	return p, nil
}

func parseTransform(s cryptobyte.String) (Transform, error) {
	var (
		t   Transform
		typ uint8
	)
	if !s.ReadUint8(&typ) || !s.Skip(1) || !s.ReadUint16(&t.ID) {
		return t, syntaxError("body truncated: want at least 4 octets")
	}
	t.Type = TransformType(typ)
	for len(s) > 0 {
		var (
			at    uint16
			value []byte
		)
		if !s.ReadUint16(&at) {
			return t, syntaxError("attribute truncated")
		}
		tv := at&attrFormatTV != 0
		at &^= attrFormatTV
		if tv {
			if !s.ReadBytes(&value, 2) {
				return t, syntaxError("attribute %d: TV value truncated", at)
			}
		} else if !s.ReadUint16LengthPrefixed((*cryptobyte.String)(&value)) {
			return t, syntaxError("attribute %d: TLV value runs past the end", at)
		}
		if AttributeType(at) == AttrKeyLength {
			// RFC 7296 3.3.5: the Key Length attribute is TV, once.
			switch {
			case !tv:
				return t, syntaxError("Key Length attribute in TLV format")
			case t.KeyLen != 0:
				return t, syntaxError("second Key Length attribute")
			}
			t.KeyLen = uint16(value[0])<<8 | uint16(value[1])
			if t.KeyLen == 0 {
				return t, syntaxError("Key Length attribute of 0 bits")
			}
			continue
		}
		t.Attrs = append(t.Attrs, Attribute{Type: AttributeType(at), TV: tv, Value: clip(value)})
	}
	return t, nil
}

func (p *SA) marshal(b *cryptobyte.Builder) {
	if len(p.Proposals) == 0 {
		b.SetError(marshalError("SA payload without proposals"))
		return
	}
	for i := range p.Proposals {
		if msg := checkProposalNum(p.Proposals[:i], p.Proposals[i].Num); msg != "" {
			b.SetError(marshalError("SA payload: %s", msg))
			return
		}
	}
	if msg := checkFirstProposalNum(p.Proposals); msg != "" {
		b.SetError(marshalError("SA payload: %s", msg))
		return
	}
	for i := range p.Proposals {
		prop := &p.Proposals[i]
		last := uint8(moreProposals)
		if i == len(p.Proposals)-1 {
			last = lastSubstructure
		}
		b.AddUint8(last)
		b.AddUint8(0)
		addStruct(b, "proposal", prop.marshal)
	}
}

func (p *Proposal) marshal(b *cryptobyte.Builder) {
	switch {
	case p.Protocol == ProtoNone:
		b.SetError(marshalError("proposal %d: Protocol ID 0", p.Num))
		return
	case !spiSizeOK(p.Protocol, len(p.SPI)) || len(p.SPI) > 0xff:
		b.SetError(marshalError("proposal %d: SPI of %d octets for protocol %v", p.Num, len(p.SPI), p.Protocol))
		return
	case len(p.Transforms) == 0 || len(p.Transforms) > 0xff:
		b.SetError(marshalError("proposal %d: %d transforms", p.Num, len(p.Transforms)))
		return
	}
	b.AddUint8(p.Num)
	b.AddUint8(uint8(p.Protocol))
	b.AddUint8(uint8(len(p.SPI)))
	b.AddUint8(uint8(len(p.Transforms)))
	b.AddBytes(p.SPI)
	for i := range p.Transforms {
		last := uint8(moreTransforms)
		if i == len(p.Transforms)-1 {
			last = lastSubstructure
		}
		b.AddUint8(last)
		b.AddUint8(0)
		addStruct(b, "transform", p.Transforms[i].marshal)
	}
}

func (t *Transform) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(t.Type))
	b.AddUint8(0)
	b.AddUint16(t.ID)
	if t.KeyLen != 0 {
		b.AddUint16(attrFormatTV | uint16(AttrKeyLength))
		b.AddUint16(t.KeyLen)
	}
	for _, a := range t.Attrs {
		switch {
		case a.Type&attrFormatTV != 0:
			b.SetError(marshalError("attribute type %d does not fit in 15 bits", a.Type))
			return
		case a.Type == AttrKeyLength:
			b.SetError(marshalError("Key Length in Attrs: set Transform.KeyLen"))
			return
		case a.TV && len(a.Value) != 2:
			b.SetError(marshalError("TV attribute %d with a %d-octet value", a.Type, len(a.Value)))
			return
		case a.TV:
			b.AddUint16(attrFormatTV | uint16(a.Type))
			b.AddBytes(a.Value)
		case len(a.Value) > 0xffff:
			b.SetError(marshalError("TLV attribute %d with a %d-octet value", a.Type, len(a.Value)))
			return
		default:
			b.AddUint16(uint16(a.Type))
			b.AddUint16(uint16(len(a.Value)))
			b.AddBytes(a.Value)
		}
	}
}
