package xfrm

import (
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

// maxSelectorsPerPair bounds how many kernel selectors one pair of traffic
// selectors may expand to (address ranges become prefixes, port ranges
// become masked ports): a range such as 10.0.0.1-10.255.255.254 is fine, a
// pathological one is refused rather than filling the SPD.
const maxSelectorsPerPair = 256

const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// selectorsFor expands a traffic flow from src to dst (RFC 4301 4.4.1: one
// range of addresses, a protocol and a range of ports on each side) into
// XFRM selectors, which hold one prefix and one masked port on each side.
// A pair whose families or protocols cannot both match yields none.
func selectorsFor(src, dst dataplane.Selector) ([]selector, error) {
	if !src.Start.IsValid() || !dst.Start.IsValid() || !src.End.IsValid() || !dst.End.IsValid() {
		return nil, fmt.Errorf("%w: traffic selector without addresses", dataplane.ErrInvalidSA)
	}
	if src.Start.Is4() != dst.Start.Is4() {
		return nil, nil // RFC 7296 2.9: TS of different families never pair up
	}
	proto := src.Protocol
	if proto == 0 {
		proto = dst.Protocol
	} else if dst.Protocol != 0 && dst.Protocol != proto {
		return nil, nil
	}
	srcNets, err := rangeToPrefixes(src.Start, src.End)
	if err != nil {
		return nil, err
	}
	dstNets, err := rangeToPrefixes(dst.Start, dst.End)
	if err != nil {
		return nil, err
	}
	type portMask struct{ port, mask uint16 }
	var sports, dports []portMask
	if proto == protoICMP || proto == protoICMPv6 {
		// RFC 4301 4.4.1.1 and RFC 7296 3.13.1: ICMP type and code share
		// the 16-bit port field (type in the high byte). The kernel matches
		// the type in the selector's source port and the code in its
		// destination port.
		r := src
		if r.StartPort == 0 && r.EndPort == 0xffff {
			r = dst
		}
		typ, code := uint16(r.StartPort>>8), uint16(r.StartPort&0xff)
		switch {
		case r.StartPort == 0 && r.EndPort == 0xffff:
			sports, dports = []portMask{{0, 0}}, []portMask{{0, 0}}
		case r.StartPort == r.EndPort:
			sports, dports = []portMask{{typ, 0xffff}}, []portMask{{code, 0xffff}}
		case r.StartPort&0xff == 0 && r.EndPort == r.StartPort|0xff:
			sports, dports = []portMask{{typ, 0xffff}}, []portMask{{0, 0}}
		default:
			return nil, fmt.Errorf("%w: ICMP type/code range %d-%d cannot be expressed in an XFRM selector",
				dataplane.ErrInvalidSA, r.StartPort, r.EndPort)
		}
	} else {
		for _, b := range portBlocks(src.StartPort, src.EndPort) {
			sports = append(sports, portMask(b))
		}
		for _, b := range portBlocks(dst.StartPort, dst.EndPort) {
			dports = append(dports, portMask(b))
		}
		if len(sports) == 0 || len(dports) == 0 {
			return nil, fmt.Errorf("%w: empty port range in %v or %v", dataplane.ErrInvalidSA, src, dst)
		}
	}
	n := len(srcNets) * len(dstNets) * len(sports) * len(dports)
	if n > maxSelectorsPerPair {
		return nil, fmt.Errorf("%w: traffic selectors %v and %v need %d kernel policies (at most %d)",
			dataplane.ErrInvalidSA, src, dst, n, maxSelectorsPerPair)
	}
	sels := make([]selector, 0, n)
	for _, s := range srcNets {
		for _, d := range dstNets {
			for _, sp := range sports {
				for _, dp := range dports {
					sels = append(sels, selector{
						saddr: addr16(s.Addr()), prefixlS: uint8(s.Bits()),
						daddr: addr16(d.Addr()), prefixlenD: uint8(d.Bits()),
						sport: sp.port, sportMask: sp.mask,
						dport: dp.port, dportMask: dp.mask,
						family: familyOf(s.Addr()),
						proto:  proto,
					})
				}
			}
		}
	}
	return sels, nil
}

// rangeToPrefixes splits start..end into the fewest prefixes that cover it
// exactly.
func rangeToPrefixes(start, end netip.Addr) ([]netip.Prefix, error) {
	start, end = start.Unmap(), end.Unmap()
	if start.BitLen() != end.BitLen() || end.Less(start) {
		return nil, fmt.Errorf("%w: address range %v-%v", dataplane.ErrInvalidSA, start, end)
	}
	width := start.BitLen()
	lo, hi := toU128(start), toU128(end)
	var out []netip.Prefix
	for {
		// The largest block aligned at lo that does not pass hi.
		size := lo.trailingZeros(width)
		for size > 0 && lo.add(u128{}.lastOfBlock(size)).greater(hi) {
			size--
		}
		out = append(out, netip.PrefixFrom(fromU128(lo, width), width-size))
		last := lo.add(u128{}.lastOfBlock(size))
		if !hi.greater(last) {
			return out, nil
		}
		lo = last.add(u128{lo: 1})
		if len(out) > maxSelectorsPerPair {
			return nil, fmt.Errorf("%w: address range %v-%v needs more than %d prefixes",
				dataplane.ErrInvalidSA, start, end, maxSelectorsPerPair)
		}
	}
}

// portBlocks splits the port range start..end into (port, mask) blocks;
// the whole range gives the wildcard {0, 0}.
func portBlocks(start, end uint16) []struct{ port, mask uint16 } {
	type block = struct{ port, mask uint16 }
	if start == 0 && end == 0xffff {
		return []block{{0, 0}}
	}
	if end < start {
		return nil
	}
	var out []block
	lo := uint32(start)
	for lo <= uint32(end) {
		size := bits.TrailingZeros32(lo)
		if lo == 0 {
			size = 16
		}
		for size > 0 && lo+(1<<size)-1 > uint32(end) {
			size--
		}
		out = append(out, block{uint16(lo), uint16(0xffff << size)})
		lo += 1 << size
	}
	return out
}

// u128 is an address as a 128-bit number (IPv4 in the low 32 bits).
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var u u128
	for i := 0; i < 8; i++ {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[8+i])
	}
	return u
}

func fromU128(u u128, width int) netip.Addr {
	if width == 32 {
		return netip.AddrFrom4([4]byte{byte(u.lo >> 24), byte(u.lo >> 16), byte(u.lo >> 8), byte(u.lo)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(u.hi >> (8 * i))
		b[15-i] = byte(u.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// trailingZeros counts the trailing zero bits of u, at most width.
func (u u128) trailingZeros(width int) int {
	var n int
	if u.lo != 0 {
		n = bits.TrailingZeros64(u.lo)
	} else if u.hi != 0 {
		n = 64 + bits.TrailingZeros64(u.hi)
	} else {
		n = 128
	}
	return min(n, width)
}

// lastOfBlock is 2^size - 1.
func (u128) lastOfBlock(size int) u128 {
	switch {
	case size <= 0:
		return u128{}
	case size < 64:
		return u128{lo: 1<<size - 1}
	case size == 64:
		return u128{lo: ^uint64(0)}
	case size < 128:
		return u128{hi: 1<<(size-64) - 1, lo: ^uint64(0)}
	}
	return u128{hi: ^uint64(0), lo: ^uint64(0)}
}

func (u u128) add(v u128) u128 {
	lo, carry := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, carry)
	return u128{hi, lo}
}

func (u u128) greater(v u128) bool { return u.hi > v.hi || (u.hi == v.hi && u.lo > v.lo) }

// specificity orders policies: the kernel takes the lowest priority value
// first, so narrower selectors get lower values (longer prefixes, a
// protocol, narrower ports), as strongSwan's kernel-netlink orders them.
func (s *selector) specificity() uint32 {
	maxBits := 32
	if s.family == afInet6 {
		maxBits = 128
	}
	v := uint32(2*maxBits-int(s.prefixlS)-int(s.prefixlenD)) << 6
	if s.proto == 0 {
		v += 33
	}
	v += uint32(32 - bits.OnesCount16(s.sportMask) - bits.OnesCount16(s.dportMask))
	return v
}

// String prints a selector for errors and logs.
func (s selector) String() string {
	src := netip.PrefixFrom(addrFrom16(s.saddr, s.family), int(s.prefixlS))
	dst := netip.PrefixFrom(addrFrom16(s.daddr, s.family), int(s.prefixlenD))
	out := fmt.Sprintf("%v -> %v", src, dst)
	if s.proto != 0 {
		out += fmt.Sprintf(" proto %d", s.proto)
	}
	if s.sportMask != 0 {
		out += fmt.Sprintf(" sport %d/%#x", s.sport, s.sportMask)
	}
	if s.dportMask != 0 {
		out += fmt.Sprintf(" dport %d/%#x", s.dport, s.dportMask)
	}
	return out
}
