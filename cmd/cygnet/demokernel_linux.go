package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
)

// kernelDemoPossible says whether the demo can go on with network
// namespaces, real TUN devices and a real ping: it needs root, iproute2,
// ping and /dev/net/tun.
func kernelDemoPossible() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "not root now"
	}
	for _, prog := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(prog); err != nil {
			return false, prog + " is not installed"
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return false, "no /dev/net/tun"
	}
	return true, ""
}

// kernelPeer is one `cygnet daemon` process of the demo's kernel part.
type kernelPeer struct {
	name   string
	ns     *netns
	cmd    *exec.Cmd
	socket string
	log    lockedLog
	exited chan error
}

// lockedLog collects a daemon's output, written by exec's copying goroutine.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// demoKernel runs the tunnel of the first part through the kernel: alice
// and bob in network namespaces joined by a veth pair, each running `cygnet
// daemon` (this binary) with the userspace data plane on a real TUN device,
// and a real ping from alice's network to bob's.
func demoKernel(ctx context.Context, out io.Writer, opts demoOptions, pki *demoPKI, dir string) error {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("As root, the same through the kernel: alice and bob in two network namespaces joined by")
	p("a veth pair (192.0.2.1 and 192.0.2.2), each running `cygnet daemon` with the default data")
	p("plane: userspace ESP through a real TUN device, cygnet0. No NAT here: plain ESP (IP protocol 50).")
	var peers []*kernelPeer
	defer func() {
		for _, k := range peers {
			k.stop()
			k.ns.remove()
		}
	}()
	for _, s := range []struct{ name, addr, inner string }{
		{"alice", "192.0.2.1/24", "10.1.0.1/32"},
		{"bob", "192.0.2.2/24", "10.2.0.1/32"},
	} {
		ns, err := newNetns("cygnet-demo-" + s.name)
		if err != nil {
			return err
		}
		k := &kernelPeer{name: s.name, ns: ns, socket: filepath.Join(dir, s.name+".sock"), exited: make(chan error, 1)}
		peers = append(peers, k)
		if _, err := ns.run("ip", "addr", "add", s.inner, "dev", "lo"); err != nil {
			return err
		}
	}
	alice, bob := peers[0], peers[1]
	if err := linkNetns(alice.ns, bob.ns, netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24")); err != nil {
		return err
	}
	for _, s := range []struct {
		k                *kernelPeer
		addr, id, peer   string
		peerID, lts, rts string
	}{
		{alice, "192.0.2.1", aliceID, "192.0.2.2", bobID, "10.1.0.0/16", "10.2.0.0/16"},
		{bob, "192.0.2.2", bobID, "192.0.2.1", aliceID, "10.2.0.0/16", "10.1.0.0/16"},
	} {
		cfg := filepath.Join(dir, "kernel-"+s.k.name+".yaml")
		yaml := fmt.Sprintf(`# %[1]s's side of the demo's kernel part
daemon:
  listen: [%[2]s]
  socket: %[3]s
  tun: cygnet0
  log: {level: debug}
connections:
  tunnel:
    local_addrs: [%[2]s]
    remote_addrs: [%[5]s]
    proposals: [%[7]s]
    local: {auth: pubkey, id: %[4]s, certs: [%[4]s.crt], key: %[4]s.key}
    remote: {auth: pubkey, id: %[6]s, cacerts: [ca.crt]}
    children:
      net: {local_ts: [%[9]s], remote_ts: [%[10]s], esp_proposals: [%[8]s]}
`, s.k.name, s.addr, s.k.socket, s.id, s.peer, s.peerID, ikeProp, espProp, s.lts, s.rts)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			return err
		}
		if err := s.k.start(ctx, opts, cfg); err != nil {
			return err
		}
	}

	p("")
	p("%-44s(on alice)", "$ cygnet up tunnel net")
	c, err := control.DialContext(ctx, alice.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	t0 := time.Now()
	if err := c.Up(ctx, "tunnel", "net"); err != nil {
		return fmt.Errorf("up in the namespaces: %w%s", err, alice.logTail())
	}
	p("  established in %s.", roundDuration(time.Since(t0)))
	p("%-44s(on alice)", fmt.Sprintf("$ ping -c 3 -I %v %v", aliceInner, bobInner))
	ping, err := alice.ns.run("ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-I", aliceInner.String(), bobInner.String())
	if err != nil {
		return fmt.Errorf("ping through the tunnel: %w%s", err, alice.logTail())
	}
	printIndented(out, ping)
	p("%-44s(on alice: Cygnet's routes, in a table of their own)", "$ ip route show table 221")
	routes, err := alice.ns.run("ip", "route", "show", "table", "221")
	if err != nil {
		return err
	}
	printIndented(out, routes)
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	p("%-44s(on alice)", "$ cygnet status")
	var table bytes.Buffer
	if err := control.WriteTable(&table, st, time.Now()); err != nil {
		return err
	}
	printIndented(out, table.String())
	for _, k := range peers {
		if err := k.stop(); err != nil {
			return err
		}
	}
	gone := "removed"
	if _, err := alice.ns.run("ip", "link", "show", "cygnet0"); err == nil {
		gone = "STILL THERE"
	}
	p("  SIGTERM to both daemons: they deleted the SAs with each other, and cygnet0 and its")
	p("  routes are %s.", gone)
	p("")
	return nil
}

// start runs `cygnet daemon -c cfg` in k's namespace and waits until its
// control socket answers.
func (k *kernelPeer) start(ctx context.Context, opts demoOptions, cfg string) error {
	k.cmd = k.ns.command(context.WithoutCancel(ctx), opts.self, "daemon", "-c", cfg)
	var w io.Writer = &k.log
	if opts.logw != nil {
		w = io.MultiWriter(&k.log, &prefixWriter{w: opts.logw, prefix: "[" + k.name + " in its namespace] "})
	}
	k.cmd.Stdout, k.cmd.Stderr = w, w
	if err := k.cmd.Start(); err != nil {
		return err
	}
	go func() { k.exited <- k.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := control.DialContext(ctx, k.socket)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-k.exited:
			k.exited <- err
			return fmt.Errorf("%s's daemon exited: %v%s", k.name, err, k.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s's daemon does not answer on %s%s", k.name, k.socket, k.logTail())
		}
	}
}

// stop sends SIGTERM and waits (5 s, then SIGKILL); it returns an error if
// the daemon did not exit 0. It is idempotent.
func (k *kernelPeer) stop() error {
	if k.cmd == nil || k.cmd.Process == nil {
		return nil
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-k.exited:
	case <-time.After(5 * time.Second):
		k.cmd.Process.Kill()
		err = <-k.exited
	}
	k.exited <- err // later stops see the same
	if err != nil {
		return fmt.Errorf("%s's daemon: %v%s", k.name, err, k.logTail())
	}
	return nil
}

func (k *kernelPeer) logTail() string {
	lines := strings.Split(strings.TrimRight(k.log.String(), "\n"), "\n")
	return "\n" + strings.Join(lines[max(0, len(lines)-15):], "\n")
}

func printIndented(out io.Writer, text string) {
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		if line = strings.TrimRight(line, " "); line == "" {
			fmt.Fprintln(out)
			continue
		}
		fmt.Fprintf(out, "  %s\n", line)
	}
}

// prefixWriter prefixes each line written to w.
type prefixWriter struct {
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}
