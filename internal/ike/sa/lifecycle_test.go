package sa

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Lifetimes (soft with jitter, hard, volume limits), liveness, deletes,
// INITIAL_CONTACT, status.

// rekey_time with jitter fires once per lifetime: one rekey in a period,
// started by one end; its new SA gets a new jittered rekey time.
func TestChildRekeyTime(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	for _, c := range []*Config{ini, resp} {
		c.Children[0].RekeyTime, c.Children[0].LifeTime = 10*time.Minute, 11*time.Minute
	}
	p := upPair(t, 900, ini, resp)
	for _, e := range []end{{p, true}, {p, false}} {
		c := e.sa().children[0]
		if d := c.rekeyAt.Sub(c.sa.Created); d < 9*time.Minute || d > 10*time.Minute {
			t.Errorf("%s: rekey after %v", e.side().name, d)
		}
	}
	p.timeline(15 * time.Minute)
	p.quiesce(time.Minute)
	p.requireSettled("net")
	for _, e := range []end{{p, true}, {p, false}} {
		c := e.sa().counters
		if c.ChildRekeys() != 1 || c.ChildDeletes() != 0 || c.CollisionsWon()+c.CollisionsLost() != 0 {
			t.Errorf("%s: counters %+v", e.side().name, c)
		}
		ch := e.sa().children[0]
		if d := ch.rekeyAt.Sub(ch.sa.Created); d < 9*time.Minute || d > 10*time.Minute {
			t.Errorf("%s: next rekey after %v", e.side().name, d)
		}
	}
}

// Without a rekey the hard lifetime deletes the CHILD_SA; both ends reach
// it at once and their deletes cross (RFC 7296 1.4.1).
func TestChildLifeTime(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	for _, c := range []*Config{ini, resp} {
		c.Children[0].LifeTime = 5 * time.Minute
	}
	p := upPair(t, 910, ini, resp)
	start := p.now
	p.timeline(10 * time.Minute)
	p.requireSettled()
	for _, e := range []end{{p, true}, {p, false}} {
		if got := e.since(0); !strings.HasSuffix(got, "down(expired)") {
			t.Errorf("%s: %s", e.side().name, got)
		}
		var at time.Time
		for _, ev := range e.side().events {
			if d, ok := ev.(ChildDown); ok {
				at = d.Child.ExpireAt
			}
		}
		if !at.Equal(start.Add(5 * time.Minute)) {
			t.Errorf("expired at %v", at.Sub(start))
		}
	}
}

// The data plane's volume limits (bytes, packets, sequence numbers) come
// in through ChildExpired: soft rekeys, hard deletes.
func TestChildExpired(t *testing.T) {
	for i, aIni := range []bool{true, false} {
		t.Run(role(aIni), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			p := upPair(t, uint64(920+i), ini, resp)
			a, b := ends(p, aIni)
			old := a.only("net")
			a.do(a.sa().ChildExpired(p.now, old.InSPI, false))
			// A second soft expiry while the rekey runs changes nothing.
			if out := a.sa().ChildExpired(p.now, old.InSPI, false); len(out.Packets)+len(out.Events) != 0 {
				t.Fatalf("second soft expiry: %+v", out)
			}
			p.quiesce(time.Minute)
			p.requireSettled("net")
			if a.only("net") == old {
				t.Fatal("not rekeyed")
			}
			m := a.mark()
			a.do(a.sa().ChildExpired(p.now, a.only("net").InSPI, true))
			p.quiesce(time.Minute)
			expect(t, "a: hard expiry", a.since(m), "down(expired)")
			p.requireSettled()
			_ = b
		})
	}
}

// Hard expiry of the SA being rekeyed while our rekey is in flight: it is
// deleted; the rekey still replaces it.
func TestChildExpiredDuringRekey(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	p := upPair(t, 930, ini, resp)
	a, b := ends(p, true)
	old := a.only("net")
	a.do(a.sa().RekeyChild(p.now, old.InSPI))
	a.do(a.sa().ChildExpired(p.now, old.InSPI, true))
	expect(t, "b answers", b.recv(), "up+r+d")
	expect(t, "a installs the new SA", a.recv(), "up+r")
	p.quiesce(time.Minute)
	p.requireSettled("net")
}

func TestIKERekeyTime(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	ini.RekeyTime, resp.RekeyTime = 10*time.Minute, 10*time.Minute
	p := upPair(t, 940, ini, resp)
	first := p.ini
	if d := first.rekeyAt.Sub(first.establishedAt); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("rekey after %v", d)
	}
	if s := first.Snapshot(); !s.RekeyAt.Equal(first.rekeyAt) {
		t.Error("Snapshot.RekeyAt")
	}
	p.timeline(15 * time.Minute)
	p.quiesce(time.Minute)
	p.requireSettled("net")
	if p.i.ikeUp != 2 || p.r.ikeUp != 2 {
		t.Errorf("IKE SAs over time: %d/%d", p.i.ikeUp, p.r.ikeUp)
	}
}

// Liveness (RFC 7296 2.4): a cut link makes the IKE SA fail within
// DPDDelay and the retransmission schedule, or DPDTimeout if shorter, with
// the reason, and its CHILD_SAs go down as dead-peer.
func TestDeadPeer(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		within  time.Duration
		says    string
	}{
		{0, 30*time.Second + 166*time.Second, "peer did not answer the liveness check for 165s"},
		{60 * time.Second, 30*time.Second + 61*time.Second, "peer did not answer the liveness check for 60s"},
	} {
		t.Run(fmt.Sprint(tc.timeout), func(t *testing.T) {
			ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
			for _, c := range []*Config{ini, resp} {
				c.DPDDelay, c.DPDTimeout = 30*time.Second, tc.timeout
			}
			p := upPair(t, 950, ini, resp)
			cut := p.now
			p.tamper = func(bool, []byte) []byte { return nil }
			p.run(10*time.Minute, func() bool { return p.ini.Done() && p.rsa.Done() })
			if !p.ini.Done() || !p.rsa.Done() {
				t.Fatal("SAs still up")
			}
			for _, e := range []end{{p, true}, {p, false}} {
				var f *Failed
				for _, ev := range e.side().events {
					if x, ok := ev.(Failed); ok {
						f = &x
					}
				}
				if f == nil || f.Cause != CauseDeadPeer || !errors.Is(f.Err, ErrNoAnswer) || !strings.Contains(f.Err.Error(), tc.says) {
					t.Fatalf("%s: %+v", e.side().name, f)
				}
				if got := e.since(0); !strings.HasSuffix(got, "down(dead-peer) failed(dead-peer)") {
					t.Errorf("%s: %s", e.side().name, got)
				}
				if len(e.side().children) != 0 {
					t.Errorf("%s: CHILD_SAs left", e.side().name)
				}
			}
			if d := p.now.Sub(cut); d > tc.within {
				t.Errorf("dead after %v, bound %v", d, tc.within)
			}
			t.Log(p.i.failed())
		})
	}
}

// Several CHILD_SAs in one Delete payload, both ways; a Delete naming
// SPIs we do not know is answered with an empty INFORMATIONAL.
func TestDeleteSeveral(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	for _, c := range []*Config{ini, resp} {
		c.Children = append(c.Children, &ChildConfig{
			Name: "two", ReqID: 2, Proposals: c.Children[0].Proposals,
			LocalTS:  []TrafficSelector{PrefixTS(netipPrefix("10." + map[bool]string{true: "3", false: "4"}[c == ini] + ".0.0/16"))},
			RemoteTS: []TrafficSelector{PrefixTS(netipPrefix("10." + map[bool]string{true: "4", false: "3"}[c == ini] + ".0.0/16"))},
		})
		c.Children[0].LifeTime, c.Children[1].LifeTime = 5*time.Minute, 5*time.Minute
	}
	p := newPair(t, 960, ini, resp, ResponderOptions{})
	p.handshake("net", "two")
	p.settle()
	p.requireUp(2)
	p.checkFlow = true
	a, b := ends(p, true)

	// Unknown SPIs (and one known) in a crafted Delete from a.
	known := a.only("two")
	h := a.sa().header(wire.INFORMATIONAL, a.sa().nextID, false)
	d := &wire.Delete{Protocol: wire.ProtoESP, SPIs: [][]byte{{1, 2, 3, 4}, spiBytes(0xdeadbeef)}}
	raw, err := a.sa().prot.Seal(h, []wire.Payload{d}, a.sa().rand)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := wire.Parse(raw)
	out := b.sa().Handle(p.now, msg, addrR, addrI)
	if len(out.Events) != 0 || len(out.Packets) != 1 {
		t.Fatalf("unknown SPIs: %+v", out)
	}
	rm, _ := wire.Parse(out.Packets[0].Data)
	ps, err := a.sa().prot.Open(rm)
	if err != nil || len(ps) != 0 {
		t.Fatalf("answer to unknown SPIs: %s %v", payloadList(ps), err)
	}
	// Resynchronise a's message ID with b's.
	a.sa().nextID++
	_ = known

	// Both children reach their hard lifetime at once: one Delete with
	// both SPIs, answered with both of the peer's.
	p.run(10*time.Minute, func() bool { return len(p.link.queue) > 0 })
	var dels []*wire.Delete
	for _, f := range p.link.queue {
		m, _ := wire.Parse(f.pkt.Data)
		prot := p.rsa.prot
		if !f.toResponder {
			prot = p.ini.prot
		}
		if ps, err := prot.Open(m); err == nil {
			dels = append(dels, collect(ps).deletes...)
		}
	}
	if len(dels) != 2 || len(dels[0].SPIs) != 2 || len(dels[1].SPIs) != 2 {
		t.Fatalf("deletes %+v", dels)
	}
	p.quiesce(time.Minute)
	p.requireSettled()
	for _, e := range []end{a, b} {
		if c := e.sa().counters; c.ChildDeletes() != 2 {
			t.Errorf("%s: counters %+v", e.side().name, c)
		}
	}
}

// Both ends delete the IKE SA at once: each answers the other's Delete.
func TestDeleteIKECrossing(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	p := upPair(t, 970, ini, resp)
	a, b := ends(p, true)
	a.do(a.sa().Delete(p.now))
	b.do(b.sa().Delete(p.now))
	expect(t, "b: a's delete", b.recv(), "down(peer) deleted(peer)")
	expect(t, "a: b's delete", a.recv(), "down(peer) deleted(peer)")
	p.quiesce(time.Minute)
	if len(p.i.live())+len(p.r.live()) != 0 {
		t.Fatal("IKE SAs left")
	}
}

// INITIAL_CONTACT (RFC 7296 2.4) is reported with Established.
func TestInitialContact(t *testing.T) {
	for _, on := range []bool{true, false} {
		ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
		ini.InitialContact = on
		p := upPair(t, 980, ini, resp)
		if got := p.r.established().InitialContact; got != on {
			t.Errorf("responder: InitialContact %v, sent %v", got, on)
		}
		if p.i.established().InitialContact {
			t.Error("initiator: InitialContact without one")
		}
	}
}

// The status shows the rekey states.
func TestSnapshotStates(t *testing.T) {
	ini, resp := lifecycleConfigs(t, "aes256gcm16", "aes256gcm16")
	p := upPair(t, 990, ini, resp)
	a, b := ends(p, true)
	a.do(a.sa().RekeyChild(p.now, a.only("net").InSPI))
	if s := a.sa().Snapshot().Children; len(s) != 1 || s[0].State != ChildRekeying || !s[0].Outbound {
		t.Errorf("a while rekeying: %+v", s)
	}
	b.recv()
	s := b.sa().Snapshot().Children
	if len(s) != 2 || s[0].State != ChildRekeying || !s[0].Outbound || s[1].State != ChildInstalled || s[1].Outbound {
		t.Errorf("b after answering: %+v", s)
	}
	a.recv()
	s = a.sa().Snapshot().Children
	if len(s) != 2 || s[0].State != ChildDeleting || s[0].Outbound || !s[1].Outbound {
		t.Errorf("a after the answer: %+v", s)
	}
	p.quiesce(time.Minute)
	a.do(a.sa().Rekey(p.now))
	if st := a.sa().Snapshot().State; st != StateRekeying {
		t.Errorf("IKE SA while rekeying: %v", st)
	}
	old := b.sa()
	b.recv()
	if st := old.Snapshot().State; st != StateDeleting {
		t.Errorf("old IKE SA after the rekey: %v", st)
	}
	p.quiesce(time.Minute)
	p.requireSettled("net")
}
