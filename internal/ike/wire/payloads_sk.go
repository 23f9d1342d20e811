package wire

import (
	"golang.org/x/crypto/cryptobyte"
)

// Encrypted is the Encrypted and Authenticated payload, SK (RFC 7296 3.14).
// It is always the last payload of a message.
type Encrypted struct {
	// NextPayload is the type of the first payload inside (zero if none):
	// the SK payload's own Next Payload field.
	NextPayload PayloadType
	// Data is the rest of the payload as sent: IV, ciphertext (with padding
	// and Pad Length) and ICV, which the keys package takes apart.
	Data []byte
}

// EncryptedFragment is the Encrypted Fragment payload, SKF (RFC 7383 2.5).
// It is always the last payload of a message.
type EncryptedFragment struct {
	// NextPayload is the type of the first payload of the reassembled
	// message in fragment 1, and zero in the others.
	NextPayload PayloadType
	Number      uint16 // 1..Total
	Total       uint16 // at least 1
	Data        []byte // IV, ciphertext, ICV
}

func (p *Encrypted) Type() PayloadType         { return PayloadSK }
func (p *EncryptedFragment) Type() PayloadType { return PayloadSKF }

func (p *Encrypted) marshal(b *cryptobyte.Builder) { b.AddBytes(p.Data) }

// checkFragment returns a reason if the fragment header breaks RFC 7383 2.5:
// "Fragment Number ... MUST be less than or equal to the next field (Total
// Fragments). This field MUST NOT be zero." "Total Fragments ... This field
// MUST NOT be zero." Next Payload: "In the rest of the Fragment messages
// (with Fragment Number greater than 1), this field MUST be set to zero."
func checkFragment(next PayloadType, number, total uint16) string {
	switch {
	case total == 0:
		return "Total Fragments 0"
	case number == 0 || number > total:
		return sprintf("Fragment Number %d of %d", number, total)
	case number > 1 && next != PayloadNone:
		return sprintf("fragment %d has Next Payload %v, want 0", number, next)
	}
	return ""
}

func parseEncryptedFragment(next PayloadType, s cryptobyte.String) (*EncryptedFragment, error) {
	p := &EncryptedFragment{NextPayload: next}
	if !s.ReadUint16(&p.Number) || !s.ReadUint16(&p.Total) {
		return nil, syntaxError("body truncated: want at least 4 octets")
	}
	if reason := checkFragment(next, p.Number, p.Total); reason != "" {
		return nil, syntaxError("%s", reason)
	}
	p.Data = clip(s)
	return p, nil
}

func (p *EncryptedFragment) marshal(b *cryptobyte.Builder) {
	if reason := checkFragment(p.NextPayload, p.Number, p.Total); reason != "" {
		b.SetError(marshalError("SKF payload: %s", reason))
		return
	}
	b.AddUint16(p.Number)
	b.AddUint16(p.Total)
	b.AddBytes(p.Data)
}
