package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a decoding error. Notify is the notify message type RFC 7296 says
// to answer with (where the RFC says to answer at all) and Data its
// notification data.
//
// Compare with errors.As, or with errors.Is against an *Error that has only
// Notify set:
//
//	errors.Is(err, &wire.Error{Notify: wire.INVALID_SYNTAX})
type Error struct {
	Notify NotifyType // INVALID_SYNTAX, UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_MAJOR_VERSION
	Data   []byte     // notification data to send; nil for none
	Reason string     // which payload or field, and why
}

func (e *Error) Error() string {
	name := strings.ToLower(strings.ReplaceAll(e.Notify.String(), "_", " "))
	if e.Reason == "" {
		return "wire: " + name
	}
	return "wire: " + name + ": " + e.Reason
}

// Is reports whether target is an *Error with the same Notify and no Reason or
// Data of its own, so that errors.Is can test for a kind of error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == "" && t.Data == nil && t.Notify == e.Notify
}

// syntaxError returns an INVALID_SYNTAX error. RFC 7296 3.10.1: INVALID_SYNTAX
// "indicates the IKE message that was received was invalid because some type,
// length, or value was out of range or because the request was rejected for
// policy reasons"; its notification data is empty.
func syntaxError(format string, args ...any) *Error {
	return &Error{Notify: INVALID_SYNTAX, Reason: fmt.Sprintf(format, args...)}
}

// in prefixes the reason with the structure the error was found in, so that
// nested errors read "SA payload: proposal 2: transform 1: ...".
func (e *Error) in(format string, args ...any) *Error {
	e.Reason = fmt.Sprintf(format, args...) + ": " + e.Reason
	return e
}

// marshalError is the error of a Marshal call given a value that cannot be
// encoded (or would not parse back). It is not an *Error: nothing is sent.
func marshalError(format string, args ...any) error {
	return fmt.Errorf("wire: marshal: "+format, args...)
}

var sprintf = fmt.Sprintf

// reasonOf returns the Reason of a decoding error, or its text.
func reasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return err.Error()
}
