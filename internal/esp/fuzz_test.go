package esp

import (
	"bytes"
	"testing"
)

// fuzzConfig returns the SA that FuzzOpen's selector byte picks: every
// suite, with and without ESN, tunnel mode.
func fuzzConfig(sel uint8) Config {
	suites := allSuites()
	i := int(sel) % (2 * len(suites))
	return suites[i/2].config(0x0badcafe, i%2 == 1, Tunnel, 42)
}

// FuzzOpen feeds arbitrary packets to a fresh Inbound of each algorithm.
// Nothing may panic; every failure is one of the package's errors and
// counted once; an accepted packet is never accepted twice.
func FuzzOpen(f *testing.F) {
	n := 2 * len(allSuites())
	for sel := range n {
		c := fuzzConfig(uint8(sel))
		o, err := NewOutbound(c)
		if err != nil {
			f.Fatal(err)
		}
		for _, size := range []int{0, 37, 1372} {
			p, err := o.Seal(nil, ipv4Packet(size, nil), ProtoIPv4)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(sel), p)
			f.Add(uint8(sel), p[:len(p)-1])
		}
		dummy, _ := o.Seal(nil, nil, ProtoNone)
		f.Add(uint8(sel), dummy)
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0x0b, 0xad, 0xca, 0xfe, 0, 0, 0, 1})

	known := map[error]bool{ErrTruncated: true, ErrSPI: true, ErrReplay: true, ErrAuth: true, ErrPadding: true, ErrNextHeader: true, ErrDummy: true}
	f.Fuzz(func(t *testing.T, sel uint8, packet []byte) {
		in, err := NewInbound(fuzzConfig(sel))
		if err != nil {
			t.Fatal(err)
		}
		orig := bytes.Clone(packet)
		dst := make([]byte, 2, 2+len(packet))
		out, nh, err := in.Open(dst, packet)
		if !bytes.Equal(packet, orig) {
			t.Fatal("Open modified its input")
		}
		c := in.Counters()
		total := c.Packets + c.Replay + c.Auth + c.Truncated + c.Padding + c.SPI + c.NextHeader + c.Dummy
		if total != 1 {
			t.Fatalf("%d counters moved: %+v", total, c)
		}
		if err != nil {
			if !known[err] {
				t.Fatalf("unexpected error %v", err)
			}
			if len(out) != 2 {
				t.Fatalf("error %v but %d bytes returned", err, len(out))
			}
			if err != ErrDummy {
				return
			}
		} else if len(out)-2 > len(packet) || !allowedInMode(Tunnel, nh) {
			t.Fatalf("accepted: %d payload bytes from %d, next header %d", len(out)-2, len(packet), nh)
		}
		// Accepted once (or a dummy): never again.
		if _, _, err := in.Open(nil, packet); err != ErrReplay {
			t.Fatalf("second Open of an accepted packet: %v", err)
		}
	})
}

// FuzzSplitTransport: the transport-mode helpers never panic, and what
// SplitTransport returns joins back into a packet that splits the same way.
func FuzzSplitTransport(f *testing.F) {
	f.Add(ipv4Packet(10, nil))
	f.Add(ipv6Packet(10, false, nil))
	f.Add(ipv6Packet(10, true, nil))
	f.Add([]byte{0x45, 0, 0, 20})
	f.Add([]byte{0x60})
	f.Fuzz(func(t *testing.T, packet []byte) {
		FixTransportHeader(bytes.Clone(packet), 50, len(packet))
		TunnelNextHeader(packet)
		hdr, payload, proto, err := SplitTransport(packet)
		if err != nil {
			return
		}
		if len(hdr)+len(payload) > len(packet) {
			t.Fatalf("split %d+%d bytes from %d", len(hdr), len(payload), len(packet))
		}
		joined, err := JoinTransport(nil, hdr, proto, payload)
		if err != nil {
			t.Fatalf("JoinTransport of a split packet: %v", err)
		}
		hdr2, payload2, proto2, err := SplitTransport(joined)
		if err != nil || len(hdr2) != len(hdr) || !bytes.Equal(payload2, payload) || proto2 != proto {
			t.Fatalf("re-split: %d/%d, %x/%x, %d/%d, %v", len(hdr2), len(hdr), payload2, payload, proto2, proto, err)
		}
	})
}
