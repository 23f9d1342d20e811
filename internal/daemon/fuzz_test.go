package daemon

import (
	"context"
	"net/netip"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/transport/memnet"
)

// FuzzReceive feeds arbitrary datagrams through the daemon's receive path:
// header routing (reader goroutine) and the owning worker's handling
// (Responder, or an IKE SA by SPI). Nothing may panic, and garbage must not
// leave IKE SAs behind.
func FuzzReceive(f *testing.F) {
	// Seeds: a real IKE_SA_INIT request, its truncations, and headers of
	// every routing case.
	b := newBench(f, defaultBenchOptions())
	tap := captureFirst(f, b)
	f.Add(tap)
	f.Add(tap[:28])
	f.Add(tap[:40])
	for _, h := range []wire.Header{
		{SPIi: 1, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator},
		{SPIi: 1, SPIr: 2, Exchange: wire.IKE_AUTH, Flags: wire.FlagInitiator, MessageID: 1},
		{SPIi: 3, SPIr: 4, Exchange: wire.INFORMATIONAL, Flags: wire.FlagResponse},
		{SPIi: 1, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator, MajorVersion: 3},
	} {
		h.Length = 28
		f.Add(h.AppendTo(nil))
	}

	net := memnet.New(memnet.Config{Seed: 2})
	cfg := parseConf(f, f.TempDir(), defaultBenchOptions().bob.yaml())
	d, err := New(cfg, Options{
		Listen: func(c transport.Config, h transport.Handler) (transport.Endpoint, error) {
			return net.Listen(c, h)
		},
		Dataplane: dataplane.NewNone(nil, nil),
		Workers:   2,
		NoControl: true,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(d.closeResources)
	local := netip.MustParseAddrPort("192.0.2.2:500")
	remote := netip.MustParseAddrPort("192.0.2.1:500")

	f.Fuzz(func(t *testing.T, data []byte) {
		// The workers do not run: receive is called directly, as the
		// worker's goroutine would, so the test is single-threaded.
		hdr, ok := peekHeader(data)
		if !ok {
			return
		}
		r, ok := d.shards.routeMessage(hdr, remote)
		if !ok {
			return
		}
		w := d.workers[r.worker]
		w.receive(transport.Packet{Local: local, Remote: remote, Data: append([]byte(nil), data...)}, r)
		for _, e := range w.entries() {
			if !e.hasInitKey {
				t.Fatalf("a responder IKE SA without its IKE_SA_INIT key: %+v", e)
			}
			// Forget whatever a valid IKE_SA_INIT created.
			w.remove(e, nil)
		}
	})
}

// captureFirst returns the first datagram alice sends to bob in an `up`.
func captureFirst(t testing.TB, b *bench) []byte {
	t.Helper()
	b.bob.stop() // bob's port then swallows nothing: see who sends what
	rec := &recorder{ch: make(chan []byte, 16)}
	ep, err := b.net.Listen(transport.Config{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}, Port: 500, NATPort: 4500}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go b.alice.d.Up(ctx, "site", "net")
	defer cancel()
	return <-rec.first()
}

type recorder struct{ ch chan []byte }

func (r *recorder) first() chan []byte { return r.ch }

func (r *recorder) HandleIKE(p transport.Packet) {
	select {
	case r.ch <- p.Data:
	default:
	}
}

func (r *recorder) HandleESP([]transport.Packet) {}
