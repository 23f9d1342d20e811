package xfrm

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func TestRangeToPrefixes(t *testing.T) {
	for _, c := range []struct {
		start, end string
		want       []netip.Prefix
	}{
		{"10.0.0.0", "10.0.255.255", pfx("10.0.0.0/16")},
		{"10.0.0.1", "10.0.0.1", pfx("10.0.0.1/32")},
		{"0.0.0.0", "255.255.255.255", pfx("0.0.0.0/0")},
		{"10.0.0.1", "10.0.0.6", pfx("10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32")},
		{"192.0.2.0", "192.0.2.128", pfx("192.0.2.0/25", "192.0.2.128/32")},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", pfx("::/0")},
		{"fd00::", "fd00::ffff:ffff:ffff:ffff", pfx("fd00::/64")},
		{"fd00::ffff", "fd00::1:0", pfx("fd00::ffff/128", "fd00::1:0/128")},
		{"::ffff:10.0.0.0", "::ffff:10.0.0.255", pfx("10.0.0.0/24")}, // unmapped
	} {
		got, err := rangeToPrefixes(netip.MustParseAddr(c.start), netip.MustParseAddr(c.end))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s-%s: %v %v, want %v", c.start, c.end, got, err, c.want)
		}
	}
	for _, c := range [][2]string{{"10.0.0.2", "10.0.0.1"}, {"10.0.0.1", "fd00::1"}} {
		if _, err := rangeToPrefixes(netip.MustParseAddr(c[0]), netip.MustParseAddr(c[1])); !errors.Is(err, dataplane.ErrInvalidSA) {
			t.Errorf("%v: %v", c, err)
		}
	}
	// 1.0.0.1-254.255.255.254 needs a few dozen prefixes: fine.
	if got, err := rangeToPrefixes(netip.MustParseAddr("1.0.0.1"), netip.MustParseAddr("254.255.255.254")); err != nil || len(got) > 64 {
		t.Errorf("wide range: %d prefixes, %v", len(got), err)
	}
}

// TestRangeToPrefixesCover: the prefixes cover exactly the range, in order,
// without gaps, for random IPv4 ranges.
func TestRangeToPrefixesCover(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		a, b := r.Uint32(), r.Uint32()
		if r.IntN(2) == 0 {
			b = a + r.Uint32N(1000)
			if b < a {
				b = a
			}
		}
		if b < a {
			a, b = b, a
		}
		start, end := fromU128(u128{lo: uint64(a)}, 32), fromU128(u128{lo: uint64(b)}, 32)
		ps, err := rangeToPrefixes(start, end)
		if err != nil {
			t.Fatal(err)
		}
		next := uint64(a)
		for _, p := range ps {
			lo := toU128(p.Addr()).lo
			if lo != next || p.Masked() != p {
				t.Fatalf("%v-%v: prefix %v where %d expected (%v)", start, end, p, next, ps)
			}
			next = lo + 1<<(32-p.Bits())
		}
		if next != uint64(b)+1 {
			t.Fatalf("%v-%v: prefixes end at %d (%v)", start, end, next, ps)
		}
	}
}

func TestPortBlocks(t *testing.T) {
	type blk = struct{ port, mask uint16 }
	for _, c := range []struct {
		start, end uint16
		want       []blk
	}{
		{0, 0xffff, []blk{{0, 0}}},
		{80, 80, []blk{{80, 0xffff}}},
		{1024, 2047, []blk{{1024, 0xfc00}}},
		{5, 8, []blk{{5, 0xffff}, {6, 0xfffe}, {8, 0xffff}}},
		{0xfff0, 0xffff, []blk{{0xfff0, 0xfff0}}},
		{1, 0xffff, nil}, // checked below by cover
	} {
		got := portBlocks(c.start, c.end)
		if c.want != nil && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%d-%d: %v, want %v", c.start, c.end, got, c.want)
		}
		next := uint32(c.start)
		for _, b := range got {
			size := uint32(^b.mask) + 1
			if uint32(b.port) != next || uint32(b.port)&(size-1) != 0 {
				t.Fatalf("%d-%d: block %v at %d", c.start, c.end, b, next)
			}
			next += size
		}
		if next != uint32(c.end)+1 && !(c.start == 0 && c.end == 0xffff) {
			t.Errorf("%d-%d: blocks end at %d", c.start, c.end, next)
		}
	}
	if got := portBlocks(9, 8); got != nil {
		t.Errorf("empty range: %v", got)
	}
}

func ts(start, end string, proto uint8, sp, ep uint16) dataplane.Selector {
	return dataplane.Selector{Start: netip.MustParseAddr(start), End: netip.MustParseAddr(end), Protocol: proto, StartPort: sp, EndPort: ep}
}

func TestSelectorsFor(t *testing.T) {
	// A /24 to a host, TCP to port 443 from any port.
	sels, err := selectorsFor(ts("10.1.0.0", "10.1.0.255", 0, 0, 0xffff), ts("10.2.0.1", "10.2.0.1", 6, 443, 443))
	if err != nil || len(sels) != 1 {
		t.Fatalf("%v %v", sels, err)
	}
	s := sels[0]
	if s.prefixlS != 24 || s.prefixlenD != 32 || s.proto != 6 || s.dport != 443 || s.dportMask != 0xffff || s.sportMask != 0 || s.family != afInet {
		t.Errorf("selector %v", s)
	}
	// ICMP echo request (type 8, code 0) on one side.
	sels, _ = selectorsFor(ts("10.1.0.1", "10.1.0.1", 1, 0x0800, 0x0800), ts("10.2.0.1", "10.2.0.1", 1, 0, 0xffff))
	if len(sels) != 1 || sels[0].sport != 8 || sels[0].sportMask != 0xffff || sels[0].dport != 0 || sels[0].dportMask != 0xffff {
		t.Errorf("ICMP type/code: %v", sels)
	}
	// Any code of ICMPv6 type 128.
	sels, _ = selectorsFor(ts("fd01::1", "fd01::1", 58, 128<<8, 128<<8|0xff), ts("fd02::1", "fd02::1", 58, 0, 0xffff))
	if len(sels) != 1 || sels[0].sport != 128 || sels[0].dportMask != 0 || sels[0].family != afInet6 {
		t.Errorf("ICMPv6 type: %v", sels)
	}
	if _, err := selectorsFor(ts("10.1.0.1", "10.1.0.1", 1, 0x0801, 0x0903), ts("10.2.0.1", "10.2.0.1", 1, 0, 0xffff)); !errors.Is(err, dataplane.ErrInvalidSA) {
		t.Errorf("ICMP range: %v", err)
	}
	// Families or protocols that cannot pair give nothing.
	if sels, err := selectorsFor(ts("10.1.0.1", "10.1.0.1", 0, 0, 0xffff), ts("fd02::1", "fd02::1", 0, 0, 0xffff)); sels != nil || err != nil {
		t.Errorf("mixed families: %v %v", sels, err)
	}
	if sels, err := selectorsFor(ts("10.1.0.1", "10.1.0.1", 6, 0, 0xffff), ts("10.2.0.1", "10.2.0.1", 17, 0, 0xffff)); sels != nil || err != nil {
		t.Errorf("TCP with UDP: %v %v", sels, err)
	}
	// A port range crossed with an address range: the product.
	sels, err = selectorsFor(ts("10.1.0.1", "10.1.0.6", 17, 0, 0xffff), ts("10.2.0.1", "10.2.0.1", 17, 5, 8))
	if err != nil || len(sels) != 4*3 {
		t.Errorf("product: %d selectors, %v", len(sels), err)
	}
	// Too many.
	if _, err := selectorsFor(ts("10.1.0.1", "10.1.255.254", 17, 1, 0xfffe), ts("10.2.0.1", "10.2.255.254", 17, 1, 0xfffe)); !errors.Is(err, dataplane.ErrInvalidSA) {
		t.Errorf("explosion: %v", err)
	}
	if _, err := selectorsFor(dataplane.Selector{}, ts("10.2.0.1", "10.2.0.1", 0, 0, 0xffff)); !errors.Is(err, dataplane.ErrInvalidSA) {
		t.Errorf("zero selector: %v", err)
	}
}

func TestSpecificity(t *testing.T) {
	host, _ := selectorsFor(ts("10.1.0.1", "10.1.0.1", 0, 0, 0xffff), ts("10.2.0.1", "10.2.0.1", 0, 0, 0xffff))
	net, _ := selectorsFor(ts("10.1.0.0", "10.1.255.255", 0, 0, 0xffff), ts("10.2.0.0", "10.2.255.255", 0, 0, 0xffff))
	tcp, _ := selectorsFor(ts("10.1.0.1", "10.1.0.1", 6, 0, 0xffff), ts("10.2.0.1", "10.2.0.1", 6, 80, 80))
	all, _ := selectorsFor(ts("0.0.0.0", "255.255.255.255", 0, 0, 0xffff), ts("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0, 0, 0xffff))
	if !(tcp[0].specificity() < host[0].specificity() && host[0].specificity() < net[0].specificity()) {
		t.Errorf("specificity: tcp %d host %d net %d", tcp[0].specificity(), host[0].specificity(), net[0].specificity())
	}
	if all != nil {
		t.Errorf("v4 with v6: %v", all)
	}
	any6, _ := selectorsFor(ts("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0, 0, 0xffff), ts("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0, 0, 0xffff))
	if v := any6[0].specificity(); v >= trapBand {
		t.Errorf("the widest selector's specificity %#x leaves the band", v)
	}
}
