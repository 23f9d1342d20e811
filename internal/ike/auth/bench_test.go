package auth

import (
	"crypto/rand"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// benchSchemes are the schemes an IKE_AUTH typically uses.
var benchSchemes = []struct {
	name, kind string
	method     wire.AuthMethod
	scheme     Scheme
}{
	{"ECDSA-P256-SHA256-method9", "P-256", wire.AuthECDSA256, ECDSASHA256},
	{"ECDSA-P256-SHA256", "P-256", wire.AuthDigitalSignature, ECDSASHA256},
	{"ECDSA-P384-SHA384", "P-384", wire.AuthDigitalSignature, ECDSASHA384},
	{"RSA-3072-PKCS1-SHA256", "RSA-3072", wire.AuthDigitalSignature, RSAPKCS1SHA256},
	{"RSA-3072-PSS-SHA256", "RSA-3072", wire.AuthDigitalSignature, RSAPSSSHA256},
	{"Ed25519", "Ed25519", wire.AuthDigitalSignature, Ed25519},
}

// benchOctets has the size of typical signed octets: an IKE_SA_INIT message
// with a 256-bit key exchange, a nonce and a PRF output.
var benchOctets = make([]byte, 400)

func BenchmarkSign(b *testing.B) {
	for _, bs := range benchSchemes {
		key := testKey(b, bs.kind, 0)
		b.Run(bs.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Sign(rand.Reader, key, bs.method, bs.scheme, benchOctets); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, bs := range benchSchemes {
		key := testKey(b, bs.kind, 0)
		auth, err := Sign(rand.Reader, key, bs.method, bs.scheme, benchOctets)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name, func(b *testing.B) {
			for b.Loop() {
				if err := Verify(key.Public(), bs.method, auth, benchOctets, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyPeer(b *testing.B) {
	p := newTestPKI(b, "P-256")
	id, _ := ParseIdentity("gw-a.example")
	for b.Loop() {
		if _, err := VerifyPeer(p.leafChain, p.rootPool, id, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
