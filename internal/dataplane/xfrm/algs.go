package xfrm

import (
	"fmt"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// kernelAlgs is how one SA's algorithms are named to the kernel: an AEAD, or
// a cipher with an integrity algorithm. Key lengths are in bytes; ICV and
// truncation lengths in bits, as the xfrm_algo_aead and xfrm_algo_auth
// structures take them.
type kernelAlgs struct {
	aead      string
	aeadICV   int
	crypt     string
	auth      string
	authTrunc int
	encrKey   int // bytes, AEAD salt included
	integKey  int
}

// algsFor maps the negotiated ESP transforms (RFC 7296 3.3.2) to the names of
// the Linux crypto API, as iproute2 and strongSwan's kernel-netlink use them.
func algsFor(encr wire.EncrID, keyBits int, integ wire.IntegID) (kernelAlgs, error) {
	var k kernelAlgs
	aesKey := func() error {
		switch keyBits {
		case 128, 192, 256:
			return nil
		}
		return fmt.Errorf("%w: AES key length %d bits", dataplane.ErrInvalidSA, keyBits)
	}
	switch encr {
	case wire.ENCR_AES_GCM_8, wire.ENCR_AES_GCM_12, wire.ENCR_AES_GCM_16:
		// RFC 4106 8.1: KEYMAT is the AES key followed by a 4-octet salt;
		// the ICV is 8, 12 or 16 octets (RFC 4106 6, RFC 5282 for IKEv2 IDs).
		if err := aesKey(); err != nil {
			return k, err
		}
		k.aead = "rfc4106(gcm(aes))"
		k.aeadICV = map[wire.EncrID]int{wire.ENCR_AES_GCM_8: 64, wire.ENCR_AES_GCM_12: 96, wire.ENCR_AES_GCM_16: 128}[encr]
		k.encrKey = keyBits/8 + 4
	case wire.ENCR_CHACHA20_POLY1305:
		// RFC 7634 2: a 256-bit key and a 32-bit salt; a 16-octet tag.
		if keyBits != 0 && keyBits != 256 {
			return k, fmt.Errorf("%w: ChaCha20-Poly1305 key length %d bits", dataplane.ErrInvalidSA, keyBits)
		}
		k.aead = "rfc7539esp(chacha20,poly1305)"
		k.aeadICV = 128
		k.encrKey = 32 + 4
	case wire.ENCR_AES_CBC:
		// RFC 3602.
		if err := aesKey(); err != nil {
			return k, err
		}
		k.crypt = "cbc(aes)"
		k.encrKey = keyBits / 8
	default:
		return k, fmt.Errorf("%w: encryption algorithm %v has no kernel mapping", dataplane.ErrInvalidSA, encr)
	}
	if k.aead != "" {
		if integ != wire.AUTH_NONE {
			return k, fmt.Errorf("%w: integrity algorithm %v with an AEAD", dataplane.ErrInvalidSA, integ)
		}
		return k, nil
	}
	switch integ {
	case wire.AUTH_HMAC_SHA1_96: // RFC 2404: HMAC-SHA-1 truncated to 96 bits
		k.auth, k.authTrunc, k.integKey = "hmac(sha1)", 96, 20
	case wire.AUTH_HMAC_SHA2_256_128: // RFC 4868 2.3: truncated to half the hash
		k.auth, k.authTrunc, k.integKey = "hmac(sha256)", 128, 32
	case wire.AUTH_HMAC_SHA2_384_192:
		k.auth, k.authTrunc, k.integKey = "hmac(sha384)", 192, 48
	case wire.AUTH_HMAC_SHA2_512_256:
		k.auth, k.authTrunc, k.integKey = "hmac(sha512)", 256, 64
	case wire.AUTH_NONE:
		// RFC 4303 3.2.2 allows confidentiality-only ESP; Cygnet does not.
		return k, fmt.Errorf("%w: %v without an integrity algorithm", dataplane.ErrInvalidSA, encr)
	default:
		return k, fmt.Errorf("%w: integrity algorithm %v has no kernel mapping", dataplane.ErrInvalidSA, integ)
	}
	return k, nil
}

// putAlgs appends the algorithm attributes of one state to m.
func (k *kernelAlgs) put(m *message, encrKey, integKey []byte) error {
	if len(encrKey) != k.encrKey {
		return fmt.Errorf("%w: encryption key of %d bytes, want %d", dataplane.ErrInvalidSA, len(encrKey), k.encrKey)
	}
	if len(integKey) != k.integKey {
		return fmt.Errorf("%w: integrity key of %d bytes, want %d", dataplane.ErrInvalidSA, len(integKey), k.integKey)
	}
	if k.aead != "" {
		// struct xfrm_algo_aead: name, key length in bits, ICV length in bits, key.
		v := m.attr(attrAlgAEAD, sizeAlgName+8+len(encrKey))
		copy(v[:sizeAlgName], k.aead)
		ne.PutUint32(v[sizeAlgName:], uint32(len(encrKey)*8))
		ne.PutUint32(v[sizeAlgName+4:], uint32(k.aeadICV))
		copy(v[sizeAlgName+8:], encrKey)
		return nil
	}
	// struct xfrm_algo: name, key length in bits, key.
	v := m.attr(attrAlgCrypt, sizeAlgName+4+len(encrKey))
	copy(v[:sizeAlgName], k.crypt)
	ne.PutUint32(v[sizeAlgName:], uint32(len(encrKey)*8))
	copy(v[sizeAlgName+4:], encrKey)
	// struct xfrm_algo_auth: name, key length in bits, truncation in bits, key.
	v = m.attr(attrAlgAuthTrunc, sizeAlgName+8+len(integKey))
	copy(v[:sizeAlgName], k.auth)
	ne.PutUint32(v[sizeAlgName:], uint32(len(integKey)*8))
	ne.PutUint32(v[sizeAlgName+4:], uint32(k.authTrunc))
	copy(v[sizeAlgName+8:], integKey)
	return nil
}
