package xfrm

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// newTestBackend is a Backend without sockets, for the code that needs none.
func newTestBackend() *Backend {
	return &Backend{
		cfg:      Config{ReqIDBase: DefaultReqIDBase, PriorityBase: DefaultPriorityBase},
		log:      slog.New(slog.DiscardHandler),
		pairs:    make(map[uint32]*pair),
		outbound: make(map[stateKey]uint32),
		larval:   make(map[uint32]larvalState),
		policies: make(map[policyKey]*policy),
		traps:    make(map[uint32]*trap),

		lastAcquire: make(map[uint32]time.Time),
	}
}

// TestStateMessage checks the attributes of NEWSA requests.
func TestStateMessage(t *testing.T) {
	b := newTestBackend()
	sa := &dataplane.SA{
		ReqID: 3, Mode: dataplane.Transport, Encap: true,
		Local: netip.AddrPortFrom(testLocal, 4500), Remote: netip.AddrPortFrom(testRemote, 4501),
		InSPI: 0x1111, OutSPI: 0x2222, Encr: wire.ENCR_AES_CBC, EncrKeyLen: 128, Integ: wire.AUTH_HMAC_SHA2_256_128,
		ESN: true, ReplayWindow: 100, SoftPackets: 10, HardBytes: 1 << 20,
		InEncrKey: bytes.Repeat([]byte{1}, 16), InIntegKey: bytes.Repeat([]byte{2}, 32),
		OutEncrKey: bytes.Repeat([]byte{3}, 16), OutIntegKey: bytes.Repeat([]byte{4}, 32),
	}
	algs, _ := algsFor(sa.Encr, sa.EncrKeyLen, sa.Integ)
	m, err := b.stateMessage(msgNewSA, &pair{sa: sa, algs: algs, ifID: 9}, true)
	if err != nil {
		t.Fatal(err)
	}
	body := m.bytes(1)[sizeNlmsghdr:]
	s, err := parseState(body)
	if err != nil {
		t.Fatal(err)
	}
	if s.spi != 0x1111 || s.dst() != testLocal || s.src() != testRemote || s.reqid != DefaultReqIDBase+3 ||
		s.mode != modeTransport || s.flags != stateFlagESN || s.replayWindow != 0 || s.ifID != 9 {
		t.Errorf("state %+v", s)
	}
	if s.lft.softPackets != 10 || s.lft.hardBytes != 1<<20 || s.lft.softBytes != xfrmInf || s.lft.hardPackets != xfrmInf {
		t.Errorf("lifetimes %+v", s.lft)
	}
	attrs, _ := parseAttrs(body[sizeUsersaInfo:])
	crypt, auth := attrs[attrAlgCrypt], attrs[attrAlgAuthTrunc]
	if string(bytes.TrimRight(crypt[:64], "\x00")) != "cbc(aes)" || ne.Uint32(crypt[64:]) != 128 || !bytes.Equal(crypt[68:], sa.InEncrKey) {
		t.Errorf("XFRMA_ALG_CRYPT %x", crypt)
	}
	if string(bytes.TrimRight(auth[:64], "\x00")) != "hmac(sha256)" || ne.Uint32(auth[64:]) != 256 || ne.Uint32(auth[68:]) != 128 || !bytes.Equal(auth[72:], sa.InIntegKey) {
		t.Errorf("XFRMA_ALG_AUTH_TRUNC %x", auth)
	}
	// struct xfrm_replay_state_esn: bmp_len 4 words for 100 packets.
	if r := attrs[attrReplayESNVal]; len(r) != 24+16 || ne.Uint32(r[0:]) != 4 || ne.Uint32(r[20:]) != 100 {
		t.Errorf("XFRMA_REPLAY_ESN_VAL %x", r)
	}
	// Inbound: from the remote's port to ours.
	if e := attrs[attrEncap]; ne.Uint16(e[0:]) != encapESPInUDP || e[2] != 4501>>8 || e[3] != 4501&0xff || e[4] != 4500>>8 || e[5] != 4500&0xff {
		t.Errorf("XFRMA_ENCAP %x", e)
	}
	m.wipe()
	if !bytes.Equal(m.b[:cap(m.b)], make([]byte, cap(m.b))) {
		t.Error("wipe left key bytes")
	}
	// Outbound with ESN: a minimal window, AEAD attributes.
	sa.Encr, sa.EncrKeyLen, sa.Integ = wire.ENCR_AES_GCM_12, 256, wire.AUTH_NONE
	sa.OutEncrKey, sa.OutIntegKey = make([]byte, 36), nil
	algs, _ = algsFor(sa.Encr, sa.EncrKeyLen, sa.Integ)
	m, err = b.stateMessage(msgNewSA, &pair{sa: sa, algs: algs}, false)
	if err != nil {
		t.Fatal(err)
	}
	body = m.bytes(1)[sizeNlmsghdr:]
	attrs, _ = parseAttrs(body[sizeUsersaInfo:])
	if a := attrs[attrAlgAEAD]; string(bytes.TrimRight(a[:64], "\x00")) != "rfc4106(gcm(aes))" || ne.Uint32(a[64:]) != 288 || ne.Uint32(a[68:]) != 96 {
		t.Errorf("XFRMA_ALG_AEAD %x", a)
	}
	if r := attrs[attrReplayESNVal]; ne.Uint32(r[20:]) != 32 {
		t.Errorf("outbound ESN window %d, want 32", ne.Uint32(r[20:]))
	}
	if _, ok := attrs[attrIfID]; ok {
		t.Error("if_id without IfID")
	}
	sa.OutEncrKey = make([]byte, 20)
	if _, err := b.stateMessage(msgNewSA, &pair{sa: sa, algs: algs}, false); !errors.Is(err, dataplane.ErrInvalidSA) {
		t.Errorf("short key: %v", err)
	}
}

// TestEvents decodes ACQUIRE and EXPIRE messages into events: only those of
// Cygnet's request IDs; one soft and one hard expiry per pair, whichever
// direction; a larval state's expiry frees its SPI silently.
func TestEvents(t *testing.T) {
	b := newTestBackend()
	sa := &dataplane.SA{ReqID: 7, InSPI: 0x1000, OutSPI: 0x2000,
		Local: netip.AddrPortFrom(testLocal, 0), Remote: netip.AddrPortFrom(testRemote, 0)}
	b.pairs[sa.InSPI] = &pair{sa: sa, outDone: true}
	b.outbound[stateKey{testRemote, sa.OutSPI}] = sa.InSPI
	b.larval[0x3000] = larvalState{dst: testLocal}

	src, dst := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")
	acq := acquireMsg{daddr: addr16(testRemote), saddr: addr16(testLocal),
		sel: selector{family: afInet, saddr: addr16(src), daddr: addr16(dst), prefixlS: 32, prefixlenD: 32, proto: 17, sport: 5000, dport: 53}}
	events := b.decodeEvent(nlmsg{typ: msgAcquire, data: encodeAcquire(acq, encodeTmpls(userTmpl{reqid: DefaultReqIDBase + 7}))})
	want := dataplane.Event{Kind: dataplane.Acquire, ReqID: 7, Packet: dataplane.Selector{Start: src, End: dst, Protocol: 17, StartPort: 5000, EndPort: 53}}
	if len(events) != 1 || events[0] != want {
		t.Errorf("acquire: %+v, want %+v", events, want)
	}
	// A second ACQUIRE within AcquireInterval is not passed on.
	if ev := b.decodeEvent(nlmsg{typ: msgAcquire, data: encodeAcquire(acq, encodeTmpls(userTmpl{reqid: DefaultReqIDBase + 7}))}); len(ev) != 0 {
		t.Errorf("acquire not rate-limited: %+v", ev)
	}
	delete(b.lastAcquire, 7)
	acq.sel.proto, acq.sel.sport, acq.sel.dport = protoICMP, 8, 0
	events = b.decodeEvent(nlmsg{typ: msgAcquire, data: encodeAcquire(acq, encodeTmpls(userTmpl{reqid: DefaultReqIDBase + 7}))})
	if len(events) != 1 || events[0].Packet.StartPort != 0x0800 {
		t.Errorf("ICMP acquire: %+v", events)
	}
	if ev := b.decodeEvent(nlmsg{typ: msgAcquire, data: encodeAcquire(acq, encodeTmpls(userTmpl{reqid: 7}))}); len(ev) != 0 {
		t.Errorf("acquire of a foreign reqid: %+v", ev)
	}

	expire := func(dst netip.Addr, spi uint32, reqid uint32, hard bool) []dataplane.Event {
		u := usersaInfo{daddr: addr16(dst), spi: spi, proto: protoESP, family: afInet, reqid: reqid}
		return b.decodeEvent(nlmsg{typ: msgExpire, data: encodeExpire(u, hard)})
	}
	kreq := uint32(DefaultReqIDBase + 7)
	if ev := expire(testRemote, 0x2000, kreq, false); len(ev) != 1 || ev[0] != (dataplane.Event{Kind: dataplane.SoftExpire, InSPI: 0x1000, ReqID: 7}) {
		t.Errorf("soft expire of the outbound state: %+v", ev)
	}
	if ev := expire(testLocal, 0x1000, kreq, false); len(ev) != 0 {
		t.Errorf("second soft expire: %+v", ev)
	}
	if ev := expire(testLocal, 0x1000, kreq, true); len(ev) != 1 || ev[0].Kind != dataplane.HardExpire || ev[0].InSPI != 0x1000 {
		t.Errorf("hard expire: %+v", ev)
	}
	if ev := expire(testRemote, 0x2000, kreq, true); len(ev) != 0 {
		t.Errorf("second hard expire: %+v", ev)
	}
	if p := b.pairs[0x1000]; !p.inGone || !p.outGone {
		t.Errorf("hard expiry not recorded: in %v out %v", p.inGone, p.outGone)
	}
	if ev := expire(testLocal, 0x9999, 5, true); len(ev) != 0 {
		t.Errorf("foreign expire: %+v", ev)
	}
	if ev := expire(testLocal, 0x3000, DefaultReqIDBase, true); len(ev) != 0 || len(b.larval) != 0 {
		t.Errorf("larval expire: %+v, larval %v", ev, b.larval)
	}
	if ev := b.decodeEvent(nlmsg{typ: msgExpire, data: []byte{1, 2, 3}}); len(ev) != 0 {
		t.Errorf("garbage: %+v", ev)
	}
}

// FuzzEvents feeds datagrams to the event decoder, as the monitor socket
// would: netlink framing, then ACQUIRE/EXPIRE decoding and the books.
func FuzzEvents(f *testing.F) {
	seeds := seedMessages()
	f.Add(nlFrame(msgExpire, seeds[1]))
	f.Add(append(nlFrame(msgAcquire, seeds[2]), nlFrame(msgExpire, seeds[1])...))
	f.Fuzz(func(t *testing.T, d []byte) {
		b := newTestBackend()
		b.pairs[0xc1a2b3c4] = &pair{sa: &dataplane.SA{InSPI: 0xc1a2b3c4, Local: netip.AddrPortFrom(testLocal, 0)}}
		msgs, err := parseNetlink(d)
		if err != nil {
			return
		}
		for _, m := range msgs {
			b.decodeEvent(m)
		}
	})
}
