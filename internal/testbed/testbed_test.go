package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata recordings from a live charon")

func TestMain(m *testing.M) {
	code := m.Run()
	// After every test and its cleanups: nothing of ours may remain.
	if os.Geteuid() == 0 {
		ns, procs, err := Leftovers()
		if err != nil || len(ns) > 0 || len(procs) > 0 {
			fmt.Fprintf(os.Stderr, "testbed: left behind after all tests: namespaces %q, processes %q (%v)\n", ns, procs, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Addresses of the two-namespace topology. The veth carries both families;
// inner (tunnel) addresses sit on lo and are the traffic selectors.
var (
	leftV4   = netip.MustParsePrefix("192.0.2.1/24")
	rightV4  = netip.MustParsePrefix("192.0.2.2/24")
	leftV6   = netip.MustParsePrefix("2001:db8::1/64")
	rightV6  = netip.MustParsePrefix("2001:db8::2/64")
	leftIn4  = netip.MustParsePrefix("10.1.0.1/32")
	rightIn4 = netip.MustParsePrefix("10.2.0.1/32")
	leftIn6  = netip.MustParsePrefix("fd00:1::1/128")
	rightIn6 = netip.MustParsePrefix("fd00:2::1/128")
)

// side is one end of a charon-to-charon pair.
type side struct {
	ns     *Netns
	charon *Charon
	dev    string     // the veth end
	outer  netip.Addr // IKE and ESP-in-UDP address
	in4    netip.Addr
	in6    netip.Addr
}

// swanctlParams fill testdata/swanctl-*.conf.tmpl.
type swanctlParams struct {
	Local, Remote     string
	LocalID, RemoteID string
	LocalTS, RemoteTS string
	Secret            string
}

func swanctlConf(t testing.TB, auth string, p swanctlParams) string {
	t.Helper()
	tmpl, err := template.ParseFiles("testdata/swanctl-" + auth + ".conf.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// charonPair builds two namespaces joined by a veth, a charon in each, and
// loads connection auth ("psk" or "ecdsa"; child "net") with the outer
// addresses of one family. Nothing is initiated.
func charonPair(t testing.TB, auth string, ipv6 bool) (left, right *side) {
	t.Helper()
	return charonPairWith(t, auth, ipv6, nil)
}

// charonPairWith is charonPair with charon's plugin list (nil: DefaultPlugins).
func charonPairWith(t testing.TB, auth string, ipv6 bool, plugins []string) (left, right *side) {
	t.Helper()
	Require(t, "root", "ip", "unshare", "charon", "tun", "ping")
	left = &side{ns: NewNetns(t, "left"), in4: leftIn4.Addr(), in6: leftIn6.Addr()}
	right = &side{ns: NewNetns(t, "right"), in4: rightIn4.Addr(), in6: rightIn6.Addr()}
	left.dev, right.dev = Link(t, left.ns, right.ns, []netip.Prefix{leftV4, leftV6}, []netip.Prefix{rightV4, rightV6})
	left.outer, right.outer = leftV4.Addr(), rightV4.Addr()
	if ipv6 {
		left.outer, right.outer = leftV6.Addr(), rightV6.Addr()
	}
	for _, s := range []*side{left, right} {
		s.ns.AddAddr(t, "lo", netip.PrefixFrom(s.in4, 32))
		s.ns.AddAddr(t, "lo", netip.PrefixFrom(s.in6, 128))
	}

	ids := map[*side]string{left: "left@cygnet.test", right: "right@cygnet.test"}
	files := map[*side]map[string][]byte{}
	if auth == "ecdsa" {
		dir := t.TempDir()
		ca := NewCA(t, dir, "ecdsa", "C=CH, O=Cygnet, CN=Cygnet Test CA")
		for s, name := range map[*side]string{left: "left", right: "right"} {
			ids[s] = "C=CH, O=Cygnet, CN=" + name + ".cygnet.test"
			files[s] = Issue(t, ca, "ecdsa", 256, ids[s], name+".cygnet.test").CharonFiles(t)
		}
	}
	for _, pair := range [][2]*side{{left, right}, {right, left}} {
		s, peer := pair[0], pair[1]
		conf := swanctlConf(t, auth, swanctlParams{
			Local: s.outer.String(), Remote: peer.outer.String(),
			LocalID: ids[s], RemoteID: ids[peer],
			LocalTS:  s.in4.String() + "/32," + s.in6.String() + "/128",
			RemoteTS: peer.in4.String() + "/32," + peer.in6.String() + "/128",
			Secret:   "cygnet-testbed-psk-0123456789",
		})
		s.charon = StartCharon(t, s.ns, CharonConfig{Swanctl: conf, Files: files[s], Plugins: plugins})
	}
	return left, right
}

// TestCharonToCharon runs the reference configurations (testdata/) between
// two strongSwan instances: PSK and pki-made ECDSA certificates, IPv4 and
// IPv6 outer addresses, IPv4 and IPv6 through the tunnel.
func TestCharonToCharon(t *testing.T) {
	for _, tc := range []struct {
		auth string
		ipv6 bool
	}{
		{"psk", false}, {"psk", true}, {"ecdsa", false}, {"ecdsa", true},
	} {
		name := tc.auth + "-ipv4"
		if tc.ipv6 {
			name = tc.auth + "-ipv6"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testCharonToCharon(t, tc.auth, tc.ipv6)
		})
	}
}

func testCharonToCharon(t *testing.T, auth string, ipv6 bool) {
	left, right := charonPair(t, auth, ipv6)
	capture := StartCapture(t, left.ns, left.dev)

	if err := left.charon.Initiate(t, auth, "net"); err != nil {
		t.Fatal(err)
	}
	lsas := left.charon.WaitSA(t, Established(auth, "net"), 5*time.Second)
	rsas := right.charon.WaitSA(t, Established(auth, "net"), 5*time.Second)
	lsa, _ := FindSA(lsas, auth)
	rsa, _ := FindSA(rsas, auth)
	lc, _ := lsa.Child("net")
	rc, _ := rsa.Child("net")

	encr, keysize := "AES_GCM_16", 256
	if auth == "ecdsa" {
		keysize = 128
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"left initiator", lsa.Initiator, true},
		{"right initiator", rsa.Initiator, false},
		{"left local host", lsa.LocalHost, left.outer},
		{"left remote host", lsa.RemoteHost, right.outer},
		// kernel-libipsec fakes a NAT to force UDP encapsulation.
		{"left local port", lsa.LocalPort, uint16(4500)},
		{"right remote port", rsa.RemotePort, uint16(4500)},
		{"left NAT (any)", lsa.NATAny, true},
		{"IKE SPIi equal", lsa.SPIi, rsa.SPIi},
		{"IKE SPIr equal", lsa.SPIr, rsa.SPIr},
		{"left remote id", lsa.RemoteID, rsa.LocalID},
		{"IKE encr", lsa.EncrAlg, encr},
		{"IKE key size", lsa.EncrKeysize, keysize},
		{"child mode", lc.Mode, "TUNNEL"},
		{"child encap", lc.Encap, true},
		{"ESP encr", lc.EncrAlg, encr},
		{"ESP key size", lc.EncrKeysize, keysize},
		{"left SPI out = right SPI in", lc.SPIOut, rc.SPIIn},
		{"left SPI in = right SPI out", lc.SPIIn, rc.SPIOut},
		{"left local TS", strings.Join(lc.LocalTS, ","), "10.1.0.1/32,fd00:1::1/128"},
		{"left remote TS", strings.Join(lc.RemoteTS, ","), "10.2.0.1/32,fd00:2::1/128"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if t.Failed() {
		t.Fatalf("left:\n%sright:\n%s", FormatSAs(lsas), FormatSAs(rsas))
	}

	if auth == "psk" && !ipv6 && *update {
		recordListSA(t, left.charon, "testdata/list-sa-psk.vici")
	}

	const pings = 3
	for _, p := range [][2]netip.Addr{{left.in4, right.in4}, {left.in6, right.in6}} {
		if sent, got := left.ns.Ping(t, p[0], p[1], pings, 50*time.Millisecond); got != pings {
			t.Errorf("ping %s -> %s through the tunnel: %d sent, %d received", p[0], p[1], sent, got)
		}
	}
	after, _ := FindSA(left.charon.ListSAs(t), auth)
	if c, _ := after.Child("net"); c.PacketsOut < 2*pings || c.PacketsIn < 2*pings {
		t.Errorf("CHILD_SA counters after %d pings each way and family: in %d out %d packets", pings, c.PacketsIn, c.PacketsOut)
	}

	if err := left.charon.Terminate(t, auth); err != nil {
		t.Fatal(err)
	}
	left.charon.WaitSA(t, Gone(auth), 5*time.Second)
	right.charon.WaitSA(t, Gone(auth), 5*time.Second)

	// On the wire: IKE_SA_INIT on 500, then IKE on 4500 (non-ESP marker);
	// every tunnelled packet is ESP in UDP 4500 with the negotiated SPIs;
	// no inner address ever appears in the clear.
	const out, in = "frame.packet_flags_direction == 2", "frame.packet_flags_direction == 1"
	checks := []struct {
		filter   string
		min, max int
	}{
		{"udp.port == 500 && isakmp && " + out, 1, 1 << 30},
		{"udp.port == 4500 && isakmp && " + out, 2, 1 << 30}, // IKE_AUTH, INFORMATIONAL delete
		{fmt.Sprintf("udp.port == 4500 && esp.spi == 0x%08x && %s", lc.SPIOut, out), 2 * pings, 1 << 30},
		{fmt.Sprintf("udp.port == 4500 && esp.spi == 0x%08x && %s", lc.SPIIn, in), 2 * pings, 1 << 30},
		{"icmp || icmpv6.type == 128 || icmpv6.type == 129 || ip.addr == 10.2.0.1 || ipv6.addr == fd00:2::1", 0, 0},
	}
	filters := make([]string, len(checks))
	for i, c := range checks {
		filters[i] = c.filter
	}
	for i, n := range capture.Counts(t, filters...) {
		if c := checks[i]; n < c.min || n > c.max {
			t.Errorf("capture on %s: %d frames match %q, want %d to %d", left.dev, n, c.filter, c.min, c.max)
		}
	}
}

// recordListSA rewrites a testdata recording of charon's list-sa event.
func recordListSA(t *testing.T, c *Charon, path string) {
	var rec []byte
	_, err := c.Vici(t, 5*time.Second).Stream("list-sas", "list-sa", nil, func(m *ViciMessage) error {
		b, err := MarshalVici(m)
		rec = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (%d bytes)", path, len(rec))
}

// TestTunnelThroughput runs iperf3 through a kernel-libipsec tunnel. It only
// checks that traffic flows; BenchmarkCharonIperf3 gives the numbers.
func TestTunnelThroughput(t *testing.T) {
	Require(t, "iperf3")
	left, right := charonPair(t, "psk", false)
	if err := left.charon.Initiate(t, "psk", "net"); err != nil {
		t.Fatal(err)
	}
	tcp := Iperf3(t, right.ns, left.ns, right.in4, 1, false)
	udp := Iperf3(t, right.ns, left.ns, right.in4, 1, true)
	t.Logf("through the tunnel, 1 s each: TCP %s, UDP %s received", FormatBits(tcp), FormatBits(udp))
	if tcp <= 0 || udp <= 0 {
		t.Errorf("no throughput: TCP %v, UDP %v bit/s", tcp, udp)
	}
	sa, _ := FindSA(left.charon.ListSAs(t), "psk")
	if c, _ := sa.Child("net"); c.BytesOut < 1<<20 {
		t.Errorf("CHILD_SA carried only %d bytes out", c.BytesOut)
	}
}

// TestPKI checks the certificates strongSwan's pki makes with Go's x509.
func TestPKI(t *testing.T) {
	Require(t, "pki")
	dir := t.TempDir()
	for _, caType := range []string{"ecdsa", "rsa", "ed25519"} {
		ca := NewCA(t, dir, caType, "C=CH, O=Cygnet, CN=Test CA "+caType)
		caCert := readCert(t, ca.CertPath)
		if !caCert.IsCA || caCert.Subject.CommonName != "Test CA "+caType {
			t.Errorf("%s CA: IsCA %v, subject %v", caType, caCert.IsCA, caCert.Subject)
		}
		roots := x509.NewCertPool()
		roots.AddCert(caCert)
		// Every key type under the ECDSA CA; one leaf under the others (RSA
		// key generation is slow on a loaded machine).
		type keySpec struct {
			typ  string
			bits int
		}
		leaves := []keySpec{{"ecdsa", 0}}
		if caType == "ecdsa" {
			leaves = append(leaves, keySpec{"ecdsa", 384}, keySpec{"rsa", 2048}, keySpec{"ed25519", 0})
		}
		for _, kt := range leaves {
			c := Issue(t, ca, kt.typ, kt.bits, "C=CH, O=Cygnet, CN=peer", "peer.cygnet.test", "192.0.2.7", "peer@cygnet.test")
			cert := readCert(t, c.CertPath)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("%s CA, %s/%d: %v", caType, kt.typ, kt.bits, err)
			}
			if cert.Subject.String() != "CN=peer,O=Cygnet,C=CH" ||
				!slices.Equal(cert.DNSNames, []string{"peer.cygnet.test"}) ||
				!slices.Equal(cert.EmailAddresses, []string{"peer@cygnet.test"}) ||
				len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "192.0.2.7" {
				t.Errorf("%s/%d: subject %q, SANs %v %v %v", kt.typ, kt.bits, cert.Subject, cert.DNSNames, cert.EmailAddresses, cert.IPAddresses)
			}
			size := 0
			switch k := cert.PublicKey.(type) {
			case *ecdsa.PublicKey:
				size = k.Curve.Params().BitSize
			case *rsa.PublicKey:
				size = k.N.BitLen()
			case ed25519.PublicKey:
				size = 0
			}
			want := kt.bits
			if want == 0 {
				want = defaultBits[kt.typ]
			}
			if size != want {
				t.Errorf("%s key: %d bits, want %d", kt.typ, size, want)
			}
			if b, err := os.ReadFile(c.KeyPath); err != nil || !bytes.Contains(b, []byte("PRIVATE KEY-----")) {
				t.Errorf("%s key file: %v %.40q", kt.typ, err, b)
			}
		}
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCleanup checks that a test's cleanups leave nothing behind: no
// namespace of ours in `ip netns list`, no process carrying our marker.
func TestCleanup(t *testing.T) {
	Require(t, "root", "charon", "tun")
	var names []string
	t.Run("build", func(t *testing.T) {
		left, right := charonPair(t, "psk", false)
		if err := left.charon.Initiate(t, "psk", "net"); err != nil {
			t.Fatal(err)
		}
		StartCapture(t, left.ns, left.dev)
		right.ns.Start(t, "sleeper", StartOptions{}, "sleep", "600")
		names = []string{left.ns.Name, right.ns.Name}
		// The sleeper may be in the middle of `ip netns exec`'s execve,
		// when its /proc/PID/environ reads empty: look again, briefly.
		var procs []string
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, procs, _ = Leftovers(); len(procs) >= 3 || time.Now().After(deadline) {
				break
			}
		}
		if len(procs) < 3 {
			t.Errorf("Leftovers sees only %q while two charons and a sleep run", procs)
		}
	})
	CheckLeftovers(t)
	all, err := listNetns()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if slices.Contains(all, n) {
			t.Errorf("namespace %s still listed", n)
		}
	}
}

// helperEnv makes TestHelperProcess play a scenario in a re-executed test binary.
const helperEnv = "CYGNET_TESTBED_HELPER"

// helper returns a command that re-executes this test binary to play
// scenario in TestHelperProcess, killed after a minute at most.
func helper(t *testing.T, scenario string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+scenario)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// TestHelperProcess is not a test: run by helper, it builds a tunnel and
// then fails midway ("fail"), crashes a charon ("crash") or waits to be
// killed ("hang"), or it starts
// charon with a broken configuration ("badconf").
func TestHelperProcess(t *testing.T) {
	scenario := os.Getenv(helperEnv)
	if scenario == "" {
		return
	}
	if scenario == "badconf" {
		StartCharon(t, NewNetns(t, "bad"), CharonConfig{Swanctl: "connections {\n\tx {\n"})
		t.Fatal("StartCharon accepted a broken swanctl.conf")
	}
	left, right := charonPair(t, "psk", false)
	if err := left.charon.Initiate(t, "psk", "net"); err != nil {
		t.Fatal(err)
	}
	StartCapture(t, left.ns, left.dev)
	right.ns.Start(t, "sleeper", StartOptions{}, "sleep", "600")
	switch scenario {
	case "fail":
		t.Fatal("deliberate failure midway")
	case "crash":
		right.charon.Proc.Signal(syscall.SIGKILL)
		right.charon.Proc.Wait(5 * time.Second)
	case "hang":
		fmt.Printf("READY %s %s\n", left.ns.Name, right.ns.Name)
		time.Sleep(2 * time.Minute)
	}
}

// TestCleanupAfterFailure: a test that fails midway still stops charon and
// its other processes, deletes its namespaces and shows charon's log; a
// charon that dies during a test fails it.
func TestCleanupAfterFailure(t *testing.T) {
	Require(t, "root", "charon", "tun")
	for _, tc := range []struct {
		scenario string
		want     []string
	}{
		{"fail", []string{"deliberate failure midway", "last lines of charon log", "--- FAIL: TestHelperProcess"}},
		{"crash", []string{"exited during the test: signal: killed", "--- FAIL: TestHelperProcess"}},
	} {
		cmd := helper(t, tc.scenario)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%s: helper passed; want a failure:\n%s", tc.scenario, out)
		}
		for _, want := range tc.want {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("%s: helper output lacks %q:\n%s", tc.scenario, want, out)
			}
		}
		ns, procs, err := leftoversOf(cmd.Process.Pid)
		if err != nil || len(ns) > 0 || len(procs) > 0 {
			t.Errorf("%s: after the helper: namespaces %q, processes %q (%v)", tc.scenario, ns, procs, err)
		}
	}
}

func TestCrashLine(t *testing.T) {
	log := "07:33:20 00[DMN] Starting IKE charon daemon (strongSwan 5.9.8)\n" +
		"07:33:20 00[DMN] thread 0 received 11\n07:33:20 00[LIB]  dumping 2 stack frame addresses:\n"
	if got := crashLine(log); got != "[DMN] thread 0 received 11" {
		t.Errorf("crashLine = %q", got)
	}
	if got := crashLine("07:33:20 00[DMN] SIGTERM received, shutting down\n"); got != "" {
		t.Errorf("crashLine of a clean log = %q", got)
	}
}

// TestCharonBadConfig: a swanctl.conf that does not load fails the test
// with swanctl's message, although swanctl itself exits with status 0.
func TestCharonBadConfig(t *testing.T) {
	Require(t, "root", "charon", "tun")
	out, err := helper(t, "badconf").CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("swanctl --load-all")) || !bytes.Contains(out, []byte("syntax error")) ||
		bytes.Contains(out, []byte("accepted a broken")) {
		t.Errorf("helper: %v\n%s", err, out)
	}
}

// TestSweepAfterKill: a test binary killed outright cannot run its cleanups.
// Its processes die with it (Pdeathsig); its namespaces remain until Sweep.
func TestSweepAfterKill(t *testing.T) {
	Require(t, "root", "charon", "tun")
	cmd := helper(t, "hang")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan []string, 1)
	var seen bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "READY" {
				ready <- f[1:]
				break
			}
		}
		close(ready)
	}()
	var names []string
	select {
	case names = <-ready:
	case <-time.After(60 * time.Second):
	}
	if names == nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper never got ready:\n%s", seen.String())
	}
	pid := cmd.Process.Pid
	if _, procs, _ := leftoversOf(pid); len(procs) < 3 {
		t.Errorf("helper runs only %q", procs)
	}
	cmd.Process.Kill()
	cmd.Wait()

	deadline := time.Now().Add(5 * time.Second)
	for {
		_, procs, err := leftoversOf(pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the killed helper still run: %q", procs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ns, _, _ := leftoversOf(pid); len(ns) != 2 {
		t.Errorf("namespaces of the killed helper: %q, want its two until Sweep", ns)
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	all, err := listNetns()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if slices.Contains(all, n) {
			t.Errorf("namespace %s of the killed helper still listed after Sweep", n)
		}
	}
}
