package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A small network-namespace helper for `cygnet demo` as root (the test
// harness, internal/testbed, is for tests only): namespaces made and removed
// with iproute2, programs run inside them with `ip netns exec`, and sockets
// opened inside them from this process.

// netns is a named network namespace (/run/netns/NAME).
type netns struct {
	name string
}

// newNetns creates a namespace named prefix-PID and brings its loopback up.
func newNetns(prefix string) (*netns, error) {
	n := &netns{name: fmt.Sprintf("%s-%d", prefix, os.Getpid())}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", n.name, err, strings.TrimSpace(string(out)))
	}
	if _, err := n.run("ip", "link", "set", "lo", "up"); err != nil {
		n.remove()
		return nil, err
	}
	return n, nil
}

// command returns a command that runs name inside n.
func (n *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// run runs name inside n (10 s at most) and returns its combined output.
func (n *netns) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := n.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), n.name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// remove kills what still runs inside n and deletes it.
func (n *netns) remove() {
	if out, err := exec.Command("ip", "netns", "pids", n.name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	exec.Command("ip", "netns", "del", n.name).Run()
}

// linkNetns joins a and b with a veth pair named after them and gives each
// end an address.
func linkNetns(a, b *netns, aAddr, bAddr netip.Prefix) error {
	aIf, bIf := "veth-"+shortName(a.name), "veth-"+shortName(b.name)
	if out, err := exec.Command("ip", "link", "add", aIf, "netns", a.name, "type", "veth", "peer", "name", bIf, "netns", b.name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	for _, s := range []struct {
		ns   *netns
		dev  string
		addr netip.Prefix
	}{{a, aIf, aAddr}, {b, bIf, bAddr}} {
		if _, err := s.ns.run("ip", "link", "set", s.dev, "up"); err != nil {
			return err
		}
		if _, err := s.ns.run("ip", "addr", "add", s.addr.String(), "dev", s.dev); err != nil {
			return err
		}
	}
	return nil
}

// shortName fits a namespace name into an interface name (15 bytes with
// the "veth-" prefix).
func shortName(s string) string {
	if i := strings.IndexByte(s, '-'); i > 0 {
		s = s[i+1:]
	}
	return s[:min(len(s), 10)]
}

// inNetns runs fn on a thread that has entered namespace name. A socket
// keeps the namespace it was created in, so fn can open sockets that the
// rest of the program then uses anywhere. If the thread cannot return to
// its own namespace it stays locked, and dies with the goroutine.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored := true
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			}
		}()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", name))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) != nil {
			restored = false
		}
		errc <- err
	}()
	return <-errc
}
