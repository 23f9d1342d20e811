package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestDaemonStartupFailures starts `cygnet daemon` with configurations that
// load but cannot run: each must exit 1 with one line on standard error
// starting with "cygnet: " that says why — never a panic (daemon.New once
// crashed on every error after its cleanup was armed).
func TestDaemonStartupFailures(t *testing.T) {
	bin := cygnetBinary(t)
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular-file")
	writeFile(t, regular, "not a directory\n")

	busy, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyUDP := busy.LocalAddr().(*net.UDPAddr).Port
	busyTCP, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyTCP.Close()

	for _, tc := range []struct {
		name   string
		daemon string // keys of the daemon section besides listen, ports, socket
		ike    int    // 0: a free port
		nat    int
		socket string // "": one in dir
		want   []string
		kernel bool     // needs root: runs in a network namespace of its own
		env    []string // added to the environment
	}{
		{name: "keylog under a file", daemon: "dataplane: none\n  keylog: " + filepath.Join(regular, "x"),
			want: []string{"keylog", "not a directory"}},
		{name: "IKE port in use", daemon: "dataplane: none", ike: busyUDP,
			want: []string{"daemon: transport", fmt.Sprintf(":%d", busyUDP), "address already in use"}},
		{name: "NAT-T port in use", daemon: "dataplane: none", nat: busyUDP,
			want: []string{"daemon: transport", fmt.Sprintf(":%d", busyUDP), "address already in use"}},
		{name: "control socket path under a file", daemon: "dataplane: none", socket: filepath.Join(regular, "cygnet.sock"),
			want: []string{"control", "cygnet.sock"}},
		{name: "bad CYGNET_PPROF", daemon: "dataplane: none", env: []string{"CYGNET_PPROF=6060"},
			want: []string{"CYGNET_PPROF", "host:port", `"6060"`}},
		{name: "pprof address in use", daemon: "dataplane: none", env: []string{"CYGNET_PPROF=" + busyTCP.Addr().String()},
			want: []string{"pprof", busyTCP.Addr().String(), "address already in use"}},
		{name: "metrics address in use", daemon: "dataplane: none\n  metrics: " + busyTCP.Addr().String(),
			want: []string{"metrics", busyTCP.Addr().String(), "address already in use"}},
		// A TUN device cannot take the name of an existing interface of
		// another kind; without CAP_NET_ADMIN it fails anyway.
		{name: "TUN device unavailable", daemon: "dataplane: userspace\n  tun: lo",
			want: []string{"dataplane userspace", "lo", "CAP_NET_ADMIN"}},
		{name: "xfrm without kernel ESP", daemon: "dataplane: xfrm", kernel: true,
			want: []string{"dataplane xfrm", "no ESP"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.kernel && runtime.GOOS != "linux" {
				t.Skip("the kernel data plane is Linux's")
			}
			ike, nat := tc.ike, tc.nat
			if ike == 0 {
				ike = freeUDPPort(t)
			}
			if nat == 0 {
				nat = freeUDPPort(t)
			}
			socket := tc.socket
			if socket == "" {
				socket = filepath.Join(t.TempDir(), "cygnet.sock")
			}
			conf := filepath.Join(t.TempDir(), "cygnet.yaml")
			writeFile(t, conf, fmt.Sprintf("daemon:\n  listen: [127.0.0.1]\n  port: %d\n  nat_port: %d\n  socket: %s\n  %s\n",
				ike, nat, socket, tc.daemon))

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var cmd *exec.Cmd
			if tc.kernel {
				// The xfrm backend programs the namespace it runs in.
				ns := testbed.NewNetns(t, "startup")
				cmd = ns.Command(ctx, bin, "daemon", "-c", conf)
			} else {
				cmd = exec.CommandContext(ctx, bin, "daemon", "-c", conf)
			}
			// Keep the harness's marker (ns.Command set Env); drop a
			// CYGNET_PPROF of the caller's.
			if cmd.Env == nil {
				cmd.Env = os.Environ()
			}
			cmd.Env = append(slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, "CYGNET_PPROF=") }), tc.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.WaitDelay = time.Second
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var werr error
			select {
			case werr = <-done:
			case <-time.After(10 * time.Second):
				// It runs: the failure did not happen here.
				cmd.Process.Signal(os.Interrupt)
				<-done
				if tc.kernel {
					t.Skip("this kernel has ESP: the daemon started with dataplane xfrm")
				}
				t.Fatalf("the daemon started; stderr:\n%s", stderr.String())
			}
			var exit *exec.ExitError
			if !errors.As(werr, &exit) || exit.ExitCode() != exitFailed {
				t.Errorf("exit: %v, want status %d", werr, exitFailed)
			}
			// Exactly one line of ours; the log (text lines starting with
			// "time=") may say more.
			var ours []string
			for line := range strings.SplitSeq(stderr.String(), "\n") {
				if strings.HasPrefix(line, "cygnet: ") {
					ours = append(ours, line)
				}
			}
			if len(ours) != 1 || strings.Contains(stderr.String(), "panic") || stdout.String() != "" {
				t.Fatalf("want one \"cygnet: \" line on stderr and nothing on stdout; stdout %q, stderr:\n%s", stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(ours[0], w) {
					t.Errorf("error line %q does not contain %q", ours[0], w)
				}
			}
			t.Logf("%s", ours[0])
		})
	}
}
