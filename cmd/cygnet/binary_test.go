package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
)

// Tests that run the real binary: `cygnet daemon` processes controlled with
// the CLI, signals, and (interop_test.go) strongSwan in network namespaces.

var (
	testDir     string
	buildOnce   sync.Once
	binaryPath  string
	binaryError error
)

// asBinaryEnv makes the test binary act as the cygnet binary: the demo, run
// in-process by TestDemo, starts `cygnet daemon` processes as root by
// executing itself (os.Executable), which is then this test binary.
const asBinaryEnv = "CYGNET_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(asBinaryEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	var err error
	testDir, err = os.MkdirTemp("", "cygnet-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(testDir)
	os.Exit(code)
}

// cygnetBinary builds the cygnet binary once per test run (go build) and
// returns its path.
func cygnetBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binaryPath = filepath.Join(testDir, "cygnet")
		cmd := exec.Command("go", "build", "-o", binaryPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binaryError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryError != nil {
		t.Fatal(binaryError)
	}
	return binaryPath
}

// daemonProc is a `cygnet daemon` process.
type daemonProc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	socket string
	log    *lockedBuffer
	exited chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs cmd (a `cygnet daemon -c FILE` command, possibly wrapped
// in `ip netns exec`) and waits until its control socket answers.
func startDaemon(t testing.TB, name string, cmd *exec.Cmd, socket string) *daemonProc {
	t.Helper()
	p := &daemonProc{t: t, name: name, cmd: cmd, socket: socket, log: new(lockedBuffer), exited: make(chan struct{})}
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(5 * time.Second)
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, p.log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, _ := runCmd("-s", socket, "status", "--json"); code == 0 {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited at start: %v\n%s", name, p.err, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: control socket %s did not answer\n%s", name, socket, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits (bounded) for the exit; it returns the exit
// error (nil: exit 0) and whether it exited in time.
func (p *daemonProc) stop(timeout time.Duration) (error, bool) {
	select {
	case <-p.exited:
		return p.err, true
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err, true
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.exited
		return p.err, false
	}
}

// cli runs a CLI command against the daemon (in process: the CLI is a thin
// client of the socket).
func (p *daemonProc) cli(args ...string) (code int, stdout, stderr string) {
	return runCmd(append([]string{"-s", p.socket}, args...)...)
}

// status returns `cygnet status --json`, decoded.
func (p *daemonProc) status() *control.Status {
	p.t.Helper()
	code, out, errOut := p.cli("status", "--json")
	if code != 0 {
		p.t.Fatalf("%s: status --json: exit %d: %s", p.name, code, errOut)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		p.t.Fatalf("%s: status --json: %v\n%s", p.name, err, out)
	}
	return &st
}

func (p *daemonProc) waitStatus(what string, timeout time.Duration, pred func(*control.Status) bool) *control.Status {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := p.status()
		if pred(st) {
			return st
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: timed out waiting for %s; status: %+v", p.name, what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ikeUp(conn string, children ...string) func(*control.Status) bool {
	return func(st *control.Status) bool {
		for _, ike := range st.IKESAs {
			if ike.Connection != conn || ike.State != control.IKEEstablished {
				continue
			}
			n := 0
			for _, c := range ike.ChildSAs {
				for _, want := range children {
					if c.Name == want && c.State == control.ChildInstalled {
						n++
					}
				}
			}
			if n == len(children) {
				return true
			}
		}
		return false
	}
}

func noIKESAs(st *control.Status) bool { return len(st.IKESAs) == 0 }

// procConf is the configuration of one peer for the process tests.
func procConf(name, addr, peer, peerAddr, socket string, ike, nat int, extra string) string {
	return fmt.Sprintf(`daemon:
  listen: [%[2]s]
  port: %[6]d
  nat_port: %[7]d
  socket: %[5]s
  dataplane: none
  log: {level: debug}
secrets:
  - ids: [%[1]s.example, %[3]s.example]
    psk: "process test secret, long enough"
connections:
  site:
    local_addrs: [%[2]s]
    remote_addrs: [%[4]s]
    proposals: [aes256gcm16-prfsha256-x25519]
    local: {auth: psk, id: %[1]s.example}
    remote: {auth: psk, id: %[3]s.example}
    children:
      net: {local_ts: [dynamic], remote_ts: [dynamic]}
%[8]s`, name, addr, peer, peerAddr, socket, ike, nat, extra)
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonProcesses runs two `cygnet daemon` processes on 127.0.0.1 and
// 127.0.0.2 over real UDP and drives them with the CLI: up, status (JSON
// and table), an up failure, reload (command and SIGHUP), down, and SIGTERM.
func TestDaemonProcesses(t *testing.T) {
	bin := cygnetBinary(t)
	ike, nat, err := freePortPair("127.0.0.1", "127.0.0.2")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	aliceSock, bobSock := filepath.Join(dir, "alice.sock"), filepath.Join(dir, "bob.sock")
	aliceCfg, bobCfg := filepath.Join(dir, "alice.yaml"), filepath.Join(dir, "bob.yaml")
	// "bad" cannot agree on a proposal; bob has it too, with another list.
	badConn := func(addr, peerAddr, me, peer, prop string) string {
		return `  bad:
    local_addrs: [` + addr + `]
    remote_addrs: [` + peerAddr + `]
    proposals: [` + prop + `]
    local: {auth: psk, id: ` + me + `.example}
    remote: {auth: psk, id: ` + peer + `.example}
    children:
      b: {}
`
	}
	writeFile(t, aliceCfg, procConf("alice", "127.0.0.1", "bob", "127.0.0.2", aliceSock, ike, nat, ""))
	writeFile(t, bobCfg, procConf("bob", "127.0.0.2", "alice", "127.0.0.1", bobSock, ike, nat, ""))
	alice := startDaemon(t, "alice", exec.Command(bin, "daemon", "-c", aliceCfg), aliceSock)
	bob := startDaemon(t, "bob", exec.Command(bin, "daemon", "-c", bobCfg), bobSock)

	if code, out, errOut := alice.cli("up", "site"); code != 0 {
		t.Fatalf("up site: exit %d\n%s%s", code, out, errOut)
	}
	ast := alice.waitStatus("site up", 5*time.Second, ikeUp("site", "net"))
	bst := bob.waitStatus("site up", 5*time.Second, ikeUp("site", "net"))
	a, b := ast.IKESAs[0], bst.IKESAs[0]
	if a.SPIi != b.SPIi || a.SPIr != b.SPIr || a.ChildSAs[0].SPIIn != b.ChildSAs[0].SPIOut {
		t.Errorf("the two sides disagree: alice %+v, bob %+v", a, b)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", ike); a.Local != want {
		t.Errorf("alice's local address %s, want %s", a.Local, want)
	}
	if !equalStrings(a.ChildSAs[0].LocalTS, []string{"127.0.0.1/32"}) || !equalStrings(a.ChildSAs[0].RemoteTS, []string{"127.0.0.2/32"}) {
		t.Errorf("dynamic selectors: %v === %v", a.ChildSAs[0].LocalTS, a.ChildSAs[0].RemoteTS)
	}

	// The JSON has exactly the contract's keys.
	_, raw, _ := alice.cli("status", "--json")
	checkStatusKeys(t, raw)
	// The table.
	if code, out, _ := alice.cli("status"); code != 0 || !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, "INSTALLED") {
		t.Errorf("status table: exit %d\n%s", code, out)
	}

	// Reload (the command) adds "bad"; SIGHUP reloads bob.
	writeFile(t, aliceCfg, procConf("alice", "127.0.0.1", "bob", "127.0.0.2", aliceSock, ike, nat, badConn("127.0.0.1", "127.0.0.2", "alice", "bob", "aes128-sha256-ecp256")))
	writeFile(t, bobCfg, procConf("bob", "127.0.0.2", "alice", "127.0.0.1", bobSock, ike, nat, badConn("127.0.0.2", "127.0.0.1", "bob", "alice", "aes256-sha384-modp3072")))
	if code, _, errOut := alice.cli("reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, errOut)
	}
	bob.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, bob, "configuration reloaded")
	// The unchanged connection kept its SAs.
	if st := alice.status(); len(st.IKESAs) != 1 || st.IKESAs[0].SPIi != a.SPIi {
		t.Errorf("reload changed site's SAs: %+v", st)
	}

	// An up that fails prints one line naming our proposals.
	code, out, errOut := alice.cli("up", "bad")
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "cygnet: ") ||
		!strings.Contains(errOut, "NO_PROPOSAL_CHOSEN") || !strings.Contains(errOut, "aes128-sha256-ecp256") {
		t.Errorf("up bad: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// bob's log names both lists.
	waitLog(t, bob, "aes256-sha384-modp3072")
	if !strings.Contains(bob.log.String(), "aes128-sha256-ecp256") {
		t.Errorf("bob's log does not name alice's proposals:\n%s", bob.log.String())
	}

	if code, _, errOut := alice.cli("down", "site"); code != 0 {
		t.Fatalf("down: exit %d: %s", code, errOut)
	}
	alice.waitStatus("down", 5*time.Second, noIKESAs)
	bob.waitStatus("down", 5*time.Second, noIKESAs)

	// SIGTERM deletes the SAs politely and exits 0.
	if code, _, errOut := alice.cli("up", "site"); code != 0 {
		t.Fatalf("second up: exit %d: %s", code, errOut)
	}
	bob.waitStatus("site up again", 5*time.Second, ikeUp("site", "net"))
	start := time.Now()
	if err, ok := alice.stop(10 * time.Second); !ok || err != nil {
		t.Fatalf("alice after SIGTERM: exited in time %v, err %v", ok, err)
	}
	t.Logf("alice stopped in %v", time.Since(start))
	bob.waitStatus("alice's SIGTERM deleted the SAs", 5*time.Second, noIKESAs)
	if _, err := os.Stat(aliceSock); err == nil {
		t.Error("alice left her control socket behind")
	}
}

func waitLog(t *testing.T, p *daemonProc, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's log never said %q", p.name, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// checkStatusKeys checks the key set of status JSON against CONTRACT.md.
func checkStatusKeys(t *testing.T, raw string) {
	t.Helper()
	var doc map[string][]map[string]any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, raw)
	}
	ikeKeys := []string{"connection", "state", "initiator", "local", "remote", "local_id", "remote_id", "spi_i", "spi_r", "proposal", "nat_local", "nat_remote", "established_at", "child_sas"}
	childKeys := []string{"name", "state", "mode", "encap", "spi_in", "spi_out", "proposal", "local_ts", "remote_ts", "bytes_in", "bytes_out", "packets_in", "packets_out"}
	for _, ike := range doc["ike_sas"] {
		for _, k := range ikeKeys {
			if _, ok := ike[k]; !ok {
				t.Errorf("IKE SA lacks %q: %s", k, raw)
			}
		}
		children, _ := ike["child_sas"].([]any)
		for _, c := range children {
			cm, _ := c.(map[string]any)
			for _, k := range childKeys {
				if _, ok := cm[k]; !ok {
					t.Errorf("CHILD_SA lacks %q: %s", k, raw)
				}
			}
		}
	}
}
