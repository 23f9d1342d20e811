package testbed

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// udp4Frame builds an Ethernet/IPv4/UDP frame (checksums zero: tshark does
// not verify them by default).
func udp4Frame(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	b := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}
	ip := binary.BigEndian.AppendUint16([]byte{0x45, 0}, uint16(20+8+len(payload)))
	ip = append(ip, 0, 0, 0x40, 0, 64, 17, 0, 0)
	ip = append(ip, src[:]...)
	ip = append(ip, dst[:]...)
	udp := binary.BigEndian.AppendUint16(nil, sport)
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0)
	return append(append(append(b, ip...), udp...), payload...)
}

// TestCapturePcapng writes synthetic frames through the pcapng encoder and
// reads them back with tshark: link type, direction flags, filters.
func TestCapturePcapng(t *testing.T) {
	Require(t, "tshark")
	a, b := [4]byte{192, 0, 2, 1}, [4]byte{192, 0, 2, 2}
	ikeInit := make([]byte, 28) // IKE header: SPIi, SPIr = 0, IKE_SA_INIT request
	copy(ikeInit, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	ikeInit[16], ikeInit[17], ikeInit[18], ikeInit[19] = 0, 0x20, 34, 0x08
	binary.BigEndian.PutUint32(ikeInit[24:], 28)
	espOut := append([]byte{0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1}, make([]byte, 40)...)
	espIn := append([]byte{0xc0, 0xff, 0xee, 0x02, 0, 0, 0, 1}, make([]byte, 40)...)

	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	c := &Capture{
		Path:     filepath.Join(t.TempDir(), "synthetic.pcapng"),
		Dev:      "test0",
		LinkType: linkTypeEthernet,
		file:     null,
		done:     make(chan struct{}),
	}
	close(c.done)
	now := time.Now()
	for i, p := range []struct {
		out   bool
		frame []byte
	}{
		{true, udp4Frame(a, b, 500, 500, ikeInit)},
		{true, udp4Frame(a, b, 4500, 4500, espOut)},
		{false, udp4Frame(b, a, 4500, 4500, espIn)},
		{true, udp4Frame(a, b, 4500, 4500, espOut)},
	} {
		c.packets = append(c.packets, Packet{Time: now.Add(time.Duration(i) * time.Millisecond), Outgoing: p.out, Data: p.frame, Length: len(p.frame)})
	}

	got := c.Counts(t,
		"frame",
		"isakmp.exchangetype == 34",
		"esp.spi == 0xc0ffee01 && frame.packet_flags_direction == 2",
		"esp.spi == 0xc0ffee02 && frame.packet_flags_direction == 1",
		"esp && frame.packet_flags_direction == 1 && ip.src == 192.0.2.1",
		"udp.port in {500, 4501}", // a comma: counted by a separate tshark run
	)
	if want := []int{4, 1, 2, 1, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("Counts = %v, want %v", got, want)
	}
	rows := c.Fields(t, "esp", []string{"esp.spi", "esp.sequence", "frame.interface_name"})
	if len(rows) != 3 || !slices.Equal(rows[0], []string{"0xc0ffee01", "1", "test0"}) {
		t.Errorf("Fields = %q", rows)
	}
}
