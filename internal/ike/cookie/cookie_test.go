package cookie

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

var (
	t0  = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	ni  = bytes.Repeat([]byte{7}, 32)
	ip  = netip.MustParseAddr("192.0.2.1")
	spi = uint64(0x0123456789abcdef)
)

func jar(rotate time.Duration) *Jar {
	return New(rand.NewChaCha8([32]byte{1}), rotate)
}

func TestMakeVerify(t *testing.T) {
	j := jar(time.Minute)
	c, err := j.Make(t0, ni, ip, spi)
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != Len || len(c) > MaxLen {
		t.Fatalf("cookie of %d octets", len(c))
	}
	if !j.Verify(t0.Add(time.Second), c, ni, ip, spi) {
		t.Fatal("own cookie rejected")
	}
	// The same cookie for the same request (stateless: no per-request
	// secret).
	if c2, _ := j.Make(t0.Add(time.Second), ni, ip, spi); !bytes.Equal(c, c2) {
		t.Error("cookie changed within one interval")
	}
	// Bound to nonce, address (not port) and SPI.
	other := bytes.Clone(ni)
	other[0] ^= 1
	for name, ok := range map[string]bool{
		"nonce":     j.Verify(t0, c, other, ip, spi),
		"address":   j.Verify(t0, c, ni, netip.MustParseAddr("192.0.2.2"), spi),
		"SPI":       j.Verify(t0, c, ni, ip, spi+1),
		"truncated": j.Verify(t0, c[:Len-1], ni, ip, spi),
		"empty":     j.Verify(t0, nil, ni, ip, spi),
	} {
		if ok {
			t.Errorf("cookie accepted with another %s", name)
		}
	}
	// An IPv4-mapped address is the same address.
	if !j.Verify(t0, c, ni, netip.MustParseAddr("::ffff:192.0.2.1"), spi) {
		t.Error("IPv4-mapped address rejected")
	}
	// Another jar (another secret) rejects it.
	if New(rand.NewChaCha8([32]byte{2}), time.Minute).Verify(t0, c, ni, ip, spi) {
		t.Error("cookie of another secret accepted")
	}
}

func TestRotation(t *testing.T) {
	j := jar(time.Minute)
	c, _ := j.Make(t0, ni, ip, spi)
	// After one rotation the previous secret is still accepted...
	if !j.Verify(t0.Add(90*time.Second), c, ni, ip, spi) {
		t.Fatal("cookie of the previous secret rejected")
	}
	c2, _ := j.Make(t0.Add(90*time.Second), ni, ip, spi)
	if bytes.Equal(c, c2) || c[0] == c2[0] {
		t.Fatal("secret not rotated")
	}
	// ...after two it is not.
	if j.Verify(t0.Add(150*time.Second), c, ni, ip, spi) {
		t.Fatal("cookie two secrets old accepted")
	}
	if !j.Verify(t0.Add(150*time.Second), c2, ni, ip, spi) {
		t.Fatal("previous secret rejected")
	}
	// A jar idle for long forgets both.
	if j.Verify(t0.Add(time.Hour), c2, ni, ip, spi) {
		t.Fatal("stale cookie accepted after a long idle time")
	}
}

func FuzzVerify(f *testing.F) {
	j := jar(time.Minute)
	c, _ := j.Make(t0, ni, ip, spi)
	f.Add(c, ni, []byte{192, 0, 2, 1}, spi)
	f.Add([]byte{}, []byte{}, []byte{}, uint64(0))
	f.Fuzz(func(t *testing.T, c, n, addr []byte, s uint64) {
		a, _ := netip.AddrFromSlice(addr)
		ok := j.Verify(t0, c, n, a, s)
		if ok {
			want, _ := j.Make(t0, n, a, s)
			if !bytes.Equal(want, c) {
				t.Fatal("accepted a cookie Make would not give")
			}
		}
	})
}
