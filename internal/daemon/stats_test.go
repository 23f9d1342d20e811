package daemon

import (
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// The transport's counters reach the metrics at scrape time as increases:
// traffic by kind and direction, drops, errors, GSO and GRO.
func TestTransportMetrics(t *testing.T) {
	s := newStats()
	var st transport.Stats
	s.transportStats = func() transport.Stats { return st }
	scrape := func() string {
		s.syncTransport()
		var b strings.Builder
		if _, err := s.reg.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	wantMetrics(t, "before", scrape(),
		`cygnet_udp_packets_total{kind="ike",direction="in"} 0`,
		`cygnet_udp_bytes_total{kind="esp",direction="out"} 0`,
		`cygnet_udp_gso_sends_total 0`,
		`cygnet_udp_gro_receives_total 0`)

	st = transport.Stats{
		IKEIn: transport.Counter{Packets: 2, Bytes: 700}, IKEOut: transport.Counter{Packets: 3, Bytes: 900},
		ESPIn: transport.Counter{Packets: 100, Bytes: 150000}, ESPOut: transport.Counter{Packets: 90, Bytes: 140000},
		SendErrors: 1, ReceiveErrors: 4, GSOOut: 7, GROIn: 5,
	}
	st.Drops[transport.DropShort] = 6
	wantMetrics(t, "first", scrape(),
		`cygnet_udp_packets_total{kind="ike",direction="in"} 2`,
		`cygnet_udp_packets_total{kind="ike",direction="out"} 3`,
		`cygnet_udp_packets_total{kind="esp",direction="in"} 100`,
		`cygnet_udp_packets_total{kind="esp",direction="out"} 90`,
		`cygnet_udp_bytes_total{kind="ike",direction="in"} 700`,
		`cygnet_udp_bytes_total{kind="ike",direction="out"} 900`,
		`cygnet_udp_bytes_total{kind="esp",direction="in"} 150000`,
		`cygnet_udp_bytes_total{kind="esp",direction="out"} 140000`,
		`cygnet_udp_send_errors_total 1`,
		`cygnet_udp_receive_errors_total 4`,
		`cygnet_udp_gso_sends_total 7`,
		`cygnet_udp_gro_receives_total 5`,
		`cygnet_packets_dropped_total{reason="udp_short"} 6`)

	// Only the increase is added; a scrape without news changes nothing.
	st.ESPOut.Packets, st.GSOOut = 95, 9
	scrape()
	wantMetrics(t, "second", scrape(),
		`cygnet_udp_packets_total{kind="esp",direction="out"} 95`,
		`cygnet_udp_packets_total{kind="ike",direction="in"} 2`,
		`cygnet_udp_gso_sends_total 9`,
		`cygnet_packets_dropped_total{reason="udp_short"} 6`)
}
