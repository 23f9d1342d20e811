package xfrm

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// The tests of this file need a kernel with ESP. The hosts' kernel has XFRM
// netlink but no ESP transforms, so they skip there; vm/go-test-exec runs
// them in a QEMU VM with Debian's kernel and sets CYGNET_REQUIRE_ESP=1, under
// which a kernel without ESP fails them instead. CYGNET_STRICT=1 alone does
// not: CI's strict `go test ./...` runs on the host, and CI runs these tests
// in the VM through vm/run-xfrm-tests.sh.

var espProbe struct {
	once sync.Once
	err  error
}

// probeESP adds an AES-GCM state in a throw-away network namespace: on a
// thread that unshares its namespace and is never unlocked, so the thread
// and the namespace die when the goroutine ends.
func probeESP() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		c, err := openConn("")
		if err != nil {
			errc <- err
			return
		}
		defer c.close()
		sa := &dataplane.SA{
			InSPI: 0x1000, OutSPI: 0x1001,
			Local:  netip.MustParseAddrPort("127.0.0.1:0"),
			Remote: netip.MustParseAddrPort("127.0.0.2:0"),
			Encr:   wire.ENCR_AES_GCM_16, EncrKeyLen: 128,
			InEncrKey: make([]byte, 20), OutEncrKey: make([]byte, 20),
		}
		algs, _ := algsFor(sa.Encr, sa.EncrKeyLen, sa.Integ)
		m, err := (&Backend{}).stateMessage(msgNewSA, &pair{sa: sa, algs: algs}, true)
		if err != nil {
			errc <- err
			return
		}
		errc <- c.do("add an AES-GCM state", m, nil)
	}()
	return <-errc
}

// requireESP skips the test on a kernel without ESP, or fails it with
// CYGNET_REQUIRE_ESP=1.
func requireESP(t testing.TB) {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "not root (network namespaces, XFRM)"
	} else {
		espProbe.once.Do(func() { espProbe.err = probeESP() })
		if espProbe.err == nil {
			return
		}
		why = "this kernel has no ESP: " + espProbe.err.Error()
	}
	msg := "xfrm: " + why + "; the kernel data plane is tested in a VM: vm/run-xfrm-tests.sh, or " +
		"go test -exec \"$PWD/vm/go-test-exec\" ./internal/dataplane/xfrm/"
	if os.Getenv("CYGNET_REQUIRE_ESP") == "1" {
		t.Fatal(msg + " (CYGNET_REQUIRE_ESP=1: failing instead of skipping)")
	}
	t.Skip(msg + " (skipping; CYGNET_REQUIRE_ESP=1 makes this a failure, CYGNET_STRICT=1 does not)")
}

// inVM reports whether the test runs in Cygnet's test VM.
func inVM() bool { return os.Getenv("CYGNET_IN_VM") == "1" }

// --- topology ---------------------------------------------------------------------

// site is one side of a test: a namespace with a veth end ("wire"
// addresses, the outer ones in tunnel mode) and "inner" addresses on lo
// (the tunnel's traffic, and the endpoints in transport mode).
type site struct {
	ns         *testbed.Netns
	dev        string
	wire4      netip.Addr
	wire6      netip.Addr
	inner4     netip.Addr
	inner6     netip.Addr
	b          *Backend
	eventsMu   sync.Mutex
	events     []dataplane.Event
	eventsCond chan struct{}
}

func (s *site) path() string { return "/run/netns/" + s.ns.Name }

func (s *site) wire(v6 bool) netip.Addr {
	if v6 {
		return s.wire6
	}
	return s.wire4
}

func (s *site) inner(v6 bool) netip.Addr {
	if v6 {
		return s.inner6
	}
	return s.inner4
}

// ip runs Debian's ip in the site's namespace.
func (s *site) ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", s.ns.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", s.ns.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newSites builds two namespaces joined by a veth pair, with inner
// addresses routed through the other side's wire address, and a backend in
// each.
func newSites(t *testing.T) (a, b *site) {
	t.Helper()
	requireESP(t)
	a = &site{ns: testbed.NewNetns(t, "xa"),
		wire4: netip.MustParseAddr("192.0.2.1"), wire6: netip.MustParseAddr("2001:db8::1"),
		inner4: netip.MustParseAddr("10.1.0.1"), inner6: netip.MustParseAddr("fd01::1")}
	b = &site{ns: testbed.NewNetns(t, "xb"),
		wire4: netip.MustParseAddr("192.0.2.2"), wire6: netip.MustParseAddr("2001:db8::2"),
		inner4: netip.MustParseAddr("10.2.0.1"), inner6: netip.MustParseAddr("fd02::1")}
	a.dev, b.dev = testbed.Link(t, a.ns, b.ns,
		[]netip.Prefix{netip.PrefixFrom(a.wire4, 24), netip.PrefixFrom(a.wire6, 64)},
		[]netip.Prefix{netip.PrefixFrom(b.wire4, 24), netip.PrefixFrom(b.wire6, 64)})
	for _, s := range []*site{a, b} {
		s.ns.AddAddr(t, "lo", netip.PrefixFrom(s.inner4, 32))
		s.ns.AddAddr(t, "lo", netip.PrefixFrom(s.inner6, 128))
	}
	for _, p := range [][2]*site{{a, b}, {b, a}} {
		s, peer := p[0], p[1]
		s.ip(t, "route", "add", peer.inner4.String()+"/32", "via", peer.wire4.String(), "src", s.inner4.String())
		s.ip(t, "-6", "route", "add", peer.inner6.String()+"/128", "via", peer.wire6.String(), "src", s.inner6.String())
	}
	for _, s := range []*site{a, b} {
		s.open(t)
	}
	return a, b
}

// open starts a backend in the site's namespace, recording its events, and
// registers a cleanup that closes it and checks that the SAD and SPD are
// empty then.
func (s *site) open(t *testing.T) {
	t.Helper()
	be, err := New(Config{Netns: s.path()})
	if err != nil {
		t.Fatal(err)
	}
	s.b = be
	s.eventsCond = make(chan struct{}, 1)
	be.SetEventHandler(func(e dataplane.Event) {
		s.eventsMu.Lock()
		s.events = append(s.events, e)
		s.eventsMu.Unlock()
		select {
		case s.eventsCond <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Errorf("Close in %s: %v", s.ns.Name, err)
		}
		s.requireEmpty(t)
		s.requireNoRules(t)
	})
}

// xfrmStats describes the site's SAD and the kernel's XFRM error counters,
// for failure messages.
func (s *site) xfrmStats(t testing.TB) string {
	t.Helper()
	stat, _ := exec.Command("ip", "netns", "exec", s.ns.Name, "cat", "/proc/net/xfrm_stat").CombinedOutput()
	var nonzero []string
	for _, line := range strings.Split(string(stat), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] != "0" {
			nonzero = append(nonzero, line)
		}
	}
	return fmt.Sprintf("%s: ip -s xfrm state:\n%s\nxfrm_stat: %s", s.ns.Name, s.ip(t, "-s", "xfrm", "state"), strings.Join(nonzero, ", "))
}

// requireEmpty fails the test unless `ip xfrm state` and `ip xfrm policy`
// list nothing.
func (s *site) requireEmpty(t testing.TB) {
	t.Helper()
	if out := s.ip(t, "xfrm", "state"); strings.TrimSpace(out) != "" {
		t.Errorf("%s: ip xfrm state is not empty:\n%s", s.ns.Name, out)
	}
	if out := withoutSocketPolicies(s.ip(t, "xfrm", "policy")); out != "" {
		t.Errorf("%s: ip xfrm policy is not empty:\n%s", s.ns.Name, out)
	}
	s.requireNoRoutes(t)
}

// requireNoRoutes fails the test if the backend's routes remain.
func (s *site) requireNoRoutes(t testing.TB) {
	t.Helper()
	for _, fam := range []string{"-4", "-6"} {
		// A table that never had a route does not exist: that is empty too.
		out, err := exec.Command("ip", "-n", s.ns.Name, fam, "route", "show", "table", fmt.Sprint(DefaultRouteTable)).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "table does not exist") {
			t.Fatalf("ip route show table %d in %s: %v: %s", DefaultRouteTable, s.ns.Name, err, out)
		}
		if err == nil && strings.TrimSpace(string(out)) != "" {
			t.Errorf("%s: routes left in table %d:\n%s", s.ns.Name, DefaultRouteTable, out)
		}
	}
}

// requireNoRules fails the test if the backend's routing rules remain
// (after Close).
func (s *site) requireNoRules(t testing.TB) {
	t.Helper()
	for _, fam := range []string{"-4", "-6"} {
		if out := s.ip(t, fam, "rule"); strings.Contains(out, fmt.Sprintf("lookup %d", DefaultRouteTable)) {
			t.Errorf("%s: routing rule left:\n%s", s.ns.Name, out)
		}
	}
}

// withoutSocketPolicies drops the per-socket policies (BypassSocket's on
// the tests' UDP_ENCAP sockets) from `ip xfrm policy` output: they belong
// to their sockets, not to the backend.
func withoutSocketPolicies(out string) string {
	var keep []string
	for _, block := range strings.SplitAfter(out, "\n") {
		keep = append(keep, block)
	}
	var blocks []string
	var cur string
	for _, line := range keep {
		if line != "" && line[0] != '\t' && line[0] != ' ' && cur != "" {
			blocks = append(blocks, cur)
			cur = ""
		}
		cur += line
	}
	blocks = append(blocks, cur)
	var res string
	for _, b := range blocks {
		if !strings.Contains(b, "\tsocket ") {
			res += b
		}
	}
	return strings.TrimSpace(res)
}

// waitEvent waits for an event that pred accepts.
func (s *site) waitEvent(t testing.TB, what string, pred func(dataplane.Event) bool) dataplane.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.eventsMu.Lock()
		for _, e := range s.events {
			if pred(e) {
				s.eventsMu.Unlock()
				return e
			}
		}
		got := fmt.Sprint(s.events)
		s.eventsMu.Unlock()
		select {
		case <-s.eventsCond:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: no %s event; got %s", s.ns.Name, what, got)
		}
	}
}

// --- SAs --------------------------------------------------------------------------

// algCase is one ESP transform set.
type algCase struct {
	name    string
	encr    wire.EncrID
	keyBits int
	integ   wire.IntegID
	esn     bool
}

// newPair returns the SAs of both sides for one CHILD_SA with fresh random
// keys: a's inbound is b's outbound.
func newPair(t testing.TB, alg algCase, mode dataplane.Mode, aLocal, bLocal netip.AddrPort, aTS, bTS []dataplane.Selector, reqid, spiA, spiB uint32) (sa, sb *dataplane.SA) {
	t.Helper()
	k, err := algsFor(alg.encr, alg.keyBits, alg.integ)
	if err != nil {
		t.Fatal(err)
	}
	key := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	aToB, bToA := key(k.encrKey), key(k.encrKey)
	aToBi, bToAi := key(k.integKey), key(k.integKey)
	mk := func(local, remote netip.AddrPort, in, out uint32, inE, inI, outE, outI []byte, lts, rts []dataplane.Selector) *dataplane.SA {
		return &dataplane.SA{
			ReqID: reqid, Name: "test", Mode: mode,
			Local: local, Remote: remote, InSPI: in, OutSPI: out,
			Encr: alg.encr, EncrKeyLen: alg.keyBits, Integ: alg.integ, ESN: alg.esn,
			InEncrKey: append([]byte(nil), inE...), InIntegKey: append([]byte(nil), inI...),
			OutEncrKey: append([]byte(nil), outE...), OutIntegKey: append([]byte(nil), outI...),
			LocalTS: lts, RemoteTS: rts, ReplayWindow: 64,
		}
	}
	sa = mk(aLocal, bLocal, spiA, spiB, bToA, bToAi, aToB, aToBi, aTS, bTS)
	sb = mk(bLocal, aLocal, spiB, spiA, aToB, aToBi, bToA, bToAi, bTS, aTS)
	return sa, sb
}

func hostTS(a netip.Addr) []dataplane.Selector {
	return []dataplane.Selector{{Start: a, End: a, StartPort: 0, EndPort: 0xffff}}
}

func anyTS(v6 bool) []dataplane.Selector {
	if v6 {
		return []dataplane.Selector{{Start: netip.IPv6Unspecified(), End: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), EndPort: 0xffff}}
	}
	return []dataplane.Selector{{Start: netip.IPv4Unspecified(), End: netip.MustParseAddr("255.255.255.255"), EndPort: 0xffff}}
}

// --- ping -------------------------------------------------------------------------

// ping sends count ICMP echo requests from src to dst inside s's namespace,
// interval apart, and returns how many it sent and how many distinct
// replies came back (waiting up to two seconds after the last request).
func ping(t testing.TB, s *site, src, dst netip.Addr, count int, interval time.Duration) (sent, received int) {
	t.Helper()
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if dst.Is6() {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd := -1
	err := inNetns(s.path(), func() error {
		var err error
		fd, err = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		return err
	})
	if err != nil {
		t.Fatalf("ping: raw socket in %s: %v", s.ns.Name, err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	sockaddr := func(a netip.Addr) unix.Sockaddr {
		if a.Is4() {
			return &unix.SockaddrInet4{Addr: a.As4()}
		}
		return &unix.SockaddrInet6{Addr: a.As16()}
	}
	if err := unix.Bind(fd, sockaddr(src)); err != nil {
		t.Fatalf("ping: bind %v: %v", src, err)
	}
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])

	var mu sync.Mutex
	got := make(map[uint16]bool)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			b := buf[:n]
			reply := byte(129)
			if family == unix.AF_INET {
				// Raw IPv4 sockets deliver the IP header.
				if n < 20 || int(b[0]&0xf)*4 > n {
					continue
				}
				b = b[int(b[0]&0xf)*4:]
				reply = 0
			}
			if len(b) < 8 || b[0] != reply || binary.BigEndian.Uint16(b[4:]) != id {
				continue
			}
			mu.Lock()
			got[binary.BigEndian.Uint16(b[6:])] = true
			mu.Unlock()
		}
	}()
	for i := 0; i < count; i++ {
		msg := make([]byte, 64)
		msg[0] = 8
		if family == unix.AF_INET6 {
			msg[0] = 128 // the kernel computes the ICMPv6 checksum
		}
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(i))
		if family == unix.AF_INET {
			binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
		}
		if err := unix.Sendto(fd, msg, 0, sockaddr(dst)); err == nil {
			sent++
		}
		if i < count-1 {
			time.Sleep(interval)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= sent {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	return sent, len(got)
}

func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// --- frames on the wire -----------------------------------------------------------

// frameKind classifies an Ethernet frame a site sent: "esp", "esp-in-udp",
// "ike" (UDP 4500 with the non-ESP marker), "icmp" (plaintext ICMP/ICMPv6
// echo), or "" for the rest (ARP, neighbour discovery).
func frameKind(data []byte) string {
	if len(data) < 14 {
		return ""
	}
	eth := binary.BigEndian.Uint16(data[12:])
	p := data[14:]
	var proto byte
	switch eth {
	case 0x0800:
		if len(p) < 20 {
			return ""
		}
		proto = p[9]
		p = p[int(p[0]&0xf)*4:]
	case 0x86dd:
		if len(p) < 40 {
			return ""
		}
		proto = p[6]
		p = p[40:]
	default:
		return ""
	}
	switch proto {
	case unix.IPPROTO_ESP:
		return "esp"
	case unix.IPPROTO_UDP:
		if len(p) >= 12 && (binary.BigEndian.Uint16(p[0:]) == 4500 || binary.BigEndian.Uint16(p[2:]) == 4500) {
			if binary.BigEndian.Uint32(p[8:]) == 0 {
				return "ike"
			}
			return "esp-in-udp"
		}
	case unix.IPPROTO_ICMP:
		if len(p) > 0 && (p[0] == 8 || p[0] == 0) {
			return "icmp"
		}
	case unix.IPPROTO_ICMPV6:
		if len(p) > 0 && (p[0] == 128 || p[0] == 129) {
			return "icmp"
		}
	}
	return ""
}

// sentKinds counts the kinds of the frames a capture saw its site send.
// Only sent frames prove encryption: a capture also sees decrypted packets
// on receive.
func sentKinds(c *testbed.Capture) map[string]int {
	n := make(map[string]int)
	for _, p := range c.Packets() {
		if p.Outgoing {
			n[frameKind(p.Data)]++
		}
	}
	return n
}

// encapSocket opens a UDP socket on port in s's namespace with UDP_ENCAP
// set, so that the kernel decapsulates ESP-in-UDP arriving there (RFC 3948).
func encapSocket(t testing.TB, s *site, v6 bool, port int) {
	t.Helper()
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: port}
	if v6 {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: port}
	}
	fd := -1
	err := inNetns(s.path(), func() error {
		var err error
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if v6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_ENCAP, unix.UDP_ENCAP_ESPINUDP); err != nil {
		t.Fatalf("UDP_ENCAP: %v", err)
	}
	if err := BypassSocket(fd, v6); err != nil {
		t.Fatal(err)
	}
}
