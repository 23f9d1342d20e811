package interop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// Recording transcripts (-update): Cygnet's engine, driven by engineHost,
// talks to charon over UDP sockets opened in a network namespace; every
// command, datagram and event is written down in order.

// listenUDPIn opens a UDP socket on addr inside network namespace ns. A
// socket keeps the namespace it was created in; only its creation needs a
// thread switched into the namespace.
func listenUDPIn(ns string, addr netip.AddrPort) (*net.UDPConn, error) {
	type result struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		restored := false
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			} // else the thread dies with this goroutine
		}()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			restored = true
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			restored = true
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			restored = true
			ch <- result{nil, err}
			return
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		restored = unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// datagram is one received UDP datagram.
type datagram struct {
	local, remote netip.AddrPort
	data          []byte
}

// recorder runs one scenario against charon and writes its transcript.
type recorder struct {
	t      *testing.T
	host   *engineHost
	charon *testbed.Charon
	socks  map[uint16]*net.UDPConn
	in     chan datagram
	tr     *Transcript
}

func (rec *recorder) add(r Record) { rec.tr.Records = append(rec.tr.Records, r) }

// flush sends what the engine produced (adding the non-ESP marker on the
// NAT-T port, RFC 3948 2.2) and records events and datagrams.
func (rec *recorder) flush() error {
	for _, ev := range rec.host.events {
		rec.add(Record{Kind: RecEvent, Text: ev})
	}
	rec.host.events = nil
	for _, p := range rec.host.packets {
		rec.add(Record{Kind: RecOut, From: p.Local, To: p.Remote, Data: p.Data})
		c := rec.socks[p.Local.Port()]
		if c == nil {
			return fmt.Errorf("engine sent from %v: no socket", p.Local)
		}
		data := p.Data
		if p.Local.Port() == 4500 {
			data = append([]byte{0, 0, 0, 0}, data...)
		}
		if _, err := c.WriteToUDPAddrPort(data, p.Remote); err != nil {
			return err
		}
	}
	rec.host.packets = nil
	return nil
}

// pump hands received datagrams to the engine until it has reported an
// event starting with until among the records from index from on.
func (rec *recorder) pump(until string, from int) error {
	deadline := time.After(waitTime)
	seen := func() bool {
		for _, r := range rec.tr.Records[from:] {
			if r.Kind == RecEvent && strings.HasPrefix(r.Text, until) {
				return true
			}
		}
		return false
	}
	for !seen() {
		select {
		case d := <-rec.in:
			data := d.data
			if d.local.Port() == 4500 {
				switch {
				case len(data) == 1 && data[0] == 0xff:
					continue // NAT-T keepalive (RFC 3948 2.3)
				case len(data) < 4 || data[0]|data[1]|data[2]|data[3] != 0:
					continue // ESP
				}
				data = data[4:]
			}
			rec.add(Record{Kind: RecIn, From: d.remote, To: d.local, Data: data})
			if err := rec.host.receive(d.remote, d.local, data); err != nil {
				return err
			}
			if err := rec.flush(); err != nil {
				return err
			}
		case <-deadline:
			return fmt.Errorf("no %q event within %v", until, waitTime)
		}
	}
	return nil
}

// run executes the scenario's script.
func (rec *recorder) run() error {
	errc := make(chan error, 4)
	for _, step := range rec.host.sc.script {
		cmd, until, _ := strings.Cut(step, " => ")
		from := len(rec.tr.Records)
		rec.add(Record{Kind: RecCmd, Text: cmd})
		f := strings.Fields(cmd)
		switch f[0] {
		case "swan-initiate":
			go func() { errc <- rec.charon.Initiate(rec.t, rec.host.sc.name, f[1]) }()
		case "swan-terminate":
			go func() { errc <- rec.charon.Terminate(rec.t, rec.host.sc.name) }()
		case "swan-rekey":
			go func() {
				res, err := rec.charon.Vici(rec.t, waitTime).Call("rekey", (&testbed.ViciMessage{}).Add("child", f[1]))
				if err == nil && res.Get("success") != "yes" {
					err = fmt.Errorf("strongSwan's rekey of %s: %s", f[1], res.Get("errmsg"))
				}
				errc <- err
			}()
		}
		if err := rec.host.command(cmd); err != nil {
			return err
		}
		if err := rec.flush(); err != nil {
			return err
		}
		if err := rec.pump(until, from); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		if strings.HasPrefix(f[0], "swan-") {
			if err := <-errc; err != nil {
				return err
			}
		}
	}
	// Let charon's last words (retransmissions, if any) arrive; none should.
	time.Sleep(200 * time.Millisecond)
	select {
	case d := <-rec.in:
		return fmt.Errorf("strongSwan sent %d more octets after the script ended", len(d.data))
	default:
	}
	return nil
}

// ensureTranscriptPKI makes the Ed25519 CA and both certificates with pki
// unless they exist (they are part of the recordings: replaying needs the
// same certificates).
func ensureTranscriptPKI(t *testing.T) {
	t.Helper()
	dir := filepath.Join(transcriptDir, "pki")
	if _, err := os.Stat(filepath.Join(dir, "ca.crt")); err == nil {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, k := range []string{"ca.key", "cygnet.key", "swan.key"} {
		if err := pkiRun(p(k), "--gen", "--type", "ed25519", "--outform", "pem"); err != nil {
			t.Fatal(err)
		}
	}
	if err := pkiRun(p("ca.crt"), "--self", "--ca", "--lifetime", "3650", "--in", p("ca.key"),
		"--dn", "C=CH, O=Cygnet interop, CN=transcript CA", "--outform", "pem"); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{"cygnet", "swan"} {
		id := side + ".ed25519-initiator.test"
		if err := pkiRun(p(side+".crt"), "--issue", "--cacert", p("ca.crt"), "--cakey", p("ca.key"),
			"--in", p(side+".key"), "--type", "priv", "--dn", "C=CH, O=Cygnet interop, CN="+id, "--san", id,
			"--lifetime", "3650", "--outform", "pem"); err != nil {
			t.Fatal(err)
		}
	}
}

// swanctlFor is charon's configuration of the scenarios.
func swanctlFor(scs []scenario) string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for _, sc := range scs {
		authLine := "auth = psk"
		certs := ""
		if sc.auth != AuthPSK {
			authLine, certs = "auth = pubkey", "\n\t\t\tcerts = swan.crt"
		}
		fmt.Fprintf(&b, "\t%s {\n\t\tversion = 2\n\t\tlocal_addrs = %s\n\t\tremote_addrs = %s\n\t\tproposals = %s\n\t\tmobike = no\n",
			sc.name, sc.swan, sc.cygnet, sc.ike)
		fmt.Fprintf(&b, "\t\tlocal {\n\t\t\t%s\n\t\t\tid = swan.%s.test%s\n\t\t}\n", authLine, sc.name, certs)
		fmt.Fprintf(&b, "\t\tremote {\n\t\t\t%s\n\t\t\tid = cygnet.%s.test\n\t\t}\n\t\tchildren {\n", authLine, sc.name)
		for _, ch := range sc.children {
			fmt.Fprintf(&b, "\t\t\t%s {\n\t\t\t\tlocal_ts = %s\n\t\t\t\tremote_ts = %s\n\t\t\t\tesp_proposals = %s\n\t\t\t}\n",
				ch.name, ch.remote, ch.local, ch.esp)
		}
		b.WriteString("\t\t}\n\t}\n")
	}
	b.WriteString("}\nsecrets {\n")
	for _, sc := range scs {
		if sc.auth == AuthPSK {
			fmt.Fprintf(&b, "\tike-%s {\n\t\tid-1 = swan.%s.test\n\t\tid-2 = cygnet.%s.test\n\t\tsecret = %q\n\t}\n", sc.name, sc.name, sc.name, transcriptPSK)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// recordTranscripts records every scenario against charon and writes the
// files.
func recordTranscripts(t *testing.T) {
	testbed.Require(t, "root", "charon", "swanctl", "pki", "tun")
	ensureTranscriptPKI(t)
	cygNS, swanNS := testbed.NewNetns(t, "tcyg"), testbed.NewNetns(t, "tswan")
	var cygAddrs, swanAddrs []netip.Prefix
	for _, sc := range scenarios {
		cygAddrs = append(cygAddrs, netip.PrefixFrom(sc.cygnet, 24))
		swanAddrs = append(swanAddrs, netip.PrefixFrom(sc.swan, 24))
		for _, ch := range sc.children {
			swanNS.AddAddr(t, "lo", netip.PrefixFrom(netip.MustParsePrefix(ch.remote).Addr().Next(), 32))
		}
	}
	testbed.Link(t, cygNS, swanNS, cygAddrs, swanAddrs)
	files := map[string][]byte{}
	for name, path := range map[string]string{"x509ca/ca.crt": "ca.crt", "x509/swan.crt": "swan.crt", "private/swan.key": "swan.key"} {
		b, err := os.ReadFile(filepath.Join(transcriptDir, "pki", path))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	charon := testbed.StartCharon(t, swanNS, testbed.CharonConfig{
		Swanctl: swanctlFor(scenarios),
		Files:   files,
		Plugins: append(append([]string(nil), testbed.DefaultPlugins...), "chapoly"),
	})
	version, _ := charon.Swanctl(t, "--version")
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			start := time.Now().UTC().Truncate(time.Second)
			host, err := newEngineHost(sc, sc.seed(), start)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{t: t, host: host, charon: charon, socks: map[uint16]*net.UDPConn{},
				in: make(chan datagram, 64), tr: &Transcript{Name: sc.name, Seed: sc.seed(), Start: start}}
			for _, port := range []uint16{500, 4500} {
				c, err := listenUDPIn(cygNS.Name, netip.AddrPortFrom(sc.cygnet, port))
				if err != nil {
					t.Fatal(err)
				}
				rec.socks[port] = c
				t.Cleanup(func() { c.Close() })
				go func() {
					buf := make([]byte, 65536)
					for {
						n, from, err := c.ReadFromUDPAddrPort(buf)
						if err != nil {
							return
						}
						rec.in <- datagram{local: netip.AddrPortFrom(sc.cygnet, port), remote: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()),
							data: append([]byte(nil), buf[:n]...)}
					}
				}()
			}
			if err := rec.run(); err != nil {
				t.Fatalf("recording %s: %v", sc.name, err)
			}
			header := fmt.Sprintf("Cygnet interop transcript %s, recorded %s against %s"+
				"by `go test ./interop/ -run Transcripts -update`; replayed by TestTranscripts.\n"+
				"Cygnet's engine (seeded random source, fake clock) at %s, strongSwan (charon, kernel-libipsec) at %s.",
				sc.name, start.Format(time.DateOnly), strings.TrimSpace(version)+" ", sc.cygnet, sc.swan)
			if err := os.WriteFile(sc.path(), rec.tr.Marshal(header), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("recorded %s: %d records", sc.path(), len(rec.tr.Records))
		})
	}
	if t.Failed() {
		t.Fatal(errors.New("recording failed"))
	}
}
