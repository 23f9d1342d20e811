package wire

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Payloads, proposals, transforms, traffic selectors and the EAP message
// inside an EAP payload share one shape: two octets, a 16-bit length that
// counts the whole structure including these four header octets (RFC 7296
// 3.2, 3.3.1, 3.3.2, 3.13.1; RFC 3748 4), then the body. readStruct and
// addStruct are the only code that reads or writes such a length.

// structHeaderLen is the size of the shared header: two octets and the length.
const structHeaderLen = 4

// readStruct reads one such structure from s and returns its two leading
// octets and its body. name says what it is in errors.
func readStruct(s *cryptobyte.String, name structName) (a, b uint8, body cryptobyte.String, err error) {
	if len(*s) < structHeaderLen {
		return 0, 0, nil, syntaxError("%v header truncated: %d octets left, want %d", name, len(*s), structHeaderLen)
	}
	var n uint16
	s.ReadUint8(&a)
	s.ReadUint8(&b)
	s.ReadUint16(&n)
	if n < structHeaderLen {
		return 0, 0, nil, syntaxError("%v length %d is shorter than its %d-octet header", name, n, structHeaderLen)
	}
	if !s.ReadBytes((*[]byte)(&body), int(n)-structHeaderLen) {
		return 0, 0, nil, syntaxError("%v length %d runs past the end: %d octets left after its header", name, n, len(*s))
	}
	return a, b, body, nil
}

// structName names a structure in errors, "KE payload" or "proposal 2", and
// is formatted only when there is an error: parsing is on the path of every
// datagram.
type structName struct {
	payload PayloadType // if what is empty
	what    string
	index   int // 1-based position, or 0
}

func (n structName) String() string {
	switch {
	case n.what == "":
		return n.payload.String() + " payload"
	case n.index == 0:
		return n.what
	}
	return fmt.Sprintf("%s %d", n.what, n.index)
}

// addStruct appends the length field of a structure whose two leading octets
// the caller has just written, followed by the body that f writes. what names
// the structure in errors.
func addStruct(b *cryptobyte.Builder, what string, f cryptobyte.BuilderContinuation) {
	child := cryptobyte.NewBuilder(make([]byte, 0, 128))
	f(child)
	body, err := child.Bytes()
	if err != nil {
		b.SetError(err)
		return
	}
	if len(body) > 0xffff-structHeaderLen {
		b.SetError(marshalError("%s of %d octets does not fit its 16-bit length", what, structHeaderLen+len(body)))
		return
	}
	b.AddUint16(uint16(structHeaderLen + len(body)))
	b.AddBytes(body)
}

// within prefixes the reason of a decoding error with where it was found.
func within(err error, format string, args ...any) error {
	var e *Error
	if errors.As(err, &e) {
		return e.in(format, args...)
	}
	return err
}

// clip returns nil for an empty slice, else b with its capacity clipped so
// that an append by the caller can never write into the buffer b came from.
func clip(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}
