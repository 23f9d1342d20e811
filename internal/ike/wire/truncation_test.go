package wire

import (
	"bytes"
	"errors"
	"testing"
)

// TestTruncation requires an error, never a panic or a success, for every
// strict prefix of valid messages: once as the datagram is cut (the header
// Length no longer matches), and once with the Length field patched to the
// prefix so that the payload parsers see the truncation themselves.
func TestTruncation(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			full := mustMarshal(s.msg())
			if _, err := Parse(full); err != nil {
				t.Fatalf("the sample does not parse: %v", err)
			}
			for i := range len(full) {
				prefix := bytes.Clone(full[:i])
				if m, err := Parse(prefix); err == nil {
					t.Fatalf("prefix of %d octets parsed: %#v", i, m)
				}
				if i < HeaderLen {
					continue
				}
				patched := fixLength(prefix)
				m, err := Parse(patched)
				if err == nil {
					t.Fatalf("prefix of %d octets with Length patched parsed: %#v", i, m)
				}
				if !errors.Is(err, &Error{Notify: INVALID_SYNTAX}) {
					t.Fatalf("prefix of %d octets: %v, want INVALID_SYNTAX", i, err)
				}
			}

			// The same for the payload chain alone, as inside SK.
			m := s.msg()
			if _, ok := m.Payloads[len(m.Payloads)-1].(*Encrypted); ok {
				return
			}
			if _, ok := m.Payloads[len(m.Payloads)-1].(*EncryptedFragment); ok {
				return
			}
			first, body, err := MarshalPayloads(m.Payloads)
			if err != nil {
				t.Fatal(err)
			}
			for i := range len(body) {
				if ps, err := ParsePayloads(first, body[:i]); err == nil {
					t.Fatalf("chain prefix of %d octets parsed: %#v", i, ps)
				}
			}
		})
	}
}
