package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// runCLI runs the CLI with an empty environment and no default
// configuration file.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLIContext(t, context.Background(), env, args...)
}

func runCLIContext(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{
		stdout:        &out,
		stderr:        &errOut,
		getenv:        func(k string) string { return env[k] },
		defaultConfig: filepath.Join(t.TempDir(), "absent.yaml"),
		now:           func() time.Time { return time.Date(2026, 11, 27, 11, 2, 3, 0, time.UTC) },
	}
	code = c.run(ctx, args)
	return code, out.String(), errOut.String()
}

func TestCLI(t *testing.T) {
	g := newGate()
	b := &fakeBackend{
		status: contractStatus(),
		up: func(ctx context.Context, conn, child string) error {
			if conn == "slow" {
				return g.wait(ctx)
			}
			if conn == "bad" {
				return errNoProposal
			}
			return knownConn(conn)
		},
		reload: func(context.Context) error {
			return errors.New("/etc/cygnet/cygnet.yaml:14: connections.site.proposals[0]: unknown algorithm \"aes257\"\n" +
				"/etc/cygnet/cygnet.yaml:21: connections.site.local.key: missing")
		},
	}
	s := startServer(t, b)
	sock := s.Path()
	absent := filepath.Join(t.TempDir(), "absent.sock")

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"up", []string{"-s", sock, "up", "site"}, 0, "site: established\n", ""},
		{"up child, flags after", []string{"up", "site", "net", "-s", sock, "--timeout", "1h"}, 0, "site/net: established\n", ""},
		{"up fails", []string{"-s", sock, "up", "bad"}, 1, "", "cygnet: " + errNoProposal.Error() + "\n"},
		{"up unknown connection", []string{"-s", sock, "up", "nope"}, 1, "", "cygnet: unknown connection \"nope\"\n"},
		{"down", []string{"--socket=" + sock, "down", "site"}, 0, "site: deleted\n", ""},
		{"down unknown connection", []string{"-s", sock, "down", "nope"}, 1, "", "cygnet: unknown connection \"nope\"\n"},
		{"reload errors, one line each", []string{"-s", sock, "reload"}, 1, "",
			"cygnet: /etc/cygnet/cygnet.yaml:14: connections.site.proposals[0]: unknown algorithm \"aes257\"\n" +
				"cygnet: /etc/cygnet/cygnet.yaml:21: connections.site.local.key: missing\n"},
		{"rekey", []string{"-s", sock, "rekey", "site"}, 0, "site: rekeying\n", ""},
		{"rekey child", []string{"-s", sock, "rekey", "site", "net"}, 0, "site/net: rekeying\n", ""},
		{"rekey unknown connection", []string{"-s", sock, "rekey", "nope"}, 1, "", "cygnet: unknown connection \"nope\"\n"},
		{"uninstall", []string{"-s", sock, "uninstall", "site"}, 0, "site: trap policies removed\n", ""},
		{"uninstall child", []string{"-s", sock, "uninstall", "site", "net"}, 0, "site/net: trap policies removed\n", ""},
		{"uninstall unknown connection", []string{"-s", sock, "uninstall", "nope"}, 1, "", "cygnet: unknown connection \"nope\"\n"},
		{"no daemon", []string{"-s", absent, "status"}, 1, "",
			"cygnet: cannot reach the daemon at " + absent + ": is it running?\n"},
		{"no daemon up", []string{"-s", absent, "up", "site"}, 1, "",
			"cygnet: cannot reach the daemon at " + absent + ": is it running?\n"},

		{"no command", []string{"-s", sock}, 2, "", "cygnet: missing command (up, down, status, reload, rekey, uninstall) (cygnet --help for usage)\n"},
		{"unknown command", []string{"fly"}, 2, "", "cygnet: unknown command \"fly\" (cygnet --help for usage)\n"},
		{"up without connection", []string{"up"}, 2, "", "cygnet: usage: cygnet [-s SOCK] up CONN [CHILD]\n"},
		{"up too many", []string{"up", "a", "b", "c"}, 2, "", "cygnet: usage: cygnet [-s SOCK] up CONN [CHILD]\n"},
		{"down without connection", []string{"down"}, 2, "", "cygnet: usage: cygnet [-s SOCK] down CONN\n"},
		{"status with argument", []string{"status", "site"}, 2, "", "cygnet: usage: cygnet [-s SOCK] status [--json]\n"},
		{"reload with argument", []string{"reload", "now"}, 2, "", "cygnet: usage: cygnet [-s SOCK] reload\n"},
		{"rekey without connection", []string{"rekey"}, 2, "", "cygnet: usage: cygnet [-s SOCK] rekey CONN [CHILD]\n"},
		{"rekey too many", []string{"rekey", "a", "b", "c"}, 2, "", "cygnet: usage: cygnet [-s SOCK] rekey CONN [CHILD]\n"},
		{"uninstall without connection", []string{"uninstall"}, 2, "", "cygnet: usage: cygnet [-s SOCK] uninstall CONN [CHILD]\n"},
		{"json on up", []string{"up", "site", "--json"}, 2, "", "cygnet: --json is only for status (cygnet --help for usage)\n"},
		{"timeout on down", []string{"--timeout=1s", "down", "site"}, 2, "", "cygnet: --timeout is only for up (cygnet --help for usage)\n"},
		{"unknown flag", []string{"-x", "status"}, 2, "", "cygnet: flag provided but not defined: -x (cygnet --help for usage)\n"},
		{"missing flag value", []string{"status", "-s"}, 2, "", "cygnet: flag needs an argument: -s (cygnet --help for usage)\n"},
		{"bad duration", []string{"up", "site", "--timeout", "soon"}, 2, "",
			"cygnet: invalid value \"soon\" for flag -timeout: parse error (cygnet --help for usage)\n"},
		{"empty name", []string{"up", ""}, 2, "", "cygnet: up: empty name (cygnet --help for usage)\n"},
		{"help", []string{"--help"}, 0, "usage:\n" + indent(CLIUsage), ""},
		{"double dash", []string{"-s", sock, "up", "--", "-site"}, 1, "", "cygnet: unknown connection \"-site\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, tc.args...)
			if code != tc.code || stdout != tc.stdout || stderr != tc.stderr {
				t.Errorf("cygnet %q:\n got %d, stdout %q, stderr %q\nwant %d, stdout %q, stderr %q",
					tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, nil, "-s", sock, "up", "slow", "--timeout", "1ns")
		want := "cygnet: up: no result within 1ns; the daemon stops trying\n"
		if code != 1 || stdout != "" || stderr != want {
			t.Errorf("got %d, %q, %q; want 1, \"\", %q", code, stdout, stderr, want)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-g.started // the daemon is working on it: now Ctrl-C
			cancel()
		}()
		code, stdout, stderr := runCLIContext(t, ctx, nil, "-s", sock, "up", "slow")
		if code != ExitInterrupted || stdout != "" || stderr != "cygnet: up: interrupted\n" {
			t.Errorf("got %d, %q, %q", code, stdout, stderr)
		}
	})
}

func TestCLISocketResolution(t *testing.T) {
	s := startServer(t, &fakeBackend{})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cygnet.yaml")
	if err := os.WriteFile(cfg, []byte("daemon:\n  socket: "+s.Path()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	relCfg := filepath.Join(dir, "rel.yaml")
	rel, err := filepath.Rel(dir, s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(relCfg, []byte("daemon: {socket: "+rel+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badCfg, []byte("daemon:\n  sokcet: /x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(dir, "absent.sock")
	env := map[string]string{"CYGNET_SOCKET": s.Path()}
	badEnv := map[string]string{"CYGNET_SOCKET": absent}

	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		stderr string
	}{
		{"-s", badEnv, []string{"-s", s.Path(), "reload"}, ""},
		{"environment", env, []string{"reload"}, ""},
		{"-c", badEnv, []string{"-c", cfg, "reload"}, ""},
		{"-c relative socket", nil, []string{"--config", relCfg, "reload"}, ""},
		{"-s beats -c", nil, []string{"-c", badCfg, "-s", s.Path(), "reload"}, ""},
		{"bad -c", env, []string{"-c", badCfg, "reload"}, "cygnet: " + badCfg + ":2: daemon: unknown key \"sokcet\" (did you mean \"socket\"?)\n"},
		{"missing -c", env, []string{"-c", filepath.Join(dir, "none.yaml"), "reload"},
			"cygnet: config: open " + filepath.Join(dir, "none.yaml") + ": no such file or directory\n"},
		{"default", nil, []string{"reload"}, "cygnet: cannot reach the daemon at /run/cygnet/cygnet.sock: is it running?\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "default" {
				if _, err := os.Stat("/run/cygnet/cygnet.sock"); err == nil {
					t.Skip("a daemon's socket exists at the default path")
				}
			}
			code, _, stderr := runCLI(t, tc.env, tc.args...)
			if stderr != tc.stderr || (code == 0) != (tc.stderr == "") {
				t.Errorf("exit %d, stderr %q; want stderr %q", code, stderr, tc.stderr)
			}
		})
	}
}

// cygnet status --json prints the contract's shape for the contract's
// example, and prints fields a newer daemon adds.
func TestCLIStatusJSON(t *testing.T) {
	example, err := os.ReadFile("testdata/contract-status.json")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, &fakeBackend{status: contractStatus()})
	code, stdout, stderr := runCLI(t, nil, "-s", s.Path(), "status", "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if got, want := compact(t, []byte(stdout)), compact(t, example); got != want {
		t.Errorf("status --json:\n got %s\nwant %s", got, want)
	}
	if !strings.HasSuffix(stdout, "\n") || !strings.Contains(stdout, "\n  \"ike_sas\": [") {
		t.Errorf("status --json is not indented JSON ending in a newline:\n%s", stdout)
	}

	s2 := startServer(t, &fakeBackend{})
	if _, stdout, _ := runCLI(t, nil, "-s", s2.Path(), "status", "--json"); compact(t, []byte(stdout)) != `{"ike_sas":[]}` {
		t.Errorf("empty status --json = %s", stdout)
	}
}

func TestStatusTable(t *testing.T) {
	now := time.Date(2026, 11, 27, 11, 2, 3, 0, time.UTC)
	st := contractStatus()
	st.IKESAs[0].ChildSAs[0].BytesIn = 1 << 20
	st.IKESAs[0].ChildSAs[0].PacketsIn = 812
	st.IKESAs[0].ChildSAs[0].BytesOut = 840
	st.IKESAs[0].ChildSAs[0].PacketsOut = 10
	st.IKESAs[0].ChildSAs[0].RekeyAt = now.Add(52*time.Minute + 10*time.Second)
	st.IKESAs[0].ChildSAs[0].Rekeys = 3
	// The lifecycle extensions: counts that are not zero, the next rekey.
	site := &st.IKESAs[0]
	site.RekeyAt = now.Add(3*time.Hour + 54*time.Minute)
	site.Rekeys, site.ChildRekeys, site.CollisionsWon, site.CollisionsLost, site.ChildDeletes, site.TempFailures = 1, 4, 1, 0, 2, 3
	st.IKESAs[0].ChildSAs = append(st.IKESAs[0].ChildSAs, ChildSA{
		Name: "mgmt", State: ChildRekeying, Mode: "transport", SPIIn: "00000001", SPIOut: "00000002",
		Proposal: "aes128gcm16-x25519", LocalTS: []string{"192.0.2.1/32"}, RemoteTS: []string{"192.0.2.2/32", "192.0.2.3/32"},
		Drops: 3, RekeyAt: now.Add(-time.Second), InboundOnly: true,
	})
	st.IKESAs = append(st.IKESAs,
		IKESA{
			Connection: "roadwarrior", State: IKEEstablished, Local: "192.0.2.1:4500", Remote: "198.51.100.7:61234",
			LocalID: "gw-a.example", RemoteID: "C=CH, O=Example, CN=carol", SPIi: "1111111111111111", SPIr: "2222222222222222",
			Proposal: "aes128gcm16-prfsha256-ecp256", NATRemote: true, EstablishedAt: now.Add(-50 * time.Hour),
			ChildSAs: []ChildSA{{Name: "rw", State: ChildInstalled, Mode: "tunnel", Encap: true, SPIIn: "cafe0001", SPIOut: "beef0002",
				Proposal: "aes128gcm16", LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"10.9.0.5/32"}}},
		},
		IKESA{
			Connection: "evil", State: IKEConnecting, Initiator: true, Local: "192.0.2.1:500", Remote: "203.0.113.9:500",
			LocalID: "gw-a.example", RemoteID: "\x1b[2Jgotcha", SPIi: "3333333333333333", SPIr: "0000000000000000",
			NATLocal: true, NATRemote: true,
		},
	)
	var b bytes.Buffer
	if err := WriteTable(&b, st, now); err != nil {
		t.Fatal(err)
	}
	golden := "testdata/status-table.golden"
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Error("an escape sequence from the peer reached the table")
	}

	b.Reset()
	WriteTable(&b, &Status{}, now)
	if b.String() != "no IKE SAs\n" {
		t.Errorf("empty table = %q", b.String())
	}

	// Through the CLI.
	s := startServer(t, &fakeBackend{status: st})
	code, stdout, stderr := runCLI(t, nil, "-s", s.Path(), "status")
	if code != 0 || stderr != "" || stdout != string(want) {
		t.Errorf("cygnet status: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
}

func TestFormatHelpers(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0s"}, {59 * time.Second, "59s"}, {61 * time.Second, "1m1s"},
		{3600 * time.Second, "1h0m"}, {25 * time.Hour, "1d1h"},
	} {
		if got := formatAge(tc.d); got != tc.want {
			t.Errorf("formatAge(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {5 << 30, "5.0 GiB"}, {^uint64(0), "16.0 EiB"},
	} {
		if got := formatBytes(tc.n); got != tc.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestIsCLICommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"up", "site"}, true},
		{[]string{"-s", "/x", "status", "--json"}, true},
		{[]string{"--socket=/x", "-c", "/y", "reload"}, true},
		{[]string{"daemon", "-c", "/y"}, false},
		{[]string{"version"}, false},
		{[]string{}, false},
		{[]string{"--bogus", "up"}, false},
	} {
		if got := IsCLICommand(tc.args); got != tc.want {
			t.Errorf("IsCLICommand(%q) = %v", tc.args, got)
		}
	}
}

// A status holding characters that JSON and HTML treat specially arrives
// intact.
func TestStatusSpecialCharacters(t *testing.T) {
	st := &Status{IKESAs: []IKESA{{Connection: "a", RemoteID: "C=CH, O=A&B <x>, CN=\"q\\\"\n\u2028é"}}}
	s := startServer(t, &fakeBackend{status: st})
	got, err := dial(t, s).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.IKESAs[0].RemoteID != st.IKESAs[0].RemoteID {
		t.Errorf("RemoteID = %q", got.IKESAs[0].RemoteID)
	}
	raw, _ := dial(t, s).StatusJSON(context.Background())
	if !json.Valid(raw) || !strings.Contains(string(raw), "A&B <x>") {
		t.Errorf("raw status: %s", raw)
	}
}
