package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// CharonPath is the strongSwan IKE daemon that runs without systemd or starter.
const CharonPath = "/usr/lib/ipsec/charon"

const libipsecPlugin = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"

const aptHint = "apt-get install strongswan-charon strongswan-swanctl libstrongswan-standard-plugins " +
	"libstrongswan-extra-plugins libcharon-extra-plugins strongswan-pki iputils-ping iproute2 tshark iperf3"

// requirements maps each name Require accepts to a check that returns "" when
// the component is present, or what is missing.
var requirements = map[string]func() string{
	"root": func() string {
		if os.Geteuid() != 0 {
			return "root (network namespaces, veth, mounts)"
		}
		return ""
	},
	"ip":      program("ip", "iproute2"),
	"unshare": program("unshare", "util-linux"),
	"ping":    program("ping", "iputils-ping"),
	"swanctl": program("swanctl", "strongswan-swanctl"),
	"pki":     program("pki", "strongswan-pki"),
	"tshark":  program("tshark", "tshark"),
	"iperf3":  program("iperf3", "iperf3"),
	"charon": func() string {
		if _, err := os.Stat(CharonPath); err != nil {
			return CharonPath + " (strongswan-charon)"
		}
		if _, err := os.Stat(libipsecPlugin); err != nil {
			return "charon's kernel-libipsec plugin (libcharon-extra-plugins)"
		}
		if m := program("swanctl", "strongswan-swanctl")(); m != "" {
			return m
		}
		return ""
	},
	"tun": func() string {
		f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
		if err != nil {
			return fmt.Sprintf("/dev/net/tun (%v)", err)
		}
		f.Close()
		return ""
	},
}

func program(name, pkg string) func() string {
	return func() string {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Sprintf("%s (package %s)", name, pkg)
		}
		return ""
	}
}

// Strict reports whether CYGNET_STRICT=1 is set: then a missing component
// fails the test instead of skipping it (CI sets it, so nothing skips there).
func Strict() bool { return os.Getenv("CYGNET_STRICT") == "1" }

// Require skips the test with a clear message when one of the named
// components is missing, or fails it under CYGNET_STRICT=1. Names: root, ip,
// unshare, ping, charon (the daemon, kernel-libipsec and swanctl), swanctl,
// pki, tshark, iperf3, tun (a usable /dev/net/tun). "all" means
// every one of them.
func Require(t testing.TB, what ...string) {
	t.Helper()
	if len(what) == 1 && what[0] == "all" {
		what = what[:0]
		for name := range requirements {
			what = append(what, name)
		}
		sort.Strings(what)
	}
	var missing []string
	for _, name := range what {
		check, ok := requirements[name]
		if !ok {
			t.Fatalf("testbed: Require: unknown component %q", name)
		}
		if m := check(); m != "" {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "testbed: missing " + strings.Join(missing, ", ")
	if os.Geteuid() == 0 {
		msg += "; install with: " + aptHint
	}
	if Strict() {
		t.Fatal(msg + " (CYGNET_STRICT=1: failing instead of skipping)")
	}
	t.Skip(msg + " (skipping; CYGNET_STRICT=1 makes this a failure)")
}

// Root is Require(t, "root").
func Root(t testing.TB) {
	t.Helper()
	Require(t, "root")
}
