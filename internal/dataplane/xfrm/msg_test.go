package xfrm

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Test-only encoders of what the kernel sends, for round trips and seeds.

func attrBytes(typ uint16, v []byte) []byte {
	b := make([]byte, sizeNlattr+align4(len(v)))
	ne.PutUint16(b[0:], uint16(sizeNlattr+len(v)))
	ne.PutUint16(b[2:], typ)
	copy(b[sizeNlattr:], v)
	return b
}

func u32(v uint32) []byte { b := make([]byte, 4); ne.PutUint32(b, v); return b }

func encodeState(u usersaInfo, attrs ...[]byte) []byte {
	b := make([]byte, sizeUsersaInfo)
	u.put(b)
	ne.PutUint64(b[160:], u.curBytes)
	ne.PutUint64(b[168:], u.curPackets)
	ne.PutUint64(b[176:], u.addTime)
	ne.PutUint64(b[184:], u.useTime)
	ne.PutUint32(b[192:], u.statsReplayW)
	ne.PutUint32(b[196:], u.statsReplay)
	ne.PutUint32(b[200:], u.statsIntegF)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func encodeExpire(u usersaInfo, hard bool, attrs ...[]byte) []byte {
	s := encodeState(u)
	b := append(s, make([]byte, 8)...)
	if hard {
		b[sizeUsersaInfo] = 1
	}
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func encodeTmpls(ts ...userTmpl) []byte {
	b := make([]byte, sizeUserTmpl*len(ts))
	for i, t := range ts {
		t.put(b[i*sizeUserTmpl:])
	}
	return attrBytes(attrTmpl, b)
}

func encodeAcquire(a acquireMsg, attrs ...[]byte) []byte {
	b := make([]byte, sizeUserAcquire)
	copy(b[0:16], a.daddr[:])
	b[20] = protoESP
	copy(b[24:40], a.saddr[:])
	a.sel.put(b[40:96])
	a.policy.put(b[96:264])
	ne.PutUint32(b[276:], a.seq)
	for _, x := range attrs {
		b = append(b, x...)
	}
	return b
}

func encodePolicy(p userpolicyInfo, attrs ...[]byte) []byte {
	b := make([]byte, sizeUserpolicyInfo)
	p.put(b)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func nlFrame(typ uint16, data []byte) []byte {
	b := make([]byte, sizeNlmsghdr+align4(len(data)))
	ne.PutUint32(b[0:], uint32(sizeNlmsghdr+len(data)))
	ne.PutUint16(b[4:], typ)
	copy(b[sizeNlmsghdr:], data)
	return b
}

var (
	testLocal  = netip.MustParseAddr("192.0.2.1")
	testRemote = netip.MustParseAddr("192.0.2.2")
)

func sampleState() usersaInfo {
	return usersaInfo{
		sel:   selector{family: afInet, saddr: addr16(netip.MustParseAddr("10.1.0.0")), prefixlS: 16, sport: 1000, sportMask: 0xfff8, proto: 6},
		daddr: addr16(testLocal), saddr: addr16(testRemote), spi: 0xc1a2b3c4, proto: protoESP,
		lft:      lifetime{1, 2, 3, 4, 5, 6, 7, 8},
		curBytes: 1234, curPackets: 12, addTime: 1700000000, useTime: 1700000001,
		statsReplayW: 3, statsReplay: 4, statsIntegF: 5,
		seq: 9, reqid: DefaultReqIDBase + 7, family: afInet, mode: modeTunnel, replayWindow: 32, flags: stateFlagESN,
	}
}

func TestStateRoundTrip(t *testing.T) {
	u := sampleState()
	b := encodeState(u, attrBytes(attrMark, append(u32(5), u32(0xff)...)), attrBytes(attrIfID, u32(42)), attrBytes(attrLastUsed, []byte{1, 0, 0, 0, 0, 0, 0, 0}))
	s, err := parseState(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.usersaInfo != u {
		t.Errorf("round trip:\n got %+v\nwant %+v", s.usersaInfo, u)
	}
	if s.mark == nil || *s.mark != [2]uint32{5, 0xff} || s.ifID != 42 || s.lastUsed != 1 {
		t.Errorf("attributes: mark %v if_id %d lastused %d", s.mark, s.ifID, s.lastUsed)
	}
	if s.dst() != testLocal || s.src() != testRemote {
		t.Errorf("addresses %v %v", s.dst(), s.src())
	}
}

// TestTruncation: every prefix of a valid message shorter than its fixed
// part is an error, never a panic; a broken attribute list is an error.
func TestTruncation(t *testing.T) {
	decoders := map[string]struct {
		msg   []byte
		fixed int
		parse func([]byte) error
	}{
		"state":   {encodeState(sampleState(), attrBytes(attrIfID, u32(1))), sizeUsersaInfo, func(b []byte) error { _, err := parseState(b); return err }},
		"expire":  {encodeExpire(sampleState(), true, attrBytes(attrIfID, u32(1))), sizeUserExpire, func(b []byte) error { _, err := parseExpire(b); return err }},
		"acquire": {encodeAcquire(acquireMsg{}, encodeTmpls(userTmpl{reqid: 1})), sizeUserAcquire, func(b []byte) error { _, err := parseAcquire(b); return err }},
		"policy":  {encodePolicy(userpolicyInfo{}, encodeTmpls(userTmpl{reqid: 1})), sizeUserpolicyInfo, func(b []byte) error { _, err := parsePolicy(b); return err }},
	}
	for name, d := range decoders {
		if err := d.parse(d.msg); err != nil {
			t.Fatalf("%s: valid message: %v", name, err)
		}
		for n := 0; n < len(d.msg); n++ {
			err := d.parse(d.msg[:n])
			if n < d.fixed && err == nil {
				t.Errorf("%s: %d of %d bytes parsed without error", name, n, len(d.msg))
			}
			if n > d.fixed && n < len(d.msg) && err == nil {
				t.Errorf("%s: attribute cut at %d of %d bytes parsed without error", name, n, len(d.msg))
			}
		}
	}
}

func TestParseAttrs(t *testing.T) {
	good := append(attrBytes(attrIfID, u32(7)), attrBytes(attrMark, make([]byte, 8))...)
	a, err := parseAttrs(good)
	if err != nil || len(a) != 2 || ne.Uint32(a[attrIfID]) != 7 {
		t.Fatalf("parseAttrs: %v %v", a, err)
	}
	for _, bad := range [][]byte{
		{3, 0, 1, 0},             // length below the header
		{9, 0, 1, 0, 1, 2, 3, 4}, // length past the end
		{8, 0},                   // stray bytes
	} {
		if _, err := parseAttrs(bad); err == nil {
			t.Errorf("parseAttrs(%x): no error", bad)
		}
	}
	// Short values of known attributes are errors, not panics.
	if _, err := parseState(encodeState(sampleState(), attrBytes(attrIfID, []byte{1}))); !errors.Is(err, errShort) {
		t.Errorf("short XFRMA_IF_ID: %v", err)
	}
	if _, err := parsePolicy(encodePolicy(userpolicyInfo{}, attrBytes(attrTmpl, make([]byte, 10)))); err == nil {
		t.Error("XFRMA_TMPL of a partial template parsed")
	}
}

func TestParseNetlink(t *testing.T) {
	d := append(nlFrame(msgExpire, encodeExpire(sampleState(), false)), nlFrame(msgAcquire, encodeAcquire(acquireMsg{}))...)
	msgs, err := parseNetlink(d)
	if err != nil || len(msgs) != 2 || msgs[0].typ != msgExpire || msgs[1].typ != msgAcquire {
		t.Fatalf("parseNetlink: %v %v", msgs, err)
	}
	for n := 1; n < sizeNlmsghdr; n++ {
		if _, err := parseNetlink(d[:n]); err == nil {
			t.Errorf("%d-byte datagram parsed", n)
		}
	}
	bad := nlFrame(msgExpire, nil)
	ne.PutUint32(bad, 4096)
	if _, err := parseNetlink(bad); err == nil {
		t.Error("message longer than the datagram parsed")
	}
}

func TestAlgsFor(t *testing.T) {
	for _, c := range []struct {
		encr              wire.EncrID
		bits              int
		integ             wire.IntegID
		aead, crypt, auth string
		icv, trunc        int
		encrKey, integKey int
	}{
		{wire.ENCR_AES_GCM_16, 128, 0, "rfc4106(gcm(aes))", "", "", 128, 0, 20, 0},
		{wire.ENCR_AES_GCM_16, 256, 0, "rfc4106(gcm(aes))", "", "", 128, 0, 36, 0},
		{wire.ENCR_AES_GCM_12, 192, 0, "rfc4106(gcm(aes))", "", "", 96, 0, 28, 0},
		{wire.ENCR_AES_GCM_8, 128, 0, "rfc4106(gcm(aes))", "", "", 64, 0, 20, 0},
		{wire.ENCR_CHACHA20_POLY1305, 256, 0, "rfc7539esp(chacha20,poly1305)", "", "", 128, 0, 36, 0},
		{wire.ENCR_CHACHA20_POLY1305, 0, 0, "rfc7539esp(chacha20,poly1305)", "", "", 128, 0, 36, 0},
		{wire.ENCR_AES_CBC, 128, wire.AUTH_HMAC_SHA1_96, "", "cbc(aes)", "hmac(sha1)", 0, 96, 16, 20},
		{wire.ENCR_AES_CBC, 256, wire.AUTH_HMAC_SHA2_256_128, "", "cbc(aes)", "hmac(sha256)", 0, 128, 32, 32},
		{wire.ENCR_AES_CBC, 192, wire.AUTH_HMAC_SHA2_384_192, "", "cbc(aes)", "hmac(sha384)", 0, 192, 24, 48},
		{wire.ENCR_AES_CBC, 256, wire.AUTH_HMAC_SHA2_512_256, "", "cbc(aes)", "hmac(sha512)", 0, 256, 32, 64},
	} {
		k, err := algsFor(c.encr, c.bits, c.integ)
		if err != nil {
			t.Errorf("%v/%d/%v: %v", c.encr, c.bits, c.integ, err)
			continue
		}
		want := kernelAlgs{aead: c.aead, aeadICV: c.icv, crypt: c.crypt, auth: c.auth, authTrunc: c.trunc, encrKey: c.encrKey, integKey: c.integKey}
		if k != want {
			t.Errorf("%v/%d/%v: got %+v, want %+v", c.encr, c.bits, c.integ, k, want)
		}
	}
	for _, c := range []struct {
		encr  wire.EncrID
		bits  int
		integ wire.IntegID
	}{
		{wire.ENCR_AES_GCM_16, 64, 0},
		{wire.ENCR_AES_GCM_16, 128, wire.AUTH_HMAC_SHA1_96},
		{wire.ENCR_AES_CBC, 128, 0},
		{wire.ENCR_AES_CBC, 128, wire.AUTH_AES_XCBC_96},
		{wire.ENCR_3DES, 192, wire.AUTH_HMAC_SHA1_96},
		{wire.ENCR_CHACHA20_POLY1305, 128, 0},
	} {
		if _, err := algsFor(c.encr, c.bits, c.integ); !errors.Is(err, dataplane.ErrInvalidSA) {
			t.Errorf("%v/%d/%v: %v, want ErrInvalidSA", c.encr, c.bits, c.integ, err)
		}
	}
}

func seedMessages() [][]byte {
	u := sampleState()
	return [][]byte{
		encodeState(u, attrBytes(attrMark, make([]byte, 8)), attrBytes(attrIfID, u32(3)), attrBytes(attrLastUsed, make([]byte, 8))),
		encodeExpire(u, true, attrBytes(attrMark, make([]byte, 8))),
		encodeAcquire(acquireMsg{seq: 1}, encodeTmpls(userTmpl{reqid: DefaultReqIDBase + 1}, userTmpl{reqid: 2}), attrBytes(attrIfID, u32(1))),
		encodePolicy(userpolicyInfo{dir: dirOut, priority: 5}, encodeTmpls(userTmpl{reqid: 1}), attrBytes(attrMark, make([]byte, 8))),
	}
}

func FuzzParseState(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { parseState(b) })
}

func FuzzParseExpire(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { parseExpire(b) })
}

func FuzzParseAcquire(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { parseAcquire(b) })
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { parsePolicy(b) })
}
