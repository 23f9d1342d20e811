package tunnelbench

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

var (
	runBench = flag.Bool("tunnelbench", false, "run TestThroughput (root, ip, iperf3, TUN; charon for the strongSwan rows)")
	seconds  = flag.Int("seconds", 10, "seconds per iperf3 run")
	repeat   = flag.Int("repeat", 1, "runs per cell; a cell shows the median and the range")
	suite    = flag.String("suite", "aes256gcm16", "ESP proposal of every row (strongSwan syntax; esppeer knows aes128gcm16, aes256gcm16, chacha20poly1305, aes128-sha256, aes256-sha256)")
	withUDP  = flag.Bool("udp", false, "also iperf3 UDP at full rate (-b 0), left to right")
	rowList  = flag.String("rows", "swan-swan,cygnet-swan,cygnet-cygnet", "rows, comma-separated; swan-swan is the baseline")
	steps    = flag.Bool("steps", false, "also the esppeer rows that add the offloads one by one")
	cygnetF  = flag.String("cygnet", "", "the cygnet binary (empty: build ./cmd/cygnet)")
	esppeerF = flag.String("esppeer", "", "the esppeer binary (empty: build ./bench/esppeer)")
	profDir  = flag.String("profile", "", "write CPU profiles of the esppeer ends here")
	outFile  = flag.String("out", "", "also write the table to this file")
	command  = flag.String("command", "", "the command line to print above the table")
)

// stepRows are the esppeer rows of -steps, in the order the offloads came.
var stepRows = []string{"esppeer-plain", "esppeer-udpgso", "esppeer-tso", "esppeer-tso-udpgso"}

// The addresses of every row: outer on the veth pair, inner on lo.
var (
	outerL, outerR = netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24")
	innerL, innerR = netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")
	netL, netR     = "10.1.0.0/16", "10.2.0.0/16"
)

const psk = "cygnet tunnelbench secret, long enough"

// pair is one row's two namespaces.
type pair struct {
	left, right *testbed.Netns
	// label replaces the row's label when the row had to fall back.
	label string
	// profile is where esppeer writes CPU profiles ("" for none), with
	// "left" or "right" appended.
	profile string
}

type row struct {
	name, label string
	start       func(t *testing.T, p *pair)
}

// result holds one row's measurements in Mbit/s.
type result struct {
	label               string
	tcpLR, tcpRL, udpLR []float64
	load                []float64 // 1-minute load averages seen before and after runs
	failed              bool
}

func rows() map[string]row {
	esp := func(name, label string, args ...string) row {
		return row{name, label, func(t *testing.T, p *pair) { startEsppeer(t, p, args...) }}
	}
	return map[string]row{
		"swan-swan":          {"swan-swan", "strongSwan -> strongSwan (kernel-libipsec)", startSwanSwan},
		"cygnet-swan":        {"cygnet-swan", "Cygnet -> strongSwan (cygnet daemon, userspace)", startCygnetSwan},
		"cygnet-cygnet":      {"cygnet-cygnet", "Cygnet -> Cygnet (cygnet daemon, userspace)", startCygnetCygnet},
		"esppeer-plain":      esp("esppeer-plain", "Cygnet -> Cygnet (esppeer, no offloads)", "-offload=false", "-udp-offload=false"),
		"esppeer-udpgso":     esp("esppeer-udpgso", "Cygnet -> Cygnet (esppeer, UDP GSO/GRO)", "-offload=false", "-udp-offload=true"),
		"esppeer-tso":        esp("esppeer-tso", "Cygnet -> Cygnet (esppeer, TUN TSO/GRO)", "-offload=true", "-udp-offload=false"),
		"esppeer-tso-udpgso": esp("esppeer-tso-udpgso", "Cygnet -> Cygnet (esppeer, TUN TSO/GRO, UDP GSO/GRO)", "-offload=true", "-udp-offload=true"),
	}
}

// TestThroughput measures the rows and prints the table. It runs only with
// -tunnelbench: it takes minutes and needs root.
func TestThroughput(t *testing.T) {
	if !*runBench {
		t.Skip("the throughput table runs with -tunnelbench (see bench/esp-throughput.sh)")
	}
	testbed.Require(t, "root", "ip", "tun", "iperf3")
	defs := rows()
	names := strings.Split(*rowList, ",")
	if *steps {
		names = append(names, stepRows...)
	}
	var order []row
	for _, n := range names {
		r, ok := defs[strings.TrimSpace(n)]
		if !ok {
			t.Fatalf("unknown row %q", n)
		}
		order = append(order, r)
	}
	results := make(map[string]*result)
	for _, r := range order {
		results[r.name] = &result{label: r.label}
	}
	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	// Rows interleave across repetitions, so that a burst of load from
	// elsewhere spreads over them rather than sinking one.
	for rep := range *repeat {
		for _, r := range order {
			res := results[r.name]
			t.Run(fmt.Sprintf("%s/%d", r.name, rep+1), func(t *testing.T) {
				defer func() { res.failed = res.failed || t.Failed() }()
				res.load = append(res.load, loadavg())
				p := newPair(t)
				if *profDir != "" {
					p.profile = filepath.Join(*profDir, fmt.Sprintf("%s-%d-", r.name, rep+1))
				}
				r.start(t, p)
				if p.label != "" {
					res.label = p.label
				}
				// l->r: the left namespace sends.
				res.tcpLR = append(res.tcpLR, testbed.Iperf3(t, p.right, p.left, innerR, *seconds, false)/1e6)
				res.tcpRL = append(res.tcpRL, testbed.Iperf3(t, p.left, p.right, innerL, *seconds, false)/1e6)
				if *withUDP {
					res.udpLR = append(res.udpLR, testbed.Iperf3(t, p.right, p.left, innerR, *seconds, true)/1e6)
				}
				res.load = append(res.load, loadavg())
				t.Logf("%s: TCP l->r %.0f, r->l %.0f Mbit/s", r.name, res.tcpLR[len(res.tcpLR)-1], res.tcpRL[len(res.tcpRL)-1])
			})
		}
	}
	table := formatTable(order, results, start)
	fmt.Print(table)
	if *outFile != "" {
		if err := os.WriteFile(*outFile, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{left: testbed.NewNetns(t, "tbl"), right: testbed.NewNetns(t, "tbr")}
	testbed.Link(t, p.left, p.right, []netip.Prefix{outerL}, []netip.Prefix{outerR})
	p.left.AddAddr(t, "lo", netip.PrefixFrom(innerL, 32))
	p.right.AddAddr(t, "lo", netip.PrefixFrom(innerR, 32))
	return p
}

// --- strongSwan ---

const swanctlConf = `connections {
	bench {
		version = 2
		local_addrs = %s
		remote_addrs = %s
		proposals = aes256gcm16-prfsha256-x25519
		# With kernel-libipsec a route change looks like a roam to MOBIKE.
		mobike = no
		local {
			auth = psk
			id = %s
		}
		remote {
			auth = psk
			id = %s
		}
		children {
			net {
				local_ts = %s
				remote_ts = %s
				esp_proposals = %s
				mode = tunnel
			}
		}
	}
}
secrets {
	ike-bench {
		id-1 = left.test
		id-2 = right.test
		secret = "` + psk + `"
	}
}
`

func startCharon(t *testing.T, ns *testbed.Netns, left bool) *testbed.Charon {
	t.Helper()
	testbed.Require(t, "charon", "swanctl")
	conf := fmt.Sprintf(swanctlConf, outerL.Addr(), outerR.Addr(), "left.test", "right.test", netL, netR, *suite)
	if !left {
		conf = fmt.Sprintf(swanctlConf, outerR.Addr(), outerL.Addr(), "right.test", "left.test", netR, netL, *suite)
	}
	return testbed.StartCharon(t, ns, testbed.CharonConfig{Swanctl: conf, LogLevel: 1})
}

func startSwanSwan(t *testing.T, p *pair) {
	l, r := startCharon(t, p.left, true), startCharon(t, p.right, false)
	if err := l.Initiate(t, "bench", "net"); err != nil {
		t.Fatal(err)
	}
	r.WaitSA(t, testbed.Established("bench", "net"), 5*time.Second)
}

// --- Cygnet ---

const cygnetConf = `daemon:
  listen: [%s]
  socket: %s
  dataplane: userspace
  log: {level: info}
secrets:
  - ids: [left.test, right.test]
    psk: "` + psk + `"
connections:
  bench:
    local_addrs: [%s]
    remote_addrs: [%s]
    proposals: [aes256gcm16-prfsha256-x25519]
    encap: true
    local: {auth: psk, id: %s}
    remote: {auth: psk, id: %s}
    children:
      net: {local_ts: [%s], remote_ts: [%s], esp_proposals: [%s]}
`

// errNoUserspace: this cygnet has no userspace data plane yet.
var errNoUserspace = fmt.Errorf("cygnet daemon has no userspace data plane")

// cygnetDaemon is a running `cygnet daemon`.
type cygnetDaemon struct {
	ns     *testbed.Netns
	bin    string
	socket string
}

func (d *cygnetDaemon) cli(args ...string) (string, error) {
	return d.ns.Exec(d.bin, append([]string{"-s", d.socket}, args...)...)
}

// startCygnet starts `cygnet daemon` in ns and waits until it answers on its
// control socket.
func startCygnet(t *testing.T, ns *testbed.Netns, left bool) (*cygnetDaemon, error) {
	t.Helper()
	bin := binary(t, *cygnetF, "./cmd/cygnet")
	d := &cygnetDaemon{ns: ns, bin: bin, socket: filepath.Join(ns.Dir(), "cygnet.sock")}
	local, remote, lid, rid, lts, rts := outerL.Addr(), outerR.Addr(), "left.test", "right.test", netL, netR
	if !left {
		local, remote, lid, rid, lts, rts = remote, local, rid, lid, rts, lts
	}
	cfg := filepath.Join(ns.Dir(), "cygnet.yaml")
	text := fmt.Sprintf(cygnetConf, local, d.socket, local, remote, lid, rid, lts, rts, *suite)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := ns.Start(t, "cygnet["+ns.Name+"]", testbed.StartOptions{}, bin, "daemon", "-c", cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := d.cli("status"); err == nil {
			return d, nil
		}
		if ok, err := proc.Exited(); ok {
			if out := proc.Output(); strings.Contains(out, "not available") {
				return nil, errNoUserspace
			}
			t.Fatalf("cygnet daemon exited (%v):\n%s", err, proc.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("cygnet daemon does not answer on %s:\n%s", d.socket, proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *cygnetDaemon) up(t *testing.T) {
	t.Helper()
	if out, err := d.cli("up", "bench"); err != nil {
		t.Fatalf("cygnet up bench: %v\n%s", err, out)
	}
}

func startCygnetSwan(t *testing.T, p *pair) {
	c := startCharon(t, p.right, false)
	d, err := startCygnet(t, p.left, true)
	if err != nil {
		t.Skip(err)
	}
	d.up(t)
	c.WaitSA(t, testbed.Established("bench", "net"), 5*time.Second)
}

func startCygnetCygnet(t *testing.T, p *pair) {
	l, err := startCygnet(t, p.left, true)
	if err == errNoUserspace {
		p.label = "Cygnet -> Cygnet (bench/esppeer, fixed keys: no daemon data plane yet)"
		startEsppeer(t, p, "-offload=true", "-udp-offload=true")
		return
	}
	r, err := startCygnet(t, p.right, false)
	if err != nil {
		t.Fatal(err)
	}
	l.up(t)
	if out, err := r.cli("status"); err != nil || !strings.Contains(out, "INSTALLED") {
		t.Fatalf("right side has no CHILD_SA: %v\n%s", err, out)
	}
}

// startEsppeer starts bench/esppeer in both namespaces: a fixed-key tunnel
// (no IKE) over the transport's NAT-T socket.
func startEsppeer(t *testing.T, p *pair, extra ...string) {
	bin := binary(t, *esppeerF, "./bench/esppeer")
	start := func(ns *testbed.Netns, side string, local, remote netip.Addr, lts, rts string) {
		args := []string{bin, "-side", side, "-local", local.String(), "-remote", remote.String(),
			"-local-ts", lts, "-remote-ts", rts, "-suite", *suite}
		if p.profile != "" {
			args = append(args, "-cpuprofile", p.profile+side+".pprof")
		}
		proc := ns.Start(t, "esppeer["+ns.Name+"]", testbed.StartOptions{}, append(args, extra...)...)
		proc.WaitOutput(t, "ready", 10*time.Second)
	}
	start(p.left, "a", outerL.Addr(), outerR.Addr(), netL, netR)
	start(p.right, "b", outerR.Addr(), outerL.Addr(), netR, netL)
}

// --- helpers ---

var (
	buildMu  sync.Mutex
	builtDir string
	built    = map[string]string{}
)

// binary returns path if set, else builds pkg (relative to the module root)
// once per test binary.
func binary(t *testing.T, path, pkg string) string {
	t.Helper()
	if path != "" {
		return path
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[pkg]; ok {
		return b
	}
	if builtDir == "" {
		dir, err := os.MkdirTemp("", "tunnelbench-")
		if err != nil {
			t.Fatal(err)
		}
		builtDir = dir
	}
	out := filepath.Join(builtDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = "../.." // the module root, from bench/tunnelbench
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// loadavg returns the 1-minute load average.
func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func cell(v []float64) string {
	switch len(v) {
	case 0:
		return "-"
	case 1:
		return fmt.Sprintf("%.0f", v[0])
	}
	return fmt.Sprintf("%.0f (%.0f-%.0f)", median(v), slices.Min(v), slices.Max(v))
}

func ratio(v, base []float64) string {
	if len(v) == 0 || len(base) == 0 || median(base) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", median(v)/median(base))
}

func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	kernel := "?"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Release[:])
	}
	return fmt.Sprintf("%d CPUs (%s), Linux %s", runtime.NumCPU(), cpu, kernel)
}

func formatTable(order []row, results map[string]*result, start time.Time) string {
	var b strings.Builder
	cmd := *command
	if cmd == "" {
		cmd = "go test ./bench/tunnelbench -run TestThroughput -args " + strings.Join(os.Args[1:], " ")
	}
	fmt.Fprintf(&b, "\nESP throughput through tunnels between two namespaces (iperf3, Mbit/s received)\n")
	fmt.Fprintf(&b, "date: %s, took %s\n", start.UTC().Format(time.RFC3339), time.Since(start).Round(time.Second))
	fmt.Fprintf(&b, "machine: %s\n", machine())
	fmt.Fprintf(&b, "command: %s\n", cmd)
	fmt.Fprintf(&b, "ESP %s, IKE aes256gcm16-prfsha256-x25519, ESP in UDP; %d s per run, %d run(s) per cell", *suite, *seconds, *repeat)
	if *repeat > 1 {
		fmt.Fprintf(&b, " (median and range)")
	}
	fmt.Fprintf(&b, "; l->r: the left (initiating) end sends\n\n")

	base := results["swan-swan"]
	hdr := []string{"tunnel", "TCP l->r", "TCP r->l"}
	if *withUDP {
		hdr = append(hdr, "UDP l->r")
	}
	hdr = append(hdr, "ratio TCP l->r", "ratio TCP r->l", "load avg (1 min)")
	var lines [][]string
	for _, r := range order {
		res := results[r.name]
		line := []string{res.label, cell(res.tcpLR), cell(res.tcpRL)}
		if *withUDP {
			line = append(line, cell(res.udpLR))
		}
		if base != nil {
			line = append(line, ratio(res.tcpLR, base.tcpLR), ratio(res.tcpRL, base.tcpRL))
		} else {
			line = append(line, "-", "-")
		}
		load := "-"
		if len(res.load) > 0 {
			load = fmt.Sprintf("%.1f-%.1f", slices.Min(res.load), slices.Max(res.load))
		}
		line = append(line, load)
		if res.failed && len(res.tcpLR) < *repeat {
			line[0] += " (failed or skipped runs)"
		}
		lines = append(lines, line)
	}
	widths := make([]int, len(hdr))
	for i, h := range hdr {
		widths[i] = len(h)
	}
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], len(c))
		}
	}
	row := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			if i == 0 {
				fmt.Fprintf(&b, " %-*s |", widths[i], c)
			} else {
				fmt.Fprintf(&b, " %*s |", widths[i], c)
			}
		}
		b.WriteString("\n")
	}
	row(hdr)
	b.WriteString("|")
	for i, w := range widths {
		if i == 0 {
			b.WriteString(strings.Repeat("-", w+2) + "|")
		} else {
			b.WriteString(strings.Repeat("-", w+1) + ":|")
		}
	}
	b.WriteString("\n")
	for _, l := range lines {
		row(l)
	}
	return b.String()
}
