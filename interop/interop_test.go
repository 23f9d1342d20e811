package interop

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// The suite: one network namespace for Cygnet, one for strongSwan, joined by
// a veth pair; one `cygnet daemon` and one charon, each configured with
// every case's connection. Every case has its own pair of outer addresses on
// the veth, so the peers pick connections by address and every captured
// frame belongs to one case. Cases run in parallel. The same suite runs on
// the host (charon with kernel-libipsec: the tunnel-mode cases) and in the
// test VM (charon with kernel-netlink: the transport-mode cases; kernel_test.go).

const (
	casePSK   = "interop pre-shared key, long enough to be a real one"
	brokenPSK = "the wrong key: strongSwan has another one for this pair"
	// cygRekeyTime is the CHILD_SA rekey_time Cygnet gets when it
	// initiates: there is no control command to rekey on demand, so it
	// rekeys on its own timer (less up to a tenth, RFC 7296 2.8 jitter).
	cygRekeyTime = 4 * time.Second
	// waitTime bounds every wait for a state; far above what it takes.
	waitTime = 20 * time.Second
	// rekeyMargin is how long after its rekey time a CHILD_SA may take to
	// be rekeyed, on a loaded machine.
	rekeyMargin = 6 * time.Second
	pings       = 3
)

// suite is the shared environment of the matrix.
type suite struct {
	env           Env
	cygNS, swanNS *testbed.Netns
	cygIf         string
	charon        *testbed.Charon
	daemon        *testbed.Process
	socket        string
	xdg           string // XDG_CONFIG_HOME for tshark: Cygnet's key log is xdg/wireshark
	dataplane     string // "userspace" or "none" (FeatureDataplane pending)
	capture       *testbed.Capture
	bin           string
	// How Cygnet's rekeys were triggered: `cygnet rekey`, or rekey_time
	// where the daemon does not implement the command.
	rekeyCommand, rekeyTimer atomic.Bool
}

// suiteOptions are what differs between the host's suite and the VM's.
type suiteOptions struct {
	env Env
	// certDir holds the certificates, made beforehand by makeCerts (the
	// VM's, made on the host); "" makes them in Cygnet's namespace
	// directory.
	certDir string
	// xdg is tshark's configuration home, where Cygnet's key log goes; ""
	// is a directory in Cygnet's namespace directory.
	xdg string
}

// cygnetRekey says how Cygnet's rekeys were triggered in the run.
func (s *suite) cygnetRekey() string {
	switch {
	case s.rekeyCommand.Load() && s.rekeyTimer.Load():
		return "`cygnet rekey` or its `rekey_time`"
	case s.rekeyTimer.Load():
		return fmt.Sprintf("its `rekey_time` (%v): the daemon does not implement `cygnet rekey` yet", cygRekeyTime)
	}
	return "`cygnet rekey CONN CHILD`"
}

// cygnetBinary builds ./cmd/cygnet into dir, or returns $CYGNET_INTEROP_BIN
// if set (a binary built elsewhere, e.g. from another checkout).
func cygnetBinary(t *testing.T, dir string) string {
	t.Helper()
	if bin := os.Getenv("CYGNET_INTEROP_BIN"); bin != "" {
		t.Logf("cygnet binary from CYGNET_INTEROP_BIN: %s", bin)
		return bin
	}
	bin := filepath.Join(dir, "cygnet")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/cygnet")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/cygnet: %v\n%s", err, out)
	}
	return bin
}

// TestStrongSwanMatrix runs the host's part of the interop matrix of issue 7
// (every case but the transport-mode ones, which TestStrongSwanMatrixKernel
// runs in the VM) against strongSwan (charon with kernel-libipsec) in
// network namespaces, checks every frame Cygnet sent with tshark, and prints
// the matrix; with -update it records the run and rewrites docs/interop.md.
// It needs root, strongSwan, pki, tshark and ping; it skips without them
// (fails under CYGNET_STRICT=1).
func TestStrongSwanMatrix(t *testing.T) {
	testbed.Require(t, "root", "charon", "swanctl", "pki", "tshark", "ping", "tun")
	start := time.Now()

	plans := plansIn(HostEnv)
	if testing.Short() {
		t.Log("-short: running the broken case and the first four cases only")
		plans = append(plans[:4:4], plans[len(plans)-1])
	}
	s := newSuite(t, plans, suiteOptions{env: HostEnv})
	setupTime := time.Since(start)
	results := s.runCases(t, plans)
	casesTime := time.Since(start) - setupTime

	checkWire(t, s.capture.Stop(t), s.xdg, plans, results)
	total := time.Since(start)

	t.Logf("interop matrix, host (setup %v, cases %v, total %v, data plane %s, Cygnet rekeys by %s):\n%s",
		setupTime.Round(time.Millisecond), casesTime.Round(time.Millisecond), total.Round(time.Millisecond), s.dataplane, s.cygnetRekey(), Text(results))
	checkResults(t, results)
	if *update {
		if testing.Short() {
			t.Fatal("-update with -short would write a partial matrix")
		}
		updateDoc(t, Run{Env: HostEnv, Results: results, Total: total, Setup: setupTime, Cases: casesTime,
			Dataplane: s.dataplane, Parallel: defaultParallel, CygnetRekey: s.cygnetRekey()})
	}
}

// plansIn lays out the cases of the matrix that run in env.
func plansIn(env Env) []Plan {
	var plans []Plan
	for _, c := range CasesIn(env, AllCases()) {
		plans = append(plans, NewPlan(c))
	}
	return plans
}

// runCases runs every plan's case in parallel and returns their results.
func (s *suite) runCases(t *testing.T, plans []Plan) []Result {
	results := make([]Result, len(plans))
	t.Run("cases", func(t *testing.T) {
		for i, p := range plans {
			results[i] = Result{Case: p.Case, Env: s.env}
			t.Run(p.Case.Name(), func(t *testing.T) {
				t.Parallel()
				s.runCase(t, p, &results[i])
			})
		}
	})
	return results
}

// checkResults fails the test for every problem Check finds, and logs the
// broken case's failure.
func checkResults(t *testing.T, results []Result) {
	t.Helper()
	mustSay := map[int][]string{}
	for _, r := range results {
		if r.Case.ExpectFailure != "" {
			mustSay[r.Case.ID] = brokenReasons
		}
	}
	for _, problem := range Check(results, mustSay) {
		t.Error(problem)
	}
	for _, r := range results {
		if st, why := Verdict(r); r.Case.ExpectFailure != "" && st == Fail {
			t.Logf("the broken case %s failed (Check verifies the reasons): %s", r.Case.Name(), why)
		}
	}
}

// updateDoc records run in testdata and renders docs/interop.md from it and
// the latest recorded run of the other environment.
func updateDoc(t *testing.T, run Run) {
	t.Helper()
	run.Date = time.Now().UTC().Format(time.DateOnly)
	if err := writeRun(runFile(run.Env), run); err != nil {
		t.Fatal(err)
	}
	runs := []Run{run}
	for _, env := range []Env{HostEnv, VMEnv} {
		if env == run.Env {
			continue
		}
		other, err := readRun(runFile(env))
		if err != nil {
			t.Logf("no recorded run in the %s (%v): its cases show as not run", env.Name, err)
			continue
		}
		runs = append(runs, other)
	}
	if err := os.WriteFile("../docs/interop.md", []byte(renderDoc(runs)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s and ../docs/interop.md", runFile(run.Env))
}

// brokenReasons must appear in the broken case's failure: Cygnet's one-line
// reason and strongSwan's log line.
var brokenReasons = []string{"AUTHENTICATION_FAILED", "MAC mismatched"}

func newSuite(t *testing.T, plans []Plan, opts suiteOptions) *suite {
	t.Helper()
	start := time.Now()
	s := &suite{env: opts.env}
	s.cygNS, s.swanNS = testbed.NewNetns(t, "icyg"), testbed.NewNetns(t, "iswan")
	var cygAddrs, swanAddrs []netip.Prefix
	for _, p := range plans {
		bits := 24
		if p.CygOuter.Is6() {
			bits = 64
		}
		cygAddrs = append(cygAddrs, netip.PrefixFrom(p.CygOuter, bits))
		swanAddrs = append(swanAddrs, netip.PrefixFrom(p.SwanOuter, bits))
	}
	s.cygIf, _ = testbed.Link(t, s.cygNS, s.swanNS, cygAddrs, swanAddrs)
	for _, p := range plans {
		for _, a := range p.SwanInner {
			s.swanNS.AddAddr(t, "lo", netip.PrefixFrom(a, a.BitLen()))
		}
		for _, a := range p.CygInner {
			if a != p.CygOuter {
				s.cygNS.AddAddr(t, "lo", netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	// Frames are recorded from before the daemon starts until checkWire.
	s.capture = testbed.StartCapture(t, s.cygNS, s.cygIf)

	// Certificates: the CA hierarchies, then each case's pair.
	var (
		pki   *suitePKI
		certs map[int]caseCerts
		err   error
	)
	if opts.certDir != "" {
		pki, certs, err = existingCerts(opts.certDir, plans)
	} else {
		pkiDir := filepath.Join(s.cygNS.Dir(), "pki")
		if err := os.Mkdir(pkiDir, 0o700); err != nil {
			t.Fatal(err)
		}
		pki, certs, err = makeCerts(pkiDir, plans)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("namespaces and certificates ready after %v", time.Since(start).Round(time.Millisecond))

	// strongSwan.
	var conns, secrets strings.Builder
	for _, p := range plans {
		cert := ""
		if certs[p.Case.ID].swan != "" {
			cert = p.SwanID + ".crt"
		}
		conns.WriteString(p.SwanConnection(cert))
		psk := casePSK
		if p.Case.ExpectFailure != "" {
			psk = brokenPSK // Cygnet has casePSK: the broken case
		}
		secrets.WriteString(p.SwanSecret(psk))
	}
	files, err := pki.charonFiles(certs, plans)
	if err != nil {
		t.Fatal(err)
	}
	plugins := testbed.DefaultPlugins // kernel-libipsec
	if opts.env.Backend == BackendNetlink {
		plugins = testbed.KernelPlugins
	}
	s.charon = testbed.StartCharon(t, s.swanNS, testbed.CharonConfig{
		Swanctl: "connections {\n" + conns.String() + "}\nsecrets {\n" + secrets.String() + "}\n",
		Files:   files,
		Plugins: append(slices.Clone(plugins), "chapoly"),
		// Many SAs at once, no cookies, no IKE SA reuse between cases.
		ExtraStrongswanConf: "charon {\n\tdos_protection = no\n\tthreads = 32\n}",
	})

	t.Logf("charon ready after %v", time.Since(start).Round(time.Millisecond))

	// Cygnet.
	s.bin = cygnetBinary(t, s.cygNS.Dir())
	t.Logf("cygnet built after %v", time.Since(start).Round(time.Millisecond))
	dir := s.cygNS.Dir()
	s.socket = filepath.Join(dir, "cygnet.sock")
	s.xdg = opts.xdg
	if s.xdg == "" {
		s.xdg = filepath.Join(dir, "xdg")
	}
	var cconns, csecrets strings.Builder
	for _, p := range plans {
		rekey := ""
		if p.Case.Direction == CygnetInitiates {
			rekey = cygRekeyTime.String()
		}
		cconns.WriteString(p.CygnetConnection(pki.cygnetCredentials(p, certs[p.Case.ID]), rekey))
		csecrets.WriteString(p.CygnetSecret(casePSK))
	}
	conf := func(dataplane string) string {
		return fmt.Sprintf("daemon:\n  socket: %q\n  dataplane: %s\n  keylog: %q\n  log: {level: debug}\n"+
			"secrets:\n%sconnections:\n%s", s.socket, dataplane, filepath.Join(s.xdg, "wireshark"), csecrets.String(), cconns.String())
	}
	cfgPath := filepath.Join(dir, "cygnet.yaml")
	s.dataplane = "userspace"
	for {
		if err := os.WriteFile(cfgPath, []byte(conf(s.dataplane)), 0o600); err != nil {
			t.Fatal(err)
		}
		proc := s.cygNS.Start(t, "cygnet-"+s.dataplane, testbed.StartOptions{}, s.bin, "daemon", "-c", cfgPath)
		if s.waitDaemon(t, proc) {
			s.daemon = proc
			t.Logf("cygnet daemon ready after %v", time.Since(start).Round(time.Millisecond))
			break
		}
		out := proc.Output()
		// Before the data plane is wired in, daemon.New refuses it as "not
		// available yet" (and, in the tree this suite was written against,
		// then panics in its cleanup of the half-built daemon: reported).
		refused := strings.Contains(out, "is not available yet") ||
			strings.Contains(out, "panic:") && strings.Contains(out, "daemon.(*Daemon).closeResources")
		if s.dataplane == "userspace" && refused && !Landed[FeatureDataplane] {
			t.Logf("pending: %s (the daemon with dataplane: userspace: %s); running with dataplane: none", FeatureDataplane, firstLine(out))
			s.dataplane = "none"
			continue
		}
		t.Fatalf("cygnet daemon with dataplane %s did not start:\n%s", s.dataplane, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cygnet daemon log: %s", s.daemon.LogPath)
		}
	})
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// waitDaemon waits until the daemon answers on its control socket (true) or
// exits (false).
func (s *suite) waitDaemon(t *testing.T, p *testbed.Process) bool {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for time.Now().Before(deadline) {
		if _, err := s.status(); err == nil {
			return true
		}
		if ok, _ := p.Exited(); ok {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cygnet daemon did not answer on %s within %v:\n%s", s.socket, waitTime, p.Output())
	return false
}

// cli runs the cygnet command line (in this process: the CLI is a thin
// client of the control socket) and returns its exit code and output.
func (s *suite) cli(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = control.RunCLI(append([]string{"-s", s.socket}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func (s *suite) status() (*control.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := control.DialContext(ctx, s.socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Status(ctx)
}

// cygSA returns Cygnet's IKE SA of conn, if any.
func (s *suite) cygSA(conn string) (control.IKESA, bool, error) {
	st, err := s.status()
	if err != nil {
		return control.IKESA{}, false, err
	}
	for _, sa := range st.IKESAs {
		if sa.Connection == conn {
			return sa, true, nil
		}
	}
	return control.IKESA{}, false, nil
}

func cygChild(sa control.IKESA, name string) (control.ChildSA, bool) {
	for _, c := range sa.ChildSAs {
		if c.Name == name {
			return c, true
		}
	}
	return control.ChildSA{}, false
}

// waitCyg polls Cygnet's status until pred holds for conn's IKE SA (ok is
// false when there is none) and returns it, or an error after waitTime.
func (s *suite) waitCyg(what string, conn string, pred func(sa control.IKESA, ok bool) bool) (control.IKESA, error) {
	deadline := time.Now().Add(waitTime)
	for {
		sa, ok, err := s.cygSA(conn)
		if err == nil && pred(sa, ok) {
			return sa, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return sa, fmt.Errorf("cygnet: %s: %v", what, err)
			}
			return sa, fmt.Errorf("cygnet: no %s within %v; its IKE SA: %+v", what, waitTime, sa)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSwan polls charon's SAs until pred holds, or returns an error after
// waitTime.
func (s *suite) waitSwan(t *testing.T, what string, pred func([]testbed.SA) bool) ([]testbed.SA, error) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for {
		sas := s.charon.ListSAs(t)
		if pred(sas) {
			return sas, nil
		}
		if time.Now().After(deadline) {
			return sas, fmt.Errorf("strongSwan: no %s within %v; its SAs:\n%s", what, waitTime, testbed.FormatSAs(sas))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// swanLog returns the lines of charon's log about connection conn (charon
// prefixes them with "<conn|n>").
func (s *suite) swanLog(conn string) []string {
	var lines []string
	for _, l := range strings.Split(s.charon.Log(), "\n") {
		if strings.Contains(l, "<"+conn+"|") {
			lines = append(lines, l)
		}
	}
	return lines
}

// swanLogLine returns the first line of charon's log about conn containing
// substr, without its time and thread prefix, or "".
func (s *suite) swanLogLine(conn, substr string) string {
	for _, l := range s.swanLog(conn) {
		if strings.Contains(l, substr) {
			if i := strings.Index(l, "<"+conn+"|"); i >= 0 {
				l = l[i:]
			}
			return strings.TrimSpace(l)
		}
	}
	return ""
}
