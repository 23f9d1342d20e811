package wire

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Payload is one IKE payload. The set of implementations is closed: the
// structs of this package, with *Unknown for payload types it does not
// understand.
type Payload interface {
	// Type is the payload type, as named by the previous payload's (or the
	// header's) Next Payload field.
	Type() PayloadType
	// marshal writes the payload's body, after the generic payload header.
	marshal(b *cryptobyte.Builder)
}

// Unknown is a payload of a type this package does not understand. RFC 7296
// 2.5: one with the critical bit set fails the whole message with
// UNSUPPORTED_CRITICAL_PAYLOAD; one without it is skipped, which here means
// kept as an *Unknown for the caller to ignore.
type Unknown struct {
	PType    PayloadType
	Critical bool // only ever false on parsed payloads
	Data     []byte
}

func (p *Unknown) Type() PayloadType { return p.PType }

func (p *Unknown) marshal(b *cryptobyte.Builder) {
	if p.PType == PayloadNone || understood(p.PType) {
		b.SetError(marshalError("an Unknown payload needs a type this package does not parse, not %v", p.PType))
		return
	}
	b.AddBytes(p.Data)
}

// understood reports whether t is a payload type this package parses.
func understood(t PayloadType) bool {
	return t >= PayloadSA && t <= PayloadEAP || t == PayloadSKF
}

// genericCritical is the C bit in the second octet of the generic payload
// header (RFC 7296 3.2); the other seven bits are RESERVED.
const genericCritical = 0x80

// ParsePayloads parses a chain of payloads whose first payload has type first:
// the decrypted contents of an SK payload (or of a reassembled set of SKF
// payloads), without the padding and Pad Length, with first taken from the
// SK payload's Next Payload field. An SK or SKF payload inside it is
// INVALID_SYNTAX. The payloads alias b.
func ParsePayloads(first PayloadType, b []byte) ([]Payload, error) {
	return parseChain(first, cryptobyte.String(b), false)
}

// parseChain parses payloads following the Next Payload chain (RFC 7296 3.2)
// until a Next Payload of zero, and requires that nothing follows. In the
// outer chain of a message (outer), an SK or SKF payload ends the chain: its
// Next Payload names the first payload inside it (RFC 7296 3.14, RFC 7383 2.5).
func parseChain(next PayloadType, s cryptobyte.String, outer bool) ([]Payload, error) {
	var ps []Payload
	for next != PayloadNone {
		t := next
		n, flags, body, err := readStruct(&s, structName{payload: t})
		if err != nil {
			return nil, err
		}
		next = PayloadType(n)
		critical := flags&genericCritical != 0

		if t == PayloadSK || t == PayloadSKF {
			if !outer {
				return nil, syntaxError("%v payload inside an Encrypted payload", t)
			}
			// RFC 7296 3.14, RFC 7383 2.5: it MUST be the last payload.
			if len(s) != 0 {
				return nil, syntaxError("%d octets follow the %v payload, which must be the last", len(s), t)
			}
			var p Payload
			if t == PayloadSK {
				p = &Encrypted{NextPayload: next, Data: clip(body)}
			} else {
				p, err = parseEncryptedFragment(next, body)
				if err != nil {
					return nil, within(err, "SKF payload")
				}
			}
			return append(ps, p), nil
		}

		p, err := parsePayload(t, body, critical)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if len(s) != 0 {
		return nil, syntaxError("%d octets after the last payload", len(s))
	}
	return ps, nil
}

// parsePayload parses the body of one payload other than SK and SKF.
func parsePayload(t PayloadType, body cryptobyte.String, critical bool) (Payload, error) {
	var (
		p   Payload
		err error
	)
	switch t {
	case PayloadSA:
		p, err = parseSA(body)
	case PayloadKE:
		p, err = parseKE(body)
	case PayloadIDi, PayloadIDr:
		p, err = parseID(t, body)
	case PayloadCERT:
		p, err = parseCert(body)
	case PayloadCERTREQ:
		p, err = parseCertReq(body)
	case PayloadAUTH:
		p, err = parseAuth(body)
	case PayloadNonce:
		p, err = parseNonce(body)
	case PayloadNotify:
		p, err = parseNotify(body)
	case PayloadDelete:
		p, err = parseDelete(body)
	case PayloadVendorID:
		p = &VendorID{Data: clip(body)}
	case PayloadTSi, PayloadTSr:
		p, err = parseTS(t, body)
	case PayloadCP:
		p, err = parseConfig(body)
	case PayloadEAP:
		p, err = parseEAP(body)
	default:
		// RFC 7296 2.5, 3.2: the critical bit decides; for payload types we
		// understand it is ignored.
		if critical {
			return nil, &Error{
				Notify: UNSUPPORTED_CRITICAL_PAYLOAD,
				Data:   []byte{byte(t)},
				Reason: fmt.Sprintf("payload type %d (%v) is marked critical", uint8(t), t),
			}
		}
		return &Unknown{PType: t, Data: clip(body)}, nil
	}
	if err != nil {
		return nil, within(err, "%v payload", t)
	}
	return p, nil
}

// MarshalPayloads encodes ps as a payload chain and returns the type of the
// first payload (for the Next Payload field of the header or of the SK
// payload that will carry them) and the encoding. It is the plaintext that
// goes inside an SK payload, so ps may not contain SK or SKF.
func MarshalPayloads(ps []Payload) (first PayloadType, body []byte, err error) {
	b := cryptobyte.NewBuilder(nil)
	marshalChain(b, ps, false)
	body, err = b.Bytes()
	if err != nil {
		return PayloadNone, nil, err
	}
	if len(ps) > 0 {
		first = ps[0].Type()
	}
	return first, body, nil
}

// marshalChain writes ps with their generic headers, chaining the Next
// Payload fields. SK and SKF must be last, and only in a message's outer
// chain; their Next Payload names the first payload inside them.
func marshalChain(b *cryptobyte.Builder, ps []Payload, outer bool) {
	for i, p := range ps {
		if p == nil {
			b.SetError(marshalError("payload %d is nil", i+1))
			return
		}
		next := PayloadNone
		if i+1 < len(ps) {
			if ps[i+1] == nil {
				b.SetError(marshalError("payload %d is nil", i+2))
				return
			}
			next = ps[i+1].Type()
		}
		var flags uint8
		switch p := p.(type) {
		case *Encrypted, *EncryptedFragment:
			if !outer {
				b.SetError(marshalError("%v payload inside an Encrypted payload", p.Type()))
				return
			}
			if i != len(ps)-1 {
				b.SetError(marshalError("%v payload must be the last payload", p.Type()))
				return
			}
			if sk, ok := p.(*Encrypted); ok {
				next = sk.NextPayload
			} else {
				next = p.(*EncryptedFragment).NextPayload
			}
		case *Unknown:
			if p.Critical {
				flags = genericCritical
			}
		}
		b.AddUint8(uint8(next))
		b.AddUint8(flags)
		addStruct(b, p.Type().String()+" payload", p.marshal)
	}
}
