package esp

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// TestRoundTrip seals and opens packets for every algorithm x key length x
// ESN x mode, with IPv4 and IPv6 inner packets of many sizes.
func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 13, 14, 15, 16, 17, 100, 511, 1372, 1400}
	for _, sp := range allSuites() {
		for _, esn := range []bool{false, true} {
			for _, mode := range []Mode{Tunnel, Transport} {
				name := sp.name + "/" + mode.String()
				if esn {
					name += "/esn"
				}
				t.Run(name, func(t *testing.T) {
					r := rand.New(rand.NewPCG(1, 2))
					o, in := newPair(t, sp.config(0xc1a2b3c4, esn, mode, 7))
					if esn {
						// Run across a 2^32 boundary.
						o.seq.Store(1<<32 - 3)
						in.w.reset(1<<32 - 4)
					}
					var inner []byte
					for i, n := range sizes {
						for _, v6 := range []bool{false, true} {
							if v6 {
								inner = ipv6Packet(n, i%2 == 0, r)
							} else {
								inner = ipv4Packet(n, r)
							}
							payload, nh := inner, uint8(ProtoIPv4)
							if v6 {
								nh = ProtoIPv6
							}
							if mode == Transport {
								_, p, proto, err := SplitTransport(inner)
								if err != nil {
									t.Fatal(err)
								}
								payload, nh = p, proto
							}
							pkt, err := o.Seal(nil, payload, nh)
							if err != nil {
								t.Fatal(err)
							}
							if len(pkt) != o.SealedLen(len(payload)) {
								t.Fatalf("packet is %d bytes, SealedLen says %d", len(pkt), o.SealedLen(len(payload)))
							}
							ctLen := len(pkt) - o.PayloadOffset() - o.s.icvLen
							if ctLen%o.s.align != 0 {
								t.Fatalf("ciphertext of %d bytes not aligned to %d", ctLen, o.s.align)
							}
							dst := []byte("prefix")
							got, gotNH, err := in.Open(dst, pkt)
							if err != nil {
								t.Fatalf("size %d v6=%t: Open: %v", n, v6, err)
							}
							if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], payload) || gotNH != nh {
								t.Fatalf("size %d v6=%t: Open = %x, %d; want %x, %d", n, v6, got[6:], gotNH, payload, nh)
							}
							if _, _, err := in.Open(nil, pkt); err != ErrReplay {
								t.Fatalf("replay: err = %v, want ErrReplay", err)
							}
						}
					}
					oc, ic := o.Counters(), in.Counters()
					if oc.Packets != uint64(2*len(sizes)) || ic.Packets != oc.Packets || ic.Bytes != oc.Bytes || ic.Replay != oc.Packets {
						t.Errorf("counters out %+v in %+v", oc, ic)
					}
				})
			}
		}
	}
}

// TestTransportRoundTrip carries IPv4 (with options) and IPv6 (with a
// Hop-by-Hop header) packets in transport mode end to end: split, seal,
// rewrite the header for ESP, then on the receiving side split off the
// outer header, open, and join: the original packet comes back.
func TestTransportRoundTrip(t *testing.T) {
	o, in := newPair(t, suiteByName(t, "aes128gcm16").config(1, false, Transport, 1))
	v4opts := ipv4Packet(33, nil)
	v4opts = append(append(append([]byte{}, v4opts[:20]...), 0x01, 0x01, 0x01, 0x00), v4opts[20:]...) // NOP NOP NOP EOL
	v4opts[0] = 0x46
	FixTransportHeader(v4opts[:24], 17, len(v4opts)-24)
	for name, orig := range map[string][]byte{
		"ipv4":         ipv4Packet(100, nil),
		"ipv4-options": v4opts,
		"ipv6":         ipv6Packet(100, false, nil),
		"ipv6-hbh":     ipv6Packet(100, true, nil),
	} {
		hdr, payload, proto, err := SplitTransport(orig)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		esp, err := o.Seal(nil, payload, proto)
		if err != nil {
			t.Fatal(err)
		}
		outer, err := JoinTransport(nil, hdr, ProtoESP, esp)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, p, _ := SplitTransport(outer); p != ProtoESP {
			t.Fatalf("%s: outer protocol %d", name, p)
		}
		if outer[0]>>4 == 4 && ipv4Checksum(outer[:len(hdr)]) != 0 {
			t.Fatalf("%s: bad outer IPv4 checksum", name)
		}

		ohdr, oesp, _, err := SplitTransport(outer)
		if err != nil {
			t.Fatal(err)
		}
		inner, nh, err := in.Open(nil, oesp)
		if err != nil {
			t.Fatal(err)
		}
		back, err := JoinTransport(nil, ohdr, nh, inner)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, orig) {
			t.Errorf("%s: round trip\n got %x\nwant %x", name, back, orig)
		}
	}
}

// TestConfigErrors checks that bad configurations are refused.
func TestConfigErrors(t *testing.T) {
	good := suiteByName(t, "aes128-sha256").config(1, false, Tunnel, 1)
	gcm := suiteByName(t, "aes256gcm16").config(1, false, Tunnel, 1)
	for name, mutate := range map[string]func(c *Config){
		"unknown encr":      func(c *Config) { c.Encr = wire.ENCR_3DES },
		"aes keylen 0":      func(c *Config) { c.EncrKeyLen = 0 },
		"aes keylen 64":     func(c *Config) { c.EncrKeyLen = 64 },
		"short cbc key":     func(c *Config) { c.EncrKey = c.EncrKey[:15] },
		"cbc without integ": func(c *Config) { c.Integ, c.IntegKey = wire.AUTH_NONE, nil },
		"short integ key":   func(c *Config) { c.IntegKey = c.IntegKey[:31] },
		"md5":               func(c *Config) { c.Integ = wire.AUTH_HMAC_MD5_96 },
		"negative window":   func(c *Config) { c.ReplayWindow = -1 },
		"huge window":       func(c *Config) { c.ReplayWindow = MaxReplayWindow + 1 },
		"gcm with integ":    func(c *Config) { *c = gcm; c.Integ = wire.AUTH_HMAC_SHA2_256_128 },
		"gcm without salt":  func(c *Config) { *c = gcm; c.EncrKey = c.EncrKey[:32] },
		"chacha keylen 128": func(c *Config) {
			*c = suiteByName(t, "chacha20poly1305").config(1, false, Tunnel, 1)
			c.EncrKeyLen = 128
		},
		"gcm keylen mismatch": func(c *Config) { *c = gcm; c.EncrKeyLen = 128 },
		"unknown mode":        func(c *Config) { c.Mode = 7 },
	} {
		c := good
		mutate(&c)
		_, errIn := NewInbound(c)
		if errIn == nil {
			t.Errorf("%s: NewInbound accepted %v", name, c)
		}
		if name != "negative window" && name != "huge window" {
			if _, err := NewOutbound(c); err == nil {
				t.Errorf("%s: NewOutbound accepted %v", name, c)
			}
		}
	}
	if _, err := NewInbound(good); err != nil {
		t.Fatal(err)
	}
	// ChaCha20-Poly1305 also accepts 256.
	c := suiteByName(t, "chacha20poly1305").config(1, false, Tunnel, 1)
	c.EncrKeyLen = 0
	if _, err := NewInbound(c); err != nil {
		t.Fatal(err)
	}
}

// TestConfigRedacts checks that keys do not reach strings or logs.
func TestConfigRedacts(t *testing.T) {
	c := suiteByName(t, "aes128-sha256").config(1, false, Tunnel, 1)
	for i := range c.EncrKey {
		c.EncrKey[i] = 0xab
	}
	s := c.String() + c.LogValue().String()
	if bytes.Contains([]byte(s), []byte("abab")) || bytes.Contains([]byte(s), []byte("171")) {
		t.Fatalf("key material in %q", s)
	}
}

// TestReplayWindowSizes checks the rounding of ReplayWindow.
func TestReplayWindowSizes(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, 1024}, {1, 64}, {64, 64}, {65, 128}, {1000, 1024}, {4096, 4096}, {MaxReplayWindow, MaxReplayWindow}} {
		c := suiteByName(t, "aes128gcm16").config(1, false, Tunnel, 1)
		c.ReplayWindow = tc.in
		in, err := NewInbound(c)
		if err != nil {
			t.Fatal(err)
		}
		if in.ReplayWindow() != tc.want {
			t.Errorf("ReplayWindow %d: got %d, want %d", tc.in, in.ReplayWindow(), tc.want)
		}
		if n := len(in.w.blocks); n&(n-1) != 0 || n < tc.want/64+1 {
			t.Errorf("ReplayWindow %d: %d blocks", tc.in, n)
		}
	}
}

// TestDropReasons feeds damaged packets to Open: each is dropped with the
// right error and counted, and none moves the window.
func TestDropReasons(t *testing.T) {
	for _, name := range []string{"aes128gcm16", "aes256gcm8", "aes192gcm12", "chacha20poly1305", "aes128-sha1", "aes256-sha512"} {
		t.Run(name, func(t *testing.T) {
			sp := suiteByName(t, name)
			o, in := newPair(t, sp.config(0x1234, true, Tunnel, 3))
			good, err := o.Seal(nil, ipv4Packet(50, nil), ProtoIPv4)
			if err != nil {
				t.Fatal(err)
			}
			align := o.s.align
			type tc struct {
				name string
				pkt  []byte
				want error
			}
			var cases []tc
			// Every proper prefix is an error (truncated, or failing the ICV).
			for i := range len(good) {
				want := ErrAuth
				if i < 8 {
					want = ErrTruncated
				} else if ct := i - 8 - o.s.ivLen - o.s.icvLen; ct < 2 || (sp.encr == wire.ENCR_AES_CBC && (ct < 16 || ct%16 != 0)) {
					want = ErrTruncated
				}
				if i < 4 {
					want = ErrTruncated
				}
				cases = append(cases, tc{"prefix", good[:i:i], want})
			}
			wrongSPI := bytes.Clone(good)
			wrongSPI[0] ^= 1
			cases = append(cases, tc{"spi", wrongSPI, ErrSPI})
			for _, at := range []int{4, 8, o.PayloadOffset(), len(good) - o.s.icvLen, len(good) - 1} {
				bad := bytes.Clone(good)
				bad[at] ^= 1
				cases = append(cases, tc{"flip", bad, ErrAuth})
			}
			cases = append(cases, tc{"appended", append(bytes.Clone(good), make([]byte, align)...), ErrAuth})

			// Authentic packets with a bad trailer: built with protect.
			authentic := func(seq uint64, trailer []byte) []byte {
				n := 50 + len(trailer)
				n = (n + align - 1) &^ (align - 1)
				body := make([]byte, n)
				copy(body[n-len(trailer):], trailer)
				pkt := make([]byte, o.PayloadOffset()+n+o.s.icvLen, o.PayloadOffset()+n+o.s.icvLen+8)
				copy(pkt[o.PayloadOffset():], body)
				if err := o.protect(pkt, seq, nil); err != nil {
					t.Fatal(err)
				}
				return pkt
			}
			pad := func(n int, nh uint8) []byte {
				p := make([]byte, n+2)
				for i := range n {
					p[i] = byte(i + 1)
				}
				p[n], p[n+1] = byte(n), nh
				return p
			}
			badPad := pad(6, ProtoIPv4)
			badPad[3] = 9
			cases = append(cases,
				tc{"padding bytes", authentic(100, badPad), ErrPadding},
				tc{"pad length too big", authentic(101, []byte{255, ProtoIPv4}), ErrPadding},
				tc{"next header udp in tunnel", authentic(102, pad(2, 17)), ErrNextHeader},
			)
			// A packet of only a trailer whose pad length exceeds it.
			short := make([]byte, o.PayloadOffset()+align+o.s.icvLen, o.PayloadOffset()+align+o.s.icvLen+8)
			short[o.PayloadOffset()+align-2] = byte(align - 1)
			if err := o.protect(short, 103, nil); err != nil {
				t.Fatal(err)
			}
			cases = append(cases, tc{"pad length overruns", short, ErrPadding})

			want := InboundCounters{}
			for _, c := range cases {
				got, nh, err := in.Open(make([]byte, 3, 3+len(c.pkt)), c.pkt)
				if err != c.want {
					t.Errorf("%s (%d bytes): err = %v, want %v", c.name, len(c.pkt), err, c.want)
				}
				if len(got) != 3 || nh != 0 {
					t.Errorf("%s: returned %d bytes, nh %d", c.name, len(got), nh)
				}
				switch c.want {
				case ErrTruncated:
					want.Truncated++
				case ErrAuth:
					want.Auth++
				case ErrPadding:
					want.Padding++
				case ErrSPI:
					want.SPI++
				case ErrNextHeader:
					want.NextHeader++
				}
				if top := in.w.top.Load(); top != 0 {
					t.Fatalf("%s moved the window to %d", c.name, top)
				}
			}
			if got := in.Counters(); got != want {
				t.Errorf("counters %+v, want %+v", got, want)
			}
			// The genuine packet still opens.
			if _, _, err := in.Open(nil, good); err != nil {
				t.Fatalf("genuine packet: %v", err)
			}
		})
	}
}

// TestDummyPacket: next header 59 is authenticated, consumes its sequence
// number and is reported with ErrDummy (RFC 4303 2.6).
func TestDummyPacket(t *testing.T) {
	o, in := newPair(t, suiteByName(t, "aes128gcm16").config(1, false, Tunnel, 1))
	pkt, err := o.Seal(nil, []byte("random filler"), ProtoNone)
	if err != nil {
		t.Fatal(err)
	}
	got, nh, err := in.Open(nil, pkt)
	if err != ErrDummy || nh != ProtoNone || len(got) != 0 {
		t.Fatalf("Open = %x, %d, %v; want ErrDummy", got, nh, err)
	}
	if _, _, err := in.Open(nil, pkt); err != ErrReplay {
		t.Fatalf("replayed dummy: %v", err)
	}
	if c := in.Counters(); c.Dummy != 1 || c.Packets != 0 || c.Replay != 1 {
		t.Fatalf("counters %+v", c)
	}
	if _, err := o.Seal(nil, nil, 17); err != ErrNextHeader {
		t.Fatalf("Seal of UDP in tunnel mode: %v", err)
	}
}

// TestSequenceExhaustion starts the counter near the end of the space:
// the soft limit trips first, the last sequence number is used, and then
// Seal fails for good without wrapping.
func TestSequenceExhaustion(t *testing.T) {
	for _, esn := range []bool{false, true} {
		o, in := newPair(t, suiteByName(t, "aes128gcm16").config(1, esn, Tunnel, 1))
		hard := uint64(seqHardLimit32)
		if esn {
			hard = seqHardLimit64
		}
		if o.SeqSoftLimitReached() {
			t.Fatal("soft limit reached at start")
		}
		o.seq.Store(o.soft - 2)
		in.w.reset(o.soft - 3)
		inner := ipv4Packet(10, nil)
		seal := func() ([]byte, error) { return o.Seal(nil, inner, ProtoIPv4) }
		if _, err := seal(); err != nil || o.SeqSoftLimitReached() {
			t.Fatalf("below soft limit: %v %t", err, o.SeqSoftLimitReached())
		}
		if _, err := seal(); err != nil || !o.SeqSoftLimitReached() {
			t.Fatalf("at soft limit: %v %t", err, o.SeqSoftLimitReached())
		}
		o.seq.Store(hard - 2)
		in.w.reset(hard - 3)
		for i := range 2 {
			pkt, err := seal()
			if err != nil {
				t.Fatalf("esn=%t: Seal %d before the end: %v", esn, i, err)
			}
			if _, _, err := in.Open(nil, pkt); err != nil {
				t.Fatalf("esn=%t: Open: %v", esn, err)
			}
		}
		if o.Seq() != hard {
			t.Fatalf("Seq() = %d, want %d", o.Seq(), hard)
		}
		for range 5 {
			if pkt, err := seal(); err != ErrSequenceExhausted || pkt != nil {
				t.Fatalf("esn=%t: Seal after the end = %x, %v", esn, pkt, err)
			}
		}
		if o.seq.Load() != hard {
			t.Fatalf("counter moved to %d after exhaustion", o.seq.Load())
		}
		if c := o.Counters(); c.Exhausted != 5 {
			t.Fatalf("counters %+v", c)
		}
	}
}

// TestHMACMatchesStdlib cross-checks the marshaled-state HMAC against
// crypto/hmac for every integrity transform, ESN bits included.
func TestHMACMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, id := range []wire.IntegID{wire.AUTH_HMAC_SHA1_96, wire.AUTH_HMAC_SHA2_256_128, wire.AUTH_HMAC_SHA2_384_192, wire.AUTH_HMAC_SHA2_512_256} {
		_, kl := suiteSpec{integ: id}.keyBytes()
		key := make([]byte, kl)
		fill(r, key)
		k, err := newHMACKey(id, key)
		if err != nil {
			t.Fatal(err)
		}
		sc := getScratch()
		for _, n := range []int{0, 1, 63, 64, 65, 1500} {
			data := make([]byte, n)
			fill(r, data)
			extra := []byte{1, 2, 3, 4}
			ref := hmac.New(hashNew[k.kind], key)
			ref.Write(data)
			ref.Write(extra)
			want := ref.Sum(nil)
			if got := k.mac(sc, data, extra); !bytes.Equal(got, want) {
				t.Fatalf("integ %d, %d bytes: %x, want %x", id, n, got, want)
			}
		}
		putScratch(sc)
	}
}

// TestAgreesWithRegistry checks this package's transform parameters
// against the IKE side's registry, so that what IKE negotiates and what ESP
// does cannot drift apart.
func TestAgreesWithRegistry(t *testing.T) {
	for _, sp := range allSuites() {
		o, _ := newPair(t, sp.config(1, false, Tunnel, 1))
		e := algs.LookupEncr(sp.encr)
		if e == nil {
			t.Fatalf("%s: not in algs", sp.name)
		}
		ek, ik := sp.keyBytes()
		if e.KeyMatLen(sp.keyLen) != ek || e.IVLen != o.s.ivLen || e.BlockSize != o.s.align {
			t.Errorf("%s: algs says keymat %d iv %d block %d; esp uses %d %d %d", sp.name, e.KeyMatLen(sp.keyLen), e.IVLen, e.BlockSize, ek, o.s.ivLen, o.s.align)
		}
		if e.AEAD {
			if e.ICVLen != o.s.icvLen {
				t.Errorf("%s: ICV %d vs %d", sp.name, e.ICVLen, o.s.icvLen)
			}
			continue
		}
		i := algs.LookupInteg(sp.integ)
		if i == nil || i.KeyLen != ik || i.ICVLen != o.s.icvLen {
			t.Errorf("%s: integrity parameters disagree with algs: %+v", sp.name, i)
		}
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{ErrSequenceExhausted, ErrTruncated, ErrSPI, ErrReplay, ErrAuth, ErrPadding, ErrNextHeader, ErrDummy, ErrMalformedIP, ErrFragment}
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(a, b) {
				t.Fatalf("%v vs %v", a, b)
			}
		}
		if !bytes.HasPrefix([]byte(a.Error()), []byte("esp: ")) {
			t.Fatalf("%q lacks the package prefix", a)
		}
	}
}
