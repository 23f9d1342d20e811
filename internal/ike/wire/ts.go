package wire

import (
	"net/netip"

	"golang.org/x/crypto/cryptobyte"
)

// TS is a Traffic Selector payload, TSi or TSr (RFC 7296 3.13).
type TS struct {
	Kind      PayloadType // PayloadTSi or PayloadTSr
	Selectors []TrafficSelector
}

// TrafficSelector is one Traffic Selector (RFC 7296 3.13.1).
//
// TS types other than TS_IPV4_ADDR_RANGE and TS_IPV6_ADDR_RANGE are kept, not
// rejected: their Selector Length frames them, so the message is well formed,
// and a selector the responder cannot use is a negotiation failure
// (TS_UNACCEPTABLE, RFC 7296 2.9), not a syntax error; RFC 9478 (TS_SECLABEL)
// relies on peers treating them so. For them, IPProtocol holds the selector's
// second octet, Data the octets after the Selector Length, and the other
// fields are zero.
type TrafficSelector struct {
	Type       TSType
	IPProtocol uint8 // 0: any
	// StartPort and EndPort are a range; 0-65535 is any port, and the range
	// 65535-0 is OPAQUE (RFC 7296 3.13.1). For ICMP they hold type and code.
	StartPort, EndPort uint16
	Start, End         netip.Addr // IPv4 for TS_IPV4_ADDR_RANGE, IPv6 for TS_IPV6_ADDR_RANGE
	Data               []byte     // the body of a selector of another type
}

func (p *TS) Type() PayloadType { return p.Kind }

// tsBodyLen is the length of an address range selector after the 4-octet
// selector header: ports and two addresses (RFC 7296 3.13.1: Selector Length
// 16 for IPv4, 40 for IPv6).
func tsBodyLen(t TSType) int {
	switch t {
	case TSIPv4AddrRange:
		return 4 + 2*4
	case TSIPv6AddrRange:
		return 4 + 2*16
	}
	return -1
}

func parseTS(kind PayloadType, s cryptobyte.String) (*TS, error) {
	var n uint8
	if !s.ReadUint8(&n) || !s.Skip(3) {
		return nil, syntaxError("body truncated: want at least 4 octets")
	}
	p := &TS{Kind: kind}
	for i := 1; len(s) > 0; i++ {
		typ, proto, body, err := readStruct(&s, structName{what: "selector", index: i})
		if err != nil {
			return nil, err
		}
		ts := TrafficSelector{Type: TSType(typ), IPProtocol: proto}
		want := tsBodyLen(ts.Type)
		if want < 0 {
			ts.Data = clip(body)
			p.Selectors = append(p.Selectors, ts)
			continue
		}
		if len(body) != want {
			return nil, syntaxError("selector %d: Selector Length %d for %v, want %d", i, structHeaderLen+len(body), ts.Type, structHeaderLen+want)
		}
		addrLen := (want - 4) / 2
		var start, end []byte
		body.ReadUint16(&ts.StartPort)
		body.ReadUint16(&ts.EndPort)
		body.ReadBytes(&start, addrLen)
		body.ReadBytes(&end, addrLen)
		ts.Start, _ = netip.AddrFromSlice(start)
		ts.End, _ = netip.AddrFromSlice(end)
		p.Selectors = append(p.Selectors, ts)
	}
	// RFC 7296 3.13: "Number of TSs ... Traffic Selectors (variable length) -
	// One or more individual Traffic Selectors."
	if len(p.Selectors) != int(n) {
		return nil, syntaxError("Number of TSs %d, but %d selectors follow", n, len(p.Selectors))
	}
	if n == 0 {
		return nil, syntaxError("no traffic selectors")
	}
	return p, nil
}

func (p *TS) marshal(b *cryptobyte.Builder) {
	switch {
	case p.Kind != PayloadTSi && p.Kind != PayloadTSr:
		b.SetError(marshalError("TS payload of kind %v", p.Kind))
		return
	case len(p.Selectors) == 0 || len(p.Selectors) > 0xff:
		b.SetError(marshalError("%v payload with %d selectors", p.Kind, len(p.Selectors)))
		return
	}
	b.AddUint8(uint8(len(p.Selectors)))
	b.AddBytes([]byte{0, 0, 0})
	for i := range p.Selectors {
		ts := &p.Selectors[i]
		b.AddUint8(uint8(ts.Type))
		b.AddUint8(ts.IPProtocol)
		addStruct(b, "traffic selector", ts.marshal)
	}
}

func (ts *TrafficSelector) marshal(b *cryptobyte.Builder) {
	var ok bool
	switch ts.Type {
	case TSIPv4AddrRange:
		ok = ts.Start.Is4() && ts.End.Is4()
	case TSIPv6AddrRange:
		ok = ts.Start.Is6() && ts.End.Is6() && ts.Start.Zone() == "" && ts.End.Zone() == ""
	default:
		if ts.StartPort != 0 || ts.EndPort != 0 || ts.Start.IsValid() || ts.End.IsValid() {
			b.SetError(marshalError("traffic selector of type %v with ports or addresses", ts.Type))
			return
		}
		b.AddBytes(ts.Data)
		return
	}
	if !ok || ts.Data != nil {
		b.SetError(marshalError("%v traffic selector %v-%v (data %d octets)", ts.Type, ts.Start, ts.End, len(ts.Data)))
		return
	}
	b.AddUint16(ts.StartPort)
	b.AddUint16(ts.EndPort)
	b.AddBytes(ts.Start.AsSlice())
	b.AddBytes(ts.End.AsSlice())
}
