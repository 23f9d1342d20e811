package sa

import (
	"testing"
	"time"
)

// keyLogs returns the KeysDerived records the side reported, in order.
func (s *side) keyLogs() []string {
	var out []string
	for _, e := range s.events {
		if e, ok := e.(KeysDerived); ok {
			out = append(out, e.KeyLog)
		}
	}
	return out
}

func (s *side) keysDerived() []KeysDerived {
	var out []KeysDerived
	for _, e := range s.events {
		if e, ok := e.(KeysDerived); ok {
			out = append(out, e)
		}
	}
	return out
}

// KeysDerived comes as soon as an IKE SA's keys exist, on both sides, with
// the same record: after IKE_SA_INIT (also when IKE_AUTH then fails), and
// for the IKE SA a rekey creates.
func TestKeysDerived(t *testing.T) {
	t.Run("failed IKE_AUTH", func(t *testing.T) {
		ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
		resp.PSK = pskFunc("another key")
		p := newPair(t, 210, ini, resp, ResponderOptions{})
		// The initiator's step that takes the IKE_SA_INIT response reports
		// the keys, before the IKE_AUTH request it sends.
		p.fromInitiator(p.ini.Initiate(p.now))
		f, _ := p.link.next()
		p.deliver(f) // the request, to the responder
		if kd := p.r.keysDerived(); len(kd) != 1 {
			t.Fatalf("responder: %d KeysDerived after IKE_SA_INIT", len(kd))
		}
		f, _ = p.link.next()
		p.deliver(f) // the response, to the initiator
		kd := p.i.keysDerived()
		if len(kd) != 1 {
			t.Fatalf("initiator: %d KeysDerived after IKE_SA_INIT", len(kd))
		}
		if kd[0].SPIi != p.ini.spii || kd[0].SPIr != p.ini.spir || kd[0].SPIr == 0 {
			t.Errorf("KeysDerived SPIs %016x %016x, IKE SA %016x %016x", kd[0].SPIi, kd[0].SPIr, p.ini.spii, p.ini.spir)
		}
		p.run(10*time.Minute, func() bool { return p.ini.Done() })
		if p.i.failed() == nil || p.r.failed() == nil {
			t.Fatal("IKE_AUTH did not fail")
		}
		ri, rr := p.i.keyLogs(), p.r.keyLogs()
		if len(ri) != 1 || len(rr) != 1 || ri[0] == "" || ri[0] != rr[0] {
			t.Errorf("records: initiator %q, responder %q", ri, rr)
		}
	})
	t.Run("established and rekeyed", func(t *testing.T) {
		ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
		p := newPair(t, 211, ini, resp, ResponderOptions{})
		p.handshake()
		p.requireUp(1)
		if ri := p.i.keyLogs(); len(ri) != 1 || p.i.established().KeyLog != ri[0] || p.r.established().KeyLog != ri[0] {
			t.Errorf("Established.KeyLog differs from KeysDerived's record")
		}
		for _, rekeyer := range []string{"initiator", "responder"} {
			if rekeyer == "initiator" {
				p.fromInitiator(p.ini.Rekey(p.now))
			} else {
				p.fromResponder(p.rsa.Rekey(p.now))
			}
			p.settle()
			p.requireUp(1)
			for _, s := range []*side{p.i, p.r} {
				kd := s.keysDerived()
				last := kd[len(kd)-1]
				if last.SPIi != p.ini.spii || last.SPIr != p.ini.spir {
					t.Errorf("%s rekey: %s's last KeysDerived is for %016x %016x, the new IKE SA is %016x %016x",
						rekeyer, s.name, last.SPIi, last.SPIr, p.ini.spii, p.ini.spir)
				}
			}
		}
		ri, rr := p.i.keyLogs(), p.r.keyLogs()
		if len(ri) != 3 || len(rr) != 3 {
			t.Fatalf("records: initiator %d, responder %d, want 3", len(ri), len(rr))
		}
		for i := range ri {
			if ri[i] != rr[i] || ri[i] == "" || (i > 0 && ri[i] == ri[i-1]) {
				t.Errorf("record %d: initiator %q, responder %q", i, ri[i], rr[i])
			}
		}
	})
	t.Run("not asked for", func(t *testing.T) {
		ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
		p := newPair(t, 212, ini, resp, ResponderOptions{})
		p.i.env.KeyLog, p.r.env.KeyLog = false, false
		p.handshake()
		p.requireUp(1)
		p.fromInitiator(p.ini.Rekey(p.now))
		p.settle()
		p.requireUp(1)
		if n, m := len(p.i.keyLogs()), len(p.r.keyLogs()); n != 0 || m != 0 {
			t.Errorf("KeysDerived without Env.KeyLog: %d and %d", n, m)
		}
	})
}
