package daemon

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
)

func mustID(t *testing.T, s string) auth.Identity {
	t.Helper()
	id, err := auth.ParseIdentity(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addrs(ss ...string) []netip.Addr {
	var a []netip.Addr
	for _, s := range ss {
		a = append(a, netip.MustParseAddr(s))
	}
	return a
}

func testConns(t *testing.T) []*config.Connection {
	conn := func(name string, local, remote []netip.Addr, remoteAny bool, localID, remoteID string) *config.Connection {
		return &config.Connection{
			Name: name, LocalAddrs: local, RemoteAddrs: remote, RemoteAny: remoteAny,
			Local:  config.LocalAuth{Auth: "psk", ID: mustID(t, localID)},
			Remote: config.RemoteAuth{Auth: "psk", ID: mustID(t, remoteID)},
		}
	}
	return []*config.Connection{
		0: conn("roadwarriors", nil, nil, true, "gw.example", "*.clients.example"),
		1: conn("site", addrs("192.0.2.1"), addrs("192.0.2.2"), false, "gw.example", "site.example"),
		2: conn("anyone", nil, nil, true, "gw.example", "%any"),
		3: conn("other-gw", addrs("192.0.2.1"), addrs("192.0.2.2"), false, "gw2.example", "site.example"),
		4: conn("v6", addrs("2001:db8::1"), addrs("2001:db8::2"), false, "gw.example", "%any"),
	}
}

func TestCandidatesForInit(t *testing.T) {
	conns := testConns(t)
	a := netip.MustParseAddr
	for _, tc := range []struct {
		local, remote string
		want          []int
	}{
		// Exact addresses first, then the %any ones in file order.
		{"192.0.2.1", "192.0.2.2", []int{1, 3, 0, 2}},
		{"192.0.2.1", "198.51.100.7", []int{0, 2}},
		{"192.0.2.9", "192.0.2.2", []int{0, 2}},
		{"2001:db8::1", "2001:db8::2", []int{4, 0, 2}},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.2", []int{1, 3, 0, 2}},
	} {
		got := candidatesForInit(conns, a(tc.local), a(tc.remote))
		if !equalInts(got, tc.want) {
			t.Errorf("%s -> %s: %v, want %v", tc.remote, tc.local, got, tc.want)
		}
	}
	if got := candidatesForInit(conns[1:2], a("192.0.2.1"), a("192.0.2.3")); len(got) != 0 {
		t.Errorf("a connection for another peer matched: %v", got)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestChooseForAuth(t *testing.T) {
	conns := testConns(t)
	a := netip.MustParseAddr
	hint := func(s string) *auth.Identity { id := mustID(t, s); return &id }
	for _, tc := range []struct {
		name          string
		local, remote string
		peer          string
		hint          *auth.Identity
		suiteOK       func(int) bool
		want          int
		errHas        string
	}{
		{"exact peer id", "192.0.2.1", "192.0.2.2", "site.example", nil, nil, 1, ""},
		{"hint picks our other identity", "192.0.2.1", "192.0.2.2", "site.example", hint("gw2.example"), nil, 3, ""},
		{"hint %any", "192.0.2.1", "192.0.2.2", "site.example", hint("%any"), nil, 1, ""},
		{"pattern beats %any", "192.0.2.1", "198.51.100.7", "laptop.clients.example", nil, nil, 0, ""},
		{"unknown peer takes %any", "192.0.2.1", "198.51.100.7", "stranger.example", nil, nil, 2, ""},
		{"suite filter", "192.0.2.1", "192.0.2.2", "site.example", nil, func(i int) bool { return i != 1 }, 3, ""},
		{"hint for nobody", "192.0.2.1", "198.51.100.7", "stranger.example", hint("nobody.example"), nil, -1, "expecting us to be nobody.example"},
		{"nothing accepts the suite", "2001:db8::1", "2001:db8::2", "x.example", nil, func(int) bool { return false }, -1, "does not accept the negotiated IKE proposal"},
	} {
		got, err := chooseForAuth(conns, a(tc.local), a(tc.remote), mustID(t, tc.peer), tc.hint, tc.suiteOK)
		if got != tc.want {
			t.Errorf("%s: chose %d (%v), want %d", tc.name, got, err, tc.want)
			continue
		}
		if tc.want < 0 && (err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "daemon: ")) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errHas)
		}
	}
}
