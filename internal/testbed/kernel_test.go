package testbed

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestCharonToCharonKernel runs strongSwan against strongSwan with the
// kernel's ESP (kernel-netlink, no kernel-libipsec): the harness's proof that
// charon works in Cygnet's test VM (vm/run-xfrm-tests.sh), the baseline for
// Cygnet's xfrm data plane against it. It skips on a kernel without ESP.
func TestCharonToCharonKernel(t *testing.T) {
	RequireKernelESP(t)
	for _, ipv6 := range []bool{false, true} {
		name := "ipv4"
		if ipv6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testCharonToCharonKernel(t, ipv6)
		})
	}
}

func testCharonToCharonKernel(t *testing.T, ipv6 bool) {
	const auth, pings = "psk", 3
	left, right := charonPairWith(t, auth, ipv6, KernelPlugins)
	capture := StartCapture(t, left.ns, left.dev)

	if err := left.charon.Initiate(t, auth, "net"); err != nil {
		t.Fatal(err)
	}
	lsa, _ := FindSA(left.charon.WaitSA(t, Established(auth, "net"), 5*time.Second), auth)
	rsa, _ := FindSA(right.charon.WaitSA(t, Established(auth, "net"), 5*time.Second), auth)
	lc, _ := lsa.Child("net")
	rc, _ := rsa.Child("net")
	for _, c := range []struct {
		what      string
		got, want any
	}{
		// No NAT and no kernel-libipsec: IKE stays on 500, ESP is not
		// encapsulated.
		{"left local port", lsa.LocalPort, uint16(500)},
		{"left NAT (any)", lsa.NATAny, false},
		{"child encap", lc.Encap, false},
		{"child mode", lc.Mode, "TUNNEL"},
		{"left SPI out = right SPI in", lc.SPIOut, rc.SPIIn},
		{"left SPI in = right SPI out", lc.SPIIn, rc.SPIOut},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	// The SAs are the kernel's.
	for _, s := range []*side{left, right} {
		if out := s.ns.Run(t, "ip", "xfrm", "state"); strings.Count(out, "proto esp") != 2 {
			t.Errorf("%s: ip xfrm state lists %d ESP states, want 2:\n%s", s.ns.Name, strings.Count(out, "proto esp"), out)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, p := range [][2]netip.Addr{{left.in4, right.in4}, {left.in6, right.in6}} {
		if sent, got := left.ns.Ping(t, p[0], p[1], pings, 50*time.Millisecond); got != pings {
			t.Errorf("ping %s -> %s through the tunnel: %d sent, %d received", p[0], p[1], sent, got)
		}
	}
	after, _ := FindSA(left.charon.ListSAs(t), auth)
	if c, _ := after.Child("net"); c.PacketsOut < 2*pings || c.PacketsIn < 2*pings {
		t.Errorf("CHILD_SA counters (the kernel's) after %d pings each way and family: in %d out %d packets", pings, c.PacketsIn, c.PacketsOut)
	}

	// On the wire: every tunnelled packet left as ESP (protocol 50) with the
	// negotiated SPI, none in the clear or in UDP.
	frames := capture.Frames()
	withSPI := 0
	for _, f := range frames {
		if f.Outgoing && f.Kind == FrameESP && f.SPI == lc.SPIOut {
			withSPI++
		}
	}
	if withSPI < 2*pings {
		t.Errorf("left sent %d ESP frames with SPI %08x, want at least %d", withSPI, lc.SPIOut, 2*pings)
	}
	for _, k := range []FrameKind{FrameICMPEcho, FrameESPInUDP} {
		if n := CountFrames(frames, k, true); n != 0 {
			t.Errorf("left sent %d %s frames, want none", n, k)
		}
	}

	if err := left.charon.Terminate(t, auth); err != nil {
		t.Fatal(err)
	}
	left.charon.WaitSA(t, Gone(auth), 5*time.Second)
	right.charon.WaitSA(t, Gone(auth), 5*time.Second)
	for _, s := range []*side{left, right} {
		if out := s.ns.Run(t, "ip", "xfrm", "state"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: ip xfrm state after the IKE SA is gone:\n%s", s.ns.Name, out)
		}
	}
}

func TestParseFrame(t *testing.T) {
	eth := func(ethType uint16, ip []byte) []byte {
		b := make([]byte, 14, 14+len(ip))
		binary.BigEndian.PutUint16(b[12:], ethType)
		return append(b, ip...)
	}
	ipv4 := func(proto byte, payload ...byte) []byte {
		h := make([]byte, 20)
		h[0], h[9] = 0x45, proto
		copy(h[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
		return append(h, payload...)
	}
	ipv6 := func(next byte, payload ...byte) []byte {
		h := make([]byte, 40)
		h[0], h[6] = 0x60, next
		h[8], h[23] = 0x20, 1
		h[24], h[39] = 0x20, 2
		return append(h, payload...)
	}
	udp := func(sport, dport uint16, body ...byte) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint16(b, sport)
		binary.BigEndian.PutUint16(b[2:], dport)
		return append(b, body...)
	}
	spi := []byte{0xc1, 0xa2, 0xb3, 0xc4, 0, 0, 0, 1}
	for _, tc := range []struct {
		name     string
		data     []byte
		linkType uint16
		kind     FrameKind
		spi      uint32
	}{
		{"esp4", eth(0x0800, ipv4(50, spi...)), linkTypeEthernet, FrameESP, 0xc1a2b3c4},
		{"esp6", eth(0x86dd, ipv6(50, spi...)), linkTypeEthernet, FrameESP, 0xc1a2b3c4},
		{"esp raw", ipv4(50, spi...), linkTypeRaw, FrameESP, 0xc1a2b3c4},
		{"esp-in-udp", eth(0x0800, ipv4(17, udp(4500, 4500, spi...)...)), linkTypeEthernet, FrameESPInUDP, 0xc1a2b3c4},
		{"ike 500", eth(0x0800, ipv4(17, udp(500, 500, make([]byte, 28)...)...)), linkTypeEthernet, FrameIKE, 0},
		{"ike 4500", eth(0x86dd, ipv6(17, udp(4500, 4500, make([]byte, 32)...)...)), linkTypeEthernet, FrameIKE, 0},
		{"keepalive", eth(0x0800, ipv4(17, udp(4500, 4500, 0xff)...)), linkTypeEthernet, FrameKeepalive, 0},
		{"icmp echo", eth(0x0800, ipv4(1, 8, 0, 0, 0)), linkTypeEthernet, FrameICMPEcho, 0},
		{"icmpv6 reply", eth(0x86dd, ipv6(58, 129, 0, 0, 0)), linkTypeEthernet, FrameICMPEcho, 0},
		{"icmpv6 ns", eth(0x86dd, ipv6(58, 135, 0, 0, 0)), linkTypeEthernet, FrameOther, 0},
		{"arp", eth(0x0806, make([]byte, 28)), linkTypeEthernet, FrameOther, 0},
		{"short ipv4", eth(0x0800, []byte{0x45, 0}), linkTypeEthernet, FrameOther, 0},
		{"bad ihl", eth(0x0800, append([]byte{0x4f}, make([]byte, 30)...)), linkTypeEthernet, FrameOther, 0},
		{"empty", nil, linkTypeEthernet, FrameOther, 0},
	} {
		f := ParseFrame(tc.data, tc.linkType)
		if f.Kind != tc.kind || f.SPI != tc.spi {
			t.Errorf("%s: kind %q spi %08x, want %q %08x", tc.name, f.Kind, f.SPI, tc.kind, tc.spi)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 50, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, 1, 2, 3, 4, 0, 0, 0, 1}, uint16(linkTypeEthernet))
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, 17, 64}, uint16(linkTypeRaw))
	f.Fuzz(func(t *testing.T, data []byte, linkType uint16) {
		ParseFrame(data, linkType)
	})
}
