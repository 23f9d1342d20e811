package testbed

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The kernel's ESP (charon with kernel-netlink) and Cygnet's test VM.
//
// The hosts' kernel has XFRM netlink but no ESP transform, so everything
// above uses kernel-libipsec. Cygnet's QEMU test VM (vm/README.md) boots a
// kernel that has ESP and, with CYGNET_VM_HOSTROOT=1, shares the host's
// root read-only: the host's charon, swanctl and plugins run inside it at
// their usual paths, and this package works there unchanged. charon then
// does ESP in the kernel when started with KernelPlugins:
//
//	testbed.RequireKernelESP(t) // skips on the host; fails in the VM if ESP is missing
//	c := testbed.StartCharon(t, ns, testbed.CharonConfig{Swanctl: conf, Plugins: testbed.KernelPlugins})
//	frames := capture.Frames()  // ESP, ESP-in-UDP, IKE, ICMP: no tshark needed
//
// tshark is best avoided in the VM: loading its libraries over 9p under
// software emulation takes half a minute; Capture.Frames reads the frames
// itself.

// KernelPlugins is DefaultPlugins without kernel-libipsec: charon then
// installs its SAs and policies in the kernel (kernel-netlink), which does
// ESP, with UDP encapsulation only where a NAT is detected or `encap = yes`.
var KernelPlugins = slices.DeleteFunc(slices.Clone(DefaultPlugins), func(p string) bool { return p == "kernel-libipsec" })

// InVM reports whether the test runs in Cygnet's test VM (vm/go-test-exec
// sets CYGNET_IN_VM=1).
func InVM() bool { return os.Getenv("CYGNET_IN_VM") == "1" }

var kernelESP struct {
	once sync.Once
	err  error
}

// RequireKernelESP skips the test unless the kernel does ESP, with a message
// naming the VM runner; with CYGNET_REQUIRE_ESP=1 (set in the VM) it fails it
// instead. CYGNET_STRICT=1 alone does not: CI's strict run is on the host,
// whose kernel has no ESP, and runs these tests in the VM. It also
// requires root and ip.
func RequireKernelESP(t testing.TB) {
	t.Helper()
	Require(t, "root", "ip")
	kernelESP.once.Do(func() { kernelESP.err = probeKernelESP() })
	if kernelESP.err == nil {
		return
	}
	msg := "testbed: this kernel has no ESP (" + kernelESP.err.Error() + "); the kernel data plane is tested in " +
		"Cygnet's VM: vm/run-xfrm-tests.sh"
	if os.Getenv("CYGNET_REQUIRE_ESP") == "1" {
		t.Fatal(msg + " (CYGNET_REQUIRE_ESP=1: failing instead of skipping)")
	}
	t.Skip(msg + " (skipping; CYGNET_REQUIRE_ESP=1 makes this a failure, CYGNET_STRICT=1 does not)")
}

// probeKernelESP adds an AES-GCM state in a throw-away namespace.
func probeKernelESP() error {
	name := fmt.Sprintf("%sespprobe-%d-%d", netnsPrefix, os.Getpid(), netnsCounter.Add(1))
	if _, err := run(context.Background(), "ip", "netns", "add", name); err != nil {
		return err
	}
	defer deleteNetns(name)
	_, err := run(context.Background(), "ip", "-n", name, "xfrm", "state", "add",
		"src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "spi", "0x1000",
		"aead", "rfc4106(gcm(aes))", "0x"+strings.Repeat("00", 20), "128")
	return err
}

// FrameKind classifies a captured frame.
type FrameKind string

const (
	FrameESP       FrameKind = "esp"        // IP protocol 50 (RFC 4303)
	FrameESPInUDP  FrameKind = "esp-in-udp" // UDP 4500, non-zero SPI (RFC 3948)
	FrameIKE       FrameKind = "ike"        // UDP 500, or 4500 behind the non-ESP marker
	FrameKeepalive FrameKind = "keepalive"  // UDP 4500, the one octet 0xff (RFC 3948 2.3)
	FrameICMPEcho  FrameKind = "icmp-echo"  // a plaintext ICMP or ICMPv6 echo request or reply
	FrameOther     FrameKind = ""           // ARP, neighbour discovery, anything else
)

// Frame is what the harness reads off a captured frame without tshark.
type Frame struct {
	Outgoing bool
	Kind     FrameKind
	Src, Dst netip.Addr
	// SPI of ESP and ESP-in-UDP frames.
	SPI uint32
}

// Frames classifies every frame captured so far.
func (c *Capture) Frames() []Frame {
	pkts := c.Packets()
	out := make([]Frame, len(pkts))
	for i, p := range pkts {
		out[i] = ParseFrame(p.Data, c.LinkType)
		out[i].Outgoing = p.Outgoing
	}
	return out
}

// CountFrames counts the frames of kind k that the namespace sent (outgoing)
// or received; only sent frames prove encryption, as a capture on an
// endpoint also sees the decrypted inner packets it receives.
func CountFrames(frames []Frame, k FrameKind, outgoing bool) int {
	n := 0
	for _, f := range frames {
		if f.Kind == k && f.Outgoing == outgoing {
			n++
		}
	}
	return n
}

// ParseFrame classifies one frame of a capture with link type linkType
// (Capture.LinkType).
func ParseFrame(data []byte, linkType uint16) Frame {
	var f Frame
	p := data
	if linkType == linkTypeEthernet {
		if len(p) < 14 {
			return f
		}
		switch binary.BigEndian.Uint16(p[12:]) {
		case 0x0800, 0x86dd:
		default:
			return f
		}
		p = p[14:]
	}
	if len(p) < 1 {
		return f
	}
	var proto byte
	switch p[0] >> 4 {
	case 4:
		hl := int(p[0]&0xf) * 4
		if len(p) < 20 || hl < 20 || len(p) < hl {
			return f
		}
		proto = p[9]
		f.Src = netip.AddrFrom4([4]byte(p[12:16]))
		f.Dst = netip.AddrFrom4([4]byte(p[16:20]))
		p = p[hl:]
	case 6:
		if len(p) < 40 {
			return f
		}
		proto = p[6] // extension headers are not followed
		f.Src = netip.AddrFrom16([16]byte(p[8:24]))
		f.Dst = netip.AddrFrom16([16]byte(p[24:40]))
		p = p[40:]
	default:
		return f
	}
	switch proto {
	case 50:
		f.Kind = FrameESP
		if len(p) >= 4 {
			f.SPI = binary.BigEndian.Uint32(p)
		}
	case 17:
		if len(p) < 8 {
			return f
		}
		sport, dport := binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
		body := p[8:]
		switch {
		case sport == 500 || dport == 500:
			f.Kind = FrameIKE
		case sport == 4500 || dport == 4500:
			switch {
			case len(body) == 1 && body[0] == 0xff:
				f.Kind = FrameKeepalive
			case len(body) >= 4 && binary.BigEndian.Uint32(body) == 0:
				f.Kind = FrameIKE
			case len(body) >= 8:
				f.Kind = FrameESPInUDP
				f.SPI = binary.BigEndian.Uint32(body)
			}
		}
	case 1:
		if len(p) > 0 && (p[0] == 8 || p[0] == 0) {
			f.Kind = FrameICMPEcho
		}
	case 58:
		if len(p) > 0 && (p[0] == 128 || p[0] == 129) {
			f.Kind = FrameICMPEcho
		}
	}
	return f
}
