package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/esp"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/keylog"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// TestStrongSwanTraffic sends traffic between `cygnet daemon` with its
// userspace data plane and strongSwan's charon with kernel-libipsec (ESP in
// UDP, as kernel-libipsec always fakes a NAT), in two network namespaces
// that the subtests share with one charon and one daemon: for AES-GCM,
// ChaCha20-Poly1305 and AES-CBC with HMAC-SHA-256, each side initiating
// once, ping and a TCP stream in both directions; tshark decrypting
// Cygnet's ESP with Cygnet's key log; and an ESP packet from strongSwan's
// side whose inner source lies outside the CHILD_SA's traffic selectors,
// which Cygnet drops and counts.
func TestStrongSwanTraffic(t *testing.T) {
	testbed.Require(t, "root", "charon", "swanctl", "tshark", "ping", "tun")
	bin := cygnetBinary(t)

	cygNS, swanNS := testbed.NewNetns(t, "tcyg"), testbed.NewNetns(t, "tswan")
	cygIf, _ := testbed.Link(t, cygNS, swanNS,
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")})
	// Inner addresses, before the daemons pick route sources among them:
	// 10.<odd>.0.1 on Cygnet's side, 10.<even>.0.1 on strongSwan's.
	for i := 1; i <= 8; i++ {
		ns := cygNS
		if i%2 == 0 {
			ns = swanNS
		}
		ns.AddAddr(t, "lo", netip.MustParsePrefix(fmt.Sprintf("10.%d.0.1/32", i)))
	}

	plugins := append([]string(nil), testbed.DefaultPlugins...)
	plugins = append(plugins[:3], append([]string{"chapoly"}, plugins[3:]...)...)
	charon := testbed.StartCharon(t, swanNS, testbed.CharonConfig{Swanctl: swanTrafficConf, Plugins: plugins})

	dir := cygNS.Dir()
	socket := filepath.Join(dir, "cygnet.sock")
	xdg := filepath.Join(dir, "xdg")
	cfgPath := filepath.Join(dir, "cygnet.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(cygTrafficConf, socket, filepath.Join(xdg, "wireshark")))
	proc := cygNS.Start(t, "cygnet", testbed.StartOptions{}, bin, "daemon", "-c", cfgPath)
	cyg := &daemonProc{t: t, name: "cygnet", socket: socket}
	waitSocket(t, cyg, proc)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cygnet's log:\n%s", proc.Output())
		}
	})

	for _, s := range []struct {
		conn             string
		cygIn, swanIn    string
		tsharkDecryptsIt bool // Wireshark 4.0 has no ChaCha20-Poly1305 for ESP
	}{
		{"gcm", "10.1.0.1", "10.2.0.1", true},
		{"chacha", "10.3.0.1", "10.4.0.1", false},
		{"cbc", "10.5.0.1", "10.6.0.1", true},
	} {
		for _, cygInitiates := range []bool{true, false} {
			who := "strongswan initiates"
			if cygInitiates {
				who = "cygnet initiates"
			}
			t.Run(s.conn+"/"+who, func(t *testing.T) {
				if cygInitiates {
					if code, out, errOut := cyg.cli("up", s.conn); code != 0 {
						t.Fatalf("cygnet up %s: exit %d\n%s%s", s.conn, code, out, errOut)
					}
				} else if err := charon.Initiate(t, s.conn, s.conn); err != nil {
					t.Fatalf("swanctl --initiate %s: %v", s.conn, err)
				}
				charon.WaitSA(t, testbed.Established(s.conn, s.conn), 5*time.Second)
				cyg.waitStatus(s.conn+" up", 5*time.Second, ikeUp(s.conn, s.conn))

				var capture *testbed.Capture
				if s.tsharkDecryptsIt && cygInitiates {
					capture = testbed.StartCapture(t, cygNS, cygIf)
				}
				ping(t, cygNS, s.cygIn, s.swanIn, 3)
				ping(t, swanNS, s.swanIn, s.cygIn, 3)
				if capture != nil {
					checkDecryptedICMP(t, capture.Stop(t), xdg, s.cygIn, s.swanIn)
				}
				tcpStream(t, cygNS, swanNS, s.cygIn, s.swanIn, 4<<20)
				tcpStream(t, swanNS, cygNS, s.swanIn, s.cygIn, 4<<20)

				c, _ := child(cyg.status(), s.conn, s.conn)
				if c.PacketsIn < 1000 || c.PacketsOut < 1000 || c.BytesIn < 4<<20 || c.BytesOut < 4<<20 || !c.Encap {
					t.Errorf("cygnet's CHILD_SA %s: %+v; want ESP in UDP, 4 MiB and 1000 packets each way at least", s.conn, c)
				}
				if code, _, errOut := cyg.cli("down", s.conn); code != 0 {
					t.Fatalf("cygnet down %s: exit %d: %s", s.conn, code, errOut)
				}
				charon.WaitSA(t, testbed.Gone(s.conn), 5*time.Second)
			})
		}
	}

	t.Run("inner source outside the selectors", func(t *testing.T) {
		// strongSwan itself never sends such a packet (libipsec checks
		// its outbound policies), so it is crafted on strongSwan's side
		// of a fresh CHILD_SA, with the keys of Cygnet's key log: a
		// datagram from 10.9.0.1, outside 10.8.0.0/16, then one from
		// 10.8.0.1. The ICV of both is right; RFC 4301 5.2 has Cygnet drop
		// the first after decryption, and count it.
		if code, out, errOut := cyg.cli("up", "policy"); code != 0 {
			t.Fatalf("cygnet up policy: exit %d\n%s%s", code, out, errOut)
		}
		charon.WaitSA(t, testbed.Established("policy", "policy"), 5*time.Second)
		c, _ := child(cyg.status(), "policy", "policy")
		seal := sealerFromKeylog(t, filepath.Join(xdg, "wireshark", keylog.ESPFile), c.SPIIn)

		var pc net.PacketConn
		if err := inNetns(cygNS.Name, func() (err error) {
			pc, err = net.ListenPacket("udp4", "10.7.0.1:7000")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		var swan net.PacketConn
		if err := inNetns(swanNS.Name, func() (err error) {
			swan, err = net.ListenPacket("udp4", "192.0.2.2:0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer swan.Close()
		dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.1:4500"))
		for _, src := range []string{"10.9.0.1", "10.8.0.1"} {
			inner := udp4(netip.MustParseAddr(src), netip.MustParseAddr("10.7.0.1"), 7000, 7000, []byte("from "+src))
			if _, err := swan.WriteTo(seal(inner), dst); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 100)
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("the datagram from inside the selectors did not arrive: %v", err)
		}
		if got := string(buf[:n]); got != "from 10.8.0.1" {
			t.Fatalf("received %q from %v", got, from)
		}
		st := cyg.waitStatus("the policy drop", 5*time.Second, func(st *control.Status) bool {
			c, _ := child(st, "policy", "policy")
			// Both decrypted (the SA counts them, as the kernel's SAs do);
			// one failed the policy check.
			return c.Drops == 1 && c.PacketsIn == 2
		})
		c, _ = child(st, "policy", "policy")
		t.Logf("cygnet's CHILD_SA policy: %d packets decrypted, %d dropped", c.PacketsIn, c.Drops)
		if got := cygMetric(t, cygNS, `cygnet_packets_dropped_total{reason="esp_policy"}`); got != "1" {
			t.Errorf("cygnet_packets_dropped_total{reason=\"esp_policy\"} = %s, want 1", got)
		}
		if code, _, errOut := cyg.cli("down", "policy"); code != 0 {
			t.Fatalf("cygnet down policy: exit %d: %s", code, errOut)
		}
	})
}

// sealerFromKeylog reads the AES-GCM key of the SA with SPI spi from a key
// log's esp_sa table and returns a function that seals tunnel-mode ESP with
// it, sequence numbers from 1.
func sealerFromKeylog(t *testing.T, path, spi string) func(inner []byte) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Split(strings.ReplaceAll(line, `"`, ""), ",")
		if len(f) < 6 || f[3] != "0x"+spi {
			continue
		}
		key, err := hex.DecodeString(strings.TrimPrefix(f[5], "0x"))
		if err != nil {
			t.Fatal(err)
		}
		spiNum, _ := strconv.ParseUint(spi, 16, 32)
		out, err := esp.NewOutbound(esp.Config{SPI: uint32(spiNum), Encr: wire.ENCR_AES_GCM_16, EncrKeyLen: 256, EncrKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return func(inner []byte) []byte {
			pkt, err := out.Seal(nil, inner, esp.ProtoIPv4)
			if err != nil {
				t.Fatal(err)
			}
			return pkt
		}
	}
	t.Fatalf("no SA 0x%s in %s:\n%s", spi, path, data)
	return nil
}

// checkDecryptedICMP runs tshark over a capture of Cygnet's veth with
// Cygnet's key log as Wireshark's configuration and requires the pings
// inside the ESP: echo requests from cygIn to swanIn and the replies.
func checkDecryptedICMP(t *testing.T, pcap, xdg, cygIn, swanIn string) {
	t.Helper()
	args := []string{"-r", pcap, "-n", "-Y", "esp && icmp", "-T", "fields",
		"-E", "occurrence=a", "-E", "aggregator=,", "-e", "esp.spi", "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type"}
	out := tsharkWith(t, xdg, args...)
	for _, want := range []string{
		"\t192.0.2.1," + cygIn + "\t192.0.2.2," + swanIn + "\t8",
		"\t192.0.2.2," + swanIn + "\t192.0.2.1," + cygIn + "\t0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tshark did not decrypt the ICMP in Cygnet's ESP: %q missing from:\n%s", want, out)
		}
	}
	// Without the keys it sees ESP only.
	if out := tsharkWith(t, t.TempDir(), args...); strings.TrimSpace(out) != "" {
		t.Errorf("ICMP visible without the key log:\n%s", out)
	}
}

// tcpStream sends n random bytes over TCP from src in one namespace to dst
// in the other, through the tunnel, and checks that they arrived intact.
func tcpStream(t *testing.T, from, to *testbed.Netns, src, dst string, n int) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(to.Name, func() (err error) {
		ln, err = net.Listen("tcp4", dst+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		h := sha256.New()
		n, err := io.Copy(h, c)
		got <- result{[32]byte(h.Sum(nil)), n, err}
	}()
	data := make([]byte, n)
	rand.Read(data)
	var c net.Conn
	start := time.Now()
	if err := inNetns(from.Name, func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
		c, err = d.Dial("tcp4", ln.Addr().String())
		return err
	}); err != nil {
		t.Fatalf("TCP %s -> %s: %v", src, dst, err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(c, bytes.NewReader(data)); err != nil {
		c.Close()
		t.Fatalf("TCP %s -> %s: %v", src, dst, err)
	}
	c.Close()
	r := <-got
	if r.err != nil || r.n != int64(n) || r.sum != sha256.Sum256(data) {
		t.Fatalf("TCP %s -> %s: received %d of %d bytes (err %v), intact: %v", src, dst, r.n, n, r.err, r.sum == sha256.Sum256(data))
	}
	t.Logf("TCP %s -> %s: %d MiB in %v", src, dst, n>>20, time.Since(start).Round(time.Millisecond))
}

// cygMetric reads one sample from Cygnet's metrics endpoint, which listens
// on 127.0.0.1:9134 inside ns.
func cygMetric(t *testing.T, ns *testbed.Netns, sample string) string {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = inNetns(ns.Name, func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	resp, err := client.Get("http://127.0.0.1:9134/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in the metrics:\n%s", sample, body)
	return ""
}

// Cygnet's side: socket, key log directory.
const cygTrafficConf = `daemon:
  listen: [192.0.2.1]
  socket: %s
  keylog: %s
  metrics: 127.0.0.1:9134
  log: {level: debug}
secrets:
  - ids: [cyg-gcm.test, swan-gcm.test, cyg-chacha.test, swan-chacha.test, cyg-cbc.test, swan-cbc.test, cyg-policy.test, swan-policy.test]
    psk: "traffic test secret, long enough"
connections:
  gcm:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes256gcm16-prfsha256-x25519]
    local: {auth: psk, id: cyg-gcm.test}
    remote: {auth: psk, id: swan-gcm.test}
    children:
      gcm: {local_ts: [10.1.0.0/16], remote_ts: [10.2.0.0/16], esp_proposals: [aes256gcm16]}
  chacha:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [chacha20poly1305-prfsha256-x25519]
    local: {auth: psk, id: cyg-chacha.test}
    remote: {auth: psk, id: swan-chacha.test}
    children:
      chacha: {local_ts: [10.3.0.0/16], remote_ts: [10.4.0.0/16], esp_proposals: [chacha20poly1305]}
  cbc:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes256-sha256-x25519]
    local: {auth: psk, id: cyg-cbc.test}
    remote: {auth: psk, id: swan-cbc.test}
    children:
      cbc: {local_ts: [10.5.0.0/16], remote_ts: [10.6.0.0/16], esp_proposals: [aes256-sha256]}
  policy:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes256gcm16-prfsha256-x25519]
    local: {auth: psk, id: cyg-policy.test}
    remote: {auth: psk, id: swan-policy.test}
    children:
      policy: {local_ts: [10.7.0.0/16], remote_ts: [10.8.0.0/16], esp_proposals: [aes256gcm16]}
`

// strongSwan's side.
const swanTrafficConf = `connections {
	gcm {
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = aes256gcm16-prfsha256-x25519
		mobike = no
		local { auth = psk
			id = swan-gcm.test }
		remote { auth = psk
			id = cyg-gcm.test }
		children { gcm { local_ts = 10.2.0.0/16
				remote_ts = 10.1.0.0/16
				esp_proposals = aes256gcm16 } }
	}
	chacha {
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = chacha20poly1305-prfsha256-x25519
		mobike = no
		local { auth = psk
			id = swan-chacha.test }
		remote { auth = psk
			id = cyg-chacha.test }
		children { chacha { local_ts = 10.4.0.0/16
				remote_ts = 10.3.0.0/16
				esp_proposals = chacha20poly1305 } }
	}
	cbc {
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = aes256-sha256-x25519
		mobike = no
		local { auth = psk
			id = swan-cbc.test }
		remote { auth = psk
			id = cyg-cbc.test }
		children { cbc { local_ts = 10.6.0.0/16
				remote_ts = 10.5.0.0/16
				esp_proposals = aes256-sha256 } }
	}
	policy {
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = aes256gcm16-prfsha256-x25519
		mobike = no
		local { auth = psk
			id = swan-policy.test }
		remote { auth = psk
			id = cyg-policy.test }
		children { policy { local_ts = 10.8.0.0/16
				remote_ts = 10.7.0.0/16
				esp_proposals = aes256gcm16 } }
	}
}
secrets {
	ike-traffic {
		id-1 = swan-gcm.test
		id-2 = cyg-gcm.test
		id-3 = swan-chacha.test
		id-4 = cyg-chacha.test
		id-5 = swan-cbc.test
		id-6 = cyg-cbc.test
		id-7 = swan-policy.test
		id-8 = cyg-policy.test
		secret = "traffic test secret, long enough"
	}
}
`
