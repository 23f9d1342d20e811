package wire

import (
	"bytes"

	"golang.org/x/crypto/cryptobyte"
)

// Message is a whole IKE message: the header and its payloads.
type Message struct {
	Header

	// Payloads in order. If the message carries an SK (or SKF) payload, it
	// is the last element, an *Encrypted (or *EncryptedFragment), still
	// encrypted.
	Payloads []Payload

	// Raw is the exact datagram parsed (set by Parse). AUTH signs the
	// IKE_SA_INIT messages verbatim (RFC 7296 2.15) and the SK integrity
	// check covers them.
	Raw []byte
}

// Parse parses a whole IKE message: a UDP datagram without the non-ESP marker.
// The Message and its payloads refer to a copy of b, held in Raw, so the
// caller may reuse b.
//
// On error Parse returns nil and an *Error; ParseHeader on the same datagram
// gives the fields needed to address an error notify.
func Parse(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	raw := bytes.Clone(b)
	ps, err := parseChain(h.NextPayload, cryptobyte.String(raw[HeaderLen:]), true)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Payloads: ps, Raw: raw}, nil
}

// Marshal encodes the message. It computes every length and the Next Payload
// chain, and records the header fields it computed (NextPayload, Length and a
// zero MajorVersion) in m. An SK or SKF payload must be the last one; its
// Data is written as given.
//
// To protect an SK payload, marshal the message with the ICV octets of Data
// zero, compute the ICV over the result without them, and write it into the
// last octets.
func (m *Message) Marshal() ([]byte, error) {
	switch {
	case m.MajorVersion != 0 && m.MajorVersion != MajorVersion:
		return nil, marshalError("major version %d, this package speaks %d", m.MajorVersion, MajorVersion)
	case m.MinorVersion > 0x0f:
		return nil, marshalError("minor version %d does not fit in four bits", m.MinorVersion)
	}
	body := cryptobyte.NewBuilder(nil)
	marshalChain(body, m.Payloads, true)
	payloads, err := body.Bytes()
	if err != nil {
		return nil, err
	}
	if uint64(len(payloads)) > 0xffffffff-HeaderLen {
		return nil, marshalError("message of %d octets is too long", HeaderLen+len(payloads))
	}
	m.MajorVersion = MajorVersion
	m.NextPayload = PayloadNone
	if len(m.Payloads) > 0 {
		m.NextPayload = m.Payloads[0].Type()
	}
	m.Length = uint32(HeaderLen + len(payloads))
	out := make([]byte, 0, m.Length)
	out = m.Header.AppendTo(out)
	return append(out, payloads...), nil
}

// EncryptedPrefix returns the octets of Raw that precede the Data of the
// message's SK or SKF payload: the IKE header, any unencrypted payloads, and
// the SK (or SKF) payload's own header fields. These are the associated data
// of an AEAD (RFC 5282 5.1, RFC 7383 2.5), and with the ciphertext they are
// what the integrity checksum covers (RFC 7296 3.14). It returns nil if the
// message has no SK or SKF payload or no Raw.
func (m *Message) EncryptedPrefix() []byte {
	if len(m.Payloads) == 0 || m.Raw == nil {
		return nil
	}
	var data []byte
	switch p := m.Payloads[len(m.Payloads)-1].(type) {
	case *Encrypted:
		data = p.Data
	case *EncryptedFragment:
		data = p.Data
	default:
		return nil
	}
	if len(data) > len(m.Raw) {
		return nil
	}
	return m.Raw[:len(m.Raw)-len(data)]
}
