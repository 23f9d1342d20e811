package keys

import (
	"errors"
	"sync"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

var fuzzProtectors = sync.OnceValue(func() (p [2][2]*Protector) {
	for i, s := range [...]string{"cbc", "aead"} {
		suite := suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128)
		if s == "aead" {
			suite = suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 256, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE)
		}
		prf := suite.PRFAlg()
		ni, nr := []byte("fuzz initiator nonce"), []byte("fuzz responder nonce")
		k, err := DeriveIKEKeys(suite, SKEYSEED(prf, ni, nr, []byte("shared secret")), ni, nr, 1, 2)
		if err != nil {
			panic(err)
		}
		for j, initiator := range []bool{true, false} {
			if p[i][j], err = NewProtector(suite, k, initiator); err != nil {
				panic(err)
			}
		}
	}
	return p
})

// FuzzOpen feeds arbitrary bytes to a fixed Protector, as a received
// message (mode bit 1 clear) or, to get past the integrity check, as the
// plaintext of an authentic SK or SKF payload (mode bit 1 set; bit 2 picks
// SKF). Mode bit 0 picks AES-CBC + HMAC or AES-GCM. Nothing may panic, and
// an authentic payload never fails the integrity check.
func FuzzOpen(f *testing.F) {
	ps := fuzzProtectors()
	for aead := range 2 {
		sender := ps[aead][0]
		for _, payloads := range [][]wire.Payload{nil, authPayloads(0), authPayloads(300)} {
			b, err := sender.Seal(authHeader(), payloads, testRand(9))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint8(aead))
			_, body, _ := wire.MarshalPayloads(payloads)
			f.Add(append(body, 0), uint8(aead|2))
			f.Add(append(body, 0), uint8(aead|6))
		}
		frags, err := sender.SealFragments(authHeader(), authPayloads(300), testRand(9), 200)
		if err != nil {
			f.Fatal(err)
		}
		for _, b := range frags {
			f.Add(b, uint8(aead))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		sender, receiver := ps[mode&1][0], ps[mode&1][1]
		if mode&2 == 0 {
			m, err := wire.Parse(data)
			if err != nil {
				return
			}
			receiver.Open(m)
			receiver.OpenFragment(m)
			return
		}
		// Authentic plaintext: trim to the cipher's alignment.
		n := len(data) / sender.block * sender.block
		if n == 0 || n > 60000 {
			return
		}
		sp := skParams{next: wire.PayloadType(data[0])}
		if mode&4 != 0 {
			sp = skParams{frag: true, number: 1, total: 1, next: sp.next}
		}
		b, err := sender.sealPadded(authHeader(), sp, n, testRand(10), func(pt []byte) { copy(pt, data) })
		if err != nil {
			t.Fatal(err)
		}
		m, err := wire.Parse(b)
		if err != nil {
			// The SK Next Payload byte can make the outer chain invalid
			// (wire checks it); nothing to open then.
			return
		}
		if mode&4 != 0 {
			f, err := receiver.OpenFragment(m)
			if errors.Is(err, ErrIntegrity) {
				t.Fatalf("authentic fragment failed the integrity check")
			}
			if err == nil {
				ReassembleFragments([]Fragment{f})
			}
			return
		}
		if _, err := receiver.Open(m); errors.Is(err, ErrIntegrity) {
			t.Fatalf("authentic message failed the integrity check")
		} else if err != nil {
			var werr *wire.Error
			if !errors.As(err, &werr) {
				t.Fatalf("authentic message: error %v is not a *wire.Error", err)
			}
		}
	})
}
