package metrics

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Registry holds metrics and writes them out. Its methods are safe for
// concurrent use.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

// family is one metric name with its HELP and TYPE lines and its samples.
type family struct {
	name, help, typ string
	write           func(b *strings.Builder, name string) // appends the sample lines
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{families: make(map[string]*family)}
}

func (r *Registry) register(name, help, typ string, labels []string, write func(*strings.Builder, string)) {
	if !validMetricName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for i, l := range labels {
		if !validLabelName(l) {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q", name, l))
		}
		if slices.Contains(labels[:i], l) {
			panic(fmt.Sprintf("metrics: %s: duplicate label name %q", name, l))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.families[name]; dup {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	r.families[name] = &family{name: name, help: help, typ: typ, write: write}
}

// NewCounter registers and returns a counter without labels.
func (r *Registry) NewCounter(name, help string) *Counter {
	c := new(Counter)
	r.register(name, help, "counter", nil, func(b *strings.Builder, name string) {
		var buf [24]byte
		writeSample(b, name, "", strconv.AppendUint(buf[:0], c.Value(), 10))
	})
	return c
}

// NewGauge registers and returns a gauge without labels.
func (r *Registry) NewGauge(name, help string) *Gauge {
	g := new(Gauge)
	r.register(name, help, "gauge", nil, func(b *strings.Builder, name string) {
		var buf [24]byte
		writeSample(b, name, "", strconv.AppendInt(buf[:0], g.Value(), 10))
	})
	return g
}

// NewCounterVec registers and returns a counter with the given label names.
// A family whose label sets have not been used yet is left out of the
// output; call With at start-up for the label values that should show as 0.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	cv := &CounterVec{v: vec[Counter]{
		name:   name,
		labels: slices.Clone(labels),
		newT:   func(l string) *Counter { return &Counter{labels: l} },
		series: make(map[string]*entry[Counter]),
	}}
	r.register(name, help, "counter", labels, func(b *strings.Builder, name string) {
		var buf [24]byte
		for _, e := range cv.v.sorted() {
			writeSample(b, name, e.metric.labels, strconv.AppendUint(buf[:0], e.metric.Value(), 10))
		}
	})
	return cv
}

// NewGaugeVec registers and returns a gauge with the given label names.
func (r *Registry) NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	gv := &GaugeVec{v: vec[Gauge]{
		name:   name,
		labels: slices.Clone(labels),
		newT:   func(l string) *Gauge { return &Gauge{labels: l} },
		series: make(map[string]*entry[Gauge]),
	}}
	r.register(name, help, "gauge", labels, func(b *strings.Builder, name string) {
		var buf [24]byte
		for _, e := range gv.v.sorted() {
			writeSample(b, name, e.metric.labels, strconv.AppendInt(buf[:0], e.metric.Value(), 10))
		}
	})
	return gv
}

// NewCounterFunc registers a counter whose value f returns when the metrics
// are written: for counts kept elsewhere anyway (per-SA byte counters summed
// at scrape time cost nothing on the packet path). f must be safe to call
// from any goroutine and must never decrease.
func (r *Registry) NewCounterFunc(name, help string, f func() uint64) {
	r.register(name, help, "counter", nil, func(b *strings.Builder, name string) {
		var buf [24]byte
		writeSample(b, name, "", strconv.AppendUint(buf[:0], f(), 10))
	})
}

// NewGaugeFunc registers a gauge whose value f returns when the metrics are
// written. f must be safe to call from any goroutine.
func (r *Registry) NewGaugeFunc(name, help string, f func() float64) {
	r.register(name, help, "gauge", nil, func(b *strings.Builder, name string) {
		var buf [32]byte
		writeSample(b, name, "", appendFloat(buf[:0], f()))
	})
}

func writeSample(b *strings.Builder, name, labels string, value []byte) {
	b.WriteString(name)
	b.WriteString(labels)
	b.WriteByte(' ')
	b.Write(value)
	b.WriteByte('\n')
}

// appendFloat formats v as the text format wants it: Go float syntax, with
// +Inf, -Inf and NaN spelled so.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// WriteTo writes all metrics in the Prometheus text format, version 0.0.4:
// families sorted by name, each with its # HELP and # TYPE lines and its
// samples sorted by label values. Families without samples are left out.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, r.text())
	return int64(n), err
}

func (r *Registry) text() string {
	r.mu.Lock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	slices.SortFunc(fams, func(a, b *family) int { return cmp.Compare(a.name, b.name) })

	var b, samples strings.Builder
	for _, f := range fams {
		samples.Reset()
		f.write(&samples, f.name)
		if samples.Len() == 0 {
			continue
		}
		b.WriteString("# HELP ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		writeEscaped(&b, f.help, false)
		b.WriteString("\n# TYPE ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		b.WriteString(f.typ)
		b.WriteByte('\n')
		b.WriteString(samples.String())
	}
	return b.String()
}

// ContentType is the media type of the text format, version 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// ServeHTTP serves the metrics in the text format (GET and HEAD).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body := r.text()
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if req.Method == http.MethodHead {
		return
	}
	io.WriteString(w, body)
}

// NewServer returns an HTTP server for addr (host:port, the daemon's
// `metrics` setting) that serves r at /metrics. The caller runs it
// (ListenAndServe, or Serve on its own listener) and stops it (Shutdown).
func NewServer(addr string, r *Registry) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", r)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "cygnet: metrics are at /metrics\n")
	})
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
}
