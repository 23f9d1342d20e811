package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"version", "extra"},
		{"daemon", "extra"},
		{"daemon", "-x"},
		{"demo", "now"},
		{"up"},
		{"status", "extra", "args"},
	} {
		code, out, errOut := runCmd(args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
		if out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "cygnet: ") {
			t.Errorf("%q: stdout %q stderr %q; want one line starting with \"cygnet: \" on stderr", args, out, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, errOut := runCmd("version")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !regexp.MustCompile(`^cygnet \S+\ngo: go1\.\d+`).MatchString(out) {
		t.Errorf("version output %q", out)
	}
	version = "v9.9.9"
	defer func() { version = "" }()
	if _, out, _ := runCmd("version"); !strings.HasPrefix(out, "cygnet v9.9.9\n") {
		t.Errorf("with -ldflags version: %q", out)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCmd("help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"cygnet daemon", "cygnet demo", "cygnet version", "up CONN", "status [--json]", "reload"} {
		if !strings.Contains(out, want) {
			t.Errorf("help does not mention %q:\n%s", want, out)
		}
	}
}

func TestDaemonBadConfig(t *testing.T) {
	code, _, errOut := runCmd("daemon", "-c", "/nonexistent/cygnet.yaml")
	if code != exitFailed || !strings.HasPrefix(errOut, "cygnet: ") || !strings.Contains(errOut, "/nonexistent/cygnet.yaml") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestDemo runs `cygnet demo` as the README shows it: it must succeed
// quickly, print nothing on stderr, and show what the issue asks for.
func TestDemo(t *testing.T) {
	t.Setenv(asBinaryEnv, "1") // for the daemons the demo starts as root
	start := time.Now()
	code, out, errOut := runCmd("demo")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	t.Logf("demo took %v:\n%s", time.Since(start), out)
	for _, want := range []string{
		"IKE_SA_INIT request #0",
		"IKE_SA_INIT response #0",
		"bob chose aes256gcm16-prfsha256-x25519",
		"Diffie-Hellman over Curve25519",
		"IKE_AUTH request #1",
		"SK{",
		"Signatures made: alice 1, bob 1.",
		`Hidden from a sniffer: "alice.cygnet.example" appears nowhere`,
		`Hidden from a sniffer: "bob.cygnet.example" appears nowhere`,
		"alice -> bob  ESP SPI",
		"bob -> alice  ESP SPI",
		"CREATE_CHILD_SA request #2",
		"Signatures made for it: alice 0, bob 0.",
		"ESTABLISHED",
		"INFORMATIONAL request #3",
		"IKE SAs left on alice 0, on bob 0.",
		// Traffic through the tunnel.
		"alice -> bob  ESP SPI",
		" seq 4 ",
		`"hello bob" is nowhere in the`,
		`10.1.0.1:40000 -> 10.2.0.1:7  UDP  "hello bob #3"`,
		"10.1.0.1 -> 10.2.0.1  ICMP echo request id 1 seq 1",
		"alice's TUN device: 10.2.0.1 -> 10.1.0.1  ICMP echo reply id 1 seq 1",
		"out 164 B 4 pkts",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if ok, _ := kernelDemoPossible(); ok {
		// As root: namespaces, two daemon processes, a real ping.
		for _, want := range []string{
			"3 packets transmitted, 3 received",
			"10.2.0.0/16 dev cygnet0 proto 199 scope link src 10.1.0.1",
			"in 252 B 3 pkts  out 252 B 3 pkts",
			"routes are removed.",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("demo output as root lacks %q", want)
			}
		}
	} else if !strings.Contains(out, "As root, the demo goes on with the kernel") {
		t.Error("demo output does not say what root would add")
	}
	for _, bad := range []string{"WARNING", "STILL THERE"} {
		if strings.Contains(out, bad) {
			t.Errorf("demo printed %q", bad)
		}
	}
}

func TestDemoVerboseLogs(t *testing.T) {
	t.Setenv(asBinaryEnv, "1")
	code, _, errOut := runCmd("demo", "-v")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"IKE SA established", "spi_i=", "peer_name=alice", "peer_name=bob"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("demo -v log lacks %q", want)
		}
	}
}
