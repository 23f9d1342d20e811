package algs

import (
	"bytes"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

func FuzzParseProposal(f *testing.F) {
	for _, s := range []string{
		"aes256gcm16-prfsha384-ecp384", "aes128-sha256-modp2048", "chacha20poly1305-prfsha256-x25519",
		"aes256gcm16", "aes256gcm16-x25519-ke1_mlkem768", "aes256gcm16-sha256-x25519", "default",
		"aes-sha-curve25519-none", "aes128gcm64-esn-noesn", "aes256gcm16-prfsha256-x25519-ke7_none-ke7_mlkem1024",
		"aes128-sha1-modp1024", "3des", "ke1_", "--", "aes256gcm16-aes256-sha1",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, isESP bool) {
		proto := ike
		if isESP {
			proto = esp
		}
		p, err := ParseProposal(s, proto)
		if err != nil {
			return
		}
		again, err := ParseProposal(p.String(), proto)
		if err != nil {
			t.Fatalf("%q -> %q: %v", s, p, err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("%q -> %q -> %q", s, p, again)
		}
		// Whatever parses can be offered and, offered to ourselves, chosen.
		spi := []byte(nil)
		if isESP {
			spi = espSPI
		}
		if _, _, err := Select([]Proposal{p}, []wire.Proposal{p.Wire(1, spi)}, 0); err != nil {
			t.Fatalf("%q does not select itself: %v", p, err)
		}
	})
}

// decodeOffer turns fuzz input into a peer's proposals: per proposal a
// protocol, an SPI, and transforms of arbitrary type, ID, key length and
// attributes.
func decodeOffer(data []byte) (ps []wire.Proposal, preferKE wire.KEID) {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	preferKE = wire.KEID(next())
	for len(data) > 0 && len(ps) < 8 {
		p := wire.Proposal{Num: uint8(len(ps) + 1), Protocol: wire.ProtocolID(next() % 5)}
		if n := int(next() % 10); n > 0 {
			p.SPI = make([]byte, n)
		}
		n := int(next() % 16)
		for range n {
			t := wire.Transform{Type: wire.TransformType(next() % 14)}
			t.ID = uint16(next())<<8 | uint16(next())
			t.KeyLen = uint16(next())<<8 | uint16(next())
			if a := next(); a&1 == 1 {
				t.Attrs = []wire.Attribute{{Type: wire.AttributeType(a >> 1), TV: true, Value: []byte{0, 0}}}
			}
			p.Transforms = append(p.Transforms, t)
		}
		ps = append(ps, p)
	}
	return ps, preferKE
}

// encodeOffer is decodeOffer's inverse, for seeds.
func encodeOffer(ps []wire.Proposal, preferKE wire.KEID) []byte {
	b := []byte{byte(preferKE)}
	for _, p := range ps {
		b = append(b, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
		for _, t := range p.Transforms {
			b = append(b, byte(t.Type), byte(t.ID>>8), byte(t.ID), byte(t.KeyLen>>8), byte(t.KeyLen), 0)
		}
	}
	return b
}

var fuzzOurs = sync.OnceValue(func() map[wire.ProtocolID][]Proposal {
	return map[wire.ProtocolID][]Proposal{
		ike: append(DefaultProposals(ike),
			mustParseProposal("aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none-ke2_x25519-ke2_mlkem1024", ike)),
		esp: append(DefaultProposals(esp),
			mustParseProposal("aes256-aes128-sha256-sha1-x25519-none-esn-noesn", esp)),
	}
})

func mustParseProposal(s string, proto wire.ProtocolID) Proposal {
	p, err := ParseProposal(s, proto)
	if err != nil {
		panic(err)
	}
	return p
}

func FuzzSelect(f *testing.F) {
	for _, c := range []struct {
		proto wire.ProtocolID
		s     string
	}{
		{ike, "aes256gcm16-prfsha256-x25519"}, {ike, "aes128-sha256-modp2048"},
		{ike, "aes256gcm16-prfsha256-x25519-ke1_mlkem768"}, {esp, "aes256gcm16"},
		{esp, "aes128-sha256-x25519-esn"}, {esp, "chacha20poly1305-none"},
	} {
		var spi []byte
		if c.proto == esp {
			spi = espSPI
		}
		p := mustParseProposal(c.s, c.proto)
		f.Add(encodeOffer([]wire.Proposal{p.Wire(1, spi)}, wire.KE_ECP256))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		theirs, preferKE := decodeOffer(data)
		for _, proto := range []wire.ProtocolID{ike, esp} {
			ours := fuzzOurs()[proto]
			s, w, err := Select(ours, theirs, preferKE)
			if err != nil {
				_ = err.Error()
				continue
			}
			if w.Protocol != proto || s.Protocol != proto {
				t.Fatalf("selected %v from a %d proposal", s, w.Protocol)
			}
			// Every chosen transform was offered by the peer.
			for _, ct := range s.Wire(w.Num, w.SPI).Transforms {
				if ct.Type == wire.TransformESN && !slices.ContainsFunc(w.Transforms, func(x wire.Transform) bool {
					return x.Type == ct.Type && x.ID == ct.ID && len(x.Attrs) == 0
				}) {
					t.Fatalf("ESN %d not offered", ct.ID)
				}
				if ct.Type != wire.TransformESN && !slices.ContainsFunc(w.Transforms, func(x wire.Transform) bool {
					return x.Type == ct.Type && x.ID == ct.ID && x.KeyLen == ct.KeyLen && len(x.Attrs) == 0
				}) {
					t.Fatalf("%v not offered in %+v", ct, w)
				}
			}
			// And our side accepts it as the answer to one of ours.
			ok := false
			for i := range ours {
				answer := s.Wire(uint8(i+1), w.SPI)
				if got, err := Confirm(ours, answer); err == nil {
					ok = reflect.DeepEqual(got, s)
					break
				}
			}
			if !ok {
				t.Fatalf("Confirm rejects %v", s)
			}
		}
		for _, p := range theirs {
			Confirm(fuzzOurs()[ike], p)
			Confirm(fuzzOurs()[esp], p)
		}
	})
}

// fuzzKE holds one initiator per method, generated once.
var fuzzKE = sync.OnceValue(func() []KeyExchange {
	r := testRand(99)
	var ks []KeyExchange
	for _, m := range keMethods {
		k, err := m.Generate(r)
		if err != nil {
			panic(err)
		}
		ks = append(ks, k)
	}
	return ks
})

func FuzzKE(f *testing.F) {
	r := testRand(98)
	for i, m := range keMethods {
		if m.ID == wire.KE_MODP8192 || m.ID == wire.KE_MODP6144 {
			continue
		}
		k, _ := m.Generate(r)
		pub, _, err := m.Respond(r, k.Public())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), pub)
		f.Add(uint8(i), k.Public())
		f.Add(uint8(i), bytes.Repeat([]byte{0xff}, m.ResponseLen))
	}
	f.Fuzz(func(t *testing.T, which uint8, peer []byte) {
		k := fuzzKE()[int(which)%len(keMethods)]
		m := k.Method()
		secret, err := k.SharedSecret(peer)
		if err == nil && (len(peer) != m.ResponseLen || len(secret) != m.SecretLen) {
			t.Fatalf("%s: %d-byte peer value gave a %d-byte secret", m, len(peer), len(secret))
		}
		pub, secret, err := m.Respond(testRand(1), peer)
		if err == nil && (len(peer) != m.PublicLen || len(pub) != m.ResponseLen || len(secret) != m.SecretLen) {
			t.Fatalf("%s: Respond to %d bytes gave %d and %d", m, len(peer), len(pub), len(secret))
		}
	})
}
