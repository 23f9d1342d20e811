package wire

import (
	"golang.org/x/crypto/cryptobyte"
)

// KE is the Key Exchange payload (RFC 7296 3.4).
type KE struct {
	Group KEID
	Data  []byte // the public value (or, for a KEM, encapsulation key or ciphertext), fixed length per group
}

// Nonce is the Nonce payload, Ni or Nr (RFC 7296 3.9).
type Nonce struct {
	Data []byte // 16 to 256 octets
}

func (p *KE) Type() PayloadType    { return PayloadKE }
func (p *Nonce) Type() PayloadType { return PayloadNonce }

// keDataLen returns the valid lengths of the Key Exchange Data of group g:
// RFC 7296 3.4 (MODP values padded to the length of the prime), RFC 5903 7
// and RFC 6954 (ECP: x | y), RFC 8031 (Curve25519, Curve448), RFC 5114, and
// ML-KEM (draft-ietf-ipsecme-ikev2-mlkem: the encapsulation key in a request,
// the ciphertext in a response; this package does not know which it sees, so
// either is accepted). It returns nil for groups it does not know: a KE of an
// unsupported group must still parse, so that the responder can answer
// INVALID_KE_PAYLOAD (RFC 7296 1.2).
func keDataLen(g KEID) []int {
	switch g {
	case KE_MODP768:
		return []int{96}
	case KE_MODP1024, KE_MODP1024_160:
		return []int{128}
	case KE_MODP1536:
		return []int{192}
	case KE_MODP2048, KE_MODP2048_224, KE_MODP2048_256:
		return []int{256}
	case KE_MODP3072:
		return []int{384}
	case KE_MODP4096:
		return []int{512}
	case KE_MODP6144:
		return []int{768}
	case KE_MODP8192:
		return []int{1024}
	case KE_ECP192:
		return []int{48}
	case KE_ECP224, 27: // 27: brainpoolP224r1
		return []int{56}
	case KE_ECP256, 28: // 28: brainpoolP256r1
		return []int{64}
	case KE_ECP384, 29: // 29: brainpoolP384r1
		return []int{96}
	case KE_ECP521:
		return []int{132}
	case 30: // brainpoolP512r1
		return []int{128}
	case KE_CURVE25519:
		return []int{32}
	case KE_CURVE448:
		return []int{56}
	case KE_MLKEM512:
		return []int{800, 768}
	case KE_MLKEM768:
		return []int{1184, 1088}
	case KE_MLKEM1024:
		return []int{1568}
	}
	return nil
}

// checkKEData returns a reason if data has the wrong length for group g.
func checkKEData(g KEID, data []byte) (reason string, ok bool) {
	want := keDataLen(g)
	if want == nil {
		return "", true
	}
	for _, n := range want {
		if len(data) == n {
			return "", true
		}
	}
	if len(want) == 1 {
		return sprintf("data length %d, want %d for %v", len(data), want[0], g), false
	}
	return sprintf("data length %d, want %d or %d for %v", len(data), want[0], want[1], g), false
}

func parseKE(s cryptobyte.String) (*KE, error) {
	var g uint16
	if !s.ReadUint16(&g) || !s.Skip(2) {
		return nil, syntaxError("body truncated: want at least 4 octets")
	}
	p := &KE{Group: KEID(g), Data: clip(s)}
	if reason, ok := checkKEData(p.Group, p.Data); !ok {
		return nil, syntaxError("%s", reason)
	}
	return p, nil
}

func (p *KE) marshal(b *cryptobyte.Builder) {
	if reason, ok := checkKEData(p.Group, p.Data); !ok {
		b.SetError(marshalError("KE payload: %s", reason))
		return
	}
	b.AddUint16(uint16(p.Group))
	b.AddUint16(0)
	b.AddBytes(p.Data)
}

// RFC 7296 3.9: "The size of the Nonce Data MUST be between 16 and 256
// octets, inclusive."
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

func parseNonce(s cryptobyte.String) (*Nonce, error) {
	if len(s) < MinNonceLen || len(s) > MaxNonceLen {
		return nil, syntaxError("nonce of %d octets, want %d to %d", len(s), MinNonceLen, MaxNonceLen)
	}
	return &Nonce{Data: clip(s)}, nil
}

func (p *Nonce) marshal(b *cryptobyte.Builder) {
	if len(p.Data) < MinNonceLen || len(p.Data) > MaxNonceLen {
		b.SetError(marshalError("nonce of %d octets, want %d to %d", len(p.Data), MinNonceLen, MaxNonceLen))
		return
	}
	b.AddBytes(p.Data)
}
