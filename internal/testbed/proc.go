package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ownerEnv marks every process the harness starts with the pid of the test
// binary that started it, so Leftovers can find them (and only them) in /proc.
const ownerEnv = "CYGNET_TESTBED_OWNER"

// Bounds on waits. Each is far above what the operation takes here, so hitting
// one means something is broken, not slow.
const (
	// StopTimeout is how long a process gets between SIGTERM and SIGKILL.
	// charon has been seen to take over a second; here it takes 20-40 ms.
	StopTimeout = 5 * time.Second
	// killTimeout bounds the wait after SIGKILL.
	killTimeout = 5 * time.Second
	// cmdTimeout bounds short helper commands (ip, swanctl, pki, tshark -r).
	cmdTimeout = 30 * time.Second
	// readyTimeout bounds waiting for a daemon to become ready.
	readyTimeout = 15 * time.Second
)

func ownerMarker() string { return ownerEnv + "=" + strconv.Itoa(os.Getpid()) }

// prepare sets what every harness-started process gets: the owner marker,
// and SIGKILL when the test binary dies, so a test killed by `go test
// -timeout` or a signal does not leave daemons behind. (Pdeathsig survives the
// execs of `ip netns exec`, which does not fork, and of `sh -c 'exec ...'`. It
// fires when the forking thread exits; the Go runtime only ends a thread when
// a goroutine exits locked to it, which this package never lets happen.)
func prepare(cmd *exec.Cmd) {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	// One marker only: a test binary started by another harness user (a
	// re-executed test) marks its processes as its own, not its parent's.
	cmd.Env = slices.DeleteFunc(slices.Clone(cmd.Env), func(kv string) bool {
		return strings.HasPrefix(kv, ownerEnv+"=")
	})
	cmd.Env = append(cmd.Env, ownerMarker())
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Bound the wait for output pipes after the process exits, so a grandchild
	// holding them cannot hang cmd.Wait.
	cmd.WaitDelay = 2 * time.Second
}

// execCommand is exec.CommandContext with the harness's marker and death signal.
func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	prepare(cmd)
	return cmd
}

// run executes cmd with a bounded time and returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := execCommand(ctx, name, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (after %v)", ctx.Err(), cmdTimeout)
		}
		return string(out), fmt.Errorf("testbed: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Process is a long-running program started by the harness (charon, cygnet
// daemon, a capture, an iperf3 server). Its stdout and stderr go to a log file.
type Process struct {
	Name    string // for messages, e.g. "charon[left]"
	LogPath string // stdout+stderr

	cmd     *exec.Cmd
	done    chan struct{}
	err     error // set before done is closed
	stopMu  sync.Mutex
	stopped bool
}

// StartProcess starts cmd (built by Netns.Command or exec.Command), logging its
// output to a file in dir, and registers a cleanup that stops it (SIGTERM, a
// bounded wait, then SIGKILL) and, if the test failed, logs the tail of its output.
func StartProcess(t testing.TB, name, dir string, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := startProcess(name, dir, cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("%v", err)
		}
		if out := p.Output(); t.Failed() && out != "" {
			t.Logf("last lines of %s output (%s):\n%s", p.Name, p.LogPath, tail(out, 40))
		}
	})
	return p
}

func startProcess(name, dir string, cmd *exec.Cmd) (*Process, error) {
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == '[' || r == ']' {
			return '_'
		}
		return r
	}, name)
	f, err := os.CreateTemp(dir, safe+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", name, err)
	}
	prepare(cmd)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("testbed: start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: f.Name(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its error if so.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Output returns what the process has written so far.
func (p *Process) Output() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// WaitOutput waits up to timeout until the process's output contains substr
// (a daemon's "listening" line, say). It fails the test if the process exits
// first or the time runs out, showing the output.
func (p *Process) WaitOutput(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output(), substr) {
		if ok, err := p.Exited(); ok {
			t.Fatalf("testbed: %s exited (%v) before printing %q:\n%s", p.Name, err, substr, tail(p.Output(), 20))
		}
		if time.Now().After(deadline) {
			t.Fatalf("testbed: %s did not print %q within %v:\n%s", p.Name, substr, timeout, tail(p.Output(), 20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Signal sends sig to the process if it is still running.
func (p *Process) Signal(sig os.Signal) error {
	if ok, _ := p.Exited(); ok {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit by itself and returns its
// exit error (nil for status 0).
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("testbed: %s still running after %v", p.Name, timeout)
	}
}

// Stop sends SIGTERM, waits up to StopTimeout, then sends SIGKILL and waits
// again. It is idempotent; the exit status of a terminated process is not an error.
func (p *Process) Stop() error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	if ok, _ := p.Exited(); ok {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(StopTimeout):
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("testbed: %s (pid %d) survived SIGKILL for %v", p.Name, p.Pid(), killTimeout)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Leftovers lists what this test binary created and has not cleaned up: its
// network namespaces and the live processes carrying its owner marker
// (charon, captures, iperf3, ping, ...). After all of a test's cleanups have
// run, both must be empty.
func Leftovers() (namespaces []string, procs []string, err error) {
	return leftoversOf(os.Getpid())
}

func leftoversOf(owner int) (namespaces []string, procs []string, err error) {
	all, err := listNetns()
	if err != nil {
		return nil, nil, err
	}
	for _, n := range all {
		if pid, ok := netnsOwner(n); ok && pid == owner {
			namespaces = append(namespaces, n)
		}
	}
	procs, err = markedProcs(owner)
	return namespaces, procs, err
}

// markedProcs scans /proc for processes whose environment carries owner's
// marker, and describes each as "pid comm".
func markedProcs(owner int) ([]string, error) {
	marker := []byte(ownerEnv + "=" + strconv.Itoa(owner) + "\x00")
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, marker...)) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if isZombie(stat) {
			continue // exited; its parent (not us) will reap it
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.TrimSpace(string(comm))))
	}
	return out, nil
}

// isZombie reads the state field of /proc/PID/stat ("pid (comm) S ...").
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// CheckLeftovers fails t if Leftovers finds anything. Call it after the
// cleanups that should have removed everything have run (for example after a
// t.Run returns, or from TestMain).
func CheckLeftovers(t testing.TB) {
	t.Helper()
	ns, procs, err := Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) > 0 || len(procs) > 0 {
		t.Errorf("testbed: left behind: namespaces %q, processes %q", ns, procs)
	}
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
