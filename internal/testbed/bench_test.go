package testbed

import (
	"net/netip"
	"testing"
	"time"
)

// Baselines for Cygnet's control and data plane, both peers strongSwan on
// this machine (they share its cores):
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/testbed   (SA setup)
//	go test -run '^$' -bench Iperf3 ./internal/testbed             (5 s iperf3 each)

// BenchmarkCharonEstablishPSK times one IKE_SA + CHILD_SA between two
// charons (PSK, AES-GCM-256, X25519): Initiate returns when the initiator has
// the CHILD_SA installed. Terminating between iterations is not timed.
func BenchmarkCharonEstablishPSK(b *testing.B) {
	benchEstablish(b, "psk")
}

// BenchmarkCharonEstablishECDSA is the same with ECDSA P-256 certificates.
func BenchmarkCharonEstablishECDSA(b *testing.B) {
	benchEstablish(b, "ecdsa")
}

func benchEstablish(b *testing.B, auth string) {
	left, right := charonPair(b, auth, false)
	b.ResetTimer()
	for range b.N {
		if err := left.charon.Initiate(b, auth, "net"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := left.charon.Terminate(b, auth); err != nil {
			b.Fatal(err)
		}
		right.charon.WaitSA(b, Gone(auth), 5*time.Second)
		b.StartTimer()
	}
}

// BenchmarkCharonIperf3 measures iperf3 for 5 s through the kernel-libipsec
// tunnel (AES-GCM-256, ESP in UDP 4500) and, for comparison, over the bare veth.
func BenchmarkCharonIperf3(b *testing.B) {
	Require(b, "iperf3")
	left, right := charonPair(b, "psk", false)
	if err := left.charon.Initiate(b, "psk", "net"); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		addr netip.Addr
		udp  bool
	}{
		{"tunnel-tcp", right.in4, false},
		{"tunnel-udp", right.in4, true},
		{"veth-tcp", right.outer, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			var sum float64
			for range b.N {
				sum += Iperf3(b, right.ns, left.ns, c.addr, 5, c.udp)
			}
			b.ReportMetric(sum/float64(b.N)/1e6, "Mbit/s")
		})
	}
}
