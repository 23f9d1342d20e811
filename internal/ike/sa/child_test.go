package sa

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

func ts(s string) wire.TrafficSelector {
	// "10.0.0.0/8", "10.0.0.1-10.0.0.9", with an optional "|proto|lo-hi".
	parts := strings.Split(s, "|")
	var t wire.TrafficSelector
	if strings.Contains(parts[0], "/") {
		t = PrefixTS(netip.MustParsePrefix(parts[0])).TrafficSelector
	} else {
		a, b, _ := strings.Cut(parts[0], "-")
		t = rangeTS(netip.MustParseAddr(a), netip.MustParseAddr(b), 0, 0, 0xffff)
	}
	if len(parts) == 3 {
		t.IPProtocol = map[string]uint8{"tcp": 6, "udp": 17, "any": 0}[parts[1]]
		lo, hi, _ := strings.Cut(parts[2], "-")
		t.StartPort, t.EndPort = uint16(atoi(lo)), uint16(atoi(hi))
	}
	return t
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func tsList(ss ...string) []wire.TrafficSelector {
	var out []wire.TrafficSelector
	for _, s := range ss {
		out = append(out, ts(s))
	}
	return out
}

func TestNarrowTS(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ours, theirs []wire.TrafficSelector
		want         string
	}{
		{"equal", tsList("10.1.0.0/16"), tsList("10.1.0.0/16"), "10.1.0.0/16"},
		{"we are narrower", tsList("10.1.2.0/24"), tsList("10.1.0.0/16"), "10.1.2.0/24"},
		{"they are narrower", tsList("10.0.0.0/8"), tsList("10.1.0.0/16"), "10.1.0.0/16"},
		{"disjoint", tsList("10.1.0.0/16"), tsList("10.2.0.0/16"), ""},
		{"several subnets", tsList("10.1.0.0/16", "10.3.0.0/16", "10.5.0.0/16"), tsList("10.0.0.0/8"),
			"10.1.0.0/16 10.3.0.0/16 10.5.0.0/16"},
		// RFC 7296 2.9: the packet's selector first, then the subnet. When
		// the subnet is acceptable, the packet TS is contained in it and
		// dropped (strongSwan).
		{"packet TS first, subnet allowed", tsList("10.1.0.0/16"), tsList("10.1.2.3/32", "10.1.0.0/16"), "10.1.0.0/16"},
		{"packet TS first, narrower policy", tsList("10.1.2.0/24"), tsList("10.1.2.3/32", "10.1.0.0/16"), "10.1.2.0/24"},
		{"packet TS only matches", tsList("10.1.2.3/32"), tsList("10.1.2.3/32", "10.1.0.0/16"), "10.1.2.3/32"},
		{"ranges", tsList("10.0.0.5-10.0.0.20"), tsList("10.0.0.0-10.0.0.9"), "10.0.0.5-10.0.0.9"},
		{"protocol", tsList("10.0.0.0/8|tcp|0-65535"), tsList("10.1.0.0/16"), "10.1.0.0/16[tcp]"},
		{"ports", tsList("10.0.0.0/8|tcp|80-443"), tsList("10.1.0.0/16|any|400-1000"), "10.1.0.0/16[tcp/400-443]"},
		{"protocol mismatch", tsList("10.0.0.0/8|tcp|0-65535"), tsList("10.1.0.0/16|udp|0-65535"), ""},
		{"families", tsList("10.0.0.0/8", "2001:db8::/32"), tsList("2001:db8:1::/48"), "2001:db8:1::/48"},
		{"duplicates", tsList("10.1.0.0/16", "10.1.0.0/16"), tsList("10.0.0.0/8"), "10.1.0.0/16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tsListString(narrowTS(tc.ours, tc.theirs)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTSString(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.0.0/16":            "10.1.0.0/16",
		"192.0.2.7/32":           "192.0.2.7/32",
		"0.0.0.0/0":              "0.0.0.0/0",
		"::/0":                   "::/0",
		"10.0.0.1-10.0.0.2":      "10.0.0.1-10.0.0.2",
		"10.0.0.0/8|udp|500-500": "10.0.0.0/8[udp/500]",
	} {
		if got := TSString(ts(in)); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestTSNarrowingPair(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	ini.Children[0].RemoteTS = []TrafficSelector{PrefixTS(netipPrefix("10.2.0.0/16")), PrefixTS(netipPrefix("10.3.0.0/16"))}
	resp.Children[0].LocalTS = []TrafficSelector{PrefixTS(netipPrefix("10.2.5.0/24")), PrefixTS(netipPrefix("10.3.0.0/16")), PrefixTS(netipPrefix("10.4.0.0/16"))}
	resp.Children[0].RemoteTS = []TrafficSelector{PrefixTS(netipPrefix("10.0.0.0/8"))}
	p := newPair(t, 100, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	for _, c := range p.i.children {
		if l, r := tsListString(c.LocalTS), tsListString(c.RemoteTS); l != "10.1.0.0/16" || r != "10.2.5.0/24 10.3.0.0/16" {
			t.Errorf("narrowed to %s === %s", l, r)
		}
	}
}

func TestDynamicTS(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	ini.Children[0].LocalTS, ini.Children[0].RemoteTS = nil, []TrafficSelector{DynamicTS()}
	resp.Children[0].LocalTS, resp.Children[0].RemoteTS = []TrafficSelector{DynamicTS()}, nil
	p := newPair(t, 101, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	for _, c := range p.i.children {
		if l, r := tsListString(c.LocalTS), tsListString(c.RemoteTS); l != "192.0.2.1/32" || r != "192.0.2.2/32" {
			t.Errorf("dynamic: %s === %s", l, r)
		}
	}
}

func TestTransportMode(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	for _, c := range []*Config{ini, resp} {
		c.Children[0].Mode = ModeTransport
		c.Children[0].LocalTS, c.Children[0].RemoteTS = nil, nil
	}
	p := newPair(t, 102, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	for _, c := range p.r.children {
		if c.Mode != ModeTransport {
			t.Errorf("mode %v", c.Mode)
		}
	}
	if s := collect(decryptSent(t, p, 1)); s.notify(wire.USE_TRANSPORT_MODE) == nil {
		t.Error("no USE_TRANSPORT_MODE in the request")
	}
	// A tunnel-mode request to a transport-mode responder stays tunnel mode
	// (the responder cannot impose transport mode, RFC 7296 1.3.1).
	ini.Children[0].Mode = ModeTunnel
	p = newPair(t, 103, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	for _, c := range p.i.children {
		if c.Mode != ModeTunnel {
			t.Errorf("mode %v", c.Mode)
		}
	}
}

func TestForceEncap(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	ini.ForceEncap = true
	p := newPair(t, 104, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	// The initiator faked a NAT in front of itself; both float to 4500.
	auth, _ := wire.Parse(p.rawSent[1])
	if auth.Exchange != wire.IKE_AUTH {
		t.Fatal("second datagram is not IKE_AUTH")
	}
	si, sr := p.ini.Snapshot(), p.rsa.Snapshot()
	if !si.NATLocal || si.NATRemote || sr.NATLocal || !sr.NATRemote {
		t.Errorf("NAT flags: initiator %v/%v responder %v/%v", si.NATLocal, si.NATRemote, sr.NATLocal, sr.NATRemote)
	}
	if si.Local.Port() != 4500 || si.Remote.Port() != 4500 || sr.Local.Port() != 4500 || sr.Remote.Port() != 4500 {
		t.Errorf("ports: %v %v / %v %v", si.Local, si.Remote, sr.Local, sr.Remote)
	}
	for _, c := range p.i.children {
		if !c.Encap || c.Local.Port() != 4500 || c.Remote.Port() != 4500 {
			t.Errorf("child %v %v %v", c.Encap, c.Local, c.Remote)
		}
	}
	var nat *NATDetected
	for _, e := range p.i.events {
		if e, ok := e.(NATDetected); ok {
			nat = &e
		}
	}
	if nat == nil || !nat.Local || nat.Remote {
		t.Errorf("NATDetected %+v", nat)
	}
}

func TestNATDetection(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 105, ini, resp, ResponderOptions{})
	// A NAT rewrites the initiator's address and port.
	public := netip.MustParseAddr("203.0.113.9")
	p.nat = func(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(public, a.Port()+30000) }
	p.handshake()
	p.requireUp(1)
	si, sr := p.ini.Snapshot(), p.rsa.Snapshot()
	if !si.NATLocal || si.NATRemote || sr.NATLocal || !sr.NATRemote {
		t.Errorf("NAT flags: initiator %v/%v responder %v/%v", si.NATLocal, si.NATRemote, sr.NATLocal, sr.NATRemote)
	}
	if sr.Remote != netip.MustParseAddrPort("203.0.113.9:34500") || si.Local.Port() != 4500 {
		t.Errorf("responder sees %v, initiator uses %v", sr.Remote, si.Local)
	}
	for _, c := range p.r.children {
		if !c.Encap || c.Remote != sr.Remote {
			t.Errorf("responder child %v %v", c.Encap, c.Remote)
		}
	}
}

func TestCreateChildSA(t *testing.T) {
	for i, tc := range []struct {
		name       string
		iESP, rESP string
		wantKE     bool
	}{
		{"without PFS", "aes256gcm16", "aes256gcm16", false},
		{"PFS", "aes256gcm16-x25519", "aes256gcm16-x25519", true},
		{"PFS after INVALID_KE", "aes256gcm16-x25519-ecp256", "aes256gcm16-ecp256", true},
		{"PFS optional for the responder", "aes128gcm16-ecp384", "aes128gcm16-ecp384", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
			extra := func(c *Config, esp, l, r string) {
				c.Children = append(c.Children, &ChildConfig{
					Name: "second", ReqID: 2,
					LocalTS:   []TrafficSelector{PrefixTS(netipPrefix(l))},
					RemoteTS:  []TrafficSelector{PrefixTS(netipPrefix(r))},
					Proposals: mustProposals(t, wire.ProtoESP, esp),
				})
			}
			extra(ini, tc.iESP, "10.11.0.0/16", "10.12.0.0/16")
			extra(resp, tc.rESP, "10.12.0.0/16", "10.11.0.0/16")
			p := newPair(t, uint64(110+i), ini, resp, ResponderOptions{})
			p.handshake("net", "second")
			p.settle()
			p.requireUp(2)
			// The CREATE_CHILD_SA request (message 2, or 3 after
			// INVALID_KE_PAYLOAD).
			last := uint32(2)
			if strings.Contains(tc.name, "INVALID_KE") {
				last = 3
				first := collect(decryptSent(t, p, 2))
				if first.ke == nil || first.ke.Group != wire.KE_CURVE25519 {
					t.Errorf("first request KE %+v", first.ke)
				}
			}
			s := collect(decryptSent(t, p, last))
			if s.nonce == nil || (s.ke != nil) != tc.wantKE {
				t.Errorf("CREATE_CHILD_SA request: %v", payloadList(decryptSent(t, p, last)))
			}
			for _, c := range p.i.children {
				if c.Name == "second" && tsListString(c.RemoteTS) != "10.12.0.0/16" {
					t.Errorf("second child TS %s", tsListString(c.RemoteTS))
				}
			}
		})
	}
}

// The original responder creates a CHILD_SA: the roles of the exchange are
// reversed, and so are the keys' directions (RFC 7296 2.17).
func TestCreateChildByResponder(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 120, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	p.fromResponder(p.rsa.CreateChild(p.now, "net"))
	p.settle()
	p.requireUp(2)
	if f := p.r.childFailures(); len(f) != 0 {
		t.Fatal(f)
	}
	// Unknown child names fail at once.
	out := p.ini.CreateChild(p.now, "nope")
	if len(out.Events) != 1 || len(out.Packets) != 0 {
		t.Fatalf("%+v", out)
	}
}

func TestCreateChildFailure(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	ini.Children = append(ini.Children, &ChildConfig{
		Name: "other", LocalTS: []TrafficSelector{PrefixTS(netipPrefix("172.16.0.0/12"))},
		Proposals: mustProposals(t, wire.ProtoESP, "aes256gcm16"),
	})
	p := newPair(t, 121, ini, resp, ResponderOptions{})
	p.handshake()
	p.fromInitiator(p.ini.CreateChild(p.now, "other"))
	p.settle()
	p.requireUp(1)
	f := p.i.childFailures()
	if len(f) != 1 || f[0].Name != "other" {
		t.Fatalf("%+v", f)
	}
	requireNotifyErr(t, "initiator", f[0].Err, wire.TS_UNACCEPTABLE, true, "172.16.0.0/12")
}

func TestDelete(t *testing.T) {
	for _, byInitiator := range []bool{true, false} {
		ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
		p := newPair(t, 130, ini, resp, ResponderOptions{})
		p.handshake()
		p.requireUp(1)
		if byInitiator {
			p.fromInitiator(p.ini.Delete(p.now))
		} else {
			p.fromResponder(p.rsa.Delete(p.now))
		}
		p.run(time.Minute, func() bool { return p.ini.Done() && p.rsa.Done() })
		if d := p.i.deleted(); d == nil || p.r.deleted() == nil {
			t.Fatalf("deleted: %v %v", p.i.deleted(), p.r.deleted())
		}
		if len(p.i.children) != 0 || len(p.r.children) != 0 {
			t.Error("children not reported down")
		}
		if !p.ini.Done() || !p.rsa.Done() {
			t.Errorf("done: %v %v", p.ini.Done(), p.rsa.Done())
		}
	}
}

func TestDeleteChild(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 131, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	var spi uint32
	for s := range p.i.children {
		spi = s
	}
	p.fromInitiator(p.ini.DeleteChild(p.now, spi))
	p.settle()
	p.requireUp(0)
	// The data plane refuses a CHILD_SA: it is deleted with the peer.
	p.fromInitiator(p.ini.CreateChild(p.now, "net"))
	p.settle()
	p.requireUp(1)
	for s := range p.i.children {
		spi = s
	}
	out := p.ini.ChildInstallFailed(p.now, spi, errors.New("no room"))
	p.fromInitiator(out)
	p.settle()
	p.requireUp(0)
	if f := p.i.childFailures(); len(f) != 1 || f[0].SPI != spi {
		t.Errorf("failures %+v", f)
	}
}

func TestLiveness(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	ini.DPDDelay = 30 * time.Second
	p := newPair(t, 132, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	if d := p.ini.NextDeadline(); !d.Equal(p.now.Add(30 * time.Second)) {
		t.Fatalf("DPD deadline %v", d)
	}
	p.run(95*time.Second, func() bool { return false })
	p.requireUp(1)
	// Three checks in 95 s, each answered.
	checks := 0
	for _, d := range p.rawSent[2:] {
		if m, _ := wire.Parse(d); m != nil && m.Exchange == wire.INFORMATIONAL {
			checks++
		}
	}
	if checks != 3 {
		t.Errorf("%d liveness checks", checks)
	}
	// A dead peer: the check goes unanswered and the IKE SA fails.
	p.tamper = func(bool, []byte) []byte { return nil }
	p.run(10*time.Minute, func() bool { return p.ini.Done() })
	if err := p.i.failed(); !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "liveness check for 165s") {
		t.Fatalf("err = %v", err)
	}
	if len(p.i.children) != 0 {
		t.Error("children not down")
	}
}

// CreateChild before Initiate waits for the handshake.
func TestCreateChildBeforeInitiate(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 140, ini, resp, ResponderOptions{})
	if out := p.ini.CreateChild(p.now, "net"); len(out.Packets) != 0 || len(out.Events) != 0 {
		t.Fatalf("%+v", out)
	}
	p.handshake()
	p.settle()
	p.requireUp(2)
}

func TestTSFit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cfg, proposed []wire.TrafficSelector
		want          int
	}{
		{"equal", tsList("10.1.0.0/16"), tsList("10.1.0.0/16"), 5},
		{"narrowing", tsList("10.0.0.0/8"), tsList("10.1.0.0/16"), 1},
		{"disjoint", tsList("10.1.0.0/16"), tsList("10.2.0.0/16"), 0},
		// The packet's selector first: it counts twice.
		{"packet TS first", tsList("10.1.0.0/16"), tsList("10.1.2.3/32", "10.1.0.0/16"), 2*1 + 5},
		{"packet TS first, wide config", tsList("10.0.0.0/8"), tsList("10.1.2.3/32", "10.1.0.0/16"), 2*1 + 1},
		{"several configured", tsList("10.1.0.0/16", "10.2.0.0/16"), tsList("10.0.0.0/8"), 2},
		{"protocol", tsList("10.1.0.0/16|tcp|0-65535"), tsList("10.1.0.0/16"), 1},
		{"families", tsList("10.1.0.0/16"), tsList("2001:db8::/32"), 0},
	} {
		if got := tsFit(tc.cfg, tc.proposed); got != tc.want {
			t.Errorf("%s: fit %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The responder picks the child configuration whose selectors fit the
// proposal best, as strongSwan's select_child_cfg (an exact match beats a
// narrowing; config order breaks ties), in IKE_AUTH and CREATE_CHILD_SA.
func TestChildSelection(t *testing.T) {
	child := func(name string, reqid uint32, esp, local, remote string) *ChildConfig {
		return &ChildConfig{
			Name: name, ReqID: reqid,
			LocalTS:   []TrafficSelector{PrefixTS(netipPrefix(local))},
			RemoteTS:  []TrafficSelector{PrefixTS(netipPrefix(remote))},
			Proposals: mustProposals(t, wire.ProtoESP, esp),
		}
	}
	wide := func() *ChildConfig { return child("wide", 10, "aes256gcm16", "10.0.0.0/8", "10.9.0.0/16") }
	narrow := func() *ChildConfig { return child("narrow", 11, "aes256gcm16", "10.1.0.0/16", "10.9.0.0/16") }
	other := func() *ChildConfig { return child("other", 12, "aes256gcm16", "10.1.2.0/24", "10.9.0.0/16") }
	for i, tc := range []struct {
		name      string
		responder []*ChildConfig
		proposed  string // the initiator's remote selector, the responder's local one
		want      string
	}{
		{"exact match after a wider one", []*ChildConfig{wide(), narrow()}, "10.1.0.0/16", "narrow"},
		{"exact match before a wider one", []*ChildConfig{narrow(), wide()}, "10.1.0.0/16", "narrow"},
		{"the wider one matches exactly", []*ChildConfig{narrow(), wide()}, "10.0.0.0/8", "wide"},
		{"narrowing only: config order", []*ChildConfig{other(), narrow(), wide()}, "10.1.2.0/25", "other"},
		{"narrowing only: config order, reversed", []*ChildConfig{wide(), narrow(), other()}, "10.1.2.0/25", "wide"},
		{"only one intersects", []*ChildConfig{narrow(), other()}, "10.1.128.0/17", "narrow"},
	} {
		for _, inAuth := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/ike_auth=%v", tc.name, inAuth), func(t *testing.T) {
				ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
				// The initiator's child has the name the responder's should
				// have: requireUp compares them too.
				ini.Children = append(ini.Children, child(tc.want, 20, "aes256gcm16", "10.9.0.0/16", tc.proposed))
				resp.Children = append(resp.Children, tc.responder...)
				p := newPair(t, uint64(150+2*i), ini, resp, ResponderOptions{})
				want := 2
				if inAuth {
					p.handshake(tc.want)
					want = 1
				} else {
					p.handshake("net", tc.want)
				}
				p.settle()
				p.requireUp(want)
				var got *ChildSA
				for _, c := range p.r.children {
					if tsListString(c.LocalTS) == tc.proposed {
						got = c
					}
				}
				if got == nil {
					t.Fatalf("no CHILD_SA for %s at the responder", tc.proposed)
				}
				if got.Name != tc.want {
					t.Errorf("responder took child %q for %s, want %q", got.Name, tc.proposed, tc.want)
				}
			})
		}
	}
}

// A PFS child and a non-PFS child: each CHILD_SA the peer creates gets the
// configuration (name, reqid, key exchange) of its own selectors, also when
// the non-PFS child's selectors, listed first, cover the PFS child's. (The
// interop suite once saw charon's PFS child installed under the other
// child's name.)
func TestChildSelectionPFS(t *testing.T) {
	for i, tc := range []struct {
		name       string
		plainLocal string // the responder's non-PFS child's local selector
	}{
		{"disjoint", "10.2.0.0/16"},
		{"covering", "10.0.0.0/8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
			pfs := func(local, remote string) *ChildConfig {
				return &ChildConfig{
					Name: "pfs", ReqID: 2,
					LocalTS:   []TrafficSelector{PrefixTS(netipPrefix(local))},
					RemoteTS:  []TrafficSelector{PrefixTS(netipPrefix(remote))},
					Proposals: mustProposals(t, wire.ProtoESP, "aes256gcm16-x25519"),
				}
			}
			resp.Children[0].LocalTS = []TrafficSelector{PrefixTS(netipPrefix(tc.plainLocal))}
			resp.Children[0].RemoteTS = []TrafficSelector{PrefixTS(netipPrefix("10.0.0.0/8"))}
			// The non-PFS child accepts PFS proposals too (a key exchange
			// in the peer's proposal, none in ours, can match).
			resp.Children[0].Proposals = mustProposals(t, wire.ProtoESP, "aes256gcm16-x25519,aes256gcm16")
			ini.Children = append(ini.Children, pfs("10.51.0.0/16", "10.52.0.0/16"))
			resp.Children = append(resp.Children, pfs("10.52.0.0/16", "10.51.0.0/16"))
			p := newPair(t, uint64(170+i), ini, resp, ResponderOptions{})
			p.handshake("net", "pfs")
			p.settle()
			p.requireUp(2)
			for _, c := range p.r.children {
				wantName, wantKE := "net", false
				if tsListString(c.LocalTS) == "10.52.0.0/16" {
					wantName, wantKE = "pfs", true
				}
				if c.Name != wantName || (c.ReqID == 2) != wantKE || (c.Suite.KE.ID != 0) != wantKE {
					t.Errorf("responder's CHILD_SA %s === %s: child %q reqid %d suite %v, want %q (PFS %v)",
						tsListString(c.LocalTS), tsListString(c.RemoteTS), c.Name, c.ReqID, c.Suite, wantName, wantKE)
				}
			}
		})
	}
}
