package daemon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/transport/memnet"
)

// The profiler is off by default, serves /debug/pprof/ when asked for, and
// goes when Run ends; the metrics endpoint never serves it.
func TestPprof(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	if a := b.alice.d.PprofAddr(); a != "" {
		t.Errorf("pprof on by default at %s", a)
	}
	msrv, err := b.alice.d.serveMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer msrv.Close()
	if code, _ := get(t, "http://"+b.alice.d.MetricsAddr()+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("the metrics endpoint answers /debug/pprof/ with %d", code)
	}

	cfg := parseConf(t, t.TempDir(), defaultBenchOptions().bob.yaml())
	net := memnet.New(memnet.Config{Seed: 2})
	d, err := New(cfg, Options{
		Listen:    func(c transport.Config, h transport.Handler) (transport.Endpoint, error) { return net.Listen(c, h) },
		Dataplane: dataplane.NewNone(nil, nil),
		NoControl: true,
		Pprof:     "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitUntil(t, "the pprof endpoint", func() bool { return d.PprofAddr() != "" })
	base := "http://" + d.PprofAddr() + "/debug/pprof/"
	if code, body := get(t, base+"goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("GET goroutine: %d\n%.300s", code, body)
	}
	if code, body := get(t, base); code != 200 || !strings.Contains(body, "heap") {
		t.Errorf("GET index: %d\n%.300s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := http.Get(base); err == nil {
		t.Error("the pprof endpoint still answers after Run returned")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
