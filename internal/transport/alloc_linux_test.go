//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts mean something only without it.

package transport

import (
	"net"
	"net/netip"
	"testing"
)

// TestSendESPAllocs: a steady stream of segmented sends allocates nothing.
func TestSendESPAllocs(t *testing.T) {
	sink, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo2, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	a, _ := listen(t, Config{Addrs: []netip.Addr{lo1}})
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	var batch []Packet
	for i := range 64 {
		batch = append(batch, Packet{Local: natAddr(a, lo1), Remote: to, Data: espPacket(uint32(0x100+i), 1400)})
	}
	if allocs := testing.AllocsPerRun(100, func() { a.SendESP(batch) }); allocs != 0 {
		t.Errorf("SendESP of 64 packets: %v allocs", allocs)
	}
}
