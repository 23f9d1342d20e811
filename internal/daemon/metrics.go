package daemon

import (
	"errors"
	"net/http"
)

// serveMetrics starts the Prometheus endpoint (daemon.metrics).
func (d *Daemon) serveMetrics(addr string) (*http.Server, error) {
	return nil, errors.New("daemon: metrics endpoint not wired yet")
}
