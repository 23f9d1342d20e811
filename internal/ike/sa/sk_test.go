package sa

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// sealRaw builds an AES-GCM-16 protected message from an arbitrary inner
// plaintext (the wire package refuses to marshal malformed payloads), as the
// side with SK_e key|salt would send it (RFC 5282).
func sealRaw(t testing.TB, ske []byte, h wire.Header, first wire.PayloadType, inner []byte) []byte {
	t.Helper()
	key, salt := ske[:len(ske)-4], ske[len(ske)-4:]
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	pt := append(append([]byte{}, inner...), 0) // Pad Length 0
	total := wire.HeaderLen + 4 + 8 + len(pt) + 16
	h.NextPayload = wire.PayloadSK
	h.Length = uint32(total)
	out := h.AppendTo(nil)
	out = append(out, byte(first), 0)
	out = binary.BigEndian.AppendUint16(out, uint16(total-wire.HeaderLen))
	iv := []byte{9, 9, 9, 9, 9, 9, 9, 9}
	aad := append([]byte{}, out...)
	out = append(out, iv...)
	nonce := append(append([]byte{}, salt...), iv...)
	return aead.Seal(out, nonce, pt, aad)
}

// rawPayload is one payload with its generic header and no next payload.
func rawPayload(body []byte) []byte {
	b := []byte{0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(body)))
	return append(b, body...)
}
