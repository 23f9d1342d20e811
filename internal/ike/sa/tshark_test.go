package sa

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTsharkHandshake writes a whole engine handshake (IKE_SA_INIT,
// IKE_AUTH with certificates on the NAT-T port, CREATE_CHILD_SA with PFS,
// an IKE SA rekey, INFORMATIONAL delete on the new IKE SA) into a pcap file
// and has Wireshark's IKEv2 dissector decrypt it with the key-log records
// the engine reported (KeysDerived: the first IKE SA's and the rekeyed
// one's): nothing may be malformed, and the decrypted payloads must be
// there. The idea (and the pcap writer) follows the wire package's tshark
// test.
//
// Without tshark the test skips, unless CYGNET_STRICT=1.
func TestTsharkHandshake(t *testing.T) {
	tshark := needTshark(t)
	pk := getPKI()
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	usePubKey(ini, leaf(t, keyECDSA, "a.example", time.Time{}), pk.root.cert)
	usePubKey(resp, leaf(t, keyECDSA, "b.example", time.Time{}), pk.root.cert)
	ini.ForceEncap = true
	ini.Children[0].Proposals = mustProposals(t, 3, "aes256gcm16-x25519")
	resp.Children[0].Proposals = mustProposals(t, 3, "aes256gcm16-x25519")
	p := newPair(t, 200, ini, resp, ResponderOptions{})
	p.handshake()
	p.fromInitiator(p.ini.CreateChild(p.now, "net"))
	p.settle()
	p.requireUp(2)
	p.fromInitiator(p.ini.Rekey(p.now))
	p.settle()
	p.fromInitiator(p.ini.Delete(p.now))
	p.settle()

	records := p.i.keyLogs()
	if len(records) != 2 {
		t.Fatalf("%d key-log records, want 2 (the IKE SA and its rekey)", len(records))
	}
	text := tsharkDecode(t, tshark, p.trace, records...)
	for _, want := range []string{
		"Exchange type: IKE_SA_INIT (34)",
		"Exchange type: IKE_AUTH (35)",
		"Exchange type: CREATE_CHILD_SA (36)",
		"Exchange type: INFORMATIONAL (37)",
		"Non-ESP Marker",
		// Decrypted with our key log:
		"Payload: Identification - Initiator (35)",
		"Payload: Identification - Responder (36)",
		"Payload: Certificate (37)",
		"Payload: Certificate Request (38)",
		"Payload: Authentication (39)",
		"Authentication Method: Digital Signature (14)",
		"Payload: Traffic Selector - Initiator (44)",
		"Starting Addr: 10.1.0.0",
		"Ending Addr: 10.2.255.255",
		"Payload: Delete (42)",
		"a.example",
		"Transform ID (D-H): Curve25519 (31)",
		// The IKE SA rekey's proposal carries the new SPI (8 octets).
		"SPI Size: 8",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("tshark output lacks %q", want)
		}
	}
	// Every message after IKE_AUTH decrypts: on the first IKE SA and on the
	// one the rekey made.
	if n, want := strings.Count(text, "Decrypted Data ("), len(p.trace)-2; n != want {
		t.Errorf("tshark decrypted %d messages, want %d", n, want)
	}
}

// A handshake whose IKE_AUTH fails decrypts too: the key-log record comes
// when the keys exist (KeysDerived, after IKE_SA_INIT), not only once the
// IKE SA is established.
func TestTsharkFailedAuth(t *testing.T) {
	tshark := needTshark(t)
	ini, resp := baseConfigs(t, "aes256gcm16-prfsha256-x25519")
	resp.PSK = pskFunc("another key")
	p := newPair(t, 201, ini, resp, ResponderOptions{})
	p.handshake()
	if p.i.failed() == nil || p.i.established() != nil {
		t.Fatal("the handshake did not fail")
	}
	records := p.i.keyLogs()
	if len(records) != 1 {
		t.Fatalf("%d key-log records, want 1", len(records))
	}
	text := tsharkDecode(t, tshark, p.trace, records...)
	for _, want := range []string{
		"Exchange type: IKE_AUTH (35)",
		"Payload: Identification - Initiator (35)",
		"Payload: Authentication (39)",
		"Authentication Method: Shared Key Message Integrity Code (2)",
		"Notify Message Type: AUTHENTICATION_FAILED (24)",
		"a.example",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("tshark output lacks %q", want)
		}
	}
	if n := strings.Count(text, "Decrypted Data ("); n != 2 {
		t.Errorf("tshark decrypted %d messages, want the IKE_AUTH request and response", n)
	}
}

func needTshark(t *testing.T) string {
	t.Helper()
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CYGNET_STRICT") == "1" {
			t.Fatal("tshark not found on PATH and CYGNET_STRICT=1")
		}
		t.Skip("tshark not found on PATH")
	}
	return tshark
}

// tsharkDecode writes trace into a pcap file and returns tshark's -V
// dissection of it, decrypted with the ikev2_decryption_table records; it
// fails the test on anything malformed, undecryptable or an expert error.
func tsharkDecode(t *testing.T, tshark string, trace []Packet, records ...string) string {
	t.Helper()
	var pcap bytes.Buffer
	writePcapHeader(&pcap)
	for i, pkt := range trace {
		payload := pkt.Data
		if pkt.Local.Port() == 4500 {
			payload = append([]byte{0, 0, 0, 0}, payload...) // RFC 3948 2.2
		}
		writePcapRecord(&pcap, uint32(i+1), udpIPv4(pkt.Local.Addr().As4(), pkt.Remote.Addr().As4(), pkt.Local.Port(), pkt.Remote.Port(), payload))
	}
	file := filepath.Join(t.TempDir(), "trace.pcap")
	if err := os.WriteFile(file, pcap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var uat []string
	for _, r := range records {
		uat = append(uat, "-o", "uat:ikev2_decryption_table:"+r)
	}
	args := append([]string{"-r", file, "-V", "-n", "-o", "udp.check_checksum:FALSE"}, uat...)
	out, err := exec.Command(tshark, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	text := string(out)
	if testing.Verbose() {
		t.Logf("tshark -V output:\n%s", text)
	}
	for _, bad := range []string{"Malformed", "Expert Info (Error", "incorrect", "Decryption failed"} {
		if strings.Contains(text, bad) {
			t.Errorf("tshark reports %q", bad)
		}
	}
	if n := strings.Count(text, "Internet Security Association and Key Management Protocol"); n != len(trace) {
		t.Errorf("tshark dissected %d IKE messages, want %d", n, len(trace))
	}
	expert, err := exec.Command(tshark, append([]string{"-r", file, "-q", "-z", "expert,error"}, uat...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -z expert: %v\n%s", err, expert)
	}
	if regexp.MustCompile(`(?m)^Errors \(\d+\)`).Match(expert) {
		t.Errorf("tshark expert errors:\n%s", expert)
	}
	return text
}

// writePcapHeader writes a libpcap header for LINKTYPE_RAW (IPv4 packets).
func writePcapHeader(w *bytes.Buffer) {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], 101)
	w.Write(h[:])
}

func writePcapRecord(w *bytes.Buffer, sec uint32, pkt []byte) {
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], 1_700_000_000+sec)
	binary.LittleEndian.PutUint32(h[8:], uint32(len(pkt)))
	binary.LittleEndian.PutUint32(h[12:], uint32(len(pkt)))
	w.Write(h[:])
	w.Write(pkt)
}

// udpIPv4 builds an IPv4 packet with a UDP datagram (UDP checksum 0).
func udpIPv4(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	total := 28 + len(payload)
	p := make([]byte, 28, total)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(total))
	p[8], p[9] = 64, 17
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	return append(p, payload...)
}
