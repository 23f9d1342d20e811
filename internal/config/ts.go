package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TrafficSelector is a configured traffic selector (RFC 7296 3.13.1) in
// strongSwan's syntax: a CIDR prefix or a single address, or "dynamic" for
// the IKE SA's own address, optionally followed by "[protocol/port]".
type TrafficSelector struct {
	Prefix  netip.Prefix // the addresses; invalid (zero) when Dynamic
	Dynamic bool         // the local or remote address of the IKE SA
	// Protocol is the IP protocol number; 0 means any protocol.
	Protocol uint8
	// StartPort and EndPort bound the ports (0 and 65535: any). For ICMP
	// they carry type and code as RFC 4301 4.4.1.1 describes.
	StartPort, EndPort uint16
}

// protocols are the protocol names accepted in "[proto/port]"; strongSwan
// asks getprotobyname(3), a fixed table keeps Cygnet's result independent of
// /etc/protocols.
var protocols = []struct {
	name  string
	proto uint8
}{
	{"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"gre", 47}, {"esp", 50},
	{"ipv6-icmp", 58}, {"icmpv6", 58}, {"sctp", 132},
}

// ParseTrafficSelector parses one traffic selector: "10.1.0.0/16",
// "192.0.2.7", "2001:db8::/32", "dynamic", "10.1.0.0/16[tcp/443]",
// "dynamic[udp/1000-2000]", "0.0.0.0/0[icmp]".
func ParseTrafficSelector(s string) (TrafficSelector, error) {
	ts := TrafficSelector{EndPort: 65535}
	addr, protoPort, hasSuffix := strings.Cut(s, "[")
	if hasSuffix {
		inner, ok := strings.CutSuffix(protoPort, "]")
		if !ok || strings.ContainsAny(inner, "[]") {
			return ts, fmt.Errorf("config: traffic selector %q: expected ADDRESS[PROTOCOL/PORT]", s)
		}
		if err := ts.parseProtoPort(inner); err != nil {
			return ts, fmt.Errorf("config: traffic selector %q: %w", s, err)
		}
	}
	switch {
	case addr == "dynamic":
		ts.Dynamic = true
	case strings.Contains(addr, "/"):
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return ts, fmt.Errorf("config: traffic selector %q: invalid CIDR prefix", s)
		}
		if p != p.Masked() {
			return ts, fmt.Errorf("config: traffic selector %q: host bits set (did you mean %s?)", s, p.Masked())
		}
		ts.Prefix = p
	case strings.Contains(addr, "-"):
		return ts, fmt.Errorf("config: traffic selector %q: address ranges are not supported; use CIDR prefixes", s)
	default:
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Zone() != "" {
			return ts, fmt.Errorf("config: traffic selector %q: expected a CIDR prefix, an address or dynamic", s)
		}
		ts.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	return ts, nil
}

func (ts *TrafficSelector) parseProtoPort(s string) error {
	proto, port, hasPort := strings.Cut(s, "/")
	switch proto {
	case "any", "%any":
		ts.Protocol = 0
	default:
		found := false
		for _, p := range protocols {
			if p.name == proto {
				ts.Protocol, found = p.proto, true
			}
		}
		if !found {
			n, err := strconv.ParseUint(proto, 10, 8)
			if err != nil {
				return fmt.Errorf("unknown protocol %q (a name like tcp, udp, icmp, or a number 0-255)", proto)
			}
			ts.Protocol = uint8(n)
		}
	}
	if !hasPort || port == "any" || port == "%any" {
		return nil
	}
	lo, hi, isRange := strings.Cut(port, "-")
	if !isRange {
		hi = lo
	}
	start, err1 := strconv.ParseUint(lo, 10, 16)
	end, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("invalid port %q (a number or a range like 1000-2000)", port)
	}
	if start > end {
		return fmt.Errorf("port range %q is empty", port)
	}
	// RFC 7296 3.13.1: for protocol 0 the ports are undefined and must be
	// 0-65535.
	if ts.Protocol == 0 && (start != 0 || end != 65535) {
		return errors.New("a port needs a protocol, e.g. [tcp/80]")
	}
	ts.StartPort, ts.EndPort = uint16(start), uint16(end)
	return nil
}

// String returns the selector in the syntax ParseTrafficSelector reads.
func (ts TrafficSelector) String() string {
	var b strings.Builder
	if ts.Dynamic {
		b.WriteString("dynamic")
	} else {
		b.WriteString(ts.Prefix.String())
	}
	allPorts := ts.StartPort == 0 && ts.EndPort == 65535
	if ts.Protocol == 0 && allPorts {
		return b.String()
	}
	b.WriteByte('[')
	b.WriteString(protocolName(ts.Protocol))
	if !allPorts {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(int(ts.StartPort)))
		if ts.EndPort != ts.StartPort {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(ts.EndPort)))
		}
	}
	b.WriteByte(']')
	return b.String()
}

func protocolName(p uint8) string {
	if p == 0 {
		return "any"
	}
	for _, e := range protocols {
		if e.proto == p {
			return e.name
		}
	}
	return strconv.Itoa(int(p))
}
