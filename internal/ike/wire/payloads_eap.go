package wire

import (
	"golang.org/x/crypto/cryptobyte"
)

// EAP is the Extensible Authentication payload (RFC 7296 3.16).
type EAP struct {
	// Data is the EAP message (RFC 3748 4): Code, Identifier, Length, and
	// for requests and responses Type and Type-Data.
	Data []byte
}

func (p *EAP) Type() PayloadType { return PayloadEAP }

// EAP codes that carry a Type octet (RFC 3748 4).
const (
	eapRequest  = 1
	eapResponse = 2
)

// checkEAP returns a reason if msg is not one whole EAP message: RFC 3748 4
// gives it the same header shape as an IKE payload, with a Length counting
// the whole message, and requests and responses have a Type octet.
func checkEAP(msg []byte) string {
	s := cryptobyte.String(msg)
	code, _, body, err := readStruct(&s, structName{what: "EAP message"})
	switch {
	case err != nil:
		return reasonOf(err)
	case len(s) != 0:
		return sprintf("EAP Length %d, but the payload holds %d octets", len(msg)-len(s), len(msg))
	case (code == eapRequest || code == eapResponse) && len(body) == 0:
		return sprintf("EAP code %d without a Type", code)
	}
	return ""
}

func parseEAP(s cryptobyte.String) (*EAP, error) {
	if reason := checkEAP(s); reason != "" {
		return nil, syntaxError("%s", reason)
	}
	return &EAP{Data: clip(s)}, nil
}

func (p *EAP) marshal(b *cryptobyte.Builder) {
	if reason := checkEAP(p.Data); reason != "" {
		b.SetError(marshalError("EAP payload: %s", reason))
		return
	}
	b.AddBytes(p.Data)
}
