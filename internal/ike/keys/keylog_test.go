package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestIKEDecryptionRecord(t *testing.T) {
	k := &IKEKeys{SKei: seq(16, 0x10), SKer: seq(16, 0x20), SKai: seq(32, 0x30), SKar: seq(32, 0x50)}
	gcmKeys := &IKEKeys{SKei: seq(36, 0x10), SKer: seq(36, 0x40)}
	tests := []struct {
		name string
		s    algs.Suite
		k    *IKEKeys
		want string
	}{
		{
			"aes128-sha256",
			suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128), k,
			`0123456789abcdef,00000000000000ff,101112131415161718191a1b1c1d1e1f,202122232425262728292a2b2c2d2e2f,"AES-CBC-128 [RFC3602]",303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f,505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f,"HMAC_SHA2_256_128 [RFC4868]"`,
		},
		{
			"aes256gcm16",
			suiteFor(wire.ProtoIKE, wire.ENCR_AES_GCM_16, 256, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE), gcmKeys,
			`0123456789abcdef,00000000000000ff,101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233,404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"`,
		},
		{"chacha20poly1305", suiteFor(wire.ProtoIKE, wire.ENCR_CHACHA20_POLY1305, 0, wire.PRF_HMAC_SHA2_256, wire.AUTH_NONE), gcmKeys, ""},
		{"unknown integ", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_AES_XCBC_96), k, ""},
		{"nil keys", suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA2_256, wire.AUTH_HMAC_SHA2_256_128), nil, ""},
	}
	for _, tt := range tests {
		if got := IKEDecryptionRecord(0x0123456789abcdef, 0xff, tt.s, tt.k); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestESPSARecord(t *testing.T) {
	tests := []struct {
		name     string
		family   string
		src, dst string
		s        algs.Suite
		e, a     []byte
		want     string
	}{
		{
			"gcm", "IPv4", "192.0.2.1", "192.0.2.2",
			suiteFor(wire.ProtoESP, wire.ENCR_AES_GCM_16, 128, 0, wire.AUTH_NONE), seq(20, 0xa0), nil,
			`"IPv4","192.0.2.1","192.0.2.2","0x0000abcd","AES-GCM with 16 octet ICV [RFC4106]","0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3","NULL",""`,
		},
		{
			"cbc v6", "IPv6", "2001:db8::1", "2001:db8::2",
			suiteFor(wire.ProtoESP, wire.ENCR_AES_CBC, 256, 0, wire.AUTH_HMAC_SHA1_96), seq(32, 0), seq(20, 0x80),
			`"IPv6","2001:db8::1","2001:db8::2","0x0000abcd","AES-CBC [RFC3602]","0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f","HMAC-SHA-1-96 [RFC2404]","0x808182838485868788898a8b8c8d8e8f90919293"`,
		},
		{
			"4in6", "IPv4", "::ffff:192.0.2.1", "192.0.2.2",
			suiteFor(wire.ProtoESP, wire.ENCR_AES_GCM_8, 128, 0, wire.AUTH_NONE), seq(20, 0xa0), nil,
			`"IPv4","192.0.2.1","192.0.2.2","0x0000abcd","AES-GCM with 8 octet ICV [RFC4106]","0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3","NULL",""`,
		},
		{"chacha", "IPv4", "192.0.2.1", "192.0.2.2", suiteFor(wire.ProtoESP, wire.ENCR_CHACHA20_POLY1305, 0, 0, wire.AUTH_NONE), seq(36, 0), nil, ""},
	}
	for _, tt := range tests {
		got := ESPSARecord(tt.family, netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst), 0xabcd, tt.s, tt.e, tt.a)
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

// needTool returns the path of a tool a test needs, or skips the test; with
// CYGNET_STRICT=1 (CI) a missing tool fails it instead.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CYGNET_STRICT") == "1" {
			t.Fatalf("%s not installed (CYGNET_STRICT=1)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return path
}

// pcapWriter builds a classic pcap file of raw IP packets (LINKTYPE_RAW).
type pcapWriter struct{ buf bytes.Buffer }

func newPcap() *pcapWriter {
	w := &pcapWriter{}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], 101) // LINKTYPE_RAW
	w.buf.Write(h[:])
	return w
}

// add writes one IP packet carrying payload with protocol proto from src
// to dst; for UDP (17) it adds a UDP header for port 500.
func (w *pcapWriter) add(src, dst netip.Addr, proto uint8, payload []byte) {
	if proto == 17 {
		udp := make([]byte, 8, 8+len(payload))
		binary.BigEndian.PutUint16(udp[0:], 500)
		binary.BigEndian.PutUint16(udp[2:], 500)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
		payload = append(udp, payload...)
	}
	var ip []byte
	if src.Is4() {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
		ip[8], ip[9] = 64, proto
		s, d := src.As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
	} else {
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(payload)))
		ip[6], ip[7] = proto, 64
		s, d := src.As16(), dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	}
	pkt := append(ip, payload...)
	var rh [16]byte
	n := w.buf.Len()
	binary.LittleEndian.PutUint32(rh[0:], uint32(1700000000+n))
	binary.LittleEndian.PutUint32(rh[8:], uint32(len(pkt)))
	binary.LittleEndian.PutUint32(rh[12:], uint32(len(pkt)))
	w.buf.Write(rh[:])
	w.buf.Write(pkt)
}

// espPacket builds an ESP packet (RFC 4303) carrying inner, an IPv4 packet,
// with the CHILD_SA keys of one direction: AES-GCM (RFC 4106: 8-octet IV,
// nonce salt | IV, AAD SPI | sequence) or AES-CBC + HMAC.
func espPacket(t *testing.T, s algs.Suite, encrKey, integKey []byte, spi, seqNo uint32, inner []byte) []byte {
	t.Helper()
	encr, integ := s.EncrAlg(), s.IntegAlg()
	align := 4
	if !encr.AEAD {
		align = encr.BlockSize
	}
	padLen := (align - (len(inner)+2)%align) % align
	pt := append(bytes.Clone(inner), seq(padLen, 1)...) // RFC 4303 2.4: 1, 2, 3, ...
	pt = append(pt, byte(padLen), 4)                    // Next Header: IPv4
	hdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, spi), seqNo)
	iv := seq(encr.IVLen, 0x42)
	if encr.AEAD {
		aead, salt, err := encr.NewAEAD(encrKey)
		if err != nil {
			t.Fatal(err)
		}
		nonce := append(bytes.Clone(salt), iv...)
		return aead.Seal(append(hdr, iv...), nonce, pt, hdr)
	}
	block, err := aes.NewCipher(encrKey)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, pt)
	out := append(append(hdr, iv...), ct...)
	mac := integ.New(integKey)
	mac.Write(out)
	return append(out, mac.Sum(nil)[:integ.ICVLen]...)
}

// icmpEcho is an IPv4 ICMP echo request from 10.1.0.1 to 10.2.0.1 with the
// given identifier.
func icmpEcho(id uint16) []byte {
	p := make([]byte, 28+16)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8], p[9] = 64, 1
	copy(p[12:], []byte{10, 1, 0, 1})
	copy(p[16:], []byte{10, 2, 0, 1})
	p[20] = 8 // echo request
	binary.BigEndian.PutUint16(p[24:], id)
	copy(p[28:], "cygnet keylog!!!")
	return p
}

// TestWiresharkDecrypts writes IKE messages sealed by Protector and ESP
// packets for every suite Wireshark knows, with the key-log records of this
// package, and checks that tshark decrypts each one and finds its integrity
// check correct.
func TestWiresharkDecrypts(t *testing.T) {
	tshark := needTool(t, "tshark")
	dir := t.TempDir()
	pcap := newPcap()
	var ikeTable, espTable strings.Builder
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")

	// IKE: one message per suite, each with its own SPIs and keys.
	wantIKE := map[string]string{} // SPIi -> suite
	i := 0
	for name, s := range ikeSuites() {
		i++
		prf := s.PRFAlg()
		ni, nr := seq(32, byte(i)), seq(32, byte(i+100))
		spii, spir := uint64(0x1000+i), uint64(0x2000+i)
		k, err := DeriveIKEKeys(s, SKEYSEED(prf, ni, nr, seq(64, byte(i))), ni, nr, spii, spir)
		if err != nil {
			t.Fatal(err)
		}
		line := IKEDecryptionRecord(spii, spir, s, k)
		if line == "" {
			if s.Encr.ID != uint16(wire.ENCR_CHACHA20_POLY1305) {
				t.Errorf("%s: no record", name)
			}
			continue
		}
		fmt.Fprintln(&ikeTable, line)
		p, err := NewProtector(s, k, true)
		if err != nil {
			t.Fatal(err)
		}
		h := authHeader()
		h.SPIi, h.SPIr = spii, spir
		b, err := p.Seal(h, authPayloads(0), testRand(uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		pcap.add(src, dst, 17, b)
		wantIKE[fmt.Sprintf("%016x", spii)] = name
	}

	// ESP: one packet per suite, IPv4 and IPv6 outer headers.
	wantESP := map[string]string{} // SPI -> suite
	prf := algs.LookupPRF(wire.PRF_HMAC_SHA2_256)
	spi := uint32(0xc0000000)
	for _, bits := range []uint16{128, 192, 256} {
		var suites []algs.Suite
		for _, integ := range []wire.IntegID{wire.AUTH_HMAC_SHA1_96, wire.AUTH_HMAC_SHA2_256_128, wire.AUTH_HMAC_SHA2_384_192, wire.AUTH_HMAC_SHA2_512_256} {
			suites = append(suites, suiteFor(wire.ProtoESP, wire.ENCR_AES_CBC, bits, 0, integ))
		}
		for _, gcm := range []wire.EncrID{wire.ENCR_AES_GCM_8, wire.ENCR_AES_GCM_12, wire.ENCR_AES_GCM_16} {
			suites = append(suites, suiteFor(wire.ProtoESP, gcm, bits, 0, wire.AUTH_NONE))
		}
		for _, s := range suites {
			for _, fam := range []struct{ name, src, dst string }{
				{"IPv4", "192.0.2.1", "192.0.2.2"},
				{"IPv6", "2001:db8::1", "2001:db8::2"},
			} {
				spi++
				ck, err := DeriveChildKeys(prf, seq(32, byte(spi)), s, seq(16, 1), seq(16, 2))
				if err != nil {
					t.Fatal(err)
				}
				a, b := netip.MustParseAddr(fam.src), netip.MustParseAddr(fam.dst)
				line := ESPSARecord(fam.name, a, b, spi, s, ck.EncrI, ck.IntegI)
				if line == "" {
					t.Fatalf("%s: no ESP record", s)
				}
				fmt.Fprintln(&espTable, line)
				pcap.add(a, b, 50, espPacket(t, s, ck.EncrI, ck.IntegI, spi, 1, icmpEcho(uint16(spi))))
				wantESP[fmt.Sprintf("0x%08x", spi)] = s.String() + " " + fam.name
			}
		}
	}

	cfg := filepath.Join(dir, "wireshark")
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"ikev2_decryption_table": ikeTable.String(),
		"esp_sa":                 espTable.String(),
		"capture.pcap":           pcap.buf.String(),
	} {
		if err := os.WriteFile(filepath.Join(cfg, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	nIKE := len(wantIKE)
	cmd := exec.Command(tshark, "-n", "-r", filepath.Join(cfg, "capture.pcap"),
		"-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
		"-T", "fields", "-E", "separator=|",
		"-e", "isakmp.ispi", "-e", "isakmp.id.data.fqdn", "-e", "isakmp.auth.method",
		"-e", "esp.spi", "-e", "esp.icv_good", "-e", "icmp.ident")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 6 {
			continue // tshark's notes, e.g. about running as root
		}
		switch {
		case f[0] != "":
			name, ok := wantIKE[f[0]]
			if !ok {
				t.Errorf("unexpected IKE SPI %s", f[0])
				continue
			}
			delete(wantIKE, f[0])
			if f[1] != "carol.strongswan.org" || f[2] != "2" {
				t.Errorf("%s: tshark did not decrypt the IKE message: %q", name, line)
			}
		case f[3] != "":
			name, ok := wantESP[f[3]]
			if !ok {
				t.Errorf("unexpected ESP SPI %s", f[3])
				continue
			}
			delete(wantESP, f[3])
			// icmp.ident: the inner packet was decrypted; esp.icv_good: its
			// ICV (HMAC or GCM tag) verified.
			if f[5] == "" || f[4] != "1" {
				t.Errorf("%s: tshark did not decrypt/verify the ESP packet: %q", name, line)
			}
		}
	}
	// tshark labels each IKE message's ICV (HMAC or AEAD tag) as correct
	// or not in its detailed view only.
	cmd = exec.Command(tshark, "-n", "-r", filepath.Join(cfg, "capture.pcap"), "-V", "-O", "isakmp", "-Y", "isakmp")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	detail, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -V: %v\n%s", err, detail)
	}
	checked, correct := 0, 0
	for _, line := range strings.Split(string(detail), "\n") {
		if strings.Contains(line, "Integrity Checksum Data:") {
			checked++
			if strings.HasSuffix(strings.TrimSpace(line), "[correct]") {
				correct++
			}
		}
	}
	if checked != nIKE || correct != checked {
		t.Errorf("tshark found %d of %d IKE integrity checksums correct, want %d", correct, checked, nIKE)
	}

	for spi, name := range wantIKE {
		t.Errorf("%s (SPI %s): no IKE message in tshark's output", name, spi)
	}
	for spi, name := range wantESP {
		t.Errorf("%s (SPI %s): no ESP packet in tshark's output", name, spi)
	}
	if t.Failed() {
		t.Logf("tshark output:\n%s", out)
	}
}
