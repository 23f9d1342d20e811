package userspace

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

// flow is what a policy looks at in a packet: addresses, protocol and ports
// (RFC 4301 4.4.1.1). For ICMP and ICMPv6 the "port" is type<<8|code, in
// both fields (RFC 7296 3.13.1). ports is false when the packet carries no
// ports a selector could check (a non-first fragment, an unknown protocol,
// a truncated header): it then matches only selectors that allow any port.
type flow struct {
	src, dst     netip.Addr
	proto        uint8
	ports        bool
	sport, dport uint16
}

// parseFlow reads the flow of an IPv4 or IPv6 packet. ok is false for
// something that is not an IP packet at all.
func parseFlow(pkt []byte) (f flow, ok bool) {
	if len(pkt) < 1 {
		return f, false
	}
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return f, false
		}
		ihl := int(pkt[0]&0xf) * 4
		if ihl < 20 || len(pkt) < ihl {
			return f, false
		}
		f.src = netip.AddrFrom4([4]byte(pkt[12:16]))
		f.dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		f.proto = pkt[9]
		// Fragment offset non-zero: no transport header here.
		if binary.BigEndian.Uint16(pkt[6:])&0x1fff == 0 {
			l4 = pkt[ihl:]
		}
	case 6:
		if len(pkt) < 40 {
			return f, false
		}
		f.src = netip.AddrFrom16([16]byte(pkt[8:24]))
		f.dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		nh := pkt[6]
		rest := pkt[40:]
		// Skip the extension headers a selector looks past (RFC 4301
		// 4.4.1.1: the "next layer protocol" is after them).
	ext:
		for range 8 {
			switch nh {
			case 0, 43, 60: // Hop-by-Hop, Routing, Destination Options
				if len(rest) < 8 {
					return f, true
				}
				n := (int(rest[1]) + 1) * 8
				if len(rest) < n {
					return f, true
				}
				nh, rest = rest[0], rest[n:]
			case 44: // Fragment
				if len(rest) < 8 {
					return f, true
				}
				if binary.BigEndian.Uint16(rest[2:])&0xfff8 != 0 {
					f.proto = rest[0]
					return f, true // non-first fragment
				}
				nh, rest = rest[0], rest[8:]
			default:
				break ext
			}
		}
		f.proto = nh
		l4 = rest
	default:
		return f, false
	}
	switch f.proto {
	case 6, 17, 132, 136: // TCP, UDP, SCTP, UDP-Lite
		if len(l4) >= 4 {
			f.ports = true
			f.sport = binary.BigEndian.Uint16(l4[0:])
			f.dport = binary.BigEndian.Uint16(l4[2:])
		}
	case 1, 58: // ICMP, ICMPv6
		if len(l4) >= 2 {
			f.ports = true
			f.sport = uint16(l4[0])<<8 | uint16(l4[1])
			f.dport = f.sport
		}
	}
	return f, true
}

// matchSelector reports whether addr (with the flow's protocol and port) is
// within s.
func matchSelector(s *dataplane.Selector, addr netip.Addr, f *flow, port uint16) bool {
	if s.Start.Is4() != addr.Is4() || addr.Less(s.Start) || s.End.Less(addr) {
		return false
	}
	if s.Protocol != 0 && s.Protocol != f.proto {
		return false
	}
	if s.StartPort == 0 && s.EndPort == 0xffff {
		return true
	}
	if !f.ports {
		return false
	}
	return port >= s.StartPort && port <= s.EndPort
}

// policy is one SPD entry: a pair of selectors (one local, one remote) and
// what matching outbound packets get: an SA pair, or, for a trap, an
// Acquire.
type policy struct {
	local, remote dataplane.Selector
	pair          *saPair
	trap          *trap
	seq           uint64 // install order, for ties
}

// matchOut reports whether the outbound flow f (local source, remote
// destination) matches p.
func (p *policy) matchOut(f *flow) bool {
	return matchSelector(&p.remote, f.dst, f, f.dport) && matchSelector(&p.local, f.src, f, f.sport)
}

// spd is an immutable snapshot of the outbound policies in lookup order.
// Install, Remove, Trap and Untrap build a new one and publish it with one
// atomic store, so the packet path reads it without a lock and a rekey's
// outbound switch is atomic.
type spd struct {
	policies []policy
}

// lookup returns the first policy that matches f, or nil.
func (s *spd) lookup(f *flow) *policy {
	for i := range s.policies {
		if s.policies[i].matchOut(f) {
			return &s.policies[i]
		}
	}
	return nil
}

// rangeSize is the number of addresses in start..end minus one, as a 128-bit
// value (hi, lo), to order selectors by specificity.
func rangeSize(s *dataplane.Selector) (hi, lo uint64) {
	a, b := s.Start.As16(), s.End.As16()
	ah, al := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	bh, bl := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	lo = bl - al
	hi = bh - ah
	if bl < al {
		hi--
	}
	return hi, lo
}

// comparePolicies defines the SPD order (documented on Backend): SA
// policies before trap policies; then the more specific first: a smaller
// remote address range, then a smaller local range, then a named protocol
// before any, then a smaller remote port range, then a smaller local port
// range; and at last install order.
func comparePolicies(a, b *policy) int {
	if (a.trap == nil) != (b.trap == nil) {
		if a.trap == nil {
			return -1
		}
		return 1
	}
	ah, al := rangeSize(&a.remote)
	bh, bl := rangeSize(&b.remote)
	if c := cmp.Or(cmp.Compare(ah, bh), cmp.Compare(al, bl)); c != 0 {
		return c
	}
	ah, al = rangeSize(&a.local)
	bh, bl = rangeSize(&b.local)
	if c := cmp.Or(cmp.Compare(ah, bh), cmp.Compare(al, bl)); c != 0 {
		return c
	}
	anyProto := func(p *policy) int {
		if p.remote.Protocol == 0 && p.local.Protocol == 0 {
			return 1
		}
		return 0
	}
	portSpan := func(s *dataplane.Selector) int { return int(s.EndPort) - int(s.StartPort) }
	return cmp.Or(
		cmp.Compare(anyProto(a), anyProto(b)),
		cmp.Compare(portSpan(&a.remote), portSpan(&b.remote)),
		cmp.Compare(portSpan(&a.local), portSpan(&b.local)),
		cmp.Compare(a.seq, b.seq),
	)
}

// buildSPD makes the snapshot for the SA pairs that carry outbound traffic
// and the traps.
func buildSPD(pairs []*saPair, traps []*trap) *spd {
	var ps []policy
	for _, p := range pairs {
		ps = appendPolicies(ps, p.localTS, p.remoteTS, policy{pair: p, seq: p.seq})
	}
	for _, t := range traps {
		ps = appendPolicies(ps, t.local, t.remote, policy{trap: t, seq: t.seq})
	}
	slices.SortStableFunc(ps, func(a, b policy) int { return comparePolicies(&a, &b) })
	return &spd{policies: ps}
}

// appendPolicies appends a copy of pol for each local × remote selector
// pair of one address family (an IPv4 source never goes with an IPv6
// destination).
func appendPolicies(ps []policy, local, remote []dataplane.Selector, pol policy) []policy {
	for _, l := range local {
		for _, r := range remote {
			if l.Start.Is4() != r.Start.Is4() {
				continue
			}
			pol.local, pol.remote = l, r
			ps = append(ps, pol)
		}
	}
	return ps
}

// inboundAllowed is the inbound policy check (RFC 4301 5.2, step 4): the
// decrypted packet's source must lie in the SA's remote selectors and its
// destination in the local ones.
func (p *saPair) inboundAllowed(pkt []byte) bool {
	f, ok := parseFlow(pkt)
	if !ok {
		return false
	}
	for i := range p.remoteTS {
		if !matchSelector(&p.remoteTS[i], f.src, &f, f.sport) {
			continue
		}
		for j := range p.localTS {
			if matchSelector(&p.localTS[j], f.dst, &f, f.dport) {
				return true
			}
		}
	}
	return false
}
