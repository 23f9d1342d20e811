package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// Tests of `cygnet daemon` with `dataplane: xfrm`, the Linux kernel's ESP.
// The hosts' kernel has none: they run in Cygnet's QEMU VM
// (vm/run-xfrm-tests.sh runs the TestXFRM tests of this package there, with
// the host's root shared in for strongSwan) and skip elsewhere
// (testbed.RequireKernelESP). The daemons are this test binary acting as
// cygnet (CYGNET_TEST_AS_BINARY), since the VM has no Go toolchain.

// kside is one namespace of a kernel test: a veth end with an IPv4 and an
// IPv6 address, inner addresses on lo, and what runs there.
type kside struct {
	ns           *testbed.Netns
	dev          string
	wire4, wire6 netip.Addr
	d            *daemonProc
	proc         *testbed.Process
}

func (s *kside) wire(v6 bool) netip.Addr {
	if v6 {
		return s.wire6
	}
	return s.wire4
}

// kernelSides builds the two namespaces: left 192.0.2.1 and 2001:db8::1,
// right .2 and ::2, and on lo the inner addresses 10.N.X.1/32 and
// fdN:X::1/128 (N = 1 left, 2 right) for every X in inner.
func kernelSides(t *testing.T, inner ...int) (l, r *kside) {
	t.Helper()
	testbed.RequireKernelESP(t)
	testbed.Require(t, "root", "ip", "ping")
	l = &kside{ns: testbed.NewNetns(t, "xl"), wire4: netip.MustParseAddr("192.0.2.1"), wire6: netip.MustParseAddr("2001:db8::1")}
	r = &kside{ns: testbed.NewNetns(t, "xr"), wire4: netip.MustParseAddr("192.0.2.2"), wire6: netip.MustParseAddr("2001:db8::2")}
	l.dev, r.dev = testbed.Link(t, l.ns, r.ns,
		[]netip.Prefix{netip.PrefixFrom(l.wire4, 24), netip.PrefixFrom(l.wire6, 64)},
		[]netip.Prefix{netip.PrefixFrom(r.wire4, 24), netip.PrefixFrom(r.wire6, 64)})
	for n, s := range []*kside{l, r} {
		for _, x := range inner {
			s.ns.AddAddr(t, "lo", netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.1/32", n+1, x)))
			s.ns.AddAddr(t, "lo", netip.MustParsePrefix(fmt.Sprintf("fd0%d:%x::1/128", n+1, x)))
		}
	}
	return l, r
}

// in4 and in6 are the inner addresses of side n (1 left, 2 right) in block x.
func in4(n, x int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", n, x)) }
func in6(n, x int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("fd0%d:%x::1", n, x)) }

// kernelConf is a daemon configuration for side name (left or right) with
// the given data plane and connections (YAML, indented by 2).
func kernelConf(name, dataplane, socket, conns string) string {
	peer := map[string]string{"left": "right", "right": "left"}[name]
	return fmt.Sprintf(`daemon:
  socket: %s
  dataplane: %s
  tun: cyg%s
  log: {level: debug}
secrets:
  - ids: [%[4]s.test, %[5]s.test]
    psk: "cygnet kernel data plane test, a long enough secret"
  - ids: [%[4]s6.test, %[5]s6.test]
    psk: "cygnet kernel data plane test, a long enough secret"
connections:
%[6]s`, socket, dataplane, name[:1], name, peer, conns)
}

// kconn is one connection of kernelConf between the sides' wire addresses
// of one family, with children (YAML, indented by 6) and extra keys
// (indented by 4). The identities are NAME.test over IPv4 and NAME6.test
// over IPv6: with the same ones, each IKE SA's INITIAL_CONTACT would make
// the peer delete the other (RFC 7296 2.4).
func kconn(conn, name string, v6 bool, extra, children string) string {
	l, r := "192.0.2.1", "192.0.2.2"
	suffix := ""
	if v6 {
		l, r = `"2001:db8::1"`, `"2001:db8::2"`
		suffix = "6"
	}
	local, remote, peer := l, r, "right"
	if name == "right" {
		local, remote, peer = r, l, "left"
	}
	return fmt.Sprintf(`  %s:
    local_addrs: [%s]
    remote_addrs: [%s]
    proposals: [aes256gcm16-prfsha256-x25519]
    local: {auth: psk, id: %s%s.test}
    remote: {auth: psk, id: %s%s.test}
%s    children:
%s`, conn, local, remote, name, suffix, peer, suffix, extra, children)
}

// startKernelCygnet starts `cygnet daemon` (this binary) in s with conf.
func startKernelCygnet(t *testing.T, s *kside, name, conf string) {
	t.Helper()
	socket := filepath.Join(s.ns.Dir(), "cygnet.sock")
	path := filepath.Join(s.ns.Dir(), "cygnet.yaml")
	writeFile(t, path, strings.ReplaceAll(conf, "SOCKET", socket))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s.proc = s.ns.Start(t, "cygnet-"+name, testbed.StartOptions{Env: []string{asBinaryEnv + "=1"}}, exe, "daemon", "-c", path)
	s.d = &daemonProc{t: t, name: name, socket: socket}
	waitSocket(t, s.d, s.proc)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, tailLines(s.proc.Output(), 80))
		}
	})
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stopCygnet stops s's daemon with SIGTERM and requires exit status 0 and
// an empty SAD and SPD afterwards: `cygnet daemon` removes what it installed.
func stopCygnet(t *testing.T, s *kside) {
	t.Helper()
	s.proc.Signal(syscall.SIGTERM)
	if err := s.proc.Wait(10 * time.Second); err != nil {
		t.Errorf("%s: cygnet daemon after SIGTERM: %v\n%s", s.ns.Name, err, tailLines(s.proc.Output(), 40))
	}
	requireNoXFRM(t, s.ns)
}

// requireNoXFRM fails unless `ip xfrm state` and `ip xfrm policy` list
// nothing in ns.
func requireNoXFRM(t *testing.T, ns *testbed.Netns) {
	t.Helper()
	for _, what := range []string{"state", "policy"} {
		if out := ns.Run(t, "ip", "xfrm", what); strings.TrimSpace(out) != "" {
			t.Errorf("%s: ip xfrm %s is not empty:\n%s", ns.Name, what, out)
		}
	}
}

// up runs `cygnet up conn child` on s and fails the test on an error.
func (s *kside) up(t *testing.T, conn, child string) {
	t.Helper()
	if code, out, errOut := s.d.cli("up", conn, child); code != 0 {
		t.Fatalf("%s: cygnet up %s %s: exit %d\n%s%s", s.ns.Name, conn, child, code, out, errOut)
	}
}

// kping pings dst from src in ns (iputils, interval apart) and returns
// how many requests went out and how many replies came back. Unlike
// testbed's Ping it waits long (a software-emulated VM on a loaded host is
// slow): up to count*interval + 15 s.
func kping(t *testing.T, ns *testbed.Netns, src, dst netip.Addr, count int, interval time.Duration) (sent, received int) {
	t.Helper()
	deadline := time.Duration(count)*interval + 15*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline+10*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, "ping", "-n", "-c", strconv.Itoa(count), "-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64),
		"-W", "5", "-w", strconv.Itoa(int(deadline.Seconds())), "-I", src.String(), dst.String()).CombinedOutput()
	m := pingStatsRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("ping %s -> %s in %s: %v\n%s", src, dst, ns.Name, err, out)
	}
	sent, _ = strconv.Atoi(string(m[1]))
	received, _ = strconv.Atoi(string(m[2]))
	return sent, received
}

var pingStatsRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// pingOK pings dst from src in s and requires every reply.
func (s *kside) pingOK(t *testing.T, src, dst netip.Addr, count int) {
	t.Helper()
	sent, got := kping(t, s.ns, src, dst, count, 20*time.Millisecond)
	if got != count {
		t.Errorf("ping %s -> %s in %s: %d sent, %d replies, want %d\n%s", src, dst, s.ns.Name, sent, got, count, xfrmDump(t, s.ns))
	}
}

// xfrmDump describes ns's SAD, SPD, routes and XFRM errors, for failures.
func xfrmDump(t *testing.T, ns *testbed.Netns) string {
	var b strings.Builder
	for _, args := range [][]string{{"-s", "xfrm", "state"}, {"xfrm", "policy"}, {"route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"}, {"rule"}} {
		out, _ := ns.Exec("ip", args...)
		fmt.Fprintf(&b, "ip %s:\n%s\n", strings.Join(args, " "), out)
	}
	stat, _ := ns.Exec("cat", "/proc/net/xfrm_stat")
	for _, line := range strings.Split(stat, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] != "0" {
			fmt.Fprintf(&b, "%s ", line)
		}
	}
	return b.String()
}

// childOf finds a CHILD_SA in s's status.
func (s *kside) childOf(t *testing.T, conn, name string) control.ChildSA {
	t.Helper()
	c, ok := child(s.d.status(), conn, name)
	if !ok {
		t.Fatalf("%s: no CHILD_SA %s/%s in status", s.ns.Name, conn, name)
	}
	return c
}

// sentESP counts the frames the capture saw its side send with SPI spi
// (hex, as status prints it), ESP or ESP-in-UDP.
func sentESP(t *testing.T, frames []testbed.Frame, spi string) (esp, espInUDP int) {
	t.Helper()
	v, err := strconv.ParseUint(spi, 16, 32)
	if err != nil {
		t.Fatalf("SPI %q: %v", spi, err)
	}
	for _, f := range frames {
		if !f.Outgoing || f.SPI != uint32(v) {
			continue
		}
		switch f.Kind {
		case testbed.FrameESP:
			esp++
		case testbed.FrameESPInUDP:
			espInUDP++
		}
	}
	return esp, espInUDP
}

// xfrmStateCount counts the ESP states in ns.
func xfrmStateCount(t *testing.T, ns *testbed.Netns) int {
	return strings.Count(ns.Run(t, "ip", "xfrm", "state"), "proto esp")
}

// TestXFRMCygnetToCygnet runs two `cygnet daemon`s with the kernel data
// plane: AES-GCM, ChaCha20-Poly1305 and AES-CBC+SHA256 tunnels with IPv4 and
// IPv6 inside IPv4, transport mode between the hosts (which only works
// because the IKE sockets bypass IPsec), UDP encapsulation, an XFRM
// interface (if_id) over IPv6, and start_action trap. Ping both ways, ESP on
// the wire, the kernel's counters in `cygnet status`; then a crash (SIGKILL)
// and a restart that removes the dead daemon's states and policies; and
// after SIGTERM, nothing in `ip xfrm state` and `ip xfrm policy`.
func TestXFRMCygnetToCygnet(t *testing.T) {
	l, r := kernelSides(t, 0, 1, 2, 5, 9)
	const ifID = 42
	for n, s := range []*kside{l, r} {
		s.ns.Run(t, "ip", "link", "add", "ipsec42", "type", "xfrm", "dev", s.dev, "if_id", strconv.Itoa(ifID))
		s.ns.Run(t, "ip", "link", "set", "ipsec42", "up")
		// Route-based: what is routed into ipsec42 is protected.
		s.ns.Run(t, "ip", "route", "add", fmt.Sprintf("10.%d.9.0/24", 2-n), "dev", "ipsec42", "src", in4(n+1, 9).String())
		s.ns.Run(t, "ip", "-6", "route", "add", fmt.Sprintf("fd0%d:9::/64", 2-n), "dev", "ipsec42", "src", in6(n+1, 9).String())
	}
	conf := func(name string) string {
		me, other := 1, 2
		if name == "right" {
			me, other = 2, 1
		}
		ts := func(x int) string {
			return fmt.Sprintf(`{local_ts: [10.%[1]d.%[3]d.0/24, "fd0%[1]d:%[3]x::/64"], remote_ts: [10.%[2]d.%[3]d.0/24, "fd0%[2]d:%[3]x::/64"]`, me, other, x)
		}
		trap := ""
		if name == "left" {
			trap = ", start_action: trap"
		}
		return kernelConf(name, "xfrm", "SOCKET",
			kconn("v4", name, false, "", fmt.Sprintf(`      gcm: %s, esp_proposals: [aes256gcm16]}
      chacha: %s, esp_proposals: [chacha20poly1305]}
      cbc: %s, esp_proposals: [aes128-sha256], rekey_packets: 12, life_packets: 10000}
      tm: {mode: transport, esp_proposals: [aes128gcm16]}
      trapped: %s%s}
`, ts(0), ts(1), ts(2), ts(5), trap))+
				kconn("v6", name, true, fmt.Sprintf("    if_id: %d\n    encap: true\n", ifID), fmt.Sprintf(`      xif: %s, esp_proposals: [chacha20poly1305]}
`, ts(9))))
	}
	startKernelCygnet(t, r, "right", conf("right"))
	startKernelCygnet(t, l, "left", conf("left"))
	capture := testbed.StartCapture(t, l.ns, l.dev)

	// start_action trap: the first packet to the child's selectors starts
	// the negotiation; the ones dropped meanwhile are the only loss.
	if sent, got := kping(t, l.ns, in4(1, 5), in4(2, 5), 10, 200*time.Millisecond); got == 0 {
		t.Errorf("ping into the trap policy: %d sent, no reply", sent)
	}
	l.d.waitStatus("the trapped CHILD_SA", 5*time.Second, ikeUp("v4", "trapped"))

	for _, c := range []string{"gcm", "chacha", "cbc", "tm"} {
		l.up(t, "v4", c)
	}
	l.up(t, "v6", "xif")
	cbc := l.childOf(t, "v4", "cbc")
	const n = 5
	for _, x := range []int{0, 1, 2, 9} {
		l.pingOK(t, in4(1, x), in4(2, x), n)
		r.pingOK(t, in6(2, x), in6(1, x), n)
	}
	// rekey_packets: the kernel's soft EXPIRE after 12 packets on cbc's
	// outbound SA (5 requests and 5 replies so far, 10 more requests now)
	// rekeys the CHILD_SA (through the engine's ChildExpired); both sides
	// reach it at about the same time, so this is often a rekey collision.
	l.pingOK(t, in4(1, 2), in4(2, 2), 2*n)
	deadline := time.Now().Add(10 * time.Second)
	for l.childOf(t, "v4", "cbc").SPIIn == cbc.SPIIn {
		if time.Now().After(deadline) {
			t.Fatalf("cbc was not rekeyed after its soft packet limit:\n%s", xfrmDump(t, l.ns))
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.pingOK(t, in4(1, 2), in4(2, 2), n)

	// Transport mode: between the hosts themselves, IKE on the same
	// addresses still passing (the sockets' bypass policies).
	l.pingOK(t, l.wire4, r.wire4, n)
	r.pingOK(t, r.wire4, l.wire4, n)
	if code, _, errOut := l.d.cli("down", "v4"); code != 0 { // IKE through the transport-mode SA
		t.Fatalf("cygnet down v4: %s", errOut)
	}
	l.d.waitStatus("v4 gone", 5*time.Second, func(st *control.Status) bool {
		for _, ike := range st.IKESAs {
			if ike.Connection == "v4" {
				return false
			}
		}
		return true
	})
	l.up(t, "v4", "gcm")
	l.pingOK(t, in4(1, 0), in4(2, 0), n)

	frames := capture.Frames()
	for _, c := range []struct {
		conn, child string
		encap       bool
	}{{"v4", "gcm", false}, {"v6", "xif", true}} {
		ch := l.childOf(t, c.conn, c.child)
		esp, udp := sentESP(t, frames, ch.SPIOut)
		if got := map[bool]int{false: esp, true: udp}[c.encap]; got < n {
			t.Errorf("%s/%s: left sent %d ESP and %d ESP-in-UDP frames with SPI %s, want %d of the %v kind", c.conn, c.child, esp, udp, ch.SPIOut, n, map[bool]string{false: "ESP", true: "ESP-in-UDP"}[c.encap])
		}
		if ch.PacketsOut < n || ch.PacketsIn < n || ch.BytesOut == 0 || ch.BytesIn == 0 {
			t.Errorf("%s/%s: the kernel's counters in status: %+v", c.conn, c.child, ch)
		}
		if ch.Encap != c.encap {
			t.Errorf("%s/%s: encap %v, want %v", c.conn, c.child, ch.Encap, c.encap)
		}
	}
	if k := testbed.CountFrames(frames, testbed.FrameICMPEcho, true); k != 0 {
		t.Errorf("left sent %d plaintext ICMP echo frames", k)
	}
	if out := l.ns.Run(t, "ip", "xfrm", "policy"); !strings.Contains(out, "if_id 0x2a") {
		t.Errorf("no policy with if_id 42:\n%s", out)
	}

	// A crash leaves the kernel's states behind; the next start removes them.
	l.proc.Signal(syscall.SIGKILL)
	l.proc.Wait(5 * time.Second)
	if k := xfrmStateCount(t, l.ns); k == 0 {
		t.Fatal("no states left after SIGKILL: nothing to clean up")
	}
	startKernelCygnet(t, l, "left", conf("left"))
	if out := l.ns.Run(t, "ip", "xfrm", "state"); strings.TrimSpace(out) != "" {
		t.Errorf("after the restart, states of the crashed daemon remain:\n%s", out)
	}
	if !strings.Contains(l.proc.Output(), "removed states and policies of a previous run") {
		t.Error("the restarted daemon did not log the cleanup")
	}
	l.up(t, "v4", "gcm")
	l.pingOK(t, in4(1, 0), in4(2, 0), n)

	stopCygnet(t, l)
	stopCygnet(t, r)
}

// TestXFRMToUserspace runs `cygnet daemon` with the kernel's ESP against one
// with Cygnet's own (dataplane: userspace): a tunnel with IPv4 and IPv6
// inside, ping both ways, plain ESP (protocol 50) with the negotiated SPI
// on the wire, the kernel's counters in status.
func TestXFRMToUserspace(t *testing.T) {
	l, r := kernelSides(t, 0)
	testbed.Require(t, "tun")
	child := func(me, other int) string {
		return fmt.Sprintf(`      net: {local_ts: [10.%[1]d.0.0/24, "fd0%[1]d::/64"], remote_ts: [10.%[2]d.0.0/24, "fd0%[2]d::/64"], esp_proposals: [aes256gcm16]}
`, me, other)
	}
	startKernelCygnet(t, r, "right", kernelConf("right", "userspace", "SOCKET", kconn("v4", "right", false, "", child(2, 1))))
	startKernelCygnet(t, l, "left", kernelConf("left", "xfrm", "SOCKET", kconn("v4", "left", false, "", child(1, 2))))
	capture := testbed.StartCapture(t, l.ns, l.dev)
	l.up(t, "v4", "net")
	r.d.waitStatus("the CHILD_SA", 5*time.Second, ikeUp("v4", "net"))
	const n = 5
	l.pingOK(t, in4(1, 0), in4(2, 0), n)
	r.pingOK(t, in4(2, 0), in4(1, 0), n)
	l.pingOK(t, in6(1, 0), in6(2, 0), n)
	r.pingOK(t, in6(2, 0), in6(1, 0), n)
	ch := l.childOf(t, "v4", "net")
	if esp, udp := sentESP(t, capture.Frames(), ch.SPIOut); esp < 4*n || udp != 0 {
		t.Errorf("left sent %d ESP and %d ESP-in-UDP frames with SPI %s, want %d ESP", esp, udp, ch.SPIOut, 4*n)
	}
	if k := testbed.CountFrames(capture.Frames(), testbed.FrameICMPEcho, true); k != 0 {
		t.Errorf("left sent %d plaintext ICMP echo frames", k)
	}
	if ch.PacketsOut < 4*n || ch.PacketsIn < 4*n {
		t.Errorf("left's (kernel) counters: %+v", ch)
	}
	if rc := r.childOf(t, "v4", "net"); rc.PacketsOut < 4*n || rc.PacketsIn < 4*n || rc.SPIIn != ch.SPIOut {
		t.Errorf("right's (userspace) counters: %+v", rc)
	}
	stopCygnet(t, l)
	stopCygnet(t, r)
}

// swanKernelConf is charon's side of TestXFRMStrongSwan: kernel-netlink
// (no kernel-libipsec), PSK, one tunnel with IPv4 and IPv6 inside and one
// in transport mode.
const swanKernelConf = `connections {
	site {
		version = 2
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = aes256gcm16-prfsha256-x25519
		mobike = no
		local {
			auth = psk
			id = right.test
		}
		remote {
			auth = psk
			id = left.test
		}
		children {
			net {
				local_ts = 10.2.0.0/24,fd02::/64
				remote_ts = 10.1.0.0/24,fd01::/64
				esp_proposals = aes128-sha256,aes256gcm16,chacha20poly1305
			}
			fast {
				local_ts = 10.2.1.0/24
				remote_ts = 10.1.1.0/24
				esp_proposals = aes256gcm16
				rekey_time = 0
			}
		}
	}
}
secrets {
	ike-psk {
		id-1 = left.test
		id-2 = right.test
		secret = "cygnet kernel data plane test, a long enough secret"
	}
}
`

// TestXFRMStrongSwan runs `cygnet daemon` with the kernel's ESP against
// strongSwan with the kernel's ESP (kernel-netlink) in two namespaces:
// Cygnet initiates; a CHILD_SA rekey started by strongSwan (Cygnet answers:
// make-before-break with the outbound switch deferred) and rekeys started
// by Cygnet (rekey_time) while a ping runs, with no loss; then strongSwan
// initiates. The kernel's counters, ESP on the wire, and nothing left in the
// kernel after Cygnet exits.
func TestXFRMStrongSwan(t *testing.T) {
	l, r := kernelSides(t, 0, 1)
	testbed.Require(t, "charon", "swanctl")
	charon := testbed.StartCharon(t, r.ns, testbed.CharonConfig{Swanctl: swanKernelConf, Plugins: testbed.KernelPlugins, LogLevel: 1})
	startKernelCygnet(t, l, "left", kernelConf("left", "xfrm", "SOCKET", kconn("site", "left", false, "", `      net: {local_ts: [10.1.0.0/24, "fd01::/64"], remote_ts: [10.2.0.0/24, "fd02::/64"], esp_proposals: [aes128-sha256]}
      fast: {local_ts: [10.1.1.0/24], remote_ts: [10.2.1.0/24], esp_proposals: [aes256gcm16], rekey_time: 4s, life_time: 60s}
`)))
	capture := testbed.StartCapture(t, l.ns, l.dev)

	// Cygnet initiates.
	l.up(t, "site", "net")
	l.up(t, "site", "fast")
	charon.WaitSA(t, testbed.Established("site", "net", "fast"), 10*time.Second)
	const n = 5
	l.pingOK(t, in4(1, 0), in4(2, 0), n)
	l.pingOK(t, in6(1, 0), in6(2, 0), n)
	ch := l.childOf(t, "site", "net")
	if esp, _ := sentESP(t, capture.Frames(), ch.SPIOut); esp < 2*n {
		t.Errorf("left sent %d ESP frames with SPI %s, want %d", esp, ch.SPIOut, 2*n)
	}
	if ch.PacketsOut < 2*n || ch.PacketsIn < 2*n || ch.Proposal != "aes128-sha256" {
		t.Errorf("cygnet's CHILD_SA: %+v", ch)
	}

	// A rekey that strongSwan starts, under a ping: nothing lost.
	rekeyUnderPing(t, l, in4(1, 0), in4(2, 0), func() {
		if _, err := charon.Swanctl(t, "--rekey", "--child", "net"); err != nil {
			t.Error(err)
		}
	}, func() bool { return l.childOf(t, "site", "net").SPIIn != ch.SPIIn })

	// Rekeys that Cygnet starts (rekey_time 4s), under a ping.
	fast := l.childOf(t, "site", "fast")
	rekeyUnderPing(t, l, in4(1, 1), in4(2, 1), nil, func() bool { return l.childOf(t, "site", "fast").SPIIn != fast.SPIIn })
	if k := testbed.CountFrames(capture.Frames(), testbed.FrameICMPEcho, true); k != 0 {
		t.Errorf("left sent %d plaintext ICMP echo frames", k)
	}

	// strongSwan initiates.
	if code, _, errOut := l.d.cli("down", "site"); code != 0 {
		t.Fatalf("cygnet down site: %s", errOut)
	}
	charon.WaitSA(t, testbed.Gone("site"), 10*time.Second)
	if err := charon.Initiate(t, "site", "net"); err != nil {
		t.Fatal(err)
	}
	l.d.waitStatus("strongSwan's CHILD_SA", 10*time.Second, ikeUp("site", "net"))
	l.pingOK(t, in4(1, 0), in4(2, 0), n)
	r.pingOK(t, in6(2, 0), in6(1, 0), n)
	stopCygnet(t, l)
}

// rekeyUnderPing pings dst from src in s 800 times, 10 ms apart (8 s or
// more), while start (if any) starts a rekey, and requires that every echo
// request was answered and that rekeyed reports the rekey done afterwards.
func rekeyUnderPing(t *testing.T, s *kside, src, dst netip.Addr, start func(), rekeyed func() bool) {
	t.Helper()
	const count = 800
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// -c: after the last request ping waits for the replies in flight
	// (up to -W), so sent - received is loss, not requests still underway.
	cmd := s.ns.Command(ctx, "ping", "-n", "-i", "0.010", "-c", strconv.Itoa(count), "-W", "5", "-I", src.String(), dst.String())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if start != nil {
		start()
	}
	cmd.Wait()
	m := pingStatsRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("ping %s -> %s: no statistics:\n%s", src, dst, out.String())
	}
	sent, _ := strconv.Atoi(m[1])
	received, _ := strconv.Atoi(m[2])
	t.Logf("rekey under ping %s -> %s: %d sent, %d received", src, dst, sent, received)
	if sent != count || received != sent {
		t.Errorf("rekey under ping %s -> %s: %d sent, %d received: lost %d\n%s", src, dst, sent, received, sent-received, xfrmDump(t, s.ns))
	}
	if !rekeyed() {
		t.Errorf("no rekey while pinging %s -> %s", src, dst)
	}
}
