package sa

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// CHILD_SA rekeying (RFC 7296 1.3.3, 2.8) and its collisions (2.8.1,
// 2.25.1), message by message, from both roles of the IKE SA. Event
// strings: "up+r+d" is ChildUp replacing an SA with its outbound deferred,
// "out" ChildOutbound, "down(rekeyed)" ChildDown with its cause,
// "fail(rekey)" a ChildFailed for a rekey attempt (its SPI released).

func TestChildRekey(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(400+i), ini, resp)
			a, b := ends(p, aIni)
			oldA, oldB := a.only("net"), b.only("net")
			a.do(a.sa().RekeyChild(p.now, oldA.InSPI))
			if got := b.peek(); got != "CREATE_CHILD_SA request [ N(REKEY_SA) SA No TSi TSr ]" {
				t.Fatalf("rekey request %s", got)
			}
			// RFC 7296 1.3.3: REKEY_SA names the SA by the SPI its sender
			// receives it with, protocol ESP.
			req := decryptFrom(t, b.sa().prot, [][]byte{p.link.queue[0].pkt.Data}, a.sa().active.msgID)
			n := collect(req).notify(wire.REKEY_SA)
			if n.Protocol != wire.ProtoESP || binary.BigEndian.Uint32(n.SPI) != oldA.InSPI {
				t.Errorf("REKEY_SA %v %x", n.Protocol, n.SPI)
			}
			expect(t, "b answers", b.recv(), "up+r+d")
			expect(t, "a takes the answer", a.recv(), "up+r")
			if got := b.peek(); got != "INFORMATIONAL request [ D ]" {
				t.Fatalf("after the rekey a sent %s", got)
			}
			expect(t, "b takes the delete of the old SA", b.recv(), "out down(rekeyed)")
			expect(t, "a takes the answer to its delete", a.recv(), "down(rekeyed)")
			p.quiesce(time.Minute)
			p.requireSettled("net")
			newA := a.only("net")
			if newA.InSPI == oldA.InSPI || b.only("net").InSPI == oldB.InSPI || newA.Created != p.now {
				t.Error("the CHILD_SA was not replaced")
			}
			for _, e := range []end{a, b} {
				c := e.sa().counters
				if c.ChildRekeys() != 1 || c.ChildDeletes() != 0 || c.CollisionsWon()+c.CollisionsLost() != 0 {
					t.Errorf("%s counters %+v", e.side().name, c)
				}
				if s := e.sa().Snapshot().Children[0]; s.Rekeys != 1 || !s.Outbound || s.State != ChildInstalled {
					t.Errorf("%s snapshot %+v", e.side().name, s)
				}
			}
			if ca, cb := a.sa().Counters(), b.sa().Counters(); ca.ChildRekeysInitiated != 1 || cb.ChildRekeysResponded != 1 {
				t.Errorf("rekey roles: a (initiator) %+v, b (responder) %+v", ca, cb)
			}
		})
	}
}

// PFS in the rekey (RFC 7296 1.3.3: KE in the exchange), where the
// responder wants another group than the initiator tries first.
func TestChildRekeyInvalidKE(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			aESP, bESP := "aes256gcm16-x25519-ecp256", "aes256gcm16-ecp256"
			iESP, rESP := aESP, bESP
			if !aIni {
				iESP, rESP = bESP, aESP
			}
			ini, resp := lifecycleConfigs(t, iESP, rESP)
			p := upPair(t, uint64(410+i), ini, resp)
			a, b := ends(p, aIni)
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			if got := b.peek(); got != "CREATE_CHILD_SA request [ N(REKEY_SA) SA No KE TSi TSr ]" {
				t.Fatalf("rekey request %s", got)
			}
			expect(t, "b wants ecp256", b.recv(), "")
			if got := a.peek(); got != "CREATE_CHILD_SA response [ N(INVALID_KE_PAYLOAD) ]" {
				t.Fatalf("answer %s", got)
			}
			expect(t, "a retries", a.recv(), "")
			expect(t, "b answers", b.recv(), "up+r+d")
			expect(t, "a takes the answer", a.recv(), "up+r")
			expect(t, "b takes the delete", b.recv(), "out down(rekeyed)")
			expect(t, "a done", a.recv(), "down(rekeyed)")
			p.quiesce(time.Minute)
			p.requireSettled("net")
			if s := a.only("net").Suite.String(); s != "aes256gcm16-ecp256" {
				t.Errorf("suite %s", s)
			}
		})
	}
}

// collisionNonces are the first octets of the four nonces of a collision,
// in the order a's Ni, b's Ni, b's Nr (answering a), a's Nr (answering b);
// each row makes another one the lowest (strongSwan tests the same four).
type collisionCase struct {
	n     [4]byte
	aWins bool // the SA a initiated survives
}

var collisionNonces = []collisionCase{
	{[4]byte{0x00, 0xff, 0xff, 0xff}, false},
	{[4]byte{0xff, 0x00, 0xff, 0xff}, true},
	{[4]byte{0xff, 0xff, 0x00, 0xff}, false},
	{[4]byte{0xff, 0xff, 0xff, 0x00}, true},
}

func (c collisionCase) String() string {
	return fmt.Sprintf("%02x%02x%02x%02x", c.n[0], c.n[1], c.n[2], c.n[3])
}

// Both ends rekey the same CHILD_SA at once; requests and responses cross
// (RFC 7296 2.8.1). The SA with the lowest nonce is deleted by the end
// that created it; the other end deletes the old SA.
func TestChildRekeyCollision(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		for j, tc := range collisionNonces {
			t.Run(fmt.Sprintf("%s/%v", role(aIni), tc), func(t *testing.T) {
				ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
				p := upPair(t, uint64(420+10*i+j), ini, resp)
				a, b := ends(p, aIni)
				nonces(a, b, []byte{tc.n[0], tc.n[3]}, []byte{tc.n[1], tc.n[2]})
				a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
				b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
				expect(t, "b answers a", b.recv(), "up+r+d")
				expect(t, "a answers b", a.recv(), "up+r+d")
				if tc.aWins {
					expect(t, "a's answer: a won", a.recv(), "up+r")
					expect(t, "b's answer: b lost", b.recv(), "up+r+d")
					expect(t, "b: delete of the old SA", b.recv(), "out down(rekeyed)")
					expect(t, "a: delete of b's redundant SA", a.recv(), "down(redundant)")
					expect(t, "a: old SA deleted", a.recv(), "down(rekeyed)")
					expect(t, "b: redundant SA deleted", b.recv(), "down(redundant)")
				} else {
					expect(t, "a's answer: a lost", a.recv(), "up+r+d")
					expect(t, "b's answer: b won", b.recv(), "up+r")
					expect(t, "b: delete of a's redundant SA", b.recv(), "down(redundant)")
					expect(t, "a: delete of the old SA", a.recv(), "out down(rekeyed)")
					expect(t, "a: redundant SA deleted", a.recv(), "down(redundant)")
					expect(t, "b: old SA deleted", b.recv(), "down(rekeyed)")
				}
				p.quiesce(time.Minute)
				p.requireSettled("net")
				won, lost := a.sa().counters.CollisionsWon(), a.sa().counters.CollisionsLost()
				if (tc.aWins && (won != 1 || lost != 0)) || (!tc.aWins && (won != 0 || lost != 1)) {
					t.Errorf("a's collision counters %d/%d", won, lost)
				}
				for _, e := range []end{a, b} {
					if c := e.sa().counters; c.ChildRekeys() != 1 || c.CollisionsWon()+c.CollisionsLost() != 1 || c.IKECollisionsWon+c.IKECollisionsLost != 0 {
						t.Errorf("%s counters %+v", e.side().name, c)
					}
				}
				// The winner's rekey survived: it counts as initiated there,
				// as answered at the loser.
				winner, loser := a, b
				if !tc.aWins {
					winner, loser = b, a
				}
				if cw, cl := winner.sa().counters, loser.sa().counters; cw.ChildRekeysInitiated != 1 || cw.ChildCollisionsWon != 1 ||
					cl.ChildRekeysResponded != 1 || cl.ChildCollisionsLost != 1 {
					t.Errorf("winner %s %+v, loser %s %+v", winner.side().name, cw, loser.side().name, cl)
				}
			})
		}
	}
}

// As above, but b's answer to a's request is delayed until b's rekey and
// the deletes after it have completed.
func TestChildRekeyCollisionDelayedResponse(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		for j, tc := range collisionNonces {
			t.Run(fmt.Sprintf("%s/%v", role(aIni), tc), func(t *testing.T) {
				ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
				p := upPair(t, uint64(460+10*i+j), ini, resp)
				a, b := ends(p, aIni)
				nonces(a, b, []byte{tc.n[0], tc.n[3]}, []byte{tc.n[1], tc.n[2]})
				a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
				b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
				expect(t, "b answers a", b.recv(), "up+r+d")
				expect(t, "a answers b", a.recv(), "up+r+d")
				held := a.take() // b's answer to a
				if tc.aWins {
					expect(t, "b's answer: b lost", b.recv(), "up+r+d")
					expect(t, "a: b deletes its redundant SA", a.recv(), "down(redundant)")
					expect(t, "b: done", b.recv(), "down(redundant)")
					p.deliver(held)
					expect(t, "a: delayed answer, a won", a.since(a.mark()-1), "up+r")
					expect(t, "b: delete of the old SA", b.recv(), "out down(rekeyed)")
					expect(t, "a: old SA deleted", a.recv(), "down(rekeyed)")
				} else {
					expect(t, "b's answer: b won", b.recv(), "up+r")
					expect(t, "a: delete of the old SA", a.recv(), "out down(rekeyed)")
					expect(t, "b: old SA deleted", b.recv(), "down(rekeyed)")
					m := a.mark()
					p.deliver(held)
					expect(t, "a: delayed answer, a lost", a.since(m), "up+d")
					expect(t, "b: delete of a's redundant SA", b.recv(), "down(redundant)")
					expect(t, "a: redundant SA deleted", a.recv(), "down(redundant)")
				}
				p.quiesce(time.Minute)
				p.requireSettled("net")
			})
		}
	}
}

// One end's rekey request is delayed until the other completed its own
// rekey and started deleting the old SA: it is answered with
// TEMPORARY_FAILURE (RFC 7296 2.25.1) and the rekey is abandoned (the
// peer's replaced the SA). The nonces do not matter.
func TestChildRekeyCollisionDelayedRequest(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		for j, n := range [][3]byte{{0x00, 0xff, 0xff}, {0xff, 0x00, 0xff}, {0xff, 0xff, 0x00}} {
			t.Run(fmt.Sprintf("%s/%x", role(aIni), n), func(t *testing.T) {
				ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
				p := upPair(t, uint64(500+10*i+j), ini, resp)
				a, b := ends(p, aIni)
				nonces(a, b, []byte{n[0], n[2]}, []byte{n[1]})
				a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
				b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
				held := b.take() // a's request
				expect(t, "a answers b", a.recv(), "up+r+d")
				expect(t, "b's rekey completes", b.recv(), "up+r")
				m := b.mark()
				p.deliver(held)
				expect(t, "b: a's delayed request", b.since(m), "")
				if got := a.peek(); got != "INFORMATIONAL request [ D ]" {
					t.Fatalf("a receives %s", got)
				}
				expect(t, "a: delete of the old SA", a.recv(), "out down(rekeyed)")
				if got := a.peek(); got != "CREATE_CHILD_SA response [ N(TEMPORARY_FAILURE) ]" {
					t.Fatalf("a receives %s", got)
				}
				expect(t, "a: its rekey is moot", a.recv(), "fail(rekey)")
				expect(t, "b: old SA deleted", b.recv(), "down(rekeyed)")
				p.quiesce(time.Minute)
				p.requireSettled("net")
				if len(a.sa().delayed) != 0 {
					t.Error("a retries a rekey that is moot")
				}
			})
		}
	}
}

// As above, but the request comes after the old SA is gone: the answer is
// CHILD_SA_NOT_FOUND (RFC 7296 2.25), and the rekey is abandoned.
func TestChildRekeyCollisionDelayedRequestMore(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		for j, n := range [][3]byte{{0x00, 0xff, 0xff}, {0xff, 0x00, 0xff}, {0xff, 0xff, 0x00}} {
			t.Run(fmt.Sprintf("%s/%x", role(aIni), n), func(t *testing.T) {
				ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
				p := upPair(t, uint64(540+10*i+j), ini, resp)
				a, b := ends(p, aIni)
				nonces(a, b, []byte{n[0], n[2]}, []byte{n[1]})
				a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
				b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
				held := b.take()
				expect(t, "a answers b", a.recv(), "up+r+d")
				expect(t, "b's rekey completes", b.recv(), "up+r")
				expect(t, "a: delete of the old SA", a.recv(), "out down(rekeyed)")
				expect(t, "b: old SA deleted", b.recv(), "down(rekeyed)")
				m := b.mark()
				p.deliver(held)
				expect(t, "b: a's delayed request", b.since(m), "")
				if got := a.peek(); got != "CREATE_CHILD_SA response [ N(CHILD_SA_NOT_FOUND) ]" {
					t.Fatalf("a receives %s", got)
				}
				expect(t, "a: its rekey is moot", a.recv(), "fail(rekey)")
				p.quiesce(time.Minute)
				p.requireSettled("net")
			})
		}
	}
}

// A collision where a's first request gets INVALID_KE_PAYLOAD. When the
// peer's request arrives before that answer, a abandons its retry (the
// peer's rekey replaces the SA); when the answer comes first, a retries and
// the collision is settled by the nonces of the retry.
func TestChildRekeyCollisionInvalidKE(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		setup := func(t *testing.T, seed uint64) (*pair, end, end) {
			aESP, bESP := "aes256gcm16-x25519-ecp256", "aes256gcm16-ecp256"
			iESP, rESP := aESP, bESP
			if !aIni {
				iESP, rESP = bESP, aESP
			}
			ini, resp := lifecycleConfigs(t, iESP, rESP)
			p := upPair(t, seed, ini, resp)
			a, b := ends(p, aIni)
			return p, a, b
		}
		t.Run(role(aIni)+"/peer's request first", func(t *testing.T) {
			p, a, b := setup(t, uint64(580+i))
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
			expect(t, "b: INVALID_KE_PAYLOAD for a", b.recv(), "")
			expect(t, "a answers b", a.recv(), "up+r+d")
			expect(t, "a: no retry, the peer's rekey replaces the SA", a.recv(), "fail(rekey)")
			expect(t, "b's rekey completes", b.recv(), "up+r")
			expect(t, "a: delete of the old SA", a.recv(), "out down(rekeyed)")
			expect(t, "b: old SA deleted", b.recv(), "down(rekeyed)")
			p.quiesce(time.Minute)
			p.requireSettled("net")
		})
		for j, tc := range collisionNonces {
			t.Run(fmt.Sprintf("%s/retry first/%v", role(aIni), tc), func(t *testing.T) {
				p, a, b := setup(t, uint64(590+10*i+j))
				// a draws Ni twice (first try, retry), then Nr.
				nonces(a, b, []byte{0xff, tc.n[0], tc.n[3]}, []byte{tc.n[1], tc.n[2]})
				a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
				b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
				expect(t, "b: INVALID_KE_PAYLOAD for a", b.recv(), "")
				peer := a.take() // b's request waits
				expect(t, "a retries", a.recv(), "")
				p.deliver(peer)
				expect(t, "b answers the retry", b.recv(), "up+r+d")
				expect(t, "a's answer", a.recv(), map[bool]string{true: "up+r", false: "up+r+d"}[tc.aWins])
				expect(t, "b's answer", b.recv(), map[bool]string{true: "up+r+d", false: "up+r"}[tc.aWins])
				p.quiesce(time.Minute)
				p.requireSettled("net")
				if s := a.only("net").Suite.String(); s != "aes256gcm16-ecp256" {
					t.Errorf("suite %s", s)
				}
			})
		}
	}
}

// a rekeys the CHILD_SA b deletes at the same time (RFC 7296 2.25.1): b
// answers TEMPORARY_FAILURE, a answers the delete as usual and drops its
// rekey; the child is gone on both ends.
func TestChildRekeyCollisionDelete(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(630+i), ini, resp)
			a, b := ends(p, aIni)
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			b.do(b.sa().DeleteChild(p.now, b.only("net").InSPI))
			expect(t, "b: TEMPORARY_FAILURE", b.recv(), "")
			expect(t, "a: the peer's delete", a.recv(), "down(peer)")
			expect(t, "a: TEMPORARY_FAILURE", a.recv(), "fail(rekey)")
			expect(t, "b: deleted", b.recv(), "down(local)")
			p.quiesce(time.Minute)
			p.requireSettled()
			if len(a.sa().delayed) != 0 {
				t.Error("a retries the rekey of a deleted SA")
			}
		})
	}
}

// As above, but the delete reaches a after the TEMPORARY_FAILURE: a
// schedules a retry, which finds the SA gone.
func TestChildRekeyCollisionDeleteDelayed(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(640+i), ini, resp)
			a, b := ends(p, aIni)
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			b.do(b.sa().DeleteChild(p.now, b.only("net").InSPI))
			expect(t, "b: TEMPORARY_FAILURE", b.recv(), "")
			held := a.take()
			expect(t, "a: TEMPORARY_FAILURE, retry later", a.recv(), "")
			if d := a.sa().delayed; len(d) != 1 || d[0].at.Sub(p.now) < retryInterval-retryJitter || d[0].at.Sub(p.now) > retryInterval {
				t.Fatalf("retry %+v", d)
			}
			m := a.mark()
			p.deliver(held)
			expect(t, "a: the peer's delete", a.since(m), "down(peer)")
			expect(t, "b: deleted", b.recv(), "down(local)")
			m = a.mark()
			p.quiesce(time.Minute)
			expect(t, "a: the retry finds nothing to rekey", a.since(m), "fail(rekey)")
			p.requireSettled()
		})
	}
}

// As above, but a's request reaches b after the delete completed:
// CHILD_SA_NOT_FOUND.
func TestChildRekeyCollisionDeleteRekeyDelayed(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(650+i), ini, resp)
			a, b := ends(p, aIni)
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			b.do(b.sa().DeleteChild(p.now, b.only("net").InSPI))
			held := b.take()
			expect(t, "a: the peer's delete", a.recv(), "down(peer)")
			expect(t, "b: deleted", b.recv(), "down(local)")
			p.deliver(held)
			if got := a.peek(); got != "CREATE_CHILD_SA response [ N(CHILD_SA_NOT_FOUND) ]" {
				t.Fatalf("a receives %s", got)
			}
			expect(t, "a: rekey dropped", a.recv(), "fail(rekey)")
			p.quiesce(time.Minute)
			p.requireSettled()
		})
	}
}

// The peer lost the CHILD_SA without deleting it: CHILD_SA_NOT_FOUND makes
// us drop it and create a new one from scratch (RFC 7296 2.25).
func TestChildRekeyNotFound(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(660+i), ini, resp)
			a, b := ends(p, aIni)
			// b forgets the SA (as after a restart of its data plane).
			lost := b.sa().children[0]
			b.sa().removeChild(lost)
			delete(b.side().children, lost.sa.InSPI)
			delete(b.side().outbound, lost.sa.ReqID)
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			expect(t, "b: CHILD_SA_NOT_FOUND", b.recv(), "")
			expect(t, "a: drops it, creates it anew", a.recv(), "fail(rekey) down(failed)")
			expect(t, "b: new CHILD_SA", b.recv(), "up")
			expect(t, "a: new CHILD_SA", a.recv(), "up")
			p.quiesce(time.Minute)
			p.requireSettled("net")
		})
	}
}

// The peer refuses the rekey (its proposals changed): the old SA stays and
// the rekey is retried later, then succeeds once the peer accepts.
func TestChildRekeyNoProposal(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(670+i), ini, resp)
			a, b := ends(p, aIni)
			bCfg := b.sa().cfg.Children[0]
			saved := bCfg.Proposals
			bCfg.Proposals = mustProposals(t, wire.ProtoESP, "aes128gcm16")
			old := a.only("net")
			a.do(a.sa().RekeyChild(p.now, old.InSPI))
			expect(t, "b: NO_PROPOSAL_CHOSEN", b.recv(), "fail(rekey)")
			expect(t, "a: rekey failed", a.recv(), "fail(rekey)")
			if a.only("net") != old || len(a.sa().delayed) != 1 {
				t.Fatal("the old SA is not kept, or no retry")
			}
			var fe ChildFailed
			for _, e := range a.side().events {
				if f, ok := e.(ChildFailed); ok {
					fe = f
				}
			}
			requireNotifyErr(t, "a", fe.Err, wire.NO_PROPOSAL_CHOSEN, true)
			bCfg.Proposals = saved
			p.quiesce(time.Minute)
			p.requireSettled("net")
			if a.only("net") == old || a.sa().Snapshot().Children[0].Rekeys != 1 {
				t.Error("the retry did not rekey")
			}
		})
	}
}

// The responder of a rekey ignores a soft expiry of the old SA while it
// waits for its delete, and on a hard expiry switches to the new SA and
// deletes the old one itself; the deletes cross (RFC 7296 1.4.1).
func TestChildRekeyResponderExpiry(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(680+i), ini, resp)
			a, b := ends(p, aIni)
			oldB := b.only("net")
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			expect(t, "b answers", b.recv(), "up+r+d")
			if out := b.sa().ChildExpired(p.now, oldB.InSPI, false); len(out.Packets)+len(out.Events) != 0 {
				t.Fatalf("soft expiry while rekeyed: %+v", out)
			}
			expect(t, "a takes the answer", a.recv(), "up+r")
			m := b.mark()
			b.do(b.sa().ChildExpired(p.now, oldB.InSPI, true))
			expect(t, "b: hard expiry of the old SA", b.since(m), "out")
			expect(t, "b: a's delete crosses b's", b.recv(), "down(rekeyed)")
			expect(t, "a: b's delete crosses a's", a.recv(), "down(rekeyed)")
			if got := a.peek(); got != "INFORMATIONAL response [ ]" {
				t.Errorf("answer to crossing delete: %s", got)
			}
			expect(t, "a: answer", a.recv(), "")
			expect(t, "b: answer", b.recv(), "")
			p.quiesce(time.Minute)
			p.requireSettled("net")
		})
	}
}

// Without the initiator's delete, the responder of a rekey switches
// outbound to the new SA after RekeyOutboundTimeout, but only once the
// peer has shown that it holds the new SA (it sent a later request).
func TestChildRekeyOutboundTimeout(t *testing.T) {
	for i, early := range []bool{true, false} {
		t.Run(fmt.Sprintf("ack early %v", early), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(690+i), ini, resp)
			a, b := ends(p, true)
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			expect(t, "b answers", b.recv(), "up+r+d")
			answered := p.now
			if !early {
				// b's answer is late: no switch while a may not hold the
				// new SA.
				held := a.take()
				m := b.mark()
				p.now = p.now.Add(time.Minute)
				p.tick()
				expect(t, "b: no switch without an acknowledgement", b.since(m), "")
				p.link.queue = append(p.link.queue, held)
			}
			expect(t, "a takes the answer", a.recv(), "up+r")
			// A peer that never deletes the old SA: a's Delete is lost and
			// forgotten; its next request is a liveness check.
			for b.pending() > 0 {
				b.take() // the Delete (and stale retransmissions)
			}
			a.sa().active = nil // its message ID is reused
			a.do(a.sa().Liveness(p.now))
			m := b.mark()
			p.run(time.Minute, func() bool { return b.since(m) != "" })
			expect(t, "b: switched", b.since(m), "out")
			want := answered.Add(defaultRekeyOutboundTimeout)
			if !early {
				want = answered.Add(time.Minute)
			}
			if !p.now.Equal(want) {
				t.Errorf("switched at %v, want %v", p.now.Sub(answered), want.Sub(answered))
			}
			p.requireNoFaults()
		})
	}
}
