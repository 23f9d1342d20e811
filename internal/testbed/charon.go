package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// DefaultPlugins is the plugin list charon loads unless CharonConfig.Plugins
// says otherwise. kernel-libipsec must come before kernel-netlink: the first
// loaded IPsec backend wins, and kernel-netlink is still needed for routes.
var DefaultPlugins = []string{
	"random", "nonce", "openssl", "gcm", "aes", "sha1", "sha2", "hmac", "kdf",
	"curve25519", "gmp", "pem", "pkcs1", "pkcs8", "x509", "revocation",
	"constraints", "pubkey", "kernel-libipsec", "kernel-netlink", "socket-default", "vici",
}

// swanctlSubdirs are the directories swanctl looks for credentials in; they
// are created (empty if unused) to keep swanctl from warning about them.
var swanctlSubdirs = []string{
	"conf.d", "x509", "x509ca", "x509aa", "x509ac", "x509crl", "x509ocsp",
	"private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12", "pubkey",
}

// CharonConfig describes one charon instance.
type CharonConfig struct {
	// Swanctl is the text of swanctl.conf (connections, secrets, ...) in
	// strongSwan's own syntax; the harness does not translate it.
	Swanctl string
	// Files are dropped into the swanctl directory before loading, keyed by
	// relative path: "x509/peer.crt", "x509ca/ca.crt", "private/peer.key".
	Files map[string][]byte
	// Plugins replaces DefaultPlugins.
	Plugins []string
	// ExtraStrongswanConf is appended to the generated strongswan.conf;
	// sections merge, e.g. "charon {\n dos_protection = no\n threads = 32\n}".
	ExtraStrongswanConf string
	// LogLevel sets the ike, chd, knl, cfg and net log levels (others stay at
	// 1): 0 means 2; -1 silences them; 4 logs IKE and ESP keys (test use only).
	LogLevel int
}

// Charon is a strongSwan IKE daemon running in its own network namespace,
// with its own strongswan.conf, swanctl directory, VICI socket, log file and
// private /run. It uses kernel-libipsec: ESP in userspace over a TUN device
// (ipsec0), always UDP-encapsulated on port 4500.
type Charon struct {
	Netns *Netns
	Proc  *Process

	dir        string // everything of this instance lives here
	conf       string // strongswan.conf
	swanctlDir string
	socket     string // VICI unix socket
	logPath    string // charon's filelog
}

// StartCharon writes the configuration, starts charon inside ns, waits (at
// most 15 s) until it answers on VICI, and loads the configuration with
// `swanctl --load-all`. The cleanup stops it (SIGTERM, at most 5 s, SIGKILL)
// and, when the test failed, logs the tail of charon's log.
//
// Run at most one charon per namespace: each creates the TUN device ipsec0
// and binds ports 500 and 4500.
func StartCharon(t testing.TB, ns *Netns, cfg CharonConfig) *Charon {
	t.Helper()
	Require(t, "root", "ip", "unshare", "charon", "tun")
	c := &Charon{Netns: ns, dir: filepath.Join(ns.Dir(), "charon")}
	c.conf = filepath.Join(c.dir, "strongswan.conf")
	c.swanctlDir = filepath.Join(c.dir, "swanctl")
	c.socket = filepath.Join(c.dir, "charon.vici")
	c.logPath = filepath.Join(c.dir, "charon.log")
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		t.Fatalf("testbed: one charon per namespace: %v", err)
	}
	for _, d := range swanctlSubdirs {
		if err := os.MkdirAll(filepath.Join(c.swanctlDir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(c.conf, []byte(c.strongswanConf(cfg)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile("swanctl.conf", []byte(cfg.Swanctl)); err != nil {
		t.Fatal(err)
	}
	for name, data := range cfg.Files {
		if err := c.WriteFile(name, data); err != nil {
			t.Fatal(err)
		}
	}

	// Registered before the process, so it runs after the process has been
	// stopped and the log is complete.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of charon log in %s (%s):\n%s", ns.Name, c.logPath, tail(c.Log(), 60))
		}
	})
	c.Proc = ns.Start(t, "charon["+ns.Name+"]", StartOptions{
		PrivateRun: true,
		Env:        c.env(),
	}, CharonPath)
	// Runs before the stop: a charon that died during the test (say, on a
	// packet Cygnet sent it) is a finding, not something to clean up quietly.
	t.Cleanup(func() {
		if ok, err := c.Proc.Exited(); ok {
			t.Errorf("testbed: charon in %s exited during the test: %v", ns.Name, err)
		}
		if line := crashLine(c.Log()); line != "" {
			t.Errorf("testbed: charon in %s crashed during the test: %s", ns.Name, line)
		}
	})

	if err := c.waitVici(readyTimeout); err != nil {
		t.Fatal(err)
	}
	c.Load(t)
	return c
}

func (c *Charon) strongswanConf(cfg CharonConfig) string {
	plugins := cfg.Plugins
	if len(plugins) == 0 {
		plugins = DefaultPlugins
	}
	level := cfg.LogLevel
	if level == 0 {
		level = 2
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by internal/testbed for one test.
charon {
	load_modular = no
	load = %s
	port = 500
	port_nat_t = 4500
	filelog {
		testbed {
			path = %s
			append = no
			flush_line = yes
			time_format = %%H:%%M:%%S
			ike_name = yes
			default = 1
			ike = %d
			chd = %d
			knl = %d
			cfg = %d
			net = %d
		}
	}
	plugins {
		vici {
			socket = unix://%s
		}
	}
}
`, strings.Join(plugins, " "), c.logPath, level, level, level, level, level, c.socket)
	if cfg.ExtraStrongswanConf != "" {
		b.WriteString("\n" + cfg.ExtraStrongswanConf + "\n")
	}
	return b.String()
}

// env is what charon and swanctl need to use this instance's files.
func (c *Charon) env() []string {
	return []string{"STRONGSWAN_CONF=" + c.conf, "SWANCTL_DIR=" + c.swanctlDir}
}

// charonCrashRE matches the line charon's handler for SIGSEGV, SIGILL and
// SIGBUS logs ("00[DMN] thread 3 received 11"). Seen here: after that line
// charon does not exit but hangs (in its backtrace code, presumably), so a
// crash looks like a hang unless the log is read.
var charonCrashRE = regexp.MustCompile(`\[DMN\] thread \d+ received \d+`)

// crashLine returns the first crash line of a charon log, or "".
func crashLine(log string) string {
	if loc := charonCrashRE.FindStringIndex(log); loc != nil {
		end := strings.IndexByte(log[loc[0]:], '\n')
		if end < 0 {
			return log[loc[0]:]
		}
		return log[loc[0] : loc[0]+end]
	}
	return ""
}

// waitVici polls the VICI socket until charon answers a version request.
func (c *Charon) waitVici(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := DialVici(c.socket, time.Second)
		if err == nil {
			_, err = v.Call("version", nil)
			v.Close()
			if err == nil {
				return nil
			}
		}
		if ok, werr := c.Proc.Exited(); ok {
			return fmt.Errorf("testbed: charon in %s exited before answering on VICI (%v); log:\n%s\n%s",
				c.Netns.Name, werr, tail(c.Log(), 30), tail(c.Proc.Output(), 10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: charon in %s not answering on %s after %v (%v); log:\n%s",
				c.Netns.Name, c.socket, timeout, err, tail(c.Log(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SwanctlDir is this instance's swanctl directory (SWANCTL_DIR).
func (c *Charon) SwanctlDir() string { return c.swanctlDir }

// SocketPath is this instance's VICI socket.
func (c *Charon) SocketPath() string { return c.socket }

// WriteFile writes a file into the swanctl directory (name relative to it,
// e.g. "swanctl.conf" or "x509/peer.crt"); call Load afterwards.
func (c *Charon) WriteFile(name string, data []byte) error {
	if !filepath.IsLocal(name) {
		return fmt.Errorf("testbed: swanctl file %q is not a relative path inside the swanctl directory", name)
	}
	p := filepath.Join(c.swanctlDir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	return nil
}

// Swanctl runs swanctl against this instance (its VICI socket and swanctl
// directory) with a bounded time and returns the combined output.
// swanctl only talks to the socket, so it runs outside the namespace.
func (c *Charon) Swanctl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := execCommand(ctx, "swanctl", slices.Concat(args, []string{"--uri", "unix://" + c.socket})...)
	cmd.Env = append(cmd.Env, c.env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("testbed: swanctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Load runs `swanctl --load-all` and fails the test if anything did not load.
func (c *Charon) Load(t testing.TB) {
	t.Helper()
	out, err := c.Swanctl(t, "--load-all", "--clear", "--noprompt")
	if err != nil {
		t.Fatal(err)
	}
	// swanctl exits with status 0 after some failures, such as a syntax
	// error in swanctl.conf ("syntax error, ...", "invalid config file ...")
	// or a missing credential directory ("opening directory ... failed").
	for _, line := range strings.Split(out, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "failed") || strings.Contains(l, "invalid") || strings.Contains(l, "error") {
			t.Fatalf("testbed: swanctl --load-all in %s: %s\n%s", c.Netns.Name, strings.TrimSpace(line), out)
		}
	}
}

// Vici opens a VICI connection to this instance, closed at cleanup. Each
// exchange on it is bounded by timeout.
func (c *Charon) Vici(t testing.TB, timeout time.Duration) *Vici {
	t.Helper()
	v, err := DialVici(c.socket, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// InitiateTimeout bounds Initiate and Terminate.
const InitiateTimeout = 15 * time.Second

// Initiate initiates CHILD_SA child of connection ike (child "" initiates the
// IKE_SA alone) and waits until it is established or has failed. On failure
// the error carries charon's errmsg and the last control-log lines.
func (c *Charon) Initiate(t testing.TB, ike, child string) error {
	t.Helper()
	req := &ViciMessage{}
	if child != "" {
		req.Add("child", child)
	}
	req.Add("ike", ike).Add("timeout", fmt.Sprint(InitiateTimeout.Milliseconds())).Add("init-limits", "no")
	return c.control("initiate", req)
}

// Terminate deletes the IKE_SA(s) of connection ike (and their CHILD_SAs)
// and waits until the peer has confirmed or charon gave up.
func (c *Charon) Terminate(t testing.TB, ike string) error {
	t.Helper()
	req := (&ViciMessage{}).Add("ike", ike).Add("timeout", fmt.Sprint(InitiateTimeout.Milliseconds()))
	return c.control("terminate", req)
}

// control runs initiate or terminate, collecting charon's control-log.
func (c *Charon) control(cmd string, req *ViciMessage) error {
	v, err := DialVici(c.socket, InitiateTimeout+5*time.Second)
	if err != nil {
		return err
	}
	defer v.Close()
	var logs []string
	res, err := v.Stream(cmd, "control-log", req, func(m *ViciMessage) error {
		logs = append(logs, m.Get("msg"))
		return nil
	})
	if err != nil {
		return err
	}
	if res.Get("success") != "yes" {
		if len(logs) > 15 {
			logs = logs[len(logs)-15:]
		}
		return fmt.Errorf("testbed: charon in %s: %s %s: %s; last log lines:\n\t%s",
			c.Netns.Name, cmd, req.Get("ike"), res.Get("errmsg"), strings.Join(logs, "\n\t"))
	}
	return nil
}

// ListSAs returns charon's IKE_SAs and their CHILD_SAs, failing the test if
// charon does not answer.
func (c *Charon) ListSAs(t testing.TB) []SA {
	t.Helper()
	sas, err := c.listSAs()
	if err != nil {
		t.Fatal(err)
	}
	return sas
}

func (c *Charon) listSAs() ([]SA, error) {
	v, err := DialVici(c.socket, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	var sas []SA
	_, err = v.Stream("list-sas", "list-sa", (&ViciMessage{}).Add("noblock", "yes"), func(m *ViciMessage) error {
		for _, e := range m.Elems {
			if e.Kind != ViciSection {
				continue
			}
			sa, err := parseSA(e.Key, e.Section)
			if err != nil {
				return err
			}
			sas = append(sas, sa)
		}
		return nil
	})
	return sas, err
}

// WaitSA polls ListSAs until pred is true and returns the SAs it accepted;
// after timeout it fails the test, showing the last list.
func (c *Charon) WaitSA(t testing.TB, pred func([]SA) bool, timeout time.Duration) []SA {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sas, err := c.listSAs()
		if err == nil && pred(sas) {
			return sas
		}
		if ok, werr := c.Proc.Exited(); ok {
			t.Fatalf("testbed: charon in %s exited (%v) while waiting for SAs", c.Netns.Name, werr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("testbed: charon in %s: SAs did not reach the wanted state within %v (last error %v); SAs:\n%s",
				c.Netns.Name, timeout, err, FormatSAs(sas))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Log returns charon's log so far.
func (c *Charon) Log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// LogPath is the path of charon's log file.
func (c *Charon) LogPath() string { return c.logPath }
