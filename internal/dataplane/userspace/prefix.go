package userspace

import "net/netip"

// rangePrefixes covers start..end with the fewest prefixes.
func rangePrefixes(start, end netip.Addr) []netip.Prefix {
	if !start.IsValid() || start.Is4() != end.Is4() || end.Less(start) {
		return nil
	}
	var out []netip.Prefix
	for {
		// The largest prefix that starts at start and ends at or before end.
		bits := start.BitLen()
		for bits > 0 {
			p, err := start.Prefix(bits - 1)
			if err != nil || p.Addr() != start || end.Less(lastAddr(p)) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(start, bits)
		out = append(out, p)
		last := lastAddr(p)
		if last == end || len(out) > 256 {
			return out
		}
		start = last.Next()
		if !start.IsValid() {
			return out
		}
	}
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
