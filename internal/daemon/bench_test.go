package daemon

import (
	"context"
	"testing"
)

// BenchmarkUpDown measures one PSK + X25519 IKE SA with its CHILD_SA set up
// and deleted through two runtimes over memnet: both engines' work plus
// the runtime's routing, workers and control path.
func BenchmarkUpDown(b *testing.B) {
	bn := newBench(b, defaultBenchOptions())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bn.alice.d.Up(ctx, "site", "net"); err != nil {
			b.Fatal(err)
		}
		if err := bn.alice.d.Down(ctx, "site"); err != nil {
			b.Fatal(err)
		}
	}
}
