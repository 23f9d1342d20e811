package sa

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// IKE SA rekeying (RFC 7296 1.3.2, 2.18) and its collisions (2.8.2,
// 2.25.2), message by message, from both roles. "ike>" is IKERekeyed (the
// CHILD_SAs move), "ike+" IKEAdded (a colliding new IKE SA registered).

func TestIKERekey(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(700+i), ini, resp)
			a, b := ends(p, aIni)
			oldA, oldB := a.sa(), b.sa()
			oldSPIi, oldSPIr := oldA.SPIs()
			childA, childB := a.only("net"), b.only("net")
			a.do(oldA.Rekey(p.now))
			if oldA.State() != StateRekeying {
				t.Errorf("state while rekeying: %v", oldA.State())
			}
			if got := b.peek(); got != "CREATE_CHILD_SA request [ SA No KE ]" {
				t.Fatalf("rekey request %s", got)
			}
			expect(t, "b answers, hands over", b.recv(), "ike>")
			if oldB.State() != StateDeleting || b.sa() == oldB || len(oldB.children) != 0 {
				t.Fatalf("b after answering: %v, %d children left", oldB.State(), len(oldB.children))
			}
			expect(t, "a takes the answer, hands over", a.recv(), "ike>")
			if got := b.peek(); got != "INFORMATIONAL request [ D ]" {
				t.Fatalf("a then sends %s", got)
			}
			expect(t, "b: old IKE SA deleted", b.recv(), "deleted(rekeyed)")
			expect(t, "a: old IKE SA deleted", a.recv(), "deleted(rekeyed)")
			p.quiesce(time.Minute)
			p.requireSettled("net")
			newA, newB := a.sa(), b.sa()
			spii, spir := newA.SPIs()
			if spii == oldSPIi || spir == oldSPIr || spii == 0 || spir == 0 {
				t.Errorf("SPIs %016x %016x after %016x %016x", spii, spir, oldSPIi, oldSPIr)
			}
			// RFC 7296 2.18: the rekey initiator is the new SA's original
			// initiator, message IDs restart, the keys are new.
			if newA.Initiator() != true || newB.Initiator() {
				t.Errorf("roles: a %v b %v", newA.Initiator(), newB.Initiator())
			}
			if newA.nextID != 0 || newB.peerID != 0 {
				t.Errorf("message IDs %d/%d", newA.nextID, newB.peerID)
			}
			if bytes.Equal(newA.keys.SKd, childA.InEncr) || newA.prot == oldA.prot {
				t.Error("keys not replaced")
			}
			// No data plane change: the same CHILD_SAs.
			if a.only("net") != childA || b.only("net") != childB {
				t.Error("CHILD_SAs changed")
			}
			if !oldA.Done() || !oldB.Done() {
				t.Error("old IKE SAs not done")
			}
			// a initiated the rekey, b answered it.
			if ca, cb := oldA.counters, oldB.counters; ca.IKERekeysInitiated != 1 || ca.IKERekeysResponded != 0 ||
				cb.IKERekeysResponded != 1 || cb.IKERekeysInitiated != 0 {
				t.Errorf("IKE rekeys counted a %+v, b %+v", ca, cb)
			}
			// The new IKE SA works: rekey the CHILD_SA on it, from b.
			b.do(newB.RekeyChild(p.now, childB.InSPI))
			p.quiesce(time.Minute)
			p.requireSettled("net")
			if a.only("net") == childA {
				t.Error("CHILD_SA not rekeyed on the new IKE SA")
			}
			if d := p.i.deleted(); d != nil {
				t.Errorf("a Deleted event other than the rekey's: %+v", d)
			}
		})
	}
}

// The new IKE SA's keys follow RFC 7296 2.18: SKEYSEED = prf(SK_d (old),
// g^ir (new) | Ni | Nr) with the OLD IKE SA's PRF, here a different one.
func TestIKERekeyKeys(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	p := upPair(t, 710, ini, resp)
	a, b := ends(p, true)
	old := a.sa()
	oldSKd, oldPRF := bytes.Clone(old.keys.SKd), old.prf
	// Both sides now prefer a suite with another PRF.
	for _, c := range []*Config{ini, resp} {
		c.IKEProposals = mustProposals(t, wire.ProtoIKE, "aes128gcm16-prfsha384-x25519")
	}
	a.do(old.Rekey(p.now))
	b.recv()
	a.recv()
	n := a.sa()
	if n.suite.String() != "aes128gcm16-prfsha384-x25519" {
		t.Fatalf("suite %s", n.suite)
	}
	// Recompute with the shared secret the responder side also got: both
	// sides' keys must match, and match our formula.
	if !bytes.Equal(n.keys.SKd, b.sa().keys.SKd) || !bytes.Equal(n.keys.SKei, b.sa().keys.SKei) {
		t.Fatal("the two sides derived different keys")
	}
	if oldPRF == n.prf {
		t.Fatal("same PRF")
	}
	// SKEYSEED with the new PRF instead gives other keys.
	wrong := keys.RekeySKEYSEED(n.prf, oldSKd, n.rekeyNi, n.rekeyNr, make([]byte, 32))
	if bytes.Equal(wrong, n.keys.SKd) {
		t.Fatal("degenerate")
	}
	p.quiesce(time.Minute)
	p.requireSettled("net")
}

// The responder wants another key exchange method for the new IKE SA.
func TestIKERekeyInvalidKE(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(720+i), ini, resp)
			a, b := ends(p, aIni)
			a.sa().cfg.IKEProposals = mustProposals(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519-ecp384")
			b.sa().cfg.IKEProposals = mustProposals(t, wire.ProtoIKE, "aes256gcm16-prfsha256-ecp384")
			a.do(a.sa().Rekey(p.now))
			expect(t, "b: INVALID_KE_PAYLOAD", b.recv(), "")
			if got := a.peek(); got != "CREATE_CHILD_SA response [ N(INVALID_KE_PAYLOAD) ]" {
				t.Fatalf("a receives %s", got)
			}
			expect(t, "a retries", a.recv(), "")
			expect(t, "b answers", b.recv(), "ike>")
			expect(t, "a hands over", a.recv(), "ike>")
			p.quiesce(time.Minute)
			p.requireSettled("net")
			if s := a.sa().suite.String(); s != "aes256gcm16-prfsha256-ecp384" {
				t.Errorf("suite %s", s)
			}
		})
	}
}

// The peer refuses the rekey: we stay on the old IKE SA and retry later,
// which succeeds once the peer accepts again.
func TestIKERekeyNoProposal(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(730+i), ini, resp)
			a, b := ends(p, aIni)
			saved := b.sa().cfg.IKEProposals
			b.sa().cfg.IKEProposals = mustProposals(t, wire.ProtoIKE, "aes128-sha256-modp2048")
			old := a.sa()
			a.do(old.Rekey(p.now))
			expect(t, "b: NO_PROPOSAL_CHOSEN", b.recv(), "")
			expect(t, "a: failed, retry later", a.recv(), "")
			if old.State() != StateEstablished || len(old.delayed) != 1 || a.sa() != old {
				t.Fatalf("after the failure: %v, %d delayed", old.State(), len(old.delayed))
			}
			b.sa().cfg.IKEProposals = saved
			p.quiesce(time.Minute)
			p.requireSettled("net")
			if a.sa() == old {
				t.Error("not rekeyed by the retry")
			}
		})
	}
}

// Both ends rekey the IKE SA at once (RFC 7296 2.8.2): the new IKE SA
// created with the lowest nonce is deleted by its creator, the CHILD_SAs
// move to the other one, whose creator deletes the old IKE SA.
func TestIKERekeyCollision(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		for j, tc := range collisionNonces {
			t.Run(fmt.Sprintf("%s/%v", role(aIni), tc), func(t *testing.T) {
				ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
				p := upPair(t, uint64(740+10*i+j), ini, resp)
				a, b := ends(p, aIni)
				oldA, oldB := a.sa(), b.sa()
				nonces(a, b, []byte{tc.n[0], tc.n[3]}, []byte{tc.n[1], tc.n[2]})
				a.do(oldA.Rekey(p.now))
				b.do(oldB.Rekey(p.now))
				expect(t, "b answers a", b.recv(), "ike+")
				expect(t, "a answers b", a.recv(), "ike+")
				if tc.aWins {
					expect(t, "a's answer: a won", a.recv(), "ike>")
					expect(t, "b's answer: b lost", b.recv(), "ike> ike+")
				} else {
					expect(t, "a's answer: a lost", a.recv(), "ike> ike+")
					expect(t, "b's answer: b won", b.recv(), "ike>")
				}
				p.quiesce(time.Minute)
				p.requireSettled("net")
				winner := a.sa()
				if winner.Initiator() != tc.aWins {
					t.Errorf("the surviving IKE SA was created by the wrong side")
				}
				if !oldA.Done() || !oldB.Done() {
					t.Error("old IKE SAs not done")
				}
				for _, e := range []end{a, b} {
					if e.side().ikeUp != 3 {
						t.Errorf("%s registered %d IKE SAs, want 3 (old, ours, the peer's)", e.side().name, e.side().ikeUp)
					}
					var causes []string
					for _, ev := range e.side().events {
						if d, ok := ev.(Deleted); ok {
							causes = append(causes, d.Cause.String())
						}
					}
					if fmt.Sprint(causes) != "[rekeyed redundant]" && fmt.Sprint(causes) != "[redundant rekeyed]" {
						t.Errorf("%s: Deleted causes %v", e.side().name, causes)
					}
				}
				won, lost := oldA.counters.IKECollisionsWon, oldA.counters.IKECollisionsLost
				if c := oldA.counters; c.ChildCollisionsWon+c.ChildCollisionsLost != 0 {
					t.Errorf("a counted an IKE SA collision as a CHILD_SA one: %+v", c)
				}
				if (tc.aWins && won != 1) || (!tc.aWins && lost != 1) {
					t.Errorf("a's collision counters %d/%d", won, lost)
				}
			})
		}
	}
}

// One end's request is delayed: the other completes its rekey and deletes
// the old IKE SA before it arrives; the delayed one is answered with
// TEMPORARY_FAILURE or not at all. The peer's new IKE SA wins.
func TestIKERekeyCollisionDelayedRequest(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(790+i), ini, resp)
			a, b := ends(p, aIni)
			oldA := a.sa()
			a.do(oldA.Rekey(p.now))
			b.do(b.sa().Rekey(p.now))
			held := b.take() // a's request
			expect(t, "a answers b (collision)", a.recv(), "ike+")
			expect(t, "b's rekey completes", b.recv(), "ike>")
			m := b.mark()
			p.deliver(held)
			expect(t, "b: a's delayed request", b.since(m), "")
			if got := a.peek(); got != "INFORMATIONAL request [ D ]" {
				t.Fatalf("a receives %s", got)
			}
			expect(t, "a: the old IKE SA is deleted; b's new one takes over", a.recv(), "ike> deleted(rekeyed)")
			p.quiesce(time.Minute)
			p.requireSettled("net")
			if a.sa().Initiator() {
				t.Error("a's IKE SA survived")
			}
			if oldA.counters.IKECollisionsLost != 1 || oldA.counters.IKERekeysResponded != 1 {
				t.Errorf("counters %+v", oldA.counters)
			}
		})
	}
}

// a rekeys the IKE SA while b deletes it (RFC 7296 2.25.2): b answers
// TEMPORARY_FAILURE, a answers the delete; everything is gone.
func TestIKERekeyCollisionDelete(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(800+i), ini, resp)
			a, b := ends(p, aIni)
			a.do(a.sa().Rekey(p.now))
			b.do(b.sa().Delete(p.now))
			expect(t, "b: TEMPORARY_FAILURE", b.recv(), "")
			expect(t, "a: deleted by the peer", a.recv(), "down(peer) deleted(peer)")
			expect(t, "a: the late answer is dropped", a.recv(), "")
			expect(t, "b: deleted", b.recv(), "down(local) deleted(local)")
			p.quiesce(time.Minute)
			if len(p.i.live())+len(p.r.live()) != 0 || len(p.i.children)+len(p.r.children) != 0 {
				t.Fatalf("left: %s %s", describeSAs(p.i.live()), describeSAs(p.r.live()))
			}
			p.requireNoFaults()
		})
	}
}

// An IKE SA rekey crosses a CHILD_SA rekey (RFC 7296 2.25.2 and 2.25.1):
// both are answered with TEMPORARY_FAILURE and retried after a random
// delay, then both succeed.
func TestIKERekeyCollisionChildRekey(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(810+i), ini, resp)
			a, b := ends(p, aIni)
			oldA := a.sa()
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			b.do(b.sa().Rekey(p.now))
			expect(t, "b: TEMPORARY_FAILURE for the CHILD_SA rekey", b.recv(), "")
			expect(t, "a: TEMPORARY_FAILURE for the IKE SA rekey", a.recv(), "")
			expect(t, "a: retry later", a.recv(), "")
			expect(t, "b: retry later", b.recv(), "")
			for _, e := range []end{a, b} {
				d := e.sa().delayed
				if len(d) != 1 || d[0].at.Sub(p.now) < retryInterval-retryJitter || d[0].at.Sub(p.now) > retryInterval {
					t.Fatalf("%s: retries %+v", e.side().name, d)
				}
				if e.sa().counters.TempFailures != 1 {
					t.Errorf("%s: TEMPORARY_FAILURE not counted", e.side().name)
				}
			}
			p.quiesce(5 * time.Minute)
			p.requireSettled("net")
			if a.sa() == oldA || a.sa().Snapshot().Children[0].Rekeys != 1 {
				t.Error("not both rekeys done")
			}
		})
	}
}

// An IKE SA rekey crosses the creation of a CHILD_SA: TEMPORARY_FAILURE
// for both, then both are retried.
func TestIKERekeyCollisionChildCreate(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			for _, c := range []*Config{ini, resp} {
				c.Children = append(c.Children, &ChildConfig{
					Name: "second", ReqID: 2, LocalTS: c.Children[0].RemoteTS, RemoteTS: c.Children[0].LocalTS,
					Proposals: mustProposals(t, wire.ProtoESP, "aes256gcm16"),
				})
			}
			// The second child's selectors mirror the first's on each side:
			// swap them so that they match crosswise.
			ini.Children[1].LocalTS, ini.Children[1].RemoteTS = ini.Children[0].LocalTS, ini.Children[0].RemoteTS
			resp.Children[1].LocalTS, resp.Children[1].RemoteTS = resp.Children[0].LocalTS, resp.Children[0].RemoteTS
			p := newPair(t, uint64(820+i), ini, resp, ResponderOptions{})
			p.handshake("net")
			p.settle()
			p.requireUp(1)
			p.checkFlow = true
			a, b := ends(p, aIni)
			a.do(a.sa().CreateChild(p.now, "second"))
			b.do(b.sa().Rekey(p.now))
			expect(t, "b: TEMPORARY_FAILURE for the new CHILD_SA", b.recv(), "")
			expect(t, "a: TEMPORARY_FAILURE for the IKE SA rekey", a.recv(), "")
			expect(t, "a: retry later", a.recv(), "")
			expect(t, "b: retry later", b.recv(), "")
			p.quiesce(5 * time.Minute)
			if len(p.i.childFailures())+len(p.r.childFailures()) != 0 {
				t.Fatalf("failures %v %v", p.i.childFailures(), p.r.childFailures())
			}
			// "second" has the selectors of "net": narrowing may pick either
			// configuration on the responder; both children must be up.
			if len(a.sa().children) != 2 || len(b.sa().children) != 2 {
				t.Fatalf("children %d/%d", len(a.sa().children), len(b.sa().children))
			}
			p.requireNoFaults()
		})
	}
}

// A responder busy with its own exchange still answers CHILD_SA rekeys, but
// declines an IKE SA rekey while a CHILD_SA exchange of its own is in
// flight (RFC 7296 2.25.2).
func TestRekeyBusyResponder(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(830+i), ini, resp)
			a, b := ends(p, aIni)
			// a's liveness check is in flight: a CHILD_SA rekey from b is
			// answered.
			a.do(a.sa().Liveness(p.now))
			b.do(b.sa().RekeyChild(p.now, b.only("net").InSPI))
			held := b.take() // a's liveness check waits
			expect(t, "a answers b's rekey while busy", a.recv(), "up+r+d")
			p.deliver(held)
			p.quiesce(time.Minute)
			p.requireSettled("net")
			// a's CHILD_SA rekey is in flight: b's IKE rekey is declined.
			a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
			b.do(b.sa().Rekey(p.now))
			held = b.take()
			expect(t, "a declines the IKE SA rekey", a.recv(), "")
			if got := b.peek(); got != "CREATE_CHILD_SA response [ N(TEMPORARY_FAILURE) ]" {
				t.Fatalf("b receives %s", got)
			}
			p.deliver(held)
			p.quiesce(5 * time.Minute)
			p.requireSettled("net")
		})
	}
}

// Delete during the IKE SA rekey: when the rekey completes, the new IKE SA
// is deleted too.
func TestIKERekeyThenDelete(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	p := upPair(t, 840, ini, resp)
	a, b := ends(p, true)
	a.do(a.sa().Rekey(p.now))
	a.do(a.sa().Delete(p.now))
	expect(t, "b answers the rekey", b.recv(), "ike>")
	expect(t, "a: hands over, the new IKE SA is deleted too", a.recv(), "ike>")
	p.quiesce(time.Minute)
	if len(p.i.live())+len(p.r.live()) != 0 || len(p.i.children)+len(p.r.children) != 0 {
		t.Fatalf("left: %s %s", describeSAs(p.i.live()), describeSAs(p.r.live()))
	}
	p.requireNoFaults()
}

// A redundant IKE SA the peer should delete but does not is deleted by us
// after a while; so is an old IKE SA after a rekey by the peer.
func TestIKERekeyPeerDoesNotDelete(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	p := upPair(t, 850, ini, resp)
	a, b := ends(p, true)
	old := b.sa()
	a.do(a.sa().Rekey(p.now))
	expect(t, "b answers the rekey", b.recv(), "ike>")
	expect(t, "a hands over", a.recv(), "ike>")
	// a's Delete of the old IKE SA is lost, and so are its retransmissions.
	p.tamper = func(toResponder bool, d []byte) []byte {
		m, _ := wire.Parse(d)
		if m != nil && m.Exchange == wire.INFORMATIONAL {
			return nil
		}
		return d
	}
	start := p.now
	p.run(10*time.Minute, func() bool { return old.Done() })
	if d := p.now.Sub(start); !old.Done() || d < old.replacedWait() {
		t.Fatalf("old IKE SA gone after %v (done %v)", d, old.Done())
	}
	p.tamper = nil
	p.quiesce(10 * time.Minute)
	p.requireSettled("net")
}

// As TestIKERekeyCollision, but b's answer to a is delayed until b has
// settled the collision and acted on it.
func TestIKERekeyCollisionDelayedResponse(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		for j, tc := range collisionNonces {
			t.Run(fmt.Sprintf("%s/%v", role(aIni), tc), func(t *testing.T) {
				ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
				p := upPair(t, uint64(860+10*i+j), ini, resp)
				a, b := ends(p, aIni)
				nonces(a, b, []byte{tc.n[0], tc.n[3]}, []byte{tc.n[1], tc.n[2]})
				a.do(a.sa().Rekey(p.now))
				b.do(b.sa().Rekey(p.now))
				expect(t, "b answers a", b.recv(), "ike+")
				expect(t, "a answers b", a.recv(), "ike+")
				held := a.take()
				if tc.aWins {
					expect(t, "b's answer: b lost", b.recv(), "ike> ike+")
					// b's redundant IKE SA deletes itself (a Tick); a holds
					// the request back until its collision is settled.
					p.tick()
					if got := a.peek(); got != "INFORMATIONAL request [ D ]" {
						t.Fatalf("a receives %s", got)
					}
					expect(t, "a: b deletes its redundant IKE SA, not settled", a.recv(), "")
					m := a.mark()
					p.deliver(held)
					expect(t, "a: delayed answer, a won", a.since(m), "ike>")
					m = a.mark()
					p.run(time.Minute, func() bool { return strings.Contains(a.since(m), "deleted(redundant)") })
					if got := a.since(m); got != "deleted(rekeyed) deleted(redundant)" {
						t.Errorf("a: the old IKE SA and, on the retransmitted delete, b's redundant one: %q", got)
					}
				} else {
					expect(t, "b's answer: b won", b.recv(), "ike>")
					expect(t, "a: b deletes the old IKE SA", a.recv(), "ike> deleted(rekeyed)")
					m := a.mark()
					p.deliver(held)
					expect(t, "a: the delayed answer is moot", a.since(m), "")
				}
				p.quiesce(10 * time.Minute)
				p.requireSettled("net")
				if a.sa().Initiator() != tc.aWins {
					t.Errorf("the surviving IKE SA was created by the wrong side")
				}
				for _, e := range []end{a, b} {
					for _, ev := range e.side().events {
						if d, ok := ev.(Deleted); ok && d.Cause != CauseRekeyed && d.Cause != CauseRedundant {
							t.Errorf("%s: %+v", e.side().name, d)
						}
					}
				}
			})
		}
	}
}

// The old IKE SA dies (the peer stops answering) while a rekey collision
// is unsettled: the peer's new IKE SA goes too.
func TestIKERekeyCollisionOldDies(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	p := upPair(t, 880, ini, resp)
	a, b := ends(p, true)
	a.do(a.sa().Rekey(p.now))
	b.do(b.sa().Rekey(p.now))
	expect(t, "a answers b", a.recv(), "ike+")
	p.tamper = func(bool, []byte) []byte { return nil }
	old := a.sa()
	p.run(10*time.Minute, func() bool { return old.Done() })
	peer := old.peerRekey
	if !old.Done() || peer != nil {
		t.Fatalf("old done %v, collision pending %v", old.Done(), peer != nil)
	}
	p.run(10*time.Minute, func() bool { return len(p.i.live()) == 0 })
	if live := p.i.live(); len(live) != 0 {
		t.Fatalf("left: %s", describeSAs(live))
	}
}
