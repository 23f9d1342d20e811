package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// netnsPrefix starts the name of every namespace the harness creates; the name
// ends in the creating test binary's pid and a counter ("cygtb-left-4242-7"),
// so parallel tests and parallel `go test` binaries never collide, and Sweep
// can tell which namespaces belong to binaries that no longer run.
const netnsPrefix = "cygtb-"

var (
	netnsCounter atomic.Uint64
	linkCounter  atomic.Uint64
	sweepOnce    sync.Once
	prefixRE     = regexp.MustCompile(`^[a-z0-9]{0,16}$`)
	netnsNameRE  = regexp.MustCompile(`^` + netnsPrefix + `[a-z0-9]*-([0-9]+)-[0-9]+$`)
)

// Netns is a network namespace created for one test. Programs run inside it
// through `ip netns exec`, which also gives each one a private mount namespace.
type Netns struct {
	Name string
	dir  string // scratch directory for this namespace's files (logs, configs)
}

// NewNetns creates a network namespace with a unique name built from prefix
// (lower-case letters and digits, at most 16), brings its loopback up, and
// registers a cleanup that kills every process still inside it and deletes it.
// The first call in a test binary also sweeps namespaces left by dead binaries.
func NewNetns(t testing.TB, prefix string) *Netns {
	t.Helper()
	Require(t, "root", "ip")
	if !prefixRE.MatchString(prefix) {
		t.Fatalf("testbed: netns prefix %q: want at most 16 of [a-z0-9]", prefix)
	}
	sweepOnce.Do(func() {
		if err := Sweep(); err != nil {
			t.Logf("testbed: sweeping stale namespaces: %v", err)
		}
	})
	n := &Netns{Name: fmt.Sprintf("%s%s-%d-%d", netnsPrefix, prefix, os.Getpid(), netnsCounter.Add(1))}
	dir, err := os.MkdirTemp("", n.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	n.dir = dir
	t.Cleanup(func() {
		if os.Getenv("CYGNET_TESTBED_KEEP") != "" {
			t.Logf("testbed: keeping %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	if _, err := run(context.Background(), "ip", "netns", "add", n.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := deleteNetns(n.Name); err != nil {
			t.Error(err)
		}
	})
	n.Run(t, "ip", "link", "set", "lo", "up")
	return n
}

// Dir is a scratch directory that lives as long as the namespace; logs and
// configuration files of programs run inside it go here.
func (n *Netns) Dir() string { return n.dir }

// deleteNetns kills whatever still runs inside the namespace, waits for it to
// go, and deletes the namespace. Deleting it with processes inside would only
// remove its name: the namespace and its interfaces would live on.
func deleteNetns(name string) error {
	deadline := time.Now().Add(killTimeout)
	for {
		out, err := run(context.Background(), "ip", "netns", "pids", name)
		if err != nil {
			return err
		}
		var live []int
		for _, f := range strings.Fields(out) {
			pid, err := strconv.Atoi(f)
			if err == nil && pidAlive(pid) {
				live = append(live, pid)
			}
		}
		if len(live) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: processes %v in namespace %s survived SIGKILL", live, name)
		}
		for _, pid := range live {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := run(context.Background(), "ip", "netns", "del", name)
	return err
}

func listNetns() ([]string, error) {
	out, err := run(context.Background(), "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		// "name" or "name (id: 3)"
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// netnsOwner returns the pid of the test binary that created a harness namespace.
func netnsOwner(name string) (int, bool) {
	m := netnsNameRE.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	return pid, err == nil
}

// Sweep deletes harness namespaces whose creating test binary is no longer
// running (it was killed before its cleanups ran), killing what still runs
// in them. Namespaces of live binaries are left alone.
func Sweep() error {
	names, err := listNetns()
	if err != nil {
		return err
	}
	var errs []string
	for _, name := range names {
		pid, ok := netnsOwner(name)
		if !ok || pidAlive(pid) {
			continue
		}
		if err := deleteNetns(name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("testbed: sweep: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Command returns a command that runs name inside n. It carries the harness's
// owner marker and dies with the test binary; the caller runs and waits for it.
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return execCommand(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs name inside n with a bounded time, fails the test on error, and
// returns the combined output.
func (n *Netns) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := n.Exec(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Exec is Run without the test: it returns the error instead.
func (n *Netns) Exec(name string, args ...string) (string, error) {
	return run(context.Background(), "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// StartOptions adjust Netns.Start.
type StartOptions struct {
	// Env is added to the program's environment.
	Env []string
	// PrivateRun mounts an empty tmpfs over /run (and so /var/run) for the
	// program. charon hard-codes /var/run/charon.pid and refuses to start when
	// another instance's pid file is there; with a private /run each namespace
	// can run its own.
	PrivateRun bool
}

// Start runs argv inside n as a long-lived Process whose output is logged in
// n.Dir(); the cleanup stops it (see StartProcess).
func (n *Netns) Start(t testing.TB, name string, opts StartOptions, argv ...string) *Process {
	t.Helper()
	if len(argv) == 0 {
		t.Fatal("testbed: Start: no program")
	}
	if opts.PrivateRun {
		// `ip netns exec` already unshares the mount namespace (and makes "/"
		// a slave); unshare -m makes the tmpfs private whatever ip does.
		argv = append([]string{"unshare", "--mount", "--propagation", "private", "--",
			"sh", "-c", `mount -t tmpfs -o mode=0755 cygtb-run /run && exec "$0" "$@"`}, argv...)
	}
	cmd := n.Command(context.Background(), argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, opts.Env...)
	return StartProcess(t, name, n.dir, cmd)
}

// Link joins a and b with a veth pair, assigns the addresses (IPv6 ones with
// nodad, so they are usable at once), and brings both ends up. It returns the
// interface names in a and in b.
func Link(t testing.TB, a, b *Netns, aAddrs, bAddrs []netip.Prefix) (aIf, bIf string) {
	t.Helper()
	if a == b {
		t.Fatal("testbed: Link: a namespace cannot be linked to itself")
	}
	id := linkCounter.Add(1)
	aIf, bIf = fmt.Sprintf("tb%da", id), fmt.Sprintf("tb%db", id)
	// Both ends are created directly in their namespaces, so names only need
	// to be unique per namespace.
	if _, err := run(context.Background(), "ip", "link", "add", aIf, "netns", a.Name,
		"type", "veth", "peer", "name", bIf, "netns", b.Name); err != nil {
		t.Fatal(err)
	}
	// Links up first: IPv6 routes with a source fail while the link is down.
	a.ip(t, "link", "set", aIf, "up")
	b.ip(t, "link", "set", bIf, "up")
	for _, p := range aAddrs {
		a.AddAddr(t, aIf, p)
	}
	for _, p := range bAddrs {
		b.AddAddr(t, bIf, p)
	}
	return aIf, bIf
}

func (n *Netns) ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := run(context.Background(), "ip", append([]string{"-n", n.Name}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// AddAddr assigns p to dev inside n (IPv6 with nodad). The kernel here has no
// dummy links: put tunnel inner addresses on "lo".
func (n *Netns) AddAddr(t testing.TB, dev string, p netip.Prefix) {
	t.Helper()
	args := []string{"addr", "add", p.String(), "dev", dev}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	n.ip(t, args...)
}

var pingStatsRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// Ping pings dst from src inside n until count echo replies have arrived or
// a deadline of count*interval plus 3 s has passed (iputils `ping -c -w`), and
// returns how many requests it sent and how many replies came. So received ==
// count means success; sent may exceed count when replies were slow, and
// sent - received counts requests still in flight, not only losses. Loss is not
// a test failure: the caller decides.
func (n *Netns) Ping(t testing.TB, src, dst netip.Addr, count int, interval time.Duration) (sent, received int) {
	t.Helper()
	if count < 1 {
		count = 1
	}
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	deadline := time.Duration(count)*interval + 3*time.Second
	args := []string{"-n", "-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64),
		"-W", "1", "-w", strconv.Itoa(int(deadline.Seconds()) + 1),
		"-I", src.String(), dst.String()}
	ctx, cancel := context.WithTimeout(context.Background(), deadline+5*time.Second)
	defer cancel()
	out, err := n.Command(ctx, "ping", args...).CombinedOutput()
	m := pingStatsRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("testbed: ping %s -> %s in %s: %v\n%s", src, dst, n.Name, err, out)
	}
	sent, _ = strconv.Atoi(string(m[1]))
	received, _ = strconv.Atoi(string(m[2]))
	return sent, received
}
