package xfrm

// The XFRM netlink structures of <linux/xfrm.h>, encoded and decoded by hand:
// vishvananda/netlink covers most of them, but not ALLOCSPI with a request ID,
// a replay window above 32 packets without ESN, selectors with port masks, or
// the ACQUIRE message. Netlink structures are in host byte order, except
// addresses, SPIs and ports, which are in network order. Offsets are those of
// the x86-64/arm64 ABI (every __u64 is 8-byte aligned there).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

var ne = binary.NativeEndian

// Netlink message types (XFRM_MSG_*).
const (
	msgNewSA       = 0x10
	msgDelSA       = 0x11
	msgGetSA       = 0x12
	msgNewPolicy   = 0x13
	msgDelPolicy   = 0x14
	msgGetPolicy   = 0x15
	msgAllocSPI    = 0x16
	msgAcquire     = 0x17
	msgExpire      = 0x18
	msgUpdPolicy   = 0x19
	msgUpdSA       = 0x1a
	msgPolExpire   = 0x1b
	msgFlushSA     = 0x1c
	msgFlushPolicy = 0x1d
)

// Attribute types (XFRMA_*).
const (
	attrAlgAuth      = 1
	attrAlgCrypt     = 2
	attrEncap        = 4
	attrTmpl         = 5
	attrLastUsed     = 15
	attrAlgAEAD      = 18
	attrAlgAuthTrunc = 20
	attrMark         = 21
	attrReplayESNVal = 23
	attrSAExtraFlags = 24
	attrIfID         = 31
)

// Multicast groups (XFRMNLGRP_*).
const (
	groupAcquire = 1
	groupExpire  = 2
)

// Policy directions, actions; state flags; encapsulation types.
const (
	dirIn  = 0
	dirOut = 1
	dirFwd = 2

	actionAllow = 0

	stateFlagAFUnspec = 32  // XFRM_STATE_AF_UNSPEC
	stateFlagESN      = 128 // XFRM_STATE_ESN

	encapESPInUDP = 2 // UDP_ENCAP_ESPINUDP (RFC 3948)

	protoESP = 50

	modeTransport = 0
	modeTunnel    = 1

	afInet  = 2
	afInet6 = 10

	xfrmInf = ^uint64(0) // XFRM_INF: no limit

	// XFRMA_REPLAY_ESN_MAX: the kernel takes at most this many bytes of
	// replay bitmap, so windows up to 32768 packets.
	replayESNMaxBytes = 4096
	maxReplayWindow   = replayESNMaxBytes * 8
)

// Structure sizes.
const (
	sizeSelector       = 56
	sizeID             = 24
	sizeLifetimeCfg    = 64
	sizeLifetimeCur    = 32
	sizeUsersaInfo     = 224
	sizeUsersaID       = 24
	sizeUserSPIInfo    = sizeUsersaInfo + 8
	sizeUserpolicyInfo = 168
	sizeUserpolicyID   = sizeSelector + 8
	sizeUserTmpl       = 64
	sizeUserExpire     = sizeUsersaInfo + 8
	sizeUserAcquire    = 280
	sizeEncapTmpl      = 24
	sizeMark           = 8
	sizeAlgName        = 64
)

// errShort is returned for a message or attribute too short for its structure.
var errShort = errors.New("xfrm: truncated netlink message")

// selector is struct xfrm_selector. Ports and masks are host-order values here.
type selector struct {
	daddr, saddr         [16]byte
	dport, dportMask     uint16
	sport, sportMask     uint16
	family               uint16
	prefixlenD, prefixlS uint8
	proto                uint8
	ifindex              int32
}

func (s *selector) put(b []byte) {
	copy(b[0:16], s.daddr[:])
	copy(b[16:32], s.saddr[:])
	binary.BigEndian.PutUint16(b[32:], s.dport)
	binary.BigEndian.PutUint16(b[34:], s.dportMask)
	binary.BigEndian.PutUint16(b[36:], s.sport)
	binary.BigEndian.PutUint16(b[38:], s.sportMask)
	ne.PutUint16(b[40:], s.family)
	b[42] = s.prefixlenD
	b[43] = s.prefixlS
	b[44] = s.proto
	ne.PutUint32(b[48:], uint32(s.ifindex))
	ne.PutUint32(b[52:], 0) // user
}

func parseSelector(b []byte) selector {
	var s selector
	copy(s.daddr[:], b[0:16])
	copy(s.saddr[:], b[16:32])
	s.dport = binary.BigEndian.Uint16(b[32:])
	s.dportMask = binary.BigEndian.Uint16(b[34:])
	s.sport = binary.BigEndian.Uint16(b[36:])
	s.sportMask = binary.BigEndian.Uint16(b[38:])
	s.family = ne.Uint16(b[40:])
	s.prefixlenD = b[42]
	s.prefixlS = b[43]
	s.proto = b[44]
	s.ifindex = int32(ne.Uint32(b[48:]))
	return s
}

// addr16 is an xfrm_address_t: IPv4 in the first four bytes.
func addr16(a netip.Addr) [16]byte {
	var x [16]byte
	if a.Is4() {
		v := a.As4()
		copy(x[:], v[:])
	} else if a.Is6() {
		x = a.As16()
	}
	return x
}

func addrFrom16(x [16]byte, family uint16) netip.Addr {
	if family == afInet {
		return netip.AddrFrom4([4]byte(x[:4]))
	}
	return netip.AddrFrom16(x)
}

func familyOf(a netip.Addr) uint16 {
	if a.Is4() {
		return afInet
	}
	return afInet6
}

// lifetime is struct xfrm_lifetime_cfg: byte and packet limits (xfrmInf:
// none); time limits in seconds (0: none).
type lifetime struct {
	softBytes, hardBytes, softPackets, hardPackets uint64
	softAdd, hardAdd, softUse, hardUse             uint64
}

func infinite() lifetime {
	return lifetime{softBytes: xfrmInf, hardBytes: xfrmInf, softPackets: xfrmInf, hardPackets: xfrmInf}
}

func (l *lifetime) put(b []byte) {
	for i, v := range [8]uint64{l.softBytes, l.hardBytes, l.softPackets, l.hardPackets, l.softAdd, l.hardAdd, l.softUse, l.hardUse} {
		ne.PutUint64(b[8*i:], v)
	}
}

// usersaInfo is struct xfrm_usersa_info.
type usersaInfo struct {
	sel          selector
	daddr        [16]byte
	spi          uint32
	proto        uint8
	saddr        [16]byte
	lft          lifetime
	curBytes     uint64 // curlft
	curPackets   uint64
	addTime      uint64
	useTime      uint64
	statsReplayW uint32 // stats
	statsReplay  uint32
	statsIntegF  uint32
	seq          uint32
	reqid        uint32
	family       uint16
	mode         uint8
	replayWindow uint8
	flags        uint8
}

func (u *usersaInfo) put(b []byte) {
	u.sel.put(b[0:sizeSelector])
	copy(b[56:72], u.daddr[:])
	binary.BigEndian.PutUint32(b[72:], u.spi)
	b[76] = u.proto
	copy(b[80:96], u.saddr[:])
	u.lft.put(b[96:160])
	ne.PutUint32(b[204:], u.seq)
	ne.PutUint32(b[208:], u.reqid)
	ne.PutUint16(b[212:], u.family)
	b[214] = u.mode
	b[215] = u.replayWindow
	b[216] = u.flags
}

func parseUsersaInfo(b []byte) (usersaInfo, error) {
	var u usersaInfo
	if len(b) < sizeUsersaInfo {
		return u, errShort
	}
	u.sel = parseSelector(b[0:sizeSelector])
	copy(u.daddr[:], b[56:72])
	u.spi = binary.BigEndian.Uint32(b[72:])
	u.proto = b[76]
	copy(u.saddr[:], b[80:96])
	l := b[96:160]
	u.lft = lifetime{ne.Uint64(l[0:]), ne.Uint64(l[8:]), ne.Uint64(l[16:]), ne.Uint64(l[24:]),
		ne.Uint64(l[32:]), ne.Uint64(l[40:]), ne.Uint64(l[48:]), ne.Uint64(l[56:])}
	u.curBytes = ne.Uint64(b[160:])
	u.curPackets = ne.Uint64(b[168:])
	u.addTime = ne.Uint64(b[176:])
	u.useTime = ne.Uint64(b[184:])
	u.statsReplayW = ne.Uint32(b[192:])
	u.statsReplay = ne.Uint32(b[196:])
	u.statsIntegF = ne.Uint32(b[200:])
	u.seq = ne.Uint32(b[204:])
	u.reqid = ne.Uint32(b[208:])
	u.family = ne.Uint16(b[212:])
	u.mode = b[214]
	u.replayWindow = b[215]
	u.flags = b[216]
	return u, nil
}

// usersaID is struct xfrm_usersa_id: what names a state.
func putUsersaID(b []byte, daddr netip.Addr, spi uint32) {
	d := addr16(daddr)
	copy(b[0:16], d[:])
	binary.BigEndian.PutUint32(b[16:], spi)
	ne.PutUint16(b[20:], familyOf(daddr))
	b[22] = protoESP
}

// userpolicyInfo is struct xfrm_userpolicy_info.
type userpolicyInfo struct {
	sel      selector
	priority uint32
	index    uint32
	dir      uint8
	action   uint8
	flags    uint8
}

func (p *userpolicyInfo) put(b []byte) {
	p.sel.put(b[0:sizeSelector])
	lft := infinite()
	lft.put(b[56:120])
	ne.PutUint32(b[152:], p.priority)
	ne.PutUint32(b[156:], p.index)
	b[160] = p.dir
	b[161] = p.action
	b[162] = p.flags
}

func parseUserpolicyInfo(b []byte) (userpolicyInfo, error) {
	var p userpolicyInfo
	if len(b) < sizeUserpolicyInfo {
		return p, errShort
	}
	p.sel = parseSelector(b[0:sizeSelector])
	p.priority = ne.Uint32(b[152:])
	p.index = ne.Uint32(b[156:])
	p.dir = b[160]
	p.action = b[161]
	p.flags = b[162]
	return p, nil
}

// userTmpl is struct xfrm_user_tmpl.
type userTmpl struct {
	daddr  [16]byte
	spi    uint32
	proto  uint8
	family uint16
	saddr  [16]byte
	reqid  uint32
	mode   uint8
}

func (t *userTmpl) put(b []byte) {
	copy(b[0:16], t.daddr[:])
	binary.BigEndian.PutUint32(b[16:], t.spi)
	b[20] = t.proto
	ne.PutUint16(b[24:], t.family)
	copy(b[28:44], t.saddr[:])
	ne.PutUint32(b[44:], t.reqid)
	b[48] = t.mode
	// aalgos, ealgos, calgos: any algorithm.
	ne.PutUint32(b[52:], ^uint32(0))
	ne.PutUint32(b[56:], ^uint32(0))
	ne.PutUint32(b[60:], ^uint32(0))
}

func parseUserTmpls(b []byte) ([]userTmpl, error) {
	if len(b)%sizeUserTmpl != 0 {
		return nil, fmt.Errorf("xfrm: XFRMA_TMPL of %d bytes is not a whole number of templates", len(b))
	}
	var ts []userTmpl
	for ; len(b) >= sizeUserTmpl; b = b[sizeUserTmpl:] {
		var t userTmpl
		copy(t.daddr[:], b[0:16])
		t.spi = binary.BigEndian.Uint32(b[16:])
		t.proto = b[20]
		t.family = ne.Uint16(b[24:])
		copy(t.saddr[:], b[28:44])
		t.reqid = ne.Uint32(b[44:])
		t.mode = b[48]
		ts = append(ts, t)
	}
	return ts, nil
}

// --- netlink framing ----------------------------------------------------------------

const (
	sizeNlmsghdr = 16
	sizeNlattr   = 4
)

func align4(n int) int { return (n + 3) &^ 3 }

// message builds one netlink request: the header, a fixed structure, then
// attributes.
type message struct {
	b []byte
}

func newMessage(typ uint16, flags uint16, fixed int) *message {
	m := &message{b: make([]byte, sizeNlmsghdr+align4(fixed), 512)}
	ne.PutUint16(m.b[4:], typ)
	ne.PutUint16(m.b[6:], flags)
	return m
}

// fixed is the message's fixed structure, to fill in.
func (m *message) fixed() []byte { return m.b[sizeNlmsghdr:] }

// attr appends an attribute with room for n bytes of value and returns the
// value to fill in.
func (m *message) attr(typ uint16, n int) []byte {
	off := len(m.b)
	m.b = append(m.b, make([]byte, sizeNlattr+align4(n))...)
	ne.PutUint16(m.b[off:], uint16(sizeNlattr+n))
	ne.PutUint16(m.b[off+2:], typ)
	return m.b[off+sizeNlattr : off+sizeNlattr+n]
}

func (m *message) u32(typ uint16, v uint32) { ne.PutUint32(m.attr(typ, 4), v) }

// bytes finishes the message with its length and sequence number.
func (m *message) bytes(seq uint32) []byte {
	ne.PutUint32(m.b[0:], uint32(len(m.b)))
	ne.PutUint32(m.b[8:], seq)
	return m.b
}

// wipe zeroes the message: it may hold keys.
func (m *message) wipe() { clear(m.b[:cap(m.b)]) }

// attrs parses a sequence of netlink attributes into a map from type to
// value (the last one of each type wins, except that XFRMA_TMPL is one
// attribute holding many templates). Nested and byte-order flags are masked.
func parseAttrs(b []byte) (map[uint16][]byte, error) {
	attrs := make(map[uint16][]byte)
	for len(b) >= sizeNlattr {
		l := int(ne.Uint16(b[0:]))
		typ := ne.Uint16(b[2:]) & 0x3fff
		if l < sizeNlattr || l > len(b) {
			return nil, fmt.Errorf("xfrm: netlink attribute %d: length %d outside the %d bytes left", typ, l, len(b))
		}
		attrs[typ] = b[sizeNlattr:l]
		if a := align4(l); a < len(b) {
			b = b[a:]
		} else {
			b = nil
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("xfrm: %d stray bytes after netlink attributes", len(b))
	}
	return attrs, nil
}

// nlmsg is one netlink message of a datagram.
type nlmsg struct {
	typ   uint16
	flags uint16
	seq   uint32
	pid   uint32
	data  []byte
}

// parseNetlink splits a datagram into its netlink messages.
func parseNetlink(b []byte) ([]nlmsg, error) {
	var msgs []nlmsg
	for len(b) > 0 {
		if len(b) < sizeNlmsghdr {
			return nil, errShort
		}
		l := int(ne.Uint32(b[0:]))
		if l < sizeNlmsghdr || l > len(b) {
			return nil, fmt.Errorf("xfrm: netlink message length %d outside the %d bytes received", l, len(b))
		}
		msgs = append(msgs, nlmsg{
			typ:   ne.Uint16(b[4:]),
			flags: ne.Uint16(b[6:]),
			seq:   ne.Uint32(b[8:]),
			pid:   ne.Uint32(b[12:]),
			data:  b[sizeNlmsghdr:l],
		})
		if a := align4(l); a < len(b) {
			b = b[a:]
		} else {
			b = nil
		}
	}
	return msgs, nil
}

// --- decoded kernel objects ---------------------------------------------------------

// stateInfo is what Cygnet reads back about a state (GETSA, dumps, EXPIRE).
type stateInfo struct {
	usersaInfo
	mark     *[2]uint32 // value, mask
	ifID     uint32
	lastUsed uint64
}

func (s *stateInfo) dst() netip.Addr { return addrFrom16(s.daddr, s.family) }
func (s *stateInfo) src() netip.Addr { return addrFrom16(s.saddr, s.family) }

func parseState(b []byte) (stateInfo, error) {
	var s stateInfo
	u, err := parseUsersaInfo(b)
	if err != nil {
		return s, err
	}
	s.usersaInfo = u
	attrs, err := parseAttrs(b[sizeUsersaInfo:])
	if err != nil {
		return s, err
	}
	if err := s.parseExtra(attrs); err != nil {
		return s, err
	}
	return s, nil
}

func (s *stateInfo) parseExtra(attrs map[uint16][]byte) error {
	if v, ok := attrs[attrMark]; ok {
		if len(v) < sizeMark {
			return errShort
		}
		s.mark = &[2]uint32{ne.Uint32(v[0:]), ne.Uint32(v[4:])}
	}
	if v, ok := attrs[attrIfID]; ok {
		if len(v) < 4 {
			return errShort
		}
		s.ifID = ne.Uint32(v)
	}
	if v, ok := attrs[attrLastUsed]; ok {
		if len(v) < 8 {
			return errShort
		}
		s.lastUsed = ne.Uint64(v)
	}
	return nil
}

// policyInfo is what Cygnet reads back about a policy (dumps).
type policyInfo struct {
	userpolicyInfo
	tmpls []userTmpl
	mark  *[2]uint32
	ifID  uint32
}

func parsePolicy(b []byte) (policyInfo, error) {
	var p policyInfo
	u, err := parseUserpolicyInfo(b)
	if err != nil {
		return p, err
	}
	p.userpolicyInfo = u
	attrs, err := parseAttrs(b[sizeUserpolicyInfo:])
	if err != nil {
		return p, err
	}
	if v, ok := attrs[attrTmpl]; ok {
		if p.tmpls, err = parseUserTmpls(v); err != nil {
			return p, err
		}
	}
	if v, ok := attrs[attrMark]; ok {
		if len(v) < sizeMark {
			return p, errShort
		}
		p.mark = &[2]uint32{ne.Uint32(v[0:]), ne.Uint32(v[4:])}
	}
	if v, ok := attrs[attrIfID]; ok {
		if len(v) < 4 {
			return p, errShort
		}
		p.ifID = ne.Uint32(v)
	}
	return p, nil
}

// expireMsg is struct xfrm_user_expire with its attributes.
type expireMsg struct {
	state stateInfo
	hard  bool
}

func parseExpire(b []byte) (expireMsg, error) {
	var e expireMsg
	if len(b) < sizeUserExpire {
		return e, errShort
	}
	u, err := parseUsersaInfo(b)
	if err != nil {
		return e, err
	}
	e.state.usersaInfo = u
	e.hard = b[sizeUsersaInfo] != 0
	attrs, err := parseAttrs(b[sizeUserExpire:])
	if err != nil {
		return e, err
	}
	return e, e.state.parseExtra(attrs)
}

// acquireMsg is struct xfrm_user_acquire with its templates: the kernel
// asks for an SA for the packet described by sel (the flow: its addresses
// with full prefixes, protocol and ports) under the policy.
type acquireMsg struct {
	daddr  [16]byte
	saddr  [16]byte
	sel    selector
	policy userpolicyInfo
	seq    uint32
	tmpls  []userTmpl
	ifID   uint32
}

func parseAcquire(b []byte) (acquireMsg, error) {
	var a acquireMsg
	if len(b) < sizeUserAcquire {
		return a, errShort
	}
	copy(a.daddr[:], b[0:16])
	copy(a.saddr[:], b[24:40])
	a.sel = parseSelector(b[40:96])
	p, err := parseUserpolicyInfo(b[96:264])
	if err != nil {
		return a, err
	}
	a.policy = p
	a.seq = ne.Uint32(b[276:])
	attrs, err := parseAttrs(b[sizeUserAcquire:])
	if err != nil {
		return a, err
	}
	if v, ok := attrs[attrTmpl]; ok {
		if a.tmpls, err = parseUserTmpls(v); err != nil {
			return a, err
		}
	}
	if v, ok := attrs[attrIfID]; ok {
		if len(v) < 4 {
			return a, errShort
		}
		a.ifID = ne.Uint32(v)
	}
	return a, nil
}
