package sa

import (
	"fmt"
	"testing"
	"time"
)

// The collision cases through the fault-injecting link (loss, duplication,
// reordering), and forced collisions: both ends start the same rekey at
// the same instant, by command or by un-jittered lifetimes. Every run must
// end with exactly one IKE SA and one CHILD_SA per child on both sides,
// matching, and make-before-break must hold throughout (pair.checkFlow).

// lossyScenarios start rekeys and deletes at the same instant on both ends.
var lossyScenarios = []struct {
	name     string
	start    func(p *pair, a, b end)
	children int // CHILD_SAs left
}{
	{"child rekey collision", func(p *pair, a, b end) {
		a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
		b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
	}, 1},
	{"IKE rekey collision", func(p *pair, a, b end) {
		a.do(a.sa().Rekey(p.now))
		b.do(b.sa().Rekey(p.now))
	}, 1},
	{"child rekey crosses IKE rekey", func(p *pair, a, b end) {
		a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
		b.do(b.sa().Rekey(p.now))
	}, 1},
	{"child rekey crosses child delete", func(p *pair, a, b end) {
		a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
		b.do(b.sa().DeleteChild(p.now, b.only("net").InSPI))
	}, 0},
	{"all at once", func(p *pair, a, b end) {
		a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
		b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
		a.do(a.sa().Rekey(p.now))
		b.do(b.sa().Rekey(p.now))
	}, 1},
}

func TestLifecycleLossy(t *testing.T) {
	runs := 24
	if testing.Short() {
		runs = 6
	}
	sent, lost := 0, 0
	for si, sc := range lossyScenarios {
		for i := range runs {
			aIni := i%2 == 0
			t.Run(fmt.Sprintf("%s/%d", sc.name, i), func(t *testing.T) {
				ini, resp := lifecycleConfigs(t, "aes256gcm16-x25519", "aes256gcm16-x25519")
				for _, c := range []*Config{ini, resp} {
					c.Retransmit = Retransmit{Tries: 10}
				}
				p := upPair(t, uint64(2000+100*si+i), ini, resp)
				p.faults(uint64(3000+100*si+i), 0.2, 0.1, 0.3)
				a, b := ends(p, aIni)
				sc.start(p, a, b)
				p.quiesce(30 * time.Minute)
				if sc.children == 0 {
					p.requireSettled()
				} else {
					p.requireSettled("net")
				}
				sent += p.link.sent
				lost += p.link.dropped
			})
		}
	}
	t.Logf("%d datagrams sent, %d lost", sent, lost)
}

// Forced collisions by lifetimes: no jitter, so both ends start every
// CHILD_SA rekey (every 2 minutes) and IKE SA rekey (every 5 minutes) at
// the same instant, for an hour, without faults and with several lossy
// links. The hard lifetime leaves the retransmission schedule room to
// complete a rekey.
func TestForcedCollisionsByLifetime(t *testing.T) {
	runs := 8
	if testing.Short() {
		runs = 2
	}
	for i := range runs + 1 {
		lossy := i > 0
		t.Run(fmt.Sprintf("lossy %v/%d", lossy, i), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16-x25519", "aes256gcm16-x25519")
			for _, c := range []*Config{ini, resp} {
				c.Children[0].RekeyTime, c.Children[0].RandTime, c.Children[0].LifeTime = 2*time.Minute, -1, 10*time.Minute
				c.RekeyTime, c.RandTime = 5*time.Minute, -1
				c.Retransmit = Retransmit{Tries: 10}
			}
			p := upPair(t, uint64(2900+i), ini, resp)
			if lossy {
				p.faults(uint64(2950+i), 0.1, 0.05, 0.2)
			}
			p.timeline(time.Hour)
			p.link.rng = nil
			p.quiesce(time.Hour)
			p.requireSettled("net")
			var childRekeys, ikeRekeys, won, lost uint64
			for _, s := range []*side{p.i, p.r} {
				for _, sa := range s.sas {
					c := sa.counters
					childRekeys += c.ChildRekeys()
					ikeRekeys += c.IKERekeys()
					won += c.CollisionsWon()
					lost += c.CollisionsLost()
				}
			}
			t.Logf("CHILD_SA rekeys %d, IKE SA rekeys %d, collisions won %d, lost %d (both sides)", childRekeys, ikeRekeys, won, lost)
			// Every collision one end detected has a loser; one that only
			// one end noticed (its request came too late) counts a loss only.
			if won == 0 || lost < won {
				t.Errorf("collisions won %d, lost %d", won, lost)
			}
			if p.i.ikeUp < 12 {
				t.Errorf("only %d IKE SAs in an hour", p.i.ikeUp)
			}
		})
	}
}
