package daemon

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// servePprof starts Go's profiling endpoint (daemon.pprof, or the
// CYGNET_PPROF environment variable through Options.Pprof) at
// /debug/pprof/ on addr. It is off unless asked for: it shows goroutine
// stacks, the heap and the command line to whoever reaches it.
//
// The handlers go on a mux of its own. (Importing net/http/pprof also
// registers them on http.DefaultServeMux, which nothing in the daemon
// serves.)
func (d *Daemon) servePprof(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("daemon: pprof: %w", err)
	}
	d.pprofAddr.Store(ln.Addr().String())
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No WriteTimeout: a CPU profile or trace streams for ?seconds=N.
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	go srv.Serve(ln)
	level := d.log.Info
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		level = d.log.Warn
	}
	level("pprof endpoint listening: it shows the daemon's internals to whoever reaches it", "addr", ln.Addr().String())
	return srv, nil
}

// PprofAddr returns the address the profiling endpoint listens on ("" if
// none).
func (d *Daemon) PprofAddr() string {
	a, _ := d.pprofAddr.Load().(string)
	return a
}
