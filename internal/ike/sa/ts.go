package sa

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// rangeTS returns a wire selector for the addresses start..end.
func rangeTS(start, end netip.Addr, proto uint8, sport, eport uint16) wire.TrafficSelector {
	start, end = start.Unmap(), end.Unmap()
	t := wire.TSIPv4AddrRange
	if start.Is6() {
		t = wire.TSIPv6AddrRange
	}
	return wire.TrafficSelector{Type: t, IPProtocol: proto, StartPort: sport, EndPort: eport, Start: start, End: end}
}

// lastAddr returns the last address of prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range a {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits {
				a[i] |= 0x80 >> b
			}
		}
	}
	out, _ := netip.AddrFromSlice(a)
	return out
}

// resolveTS turns configured selectors into wire selectors, "dynamic" (and
// an empty list, which means dynamic) becoming the IKE address addr.
func resolveTS(cfg []TrafficSelector, addr netip.Addr) []wire.TrafficSelector {
	if len(cfg) == 0 {
		return []wire.TrafficSelector{rangeTS(addr, addr, 0, 0, 0xffff)}
	}
	out := make([]wire.TrafficSelector, 0, len(cfg))
	for _, ts := range cfg {
		if ts.Dynamic {
			out = append(out, rangeTS(addr, addr, ts.IPProtocol, ts.StartPort, ts.EndPort))
			continue
		}
		out = append(out, ts.TrafficSelector)
	}
	return out
}

// narrowTS is RFC 7296 2.9's narrowing as strongSwan does it: every
// intersection of one of ours (config order) with one of theirs, then
// without selectors contained in another. A specific selector the
// initiator puts first (the packet that triggered it) thus disappears in
// the whole subnet when that is acceptable, and survives when only it is.
func narrowTS(ours, theirs []wire.TrafficSelector) []wire.TrafficSelector {
	var out []wire.TrafficSelector
	for _, a := range ours {
		for _, b := range theirs {
			if s, ok := tsSubset(a, b); ok {
				out = append(out, s)
			}
		}
	}
	// Drop duplicates and selectors contained in another.
	var kept []wire.TrafficSelector
	for i, a := range out {
		redundant := false
		for j, b := range out {
			if i == j || !tsContained(a, b) {
				continue
			}
			// a is within b: drop a, unless they are equal and a comes
			// first (keep one of equals).
			if !tsContained(b, a) || j < i {
				redundant = true
				break
			}
		}
		if !redundant {
			kept = append(kept, a)
		}
	}
	return kept
}

// tsFit rates how well configured selectors fit proposed ones, as
// strongSwan's get_ts_match does, so that a responder with several children
// picks the one strongSwan would (RFC 7296 2.9 leaves the choice to the
// responder): each configured selector equal to a proposed one scores 5,
// one that only intersects it 1, times the proposed selector's rank from
// the end (the first of n proposed counts n times: an initiator puts the
// most specific one, the packet's, first). 0: no intersection at all.
func tsFit(cfg, proposed []wire.TrafficSelector) int {
	fit := 0
	for i, p := range proposed {
		round := len(proposed) - i
		for _, c := range cfg {
			if tsContained(c, p) && tsContained(p, c) {
				fit += 5 * round
			} else if _, ok := tsSubset(c, p); ok {
				fit += round
			}
		}
	}
	return fit
}

// portRange returns a selector's port range; ok is false for OPAQUE
// (RFC 7296 3.13.1: start 65535, end 0).
func portRange(t wire.TrafficSelector) (lo, hi uint16, opaque bool) {
	if t.StartPort > t.EndPort {
		return 0, 0, true
	}
	return t.StartPort, t.EndPort, false
}

// tsSubset returns the intersection of a and b.
func tsSubset(a, b wire.TrafficSelector) (wire.TrafficSelector, bool) {
	if a.Type != b.Type || (a.Type != wire.TSIPv4AddrRange && a.Type != wire.TSIPv6AddrRange) {
		return wire.TrafficSelector{}, false
	}
	proto := a.IPProtocol
	switch {
	case a.IPProtocol == 0:
		proto = b.IPProtocol
	case b.IPProtocol != 0 && b.IPProtocol != a.IPProtocol:
		return wire.TrafficSelector{}, false
	}
	alo, ahi, aop := portRange(a)
	blo, bhi, bop := portRange(b)
	var lo, hi uint16
	switch {
	case aop && bop, aop && blo == 0 && bhi == 0xffff, bop && alo == 0 && ahi == 0xffff:
		lo, hi = 0xffff, 0 // OPAQUE
	case aop || bop:
		return wire.TrafficSelector{}, false
	default:
		lo, hi = max(alo, blo), min(ahi, bhi)
		if lo > hi {
			return wire.TrafficSelector{}, false
		}
	}
	start, end := a.Start, a.End
	if b.Start.Compare(start) > 0 {
		start = b.Start
	}
	if b.End.Compare(end) < 0 {
		end = b.End
	}
	if !start.IsValid() || !end.IsValid() || start.Compare(end) > 0 {
		return wire.TrafficSelector{}, false
	}
	return wire.TrafficSelector{Type: a.Type, IPProtocol: proto, StartPort: lo, EndPort: hi, Start: start, End: end}, true
}

// tsContained reports whether a lies within b.
func tsContained(a, b wire.TrafficSelector) bool {
	s, ok := tsSubset(a, b)
	return ok && s.IPProtocol == a.IPProtocol && s.StartPort == a.StartPort && s.EndPort == a.EndPort &&
		s.Start == a.Start && s.End == a.End
}

// TSString prints a selector as the status API shows it: a CIDR prefix when
// the range is one ("10.1.0.0/16"), else "start-end", with
// "[protocol/port]" appended when it is restricted ("10.1.0.0/16[tcp/443]").
func TSString(t wire.TrafficSelector) string {
	var b strings.Builder
	if !t.Start.IsValid() || !t.End.IsValid() {
		fmt.Fprintf(&b, "TS(%d)", t.Type)
		return b.String()
	}
	if p, ok := rangePrefix(t.Start, t.End); ok {
		b.WriteString(p.String())
	} else {
		b.WriteString(t.Start.String())
		b.WriteByte('-')
		b.WriteString(t.End.String())
	}
	anyPort := t.StartPort == 0 && t.EndPort == 0xffff
	if t.IPProtocol == 0 && anyPort {
		return b.String()
	}
	b.WriteByte('[')
	b.WriteString(protoName(t.IPProtocol))
	switch {
	case anyPort:
	case t.StartPort > t.EndPort:
		b.WriteString("/OPAQUE")
	case t.StartPort == t.EndPort:
		b.WriteString("/" + strconv.Itoa(int(t.StartPort)))
	default:
		fmt.Fprintf(&b, "/%d-%d", t.StartPort, t.EndPort)
	}
	b.WriteByte(']')
	return b.String()
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "ipv6-icmp"
	}
	return strconv.Itoa(int(p))
}

// rangePrefix returns the prefix covering exactly start..end, if any.
func rangePrefix(start, end netip.Addr) (netip.Prefix, bool) {
	if start.BitLen() != end.BitLen() {
		return netip.Prefix{}, false
	}
	for bits := 0; bits <= start.BitLen(); bits++ {
		p := netip.PrefixFrom(start, bits)
		if p.Masked().Addr() == start && lastAddr(p) == end {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func tsStrings(ts []wire.TrafficSelector) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = TSString(t)
	}
	return out
}

func tsListString(ts []wire.TrafficSelector) string {
	return strings.Join(tsStrings(ts), " ")
}
