package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTsharkConformance writes sample messages into a pcap file and has
// Wireshark's IKEv2 dissector decode them: it must report nothing malformed,
// no error-level expert info, and the field values we wrote.
//
// Without tshark on PATH the test skips, unless CYGNET_STRICT=1 (as in CI),
// where it fails.
func TestTsharkConformance(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CYGNET_STRICT") == "1" {
			t.Fatal("tshark not found on PATH and CYGNET_STRICT=1 (install Debian's tshark package)")
		}
		t.Skip("tshark not found on PATH: install Debian's tshark package to run the wire conformance test")
	}

	type packet struct {
		port uint16 // 500, or 4500 with the non-ESP marker
		msg  *Message
	}
	packets := []packet{
		{500, sampleInitRequest()},
		{500, sampleInitResponse()},
		{4500, sampleAuthPlain()},
		{4500, sampleAuthSK()},
		{4500, sampleAuthSKF()},
		{500, sampleCreateChild()},
		{500, sampleInformational()},
	}
	var pcap bytes.Buffer
	writePcapHeader(&pcap)
	for i, p := range packets {
		payload := mustMarshal(p.msg)
		if p.port == 4500 {
			payload = append([]byte{0, 0, 0, 0}, payload...) // RFC 3948 2.2: non-ESP marker
		}
		writePcapRecord(&pcap, uint32(i+1), udpIPv4([4]byte{192, 0, 2, 1}, [4]byte{192, 0, 2, 2}, p.port, p.port, payload))
	}
	file := filepath.Join(t.TempDir(), "wire.pcap")
	if err := os.WriteFile(file, pcap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(tshark, "-r", file, "-V", "-n",
		"-o", "udp.check_checksum:FALSE", "-o", "ip.check_checksum:TRUE").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	text := string(out)
	if testing.Verbose() {
		t.Logf("tshark -V output:\n%s", text)
	}
	if strings.Contains(text, "Malformed") {
		t.Errorf("tshark reports a malformed packet:\n%s", grepContext(text, "Malformed"))
	}
	if strings.Contains(text, "Expert Info (Error") {
		t.Errorf("tshark reports an error:\n%s", grepContext(text, "Expert Info (Error"))
	}

	expert, err := exec.Command(tshark, "-r", file, "-q", "-z", "expert,error").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -z expert: %v\n%s", err, expert)
	}
	if regexp.MustCompile(`(?m)^Errors \(\d+\)`).Match(expert) {
		t.Errorf("tshark expert errors:\n%s", expert)
	}

	// The dissector saw what we wrote, not garbage that happened to parse.
	for _, want := range []string{
		"Exchange type: IKE_SA_INIT (34)",
		"Exchange type: IKE_AUTH (35)",
		"Exchange type: CREATE_CHILD_SA (36)",
		"Exchange type: INFORMATIONAL (37)",
		"Initiator SPI: 0123456789abcdef",
		"Responder SPI: fedcba9876543210",
		"Notify Message Type: NAT_DETECTION_SOURCE_IP (16388)",
		"Notify Message Type: NAT_DETECTION_DESTINATION_IP (16389)",
		"Notify Message Type: IKEV2_FRAGMENTATION_SUPPORTED (16430)",
		"Notify Message Type: SIGNATURE_HASH_ALGORITHMS (16431)",
		"Notify Message Type: INITIAL_CONTACT (16384)",
		"Notify Message Type: REKEY_SA (16393)",
		"Notify Message Type: AUTHENTICATION_FAILED (24)",
		"Notify Message Type: MOBIKE_SUPPORTED (16396)",
		"Transform ID (ENCR): AES-GCM with a 16 octet ICV (20)",
		"Transform ID (PRF): PRF_HMAC_SHA2_256 (5)",
		"Transform ID (INTEG): AUTH_HMAC_SHA2_256_128 (12)",
		"Transform ID (D-H): Curve25519 (31)",
		"Key Length: 256",
		"Starting Addr: 10.1.0.0",
		"Ending Addr: 10.1.255.255",
		"Starting Addr: 10.2.0.0",
		"Starting Addr: 2001:db8:1::",
		"ID_FQDN",
		"gw-a.example",
		"Payload: Encrypted and Authenticated (46)",
		"Payload: Encrypted and Authenticated Fragment (53)",
		"Fragment Number: 1",
		"Total Fragments: 3",
		"Payload: Delete (42)",
		"Payload: Configuration (47)",
		"Payload: Extensible Authentication (48)",
		"Payload: Vendor ID (43)",
		"Payload: Certificate Request (38)",
		"Payload: Certificate (37)",
		"Payload: Authentication (39)",
		"Payload: Key Exchange (34)",
		"Payload: Nonce (40)",
		"Payload: Traffic Selector - Initiator (44)",
		"Payload: Traffic Selector - Responder (45)",
		"Payload: Identification - Responder (36)",
		"Non-ESP Marker",
		"Type: CFG_REQUEST (1)",
		"Type: INTERNAL_IP6_ADDRESS (8)",
		"Identity: alice@example",
		"SPI: c1a2b3c4",
		"Delete SPI: c9990001",
		"Certificate Encoding: X.509 Certificate - Signature (4)",
		"id-at-commonName=gw-a.example",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("tshark output lacks %q", want)
		}
	}
	if n := strings.Count(text, "Internet Security Association and Key Management Protocol"); n != len(packets) {
		t.Errorf("tshark dissected %d IKE messages, want %d", n, len(packets))
	}
}

// grepContext returns the lines of text around each line containing s.
func grepContext(text, s string) string {
	lines := strings.Split(text, "\n")
	var out []string
	for i, l := range lines {
		if strings.Contains(l, s) {
			out = append(out, lines[max(0, i-8):min(len(lines), i+3)]...)
			out = append(out, "--")
		}
	}
	return strings.Join(out, "\n")
}

// writePcapHeader writes a libpcap global header for LINKTYPE_RAW (101):
// records are IPv4 packets without a link-layer header.
func writePcapHeader(w *bytes.Buffer) {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4) // microsecond timestamps
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535) // snaplen
	binary.LittleEndian.PutUint32(h[20:], 101)   // LINKTYPE_RAW
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

// udpIPv4 builds an IPv4 packet carrying a UDP datagram (checksum 0: none,
// allowed for UDP over IPv4).
func udpIPv4(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	total := 20 + 8 + len(payload)
	if total > 0xffff {
		panic(fmt.Sprintf("packet of %d octets", total))
	}
	p := make([]byte, 28, total)
	p[0] = 0x45 // version 4, IHL 5
	binary.BigEndian.PutUint16(p[2:], uint16(total))
	p[8] = 64 // TTL
	p[9] = 17 // UDP
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
