package config

import (
	"net/netip"
	"testing"
)

func TestParseTrafficSelector(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		in, out string // out: String(); "" means in
		want    TrafficSelector
	}{
		{"10.1.0.0/16", "", TrafficSelector{Prefix: p("10.1.0.0/16"), EndPort: 65535}},
		{"192.0.2.7", "192.0.2.7/32", TrafficSelector{Prefix: p("192.0.2.7/32"), EndPort: 65535}},
		{"2001:db8::/32", "", TrafficSelector{Prefix: p("2001:db8::/32"), EndPort: 65535}},
		{"2001:db8::1", "2001:db8::1/128", TrafficSelector{Prefix: p("2001:db8::1/128"), EndPort: 65535}},
		{"0.0.0.0/0", "", TrafficSelector{Prefix: p("0.0.0.0/0"), EndPort: 65535}},
		{"dynamic", "", TrafficSelector{Dynamic: true, EndPort: 65535}},
		{"10.1.0.0/16[tcp/80]", "", TrafficSelector{Prefix: p("10.1.0.0/16"), Protocol: 6, StartPort: 80, EndPort: 80}},
		{"dynamic[udp/1000-2000]", "", TrafficSelector{Dynamic: true, Protocol: 17, StartPort: 1000, EndPort: 2000}},
		{"10.0.0.0/8[icmp]", "", TrafficSelector{Prefix: p("10.0.0.0/8"), Protocol: 1, EndPort: 65535}},
		{"10.0.0.0/8[tcp/any]", "10.0.0.0/8[tcp]", TrafficSelector{Prefix: p("10.0.0.0/8"), Protocol: 6, EndPort: 65535}},
		{"10.0.0.0/8[tcp/%any]", "10.0.0.0/8[tcp]", TrafficSelector{Prefix: p("10.0.0.0/8"), Protocol: 6, EndPort: 65535}},
		{"10.0.0.0/8[any]", "10.0.0.0/8", TrafficSelector{Prefix: p("10.0.0.0/8"), EndPort: 65535}},
		{"10.0.0.0/8[%any/any]", "10.0.0.0/8", TrafficSelector{Prefix: p("10.0.0.0/8"), EndPort: 65535}},
		{"10.0.0.0/8[0/0-65535]", "10.0.0.0/8", TrafficSelector{Prefix: p("10.0.0.0/8"), EndPort: 65535}},
		{"10.0.0.0/8[132/9]", "10.0.0.0/8[sctp/9]", TrafficSelector{Prefix: p("10.0.0.0/8"), Protocol: 132, StartPort: 9, EndPort: 9}},
		{"10.0.0.0/8[99]", "", TrafficSelector{Prefix: p("10.0.0.0/8"), Protocol: 99, EndPort: 65535}},
		{"::/0[icmpv6]", "::/0[ipv6-icmp]", TrafficSelector{Prefix: p("::/0"), Protocol: 58, EndPort: 65535}},
		{"dynamic[tcp/0-65535]", "dynamic[tcp]", TrafficSelector{Dynamic: true, Protocol: 6, EndPort: 65535}},
	} {
		got, err := ParseTrafficSelector(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseTrafficSelector(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		out := tc.out
		if out == "" {
			out = tc.in
		}
		if got.String() != out {
			t.Errorf("%q: String() = %q, want %q", tc.in, got.String(), out)
		}
		// String's output parses back to the same selector.
		if again, err := ParseTrafficSelector(got.String()); err != nil || again != got {
			t.Errorf("%q: round trip gives %+v, %v", tc.in, again, err)
		}
	}
}

func TestParseTrafficSelectorErrors(t *testing.T) {
	for _, in := range []string{
		"", "10.1.0.1/16", "10.1.0.0/33", "10.1.0.0/", "300.0.0.0/8", "host.example",
		"fe80::1%eth0", "10.0.0.1-10.0.0.5", "%any", "dynamic/24",
		"10.0.0.0/8[", "10.0.0.0/8[tcp", "10.0.0.0/8[tcp]x", "10.0.0.0/8[]", "10.0.0.0/8[tcp/]",
		"10.0.0.0/8[tcp/http]", "10.0.0.0/8[tcp/70000]", "10.0.0.0/8[tcp/9-8]", "10.0.0.0/8[tcp/1-2-3]",
		"10.0.0.0/8[256]", "10.0.0.0/8[any/53]", "10.0.0.0/8[tcp/opaque]", "10.0.0.0/8[[tcp]]", "[tcp]",
	} {
		if ts, err := ParseTrafficSelector(in); err == nil {
			t.Errorf("ParseTrafficSelector(%q) = %+v, want an error", in, ts)
		}
	}
}

func FuzzParseTrafficSelector(f *testing.F) {
	for _, s := range []string{"10.1.0.0/16", "dynamic[udp/1000-2000]", "2001:db8::1", "10.0.0.0/8[icmp]", "x[y/z]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTrafficSelector(s)
		if err != nil {
			return
		}
		again, err := ParseTrafficSelector(ts.String())
		if err != nil || again != ts {
			t.Fatalf("%q -> %q -> %+v, %v", s, ts.String(), again, err)
		}
	})
}
