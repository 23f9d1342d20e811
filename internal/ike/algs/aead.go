package algs

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// newAEAD builds the AEAD for e from the key without its salt.
func newAEAD(e *Encr, key []byte) (cipher.AEAD, error) {
	switch e.ID {
	case wire.ENCR_AES_GCM_12, wire.ENCR_AES_GCM_16:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCMWithTagSize(block, e.ICVLen)
	case wire.ENCR_CHACHA20_POLY1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("algs: no AEAD for encryption transform %d", e.ID)
}
