package algs

import (
	"crypto/rand"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// BenchmarkKE measures each side of a key exchange: the initiator's
// Generate and SharedSecret, and the responder's Respond.
func BenchmarkKE(b *testing.B) {
	for _, id := range []wire.KEID{wire.KE_CURVE25519, wire.KE_ECP256, wire.KE_ECP384, wire.KE_MODP2048, wire.KE_MLKEM768} {
		m := LookupKE(id)
		peer, err := m.Generate(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		response, _, err := m.Respond(rand.Reader, peer.Public())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(m.Keyword+"/initiator", func(b *testing.B) {
			for b.Loop() {
				k, err := m.Generate(rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				if m.KEM {
					// The ciphertext must be for our key; the
					// encapsulation is the responder's work.
					b.StopTimer()
					response, _, err = m.Respond(rand.Reader, k.Public())
					b.StartTimer()
				}
				if _, err := k.SharedSecret(response); err != nil {
					b.Fatal(err)
				}
				k.Destroy()
			}
		})
		b.Run(m.Keyword+"/responder", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := m.Respond(rand.Reader, peer.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAEAD(b *testing.B) {
	for _, c := range []struct {
		name string
		e    *Encr
		bits int
	}{
		{"aes128gcm16", LookupEncr(wire.ENCR_AES_GCM_16), 128},
		{"aes128gcm8", LookupEncr(wire.ENCR_AES_GCM_8), 128},
		{"chacha20poly1305", LookupEncr(wire.ENCR_CHACHA20_POLY1305), 256},
	} {
		aead, _, err := c.e.NewAEAD(make([]byte, c.e.KeyMatLen(c.bits)))
		if err != nil {
			b.Fatal(err)
		}
		nonce := make([]byte, 12)
		buf := make([]byte, 1400, 1400+32)
		sealed := aead.Seal(nil, nonce, buf, nil)
		b.Run(c.name+"/seal-1400", func(b *testing.B) {
			b.SetBytes(1400)
			for b.Loop() {
				aead.Seal(buf[:0], nonce, buf, nil)
			}
		})
		b.Run(c.name+"/open-1400", func(b *testing.B) {
			b.SetBytes(1400)
			out := make([]byte, 0, 1400)
			for b.Loop() {
				if _, err := aead.Open(out, nonce, sealed, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
