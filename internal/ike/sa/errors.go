package sa

import (
	"errors"
	"fmt"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// NotifyError is the error of everything that fails with a notify, in either
// direction (RFC 7296 2.21): Remote says whether the peer sent it (and we
// failed because of it) or we sent it (and the peer failed). Reason is the
// one line an operator reads; Err is the underlying cause, if any.
//
// Compare with errors.Is against a NotifyError that has only Type set:
//
//	errors.Is(err, &sa.NotifyError{Type: wire.AUTHENTICATION_FAILED})
type NotifyError struct {
	Type   wire.NotifyType
	Data   []byte // notification data sent or received
	Remote bool
	Reason string
	Err    error
}

// Error reads "ike: NO_PROPOSAL_CHOSEN: no proposal chosen: we offered X,
// peer offered Y" for a notify we sent, and "ike: peer rejected our proposals
// X (NO_PROPOSAL_CHOSEN)" for one the peer sent.
func (e *NotifyError) Error() string {
	if e.Remote {
		if e.Reason == "" {
			return fmt.Sprintf("ike: peer sent %v", e.Type)
		}
		return fmt.Sprintf("ike: %s (%v)", e.Reason, e.Type)
	}
	if e.Reason == "" {
		return fmt.Sprintf("ike: %v", e.Type)
	}
	return fmt.Sprintf("ike: %v: %s", e.Type, e.Reason)
}

// Is reports whether target is a *NotifyError of the same Type.
func (e *NotifyError) Is(target error) bool {
	t, ok := target.(*NotifyError)
	return ok && t.Type == e.Type
}

func (e *NotifyError) Unwrap() error { return e.Err }

// ErrNoAnswer is wrapped by the error of an exchange the peer never answered
// within the retransmission schedule (RFC 7296 2.4), and of a responder's
// IKE SA whose IKE_AUTH never came.
var ErrNoAnswer = errors.New("ike: peer did not answer")

// ErrNotSupported is wrapped by the errors of requests this engine does not
// implement (none at the moment; kept for the API).
var ErrNotSupported = errors.New("ike: not supported")

// localNotify is a NotifyError for a notify we send.
func localNotify(t wire.NotifyType, err error, format string, args ...any) *NotifyError {
	return &NotifyError{Type: t, Reason: fmt.Sprintf(format, args...), Err: err}
}

// remoteNotify is a NotifyError for a notify the peer sent.
func remoteNotify(n *wire.Notify, format string, args ...any) *NotifyError {
	return &NotifyError{Type: n.NotifyType, Data: n.Data, Remote: true, Reason: fmt.Sprintf(format, args...)}
}
