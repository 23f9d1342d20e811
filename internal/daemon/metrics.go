package daemon

import (
	"fmt"
	"net"
	"net/http"

	"github.com/cygnet-ipsec/cygnet/internal/metrics"
)

// serveMetrics starts the Prometheus endpoint (daemon.metrics: host:port) at
// /metrics. It binds before returning, so a bad address fails the start.
func (d *Daemon) serveMetrics(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("daemon: metrics: %w", err)
	}
	d.metricsAddr.Store(ln.Addr().String())
	srv := metrics.NewServer(addr, d.stats.reg)
	inner := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.stats.syncTransport()
		d.stats.syncDataplane()
		inner.ServeHTTP(w, r)
	})
	go srv.Serve(ln)
	d.log.Info("metrics endpoint listening", "addr", ln.Addr().String())
	return srv, nil
}

// MetricsAddr returns the address the metrics endpoint listens on ("" if
// none), useful when the configuration asked for port 0.
func (d *Daemon) MetricsAddr() string {
	a, _ := d.metricsAddr.Load().(string)
	return a
}

// Metrics returns the daemon's metrics registry (what /metrics serves).
func (d *Daemon) Metrics() *metrics.Registry {
	d.stats.syncTransport()
	d.stats.syncDataplane()
	return d.stats.reg
}
