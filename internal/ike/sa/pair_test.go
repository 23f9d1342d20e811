package sa

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestHandshakePSK(t *testing.T) {
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	p := newPair(t, 1, ini, resp, ResponderOptions{})
	p.handshake()
	p.requireUp(1)
	e := p.i.established()
	if e.SA.Proposal != "aes256gcm16-prfsha256-x25519" || e.SA.LocalID != "a.example" || e.SA.RemoteID != "b.example" {
		t.Errorf("snapshot: %+v", e.SA)
	}
	if e.KeyLog == "" {
		t.Error("no key log record")
	}
	if p.resp.HalfOpen() != 0 {
		t.Errorf("half-open count %d after IKE_AUTH", p.resp.HalfOpen())
	}
	c := p.i.children
	for _, ch := range c {
		if got := tsListString(ch.LocalTS) + " === " + tsListString(ch.RemoteTS); got != "10.1.0.0/16 === 10.2.0.0/16" {
			t.Errorf("initiator TS %s", got)
		}
		if ch.Encap || ch.Mode != ModeTunnel || ch.ReqID != 1 {
			t.Errorf("child %+v", ch)
		}
		if !ch.RekeyAt.Equal(ch.Created.Add(time.Hour)) || !ch.ExpireAt.Equal(ch.Created.Add(66*time.Minute)) {
			t.Errorf("lifetimes %v %v", ch.RekeyAt, ch.ExpireAt)
		}
	}
	snap := p.ini.Snapshot()
	if len(snap.Children) != 1 || snap.Children[0].State != ChildInstalled || snap.Children[0].LocalTS[0] != "10.1.0.0/16" {
		t.Errorf("snapshot children %+v", snap.Children)
	}
	// Two exchanges, four messages, no retransmissions.
	if len(p.rawSent) != 2 || len(p.rawResp) != 2 {
		t.Errorf("%d datagrams sent, %d received", len(p.rawSent), len(p.rawResp))
	}
}

func TestHandshakeProposals(t *testing.T) {
	for i, prop := range []string{
		"aes256gcm16-prfsha256-x25519",
		"aes128-sha256-modp2048",
		"chacha20poly1305-prfsha256-ecp256",
		"aes256-sha384-ecp384",
		"aes128gcm16-prfsha512-ecp521",
		"aes256gcm16-prfsha384-mlkem768",
	} {
		t.Run(prop, func(t *testing.T) {
			ini, resp := baseConfigs(t, prop)
			esp := "aes128-sha256"
			if i%2 == 0 {
				esp = "chacha20poly1305"
			}
			ini.Children[0].Proposals = mustProposals(t, wire.ProtoESP, esp)
			resp.Children[0].Proposals = mustProposals(t, wire.ProtoESP, esp)
			p := newPair(t, uint64(10+i), ini, resp, ResponderOptions{})
			p.handshake()
			p.requireUp(1)
			if got := p.i.established().SA.Proposal; got != prop {
				t.Errorf("IKE proposal %q, want %q", got, prop)
			}
			for _, c := range p.i.children {
				if c.Suite.String() != esp {
					t.Errorf("ESP suite %s, want %s", c.Suite, esp)
				}
			}
		})
	}
}
