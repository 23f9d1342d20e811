package keys

import (
	"bytes"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

var benchSuites = []struct {
	name string
	s    algs.Suite
}{
	{"aes256gcm16", suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 256, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE)},
	{"aes128-sha256", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128)},
}

// benchPayloads is an IKE_AUTH request of about 1.5 KB: ID, a certificate,
// AUTH, SA and traffic selectors.
func benchPayloads() []wire.Payload { return authPayloads(1200) }

func BenchmarkSeal(b *testing.B) {
	for _, bs := range benchSuites {
		b.Run(bs.name, func(b *testing.B) {
			ini, _, _ := protectorPair(b, bs.s)
			ps := benchPayloads()
			r := testRand(1)
			out, err := ini.Seal(authHeader(), ps, r)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(out)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ini.Seal(authHeader(), ps, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, bs := range benchSuites {
		b.Run(bs.name, func(b *testing.B) {
			ini, resp, _ := protectorPair(b, bs.s)
			raw, err := ini.Seal(authHeader(), benchPayloads(), testRand(1))
			if err != nil {
				b.Fatal(err)
			}
			m, err := wire.Parse(raw)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := resp.Open(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSKEYSEED(b *testing.B) {
	prf := algs.LookupPRF(wire.PRF_HMAC_SHA2_256)
	ni, nr := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, n := range []int{32, 256} { // x25519, MODP-2048
		gir := bytes.Repeat([]byte{3}, n)
		b.Run(map[int]string{32: "x25519", 256: "modp2048"}[n], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				SKEYSEED(prf, ni, nr, gir)
			}
		})
	}
}

func BenchmarkDeriveIKEKeys(b *testing.B) {
	ni, nr := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, bs := range benchSuites {
		b.Run(bs.name, func(b *testing.B) {
			skeyseed := SKEYSEED(bs.s.PRFAlg(), ni, nr, bytes.Repeat([]byte{3}, 32))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DeriveIKEKeys(bs.s, skeyseed, ni, nr, 1, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDeriveChildKeys(b *testing.B) {
	prf := algs.LookupPRF(wire.PRF_HMAC_SHA2_256)
	skd := bytes.Repeat([]byte{9}, 32)
	ni, nr := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, bs := range []struct {
		name string
		s    algs.Suite
		pfs  []byte
	}{
		{"aes256gcm16", suiteFor(wire.ProtoESP, wire.ENCR_AES_GCM_16, 256, 0, wire.AUTH_NONE), nil},
		{"aes128-sha256", suiteFor(wire.ProtoESP, wire.ENCR_AES_CBC, 128, 0, wire.AUTH_HMAC_SHA2_256_128), nil},
		{"aes256gcm16-pfs-x25519", suiteFor(wire.ProtoESP, wire.ENCR_AES_GCM_16, 256, 0, wire.AUTH_NONE), bytes.Repeat([]byte{3}, 32)},
	} {
		b.Run(bs.name, func(b *testing.B) {
			var ss [][]byte
			if bs.pfs != nil {
				ss = append(ss, bs.pfs)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DeriveChildKeys(prf, skd, bs.s, ni, nr, ss...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
