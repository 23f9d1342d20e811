package xfrm

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink/nl"
)

// TestLayout cross-checks the hand-written structure layouts against
// vishvananda/netlink's, which mirror <linux/xfrm.h> with Go structs.
func TestLayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		ours, nls int
	}{
		{"xfrm_selector", sizeSelector, nl.SizeofXfrmSelector},
		{"xfrm_id", sizeID, nl.SizeofXfrmId},
		{"xfrm_lifetime_cfg", sizeLifetimeCfg, nl.SizeofXfrmLifetimeCfg},
		{"xfrm_lifetime_cur", sizeLifetimeCur, nl.SizeofXfrmLifetimeCur},
		{"xfrm_usersa_info", sizeUsersaInfo, nl.SizeofXfrmUsersaInfo},
		{"xfrm_usersa_id", sizeUsersaID, nl.SizeofXfrmUsersaId},
		{"xfrm_userspi_info", sizeUserSPIInfo, nl.SizeofXfrmUserSpiInfo},
		{"xfrm_userpolicy_info", sizeUserpolicyInfo, nl.SizeofXfrmUserpolicyInfo},
		{"xfrm_userpolicy_id", sizeUserpolicyID, nl.SizeofXfrmUserpolicyId},
		{"xfrm_user_tmpl", sizeUserTmpl, nl.SizeofXfrmUserTmpl},
		{"xfrm_user_expire", sizeUserExpire, nl.SizeofXfrmUserExpire},
		{"xfrm_encap_tmpl", sizeEncapTmpl, nl.SizeofXfrmEncapTmpl},
		{"xfrm_mark", sizeMark, nl.SizeofXfrmMark},
	} {
		if c.ours != c.nls {
			t.Errorf("sizeof(%s): %d here, %d in vishvananda/netlink", c.name, c.ours, c.nls)
		}
	}

	u := sampleState()
	b := make([]byte, sizeUsersaInfo)
	u.put(b)
	x := nl.DeserializeXfrmUsersaInfo(b)
	if x.Reqid != u.reqid || nl.Swap32(x.Id.Spi) != u.spi || x.Id.Proto != u.proto || x.Family != u.family ||
		x.Mode != u.mode || x.ReplayWindow != u.replayWindow || x.Flags != u.flags || x.Seq != u.seq ||
		!x.Id.Daddr.ToIP().Equal(net.IP(testLocal.AsSlice())) || !x.Saddr.ToIP().Equal(net.IP(testRemote.AsSlice())) ||
		x.Lft.SoftByteLimit != 1 || x.Lft.HardUseExpiresSeconds != 8 {
		t.Errorf("xfrm_usersa_info: %+v", x)
	}
	if x.Sel.PrefixlenS != 16 || x.Sel.Family != afInet || x.Sel.Proto != 6 || nl.Swap16(x.Sel.Sport) != 1000 || nl.Swap16(x.Sel.SportMask) != 0xfff8 {
		t.Errorf("xfrm_selector: %+v", x.Sel)
	}

	p := userpolicyInfo{sel: selector{family: afInet6, prefixlenD: 64}, priority: 77, index: 88, dir: dirFwd, action: 1}
	b = make([]byte, sizeUserpolicyInfo)
	p.put(b)
	y := nl.DeserializeXfrmUserpolicyInfo(b)
	if y.Priority != 77 || y.Index != 88 || y.Dir != dirFwd || y.Action != 1 || y.Sel.Family != afInet6 || y.Sel.PrefixlenD != 64 || y.Lft.HardPacketLimit != xfrmInf {
		t.Errorf("xfrm_userpolicy_info: %+v", y)
	}

	tm := userTmpl{daddr: addr16(testRemote), saddr: addr16(testLocal), spi: 0x1234, proto: protoESP, family: afInet, reqid: 99, mode: modeTunnel}
	b = make([]byte, sizeUserTmpl)
	tm.put(b)
	z := nl.DeserializeXfrmUserTmpl(b)
	if z.Reqid != 99 || z.Mode != modeTunnel || z.Family != afInet || nl.Swap32(z.XfrmId.Spi) != 0x1234 || z.XfrmId.Proto != protoESP ||
		!z.Saddr.ToIP().Equal(net.IP(testLocal.AsSlice())) || z.Aalgos != ^uint32(0) {
		t.Errorf("xfrm_user_tmpl: %+v", z)
	}
	if got, _ := parseUserTmpls(b); len(got) != 1 || got[0] != tm {
		t.Errorf("parseUserTmpls: %+v", got)
	}

	// IPv6 addresses fill the whole xfrm_address_t.
	a6 := netip.MustParseAddr("2001:db8::1")
	if addrFrom16(addr16(a6), afInet6) != a6 || addrFrom16(addr16(testLocal), afInet) != testLocal {
		t.Error("xfrm_address_t round trip")
	}
}
