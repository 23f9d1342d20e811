package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
)

func TestPSKLookup(t *testing.T) {
	cfg, err := Parse([]byte(`
secrets:
  - ids: [a.example]
    psk: only-a
  - ids: [b.example]
    psk: only-b
  - ids: [a.example, b.example]
    psk: a-and-b
  - psk: no-ids
  - ids: ["%any", c.example]
    psk: any-and-c
  - ids: [d.example, e.example]
    psk: d-and-e
  - ids: [d.example, e.example]
    psk: d-and-e-again
`), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		local, remote string
		want          string
	}{
		// Both listed beats one listed.
		{"a.example", "b.example", "a-and-b"},
		{"b.example", "a.example", "a-and-b"},
		// The remote identity counts first: a secret naming the peer beats
		// the catch-all, which beats one naming only us.
		{"a.example", "x.example", "no-ids"},
		{"x.example", "b.example", "only-b"},
		{"x.example", "a.example", "only-a"}, // a perfect remote match; of equals, the first
		// %any in a list matches weakly; the listed id wins over no ids.
		{"c.example", "x.example", "any-and-c"},
		{"x.example", "c.example", "any-and-c"},
		// Nothing listed: the catch-all.
		{"x.example", "y.example", "no-ids"},
		// Equal matches: the first in the file.
		{"d.example", "e.example", "d-and-e"},
	} {
		got, ok := cfg.PSK(mustID(t, tc.local), mustID(t, tc.remote))
		if !ok || string(got) != tc.want {
			t.Errorf("PSK(%s, %s) = %q, %v; want %q", tc.local, tc.remote, got, ok, tc.want)
		}
	}

	// A pattern ranks between the identity itself and %any.
	cfg, err = Parse([]byte(`
secrets:
  - {ids: ["%any"], psk: any}
  - {ids: ["*.example"], psk: pattern}
  - {ids: ["C=CH, O=Example, CN=*"], psk: dn-pattern}
  - {ids: [gw.example], psk: exact}
`), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ remote, want string }{
		{"gw.example", "exact"},
		{"other.example", "pattern"},
		{"C=CH, O=Example, CN=gw", "dn-pattern"},
		{"other.org", "any"},
	} {
		got, ok := cfg.PSK(mustID(t, "me.org"), mustID(t, tc.remote))
		if !ok || string(got) != tc.want {
			t.Errorf("PSK(me.org, %s) = %q, %v; want %q", tc.remote, got, ok, tc.want)
		}
	}

	// Without a catch-all, identities no secret names get nothing.
	cfg, err = Parse([]byte("secrets:\n  - {ids: [a.example], psk: x}\n"), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := cfg.PSK(mustID(t, "x.example"), mustID(t, "y.example")); ok {
		t.Errorf("PSK(x, y) = %q, want none", got)
	}
	if _, ok := (&Config{}).PSK(mustID(t, "x.example"), mustID(t, "y.example")); ok {
		t.Error("PSK with no secrets found one")
	}

	// The result is a copy: zeroing it leaves the configuration intact.
	got, _ := cfg.PSK(mustID(t, "a.example"), mustID(t, "y.example"))
	clear(got)
	if again, _ := cfg.PSK(mustID(t, "a.example"), mustID(t, "y.example")); string(again) != "x" {
		t.Error("PSK returned the configuration's own slice")
	}
}

func TestDecodePSK(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		err  bool
	}{
		{"plain secret", []byte("plain secret"), false},
		{"0x0102ff", []byte{1, 2, 0xff}, false},
		{"0xABCDEF", []byte{0xab, 0xcd, 0xef}, false},
		{"0sAQID", []byte{1, 2, 3}, false},
		{"0x", nil, true},
		{"0x123", nil, true},
		{"0s", nil, true},
		{"0s@@@@", nil, true},
		{"", nil, true},
		{"0X12", []byte("0X12"), false}, // only lowercase prefixes are special, as in strongSwan
	} {
		got, err := decodePSK(tc.in)
		if (err != nil) != tc.err || !bytes.Equal(got, tc.want) {
			t.Errorf("decodePSK(%q) = %x, %v", tc.in, got, err)
		}
	}
}

// Printing a Secret or a Config in any way does not show the key.
func TestSecretRedacted(t *testing.T) {
	s := Secret{IDs: []auth.Identity{mustID(t, "a.example")}, PSK: []byte("topsecret")}
	cfg := &Config{Secrets: []Secret{s}}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s)
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s),
		fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), fmt.Sprint(cfg.Secrets), logged.String(),
	} {
		if strings.Contains(out, "topsecret") || strings.Contains(out, "116 111 112") {
			t.Errorf("key printed: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(s), "a.example") {
		t.Errorf("identities not printed: %v", s)
	}
}
