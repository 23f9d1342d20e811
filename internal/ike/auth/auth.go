// Package auth implements IKEv2 authentication (RFC 7296 2.15, 2.16,
// 3.5-3.8): identities (ID payloads), X.509 credentials and trust, CERTREQ
// hashes, and the AUTH payload's data for shared keys and signatures, with
// the classic RSA and ECDSA methods (RFC 7296, RFC 4754), RFC 7427 Digital
// Signature authentication and Ed25519 (RFC 8420).
//
// The package neither builds messages nor derives keys: the IKE SA hands it
// the octets to sign (RFC 7296 2.15, computed by package keys) and receives
// AUTH payload data. Errors that mean "the peer did not authenticate" match
// ErrAuthenticationFailed (errors.Is), so the state machine can answer with
// AUTHENTICATION_FAILED; their text names the reason, never key material.
package auth

import (
	"errors"
	"fmt"
)

// ErrAuthenticationFailed is matched (errors.Is) by every error that means
// the peer's authentication must be rejected with AUTHENTICATION_FAILED
// (RFC 7296 2.21.2): a bad signature or PSK MIC, an untrusted certificate, an
// identity the certificate does not prove, a scheme we did not allow.
var ErrAuthenticationFailed = errors.New("auth: authentication failed")

// Error is an authentication failure with its reason. It matches
// ErrAuthenticationFailed and unwraps to the underlying cause, if any.
type Error struct {
	Reason string // one line, e.g. `signature does not verify with the key of "CN=gw-b"`
	Err    error  // the cause (an x509 error, ...), or nil
}

func (e *Error) Error() string { return "auth: " + e.Reason }

// Is makes errors.Is(err, ErrAuthenticationFailed) true.
func (e *Error) Is(target error) bool { return target == ErrAuthenticationFailed }

func (e *Error) Unwrap() error { return e.Err }

// failf returns an *Error with a formatted reason.
func failf(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// failWrap returns an *Error with a formatted reason and a cause.
func failWrap(err error, format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...), Err: err}
}
