package sa

import (
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// rangeTS returns a wire selector for the addresses start..end.
func rangeTS(start, end netip.Addr, proto uint8, sport, eport uint16) wire.TrafficSelector {
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
