package esp

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// suiteSpec names one transform combination in strongSwan's syntax.
type suiteSpec struct {
	name   string
	encr   wire.EncrID
	keyLen int // bits
	integ  wire.IntegID
}

func (sp suiteSpec) keyBytes() (encr, integ int) {
	encr = sp.keyLen / 8
	if sp.encr != wire.ENCR_AES_CBC {
		encr += 4
	}
	switch sp.integ {
	case wire.AUTH_HMAC_SHA1_96:
		integ = 20
	case wire.AUTH_HMAC_SHA2_256_128:
		integ = 32
	case wire.AUTH_HMAC_SHA2_384_192:
		integ = 48
	case wire.AUTH_HMAC_SHA2_512_256:
		integ = 64
	}
	return encr, integ
}

// allSuites is every algorithm x key length this package supports.
func allSuites() []suiteSpec {
	var out []suiteSpec
	for _, kl := range []int{128, 192, 256} {
		for _, g := range []struct {
			id  wire.EncrID
			icv int
		}{{wire.ENCR_AES_GCM_8, 8}, {wire.ENCR_AES_GCM_12, 12}, {wire.ENCR_AES_GCM_16, 16}} {
			out = append(out, suiteSpec{fmt.Sprintf("aes%dgcm%d", kl, g.icv), g.id, kl, wire.AUTH_NONE})
		}
		for _, h := range []struct {
			id   wire.IntegID
			name string
		}{{wire.AUTH_HMAC_SHA1_96, "sha1"}, {wire.AUTH_HMAC_SHA2_256_128, "sha256"}, {wire.AUTH_HMAC_SHA2_384_192, "sha384"}, {wire.AUTH_HMAC_SHA2_512_256, "sha512"}} {
			out = append(out, suiteSpec{fmt.Sprintf("aes%d-%s", kl, h.name), wire.ENCR_AES_CBC, kl, h.id})
		}
	}
	out = append(out, suiteSpec{"chacha20poly1305", wire.ENCR_CHACHA20_POLY1305, 256, wire.AUTH_NONE})
	return out
}

// suiteByName returns the spec called name.
func suiteByName(t testing.TB, name string) suiteSpec {
	for _, sp := range allSuites() {
		if sp.name == name {
			return sp
		}
	}
	t.Fatalf("no suite %q", name)
	return suiteSpec{}
}

// config returns a Config for sp with keys drawn from seed.
func (sp suiteSpec) config(spi uint32, esn bool, mode Mode, seed uint64) Config {
	r := rand.New(rand.NewPCG(seed, uint64(spi)))
	ek, ik := sp.keyBytes()
	c := Config{SPI: spi, Mode: mode, Encr: sp.encr, EncrKeyLen: sp.keyLen, Integ: sp.integ, ESN: esn}
	c.EncrKey = make([]byte, ek)
	fill(r, c.EncrKey)
	if ik > 0 {
		c.IntegKey = make([]byte, ik)
		fill(r, c.IntegKey)
	}
	c.Rand = rand.NewChaCha8([32]byte{byte(seed), byte(spi)})
	return c
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func newPair(t testing.TB, c Config) (*Outbound, *Inbound) {
	t.Helper()
	o, err := NewOutbound(c)
	if err != nil {
		t.Fatalf("NewOutbound(%v): %v", c, err)
	}
	in, err := NewInbound(c)
	if err != nil {
		t.Fatalf("NewInbound(%v): %v", c, err)
	}
	return o, in
}

// ipv4Packet returns a UDP-in-IPv4 packet with n payload bytes.
func ipv4Packet(n int, r *rand.Rand) []byte {
	p := make([]byte, 20+8+n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	p[8] = 64
	p[9] = 17
	copy(p[12:16], []byte{10, 1, 0, 1})
	copy(p[16:20], []byte{10, 2, 0, 1})
	binary.BigEndian.PutUint16(p[10:12], ipv4Checksum(p[:20]))
	binary.BigEndian.PutUint16(p[20:22], 4000)
	binary.BigEndian.PutUint16(p[22:24], 5000)
	binary.BigEndian.PutUint16(p[24:26], uint16(8+n))
	if r != nil {
		fill(r, p[28:])
	}
	return p
}

// ipv6Packet returns a UDP-in-IPv6 packet with n payload bytes, with a
// Hop-by-Hop header if hbh.
func ipv6Packet(n int, hbh bool, r *rand.Rand) []byte {
	ext := 0
	if hbh {
		ext = 8
	}
	p := make([]byte, 40+ext+8+n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], uint16(ext+8+n))
	p[6] = 17
	p[7] = 64
	p[8], p[23] = 0x20, 1
	p[24], p[39] = 0x20, 2
	if hbh {
		p[6] = ipv6HopByHop
		p[40] = 17
		p[41] = 0
		p[42], p[43] = 1, 4 // PadN, 4 bytes
	}
	u := p[40+ext:]
	binary.BigEndian.PutUint16(u[0:2], 4000)
	binary.BigEndian.PutUint16(u[2:4], 5000)
	binary.BigEndian.PutUint16(u[4:6], uint16(8+n))
	if r != nil {
		fill(r, u[8:])
	}
	return p
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
