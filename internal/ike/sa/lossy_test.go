package sa

import (
	"fmt"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// TestLossyLink runs 100 handshakes (IKE_SA_INIT, IKE_AUTH and one
// CREATE_CHILD_SA) through a link that loses 20% of the datagrams and
// duplicates and reorders others. Every one must complete with matching
// CHILD_SAs. Variants: certificates, cookies, fragmentation.
//
// With 20% loss an exchange attempt succeeds with probability 0.64, so the
// default 5 retransmissions would lose an exchange about once in 450;
// the test allows 10 (the point is the state machine's handling of loss,
// duplication and reordering, not strongSwan's retry budget).
func TestLossyLink(t *testing.T) {
	pk := getPKI()
	n := 100
	if testing.Short() {
		n = 20
	}
	sent, lost := 0, 0
	for i := range n {
		ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
		opts := ResponderOptions{}
		switch i % 4 {
		case 1:
			usePubKey(ini, leaf(t, keyECDSA, "a.example", time.Time{}), pk.root.cert)
			usePubKey(resp, leaf(t, keyECDSA, "b.example", time.Time{}), pk.root.cert)
		case 2:
			opts.CookieThreshold = -1
		case 3:
			usePubKey(ini, leaf(t, keyECDSA, "a.example", time.Time{}), pk.root.cert)
			usePubKey(resp, leaf(t, keyECDSA, "b.example", time.Time{}), pk.root.cert)
			ini.FragmentSize, resp.FragmentSize = 576, 576
		}
		for _, c := range []*Config{ini, resp} {
			c.Retransmit = Retransmit{Tries: 10}
			c.Children = append(c.Children, &ChildConfig{
				Name: "pfs", Proposals: mustProposals(t, wire.ProtoESP, "aes128gcm16-ecp256"),
				LocalTS: c.Children[0].LocalTS, RemoteTS: c.Children[0].RemoteTS,
			})
		}
		p := newPair(t, uint64(1000+i), ini, resp, opts)
		p.faults(uint64(5000+i), 0.2, 0.1, 0.3)
		p.handshake("net", "pfs")
		p.settle()
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p.t = t
			p.requireUp(2)
		})
		sent += p.link.sent
		lost += p.link.dropped
	}
	t.Logf("%d handshakes: %d datagrams sent, %d lost", n, sent, lost)
}
