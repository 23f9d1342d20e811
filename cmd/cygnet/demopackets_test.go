package main

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestDemoPacketsRoundTrip(t *testing.T) {
	a, b := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")
	u, ok := parseInner(udp4(a, b, 40000, 7, []byte("hi")))
	if !ok || u.src != a || u.dst != b || u.proto != 17 || u.sport != 40000 || u.dport != 7 || string(u.payload) != "hi" {
		t.Errorf("UDP: %+v %v", u, ok)
	}
	e, ok := parseInner(icmpEcho(b, a, 0, 3, 4, []byte("x")))
	if !ok || e.proto != 1 || e.icmpType != 0 || e.id != 3 || e.seq != 4 || !bytes.Equal(e.payload, []byte("x")) {
		t.Errorf("ICMP: %+v %v", e, ok)
	}
	// Every prefix of a packet is refused or read without panicking.
	pkt := udp4(a, b, 1, 2, []byte("payload"))
	for i := range pkt {
		if _, ok := parseInner(pkt[:i]); ok {
			t.Errorf("a %d-byte prefix of a %d-byte packet parsed", i, len(pkt))
		}
	}
}

func FuzzParseInner(f *testing.F) {
	a, b := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")
	f.Add(udp4(a, b, 40000, 7, []byte("hello bob #1")))
	f.Add(icmpEcho(a, b, 8, 1, 1, []byte("cygnet demo ping")))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if p, ok := parseInner(pkt); ok {
			_ = p.String()
		}
	})
}
