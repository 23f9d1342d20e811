package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/keylog"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// TestStrongSwan is issue 4's first contact with the reference peer: two
// network namespaces joined by a veth pair, strongSwan's charon (with
// kernel-libipsec, which forces UDP encapsulation) in one, `cygnet daemon`
// in the other. It needs root, charon, pki and tshark (testbed.Require skips
// without them, and fails under CYGNET_STRICT=1).
func TestStrongSwan(t *testing.T) {
	testbed.Require(t, "root", "charon", "swanctl", "pki", "tshark")
	bin := cygnetBinary(t)

	cygNS, swanNS := testbed.NewNetns(t, "cyg"), testbed.NewNetns(t, "swan")
	cygIf, _ := testbed.Link(t, cygNS, swanNS,
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")})

	// kernel-libipsec routes the remote selectors through its TUN device
	// with a local inner address as source, which must exist: without one it
	// refuses the CHILD_SA (TS_UNACCEPTABLE as responder).
	swanNS.AddAddr(t, "lo", netip.MustParsePrefix("10.2.0.1/32"))
	swanNS.AddAddr(t, "lo", netip.MustParsePrefix("10.4.0.1/32"))

	// Certificates made by strongSwan's pki: one CA, one for each side.
	pkiDir := t.TempDir()
	ca := testbed.NewCA(t, pkiDir, "ecdsa", "C=CH, O=Cygnet, CN=Interop CA")
	swanCert := testbed.Issue(t, ca, "ecdsa", 0, "C=CH, O=Cygnet, CN=swan-cert.test", "swan-cert.test")
	cygCert := testbed.Issue(t, ca, "ecdsa", 0, "C=CH, O=Cygnet, CN=cygnet-cert.test", "cygnet-cert.test")

	charon := testbed.StartCharon(t, swanNS, testbed.CharonConfig{
		Swanctl:  swanctlConf,
		Files:    swanCert.CharonFiles(t),
		LogLevel: 2,
	})

	dir := cygNS.Dir()
	socket := filepath.Join(dir, "cygnet.sock")
	// The key log goes where Wireshark looks for its configuration
	// ($XDG_CONFIG_HOME/wireshark), so tshark decrypts with Cygnet's files
	// as written.
	xdg := filepath.Join(dir, "xdg")
	keylogDir := filepath.Join(xdg, "wireshark")
	cfgPath := filepath.Join(dir, "cygnet.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(cygnetInteropConf, socket, keylogDir, cygCert.CertPath, cygCert.KeyPath, ca.CertPath))
	proc := cygNS.Start(t, "cygnet", testbed.StartOptions{}, bin, "daemon", "-c", cfgPath)
	cyg := &daemonProc{t: t, name: "cygnet", socket: socket}
	waitSocket(t, cyg, proc)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cygnet's log:\n%s", proc.Output())
		}
	})

	t.Run("cygnet initiates with PSK", func(t *testing.T) {
		capture := testbed.StartCapture(t, cygNS, cygIf)
		if code, out, errOut := cyg.cli("up", "psk", "net"); code != 0 {
			t.Fatalf("cygnet up psk net: exit %d\n%s%s", code, out, errOut)
		}
		sas := charon.WaitSA(t, testbed.Established("psk", "net"), 5*time.Second)
		st := cyg.waitStatus("psk up", 5*time.Second, ikeUp("psk", "net"))
		checkAgainstCharon(t, st, sas, "psk", "net", true)

		// Wireshark decrypts IKE_AUTH with the files Cygnet wrote.
		pcap := capture.Stop(t)
		if _, err := os.Stat(filepath.Join(keylogDir, keylog.IKEFile)); err != nil {
			t.Fatal(err)
		}
		out := tsharkWith(t, xdg, "-r", pcap, "-V", "-Y", "isakmp.exchangetype == 35")
		for _, want := range []string{"Identification - Initiator", "Identification Data:cygnet.test", "Identification - Responder", "Identification Data:swan.test", "Payload: Authentication"} {
			if !strings.Contains(out, want) {
				t.Errorf("tshark did not decrypt IKE_AUTH: %q missing from its output:\n%s", want, out)
			}
		}
		// Without the key log it cannot.
		if out := tsharkWith(t, t.TempDir(), "-r", pcap, "-V", "-Y", "isakmp.exchangetype == 35"); strings.Contains(out, "Identification Data:cygnet.test") {
			t.Error("IKE_AUTH readable without keys")
		}
	})

	t.Run("strongswan initiates with ECDSA certificates", func(t *testing.T) {
		if err := charon.Initiate(t, "ecdsa", "net2"); err != nil {
			t.Fatalf("swanctl --initiate: %v", err)
		}
		sas := charon.WaitSA(t, testbed.Established("ecdsa", "net2"), 5*time.Second)
		st := cyg.waitStatus("ecdsa up", 5*time.Second, ikeUp("ecdsa", "net2"))
		checkAgainstCharon(t, st, sas, "ecdsa", "net2", false)
	})

	t.Run("no common proposal", func(t *testing.T) {
		code, out, errOut := cyg.cli("up", "nomatch")
		if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 {
			t.Fatalf("cygnet up nomatch: exit %d, stdout %q, stderr %q; want exit 1 and one line", code, out, errOut)
		}
		for _, want := range []string{"cygnet: ", "NO_PROPOSAL_CHOSEN", "aes256gcm16-prfsha384-ecp384"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("cygnet up's reason %q lacks %q", errOut, want)
			}
		}
		t.Logf("cygnet up nomatch: %s", strings.TrimSpace(errOut))
		// strongSwan initiating fails too, and Cygnet's log names both lists.
		if err := charon.Initiate(t, "nomatch", "nm"); err == nil {
			t.Fatal("strongSwan's initiation of nomatch succeeded")
		}
		proc.WaitOutput(t, "aes128-sha256-modp3072", 5*time.Second)
		for _, line := range strings.Split(proc.Output(), "\n") {
			if strings.Contains(line, "aes128-sha256-modp3072") {
				if !strings.Contains(line, "aes256gcm16-prfsha384-ecp384") {
					t.Errorf("cygnet's log line names only the peer's proposals: %s", line)
				}
				t.Logf("cygnet's log: %s", line)
				break
			}
		}
		if _, ok := testbed.FindSA(charon.ListSAs(t), "nomatch"); ok {
			t.Error("strongSwan kept a nomatch IKE SA")
		}
		for _, ike := range cyg.status().IKESAs {
			if ike.Connection == "nomatch" {
				t.Errorf("cygnet kept a nomatch IKE SA: %+v", ike)
			}
		}
	})

	t.Run("cygnet down deletes on both sides", func(t *testing.T) {
		for _, conn := range []string{"psk", "ecdsa"} {
			if code, _, errOut := cyg.cli("down", conn); code != 0 {
				t.Fatalf("cygnet down %s: exit %d: %s", conn, code, errOut)
			}
			charon.WaitSA(t, testbed.Gone(conn), 5*time.Second)
		}
		cyg.waitStatus("no SAs", 5*time.Second, noIKESAs)
	})
}

// checkAgainstCharon compares Cygnet's status of conn with charon's view.
func checkAgainstCharon(t *testing.T, st *control.Status, sas []testbed.SA, conn, child string, cygInitiated bool) {
	t.Helper()
	var ike control.IKESA
	for _, s := range st.IKESAs {
		if s.Connection == conn {
			ike = s
		}
	}
	sa, _ := testbed.FindSA(sas, conn)
	sc, _ := sa.Child(child)
	var cc control.ChildSA
	for _, c := range ike.ChildSAs {
		if c.Name == child {
			cc = c
		}
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"cygnet initiator", ike.Initiator, cygInitiated},
		{"charon initiator", sa.Initiator, !cygInitiated},
		{"SPIi", ike.SPIi, control.FormatIKESPI(sa.SPIi)},
		{"SPIr", ike.SPIr, control.FormatIKESPI(sa.SPIr)},
		// kernel-libipsec fakes a NAT: both sides float to 4500.
		{"cygnet's remote", ike.Remote, "192.0.2.2:4500"},
		{"cygnet's local", ike.Local, "192.0.2.1:4500"},
		{"NAT on the peer's side", ike.NATRemote, true},
		{"charon's remote port", sa.RemotePort, uint16(4500)},
		{"child encap", cc.Encap, true},
		{"charon child encap", sc.Encap, true},
		{"our SPI in = charon's out", cc.SPIIn, control.FormatChildSPI(sc.SPIOut)},
		{"our SPI out = charon's in", cc.SPIOut, control.FormatChildSPI(sc.SPIIn)},
		{"charon child state", sc.State, "INSTALLED"},
		{"our local TS = charon's remote", strings.Join(cc.LocalTS, ","), strings.Join(sc.RemoteTS, ",")},
		{"our remote TS = charon's local", strings.Join(cc.RemoteTS, ","), strings.Join(sc.LocalTS, ",")},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s %s: got %v, want %v", conn, c.what, c.got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("cygnet: %+v\ncharon:\n%s", ike, testbed.FormatSAs(sas))
	}
}

// waitSocket waits until the daemon in proc answers on its control socket.
func waitSocket(t *testing.T, p *daemonProc, proc *testbed.Process) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, _ := p.cli("status", "--json"); code == 0 {
			return
		}
		if exited, err := proc.Exited(); exited {
			t.Fatalf("cygnet daemon exited: %v\n%s", err, proc.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("cygnet daemon's socket %s did not answer:\n%s", p.socket, proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tsharkWith runs tshark with XDG_CONFIG_HOME=xdg (its configuration
// directory is xdg/wireshark) and returns its standard output.
func tsharkWith(t *testing.T, xdg string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+xdg, "HOME="+xdg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// strongSwan's side. psk: Cygnet initiates; ecdsa: strongSwan initiates with
// pki-made certificates; nomatch: no proposal in common, either way.
const swanctlConf = `connections {
	psk {
		version = 2
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = aes256gcm16-prfsha256-x25519
		mobike = no
		local {
			auth = psk
			id = swan.test
		}
		remote {
			auth = psk
			id = cygnet.test
		}
		children {
			net {
				local_ts = 10.2.0.0/16
				remote_ts = 10.1.0.0/16
				esp_proposals = aes256gcm16
			}
		}
	}
	ecdsa {
		version = 2
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = aes128gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = peer.crt
			id = swan-cert.test
		}
		remote {
			auth = pubkey
			id = cygnet-cert.test
		}
		children {
			net2 {
				local_ts = 10.4.0.0/16
				remote_ts = 10.3.0.0/16
				esp_proposals = aes128gcm16
			}
		}
	}
	nomatch {
		version = 2
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = aes128-sha256-modp3072
		mobike = no
		local {
			auth = psk
			id = swan-nm.test
		}
		remote {
			auth = psk
			id = cygnet-nm.test
		}
		children {
			nm {
				local_ts = 10.6.0.0/16
				remote_ts = 10.5.0.0/16
			}
		}
	}
}
secrets {
	ike-psk {
		id-1 = swan.test
		id-2 = cygnet.test
		secret = "interop test secret, long enough"
	}
	ike-nm {
		id-1 = swan-nm.test
		id-2 = cygnet-nm.test
		secret = "another interop secret, long enough"
	}
}
`

// Cygnet's side: socket, keylog dir, our certificate, our key, the CA.
const cygnetInteropConf = `daemon:
  listen: [192.0.2.1]
  socket: %s
  dataplane: none
  keylog: %s
  log: {level: debug}
secrets:
  - ids: [cygnet.test, swan.test]
    psk: "interop test secret, long enough"
  - ids: [cygnet-nm.test, swan-nm.test]
    psk: "another interop secret, long enough"
connections:
  psk:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes256gcm16-prfsha256-x25519]
    local: {auth: psk, id: cygnet.test}
    remote: {auth: psk, id: swan.test}
    children:
      net: {local_ts: [10.1.0.0/16], remote_ts: [10.2.0.0/16], esp_proposals: [aes256gcm16]}
  ecdsa:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes128gcm16-prfsha256-ecp256]
    local: {auth: pubkey, id: cygnet-cert.test, certs: [%s], key: %s}
    remote: {auth: pubkey, id: swan-cert.test, cacerts: [%s]}
    children:
      net2: {local_ts: [10.3.0.0/16], remote_ts: [10.4.0.0/16], esp_proposals: [aes128gcm16]}
  nomatch:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes256gcm16-prfsha384-ecp384]
    local: {auth: psk, id: cygnet-nm.test}
    remote: {auth: psk, id: swan-nm.test}
    children:
      nm: {local_ts: [10.5.0.0/16], remote_ts: [10.6.0.0/16]}
`
