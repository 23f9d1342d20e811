// Package metrics is a small Prometheus exposition: counters and gauges, with
// or without labels, in a Registry that writes them in the text format,
// version 0.0.4, and serves them over HTTP at /metrics. It has no
// dependencies outside the standard library.
//
// A metric's hot path is an atomic add: resolve a label set once with
// CounterVec.With and keep the *Counter. Registering an invalid or duplicate
// name is a programming error and panics, as regexp.MustCompile does; label
// values may be any string and are escaped on output, but they must come
// from a bounded set (a state, a reason, a direction), never from the
// network, or the exposition grows without bound.
//
// The names the daemon uses are registered in one place, NewCygnet.
package metrics

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Counter is a monotonically increasing count. The zero value is not usable;
// get one from a Registry or a CounterVec.
type Counter struct {
	v      atomic.Uint64
	labels string // rendered label set: `{a="x",b="y"}` or ""
}

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down. The zero value is not usable; get
// one from a Registry or a GaugeVec.
type Gauge struct {
	v      atomic.Int64
	labels string
}

// Set sets the gauge to v.
func (g *Gauge) Set(v int64) { g.v.Store(v) }

// Add adds d, which may be negative.
func (g *Gauge) Add(d int64) { g.v.Add(d) }

// Inc adds one.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Value returns the current value.
func (g *Gauge) Value() int64 { return g.v.Load() }

// vec is the set of series of one labeled metric, by label values.
type vec[T any] struct {
	name   string
	labels []string
	newT   func(labels string) *T

	mu     sync.RWMutex
	series map[string]*entry[T] // by seriesKey(values)
}

type entry[T any] struct {
	values []string
	metric *T
}

func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metrics: %s: %d label values for %d labels %q", v.name, len(values), len(v.labels), v.labels))
	}
	var buf [128]byte
	key := appendSeriesKey(buf[:0], values)
	v.mu.RLock()
	e := v.series[string(key)] // no allocation for the lookup
	v.mu.RUnlock()
	if e != nil {
		return e.metric
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e = v.series[string(key)]; e == nil {
		values = slices.Clone(values)
		e = &entry[T]{values: values, metric: v.newT(renderLabels(v.labels, values))}
		v.series[string(key)] = e
	}
	return e.metric
}

func (v *vec[T]) delete(values []string) bool {
	if len(values) != len(v.labels) {
		return false
	}
	key := string(appendSeriesKey(nil, values))
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.series[key]
	delete(v.series, key)
	return ok
}

// sorted returns the series ordered by their label values.
func (v *vec[T]) sorted() []*entry[T] {
	v.mu.RLock()
	out := make([]*entry[T], 0, len(v.series))
	for _, e := range v.series {
		out = append(out, e)
	}
	v.mu.RUnlock()
	slices.SortFunc(out, func(a, b *entry[T]) int { return slices.Compare(a.values, b.values) })
	return out
}

// appendSeriesKey encodes label values unambiguously, each prefixed by its
// length.
func appendSeriesKey(b []byte, values []string) []byte {
	for _, s := range values {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	return b
}

// CounterVec is a counter with labels: one Counter per set of label values.
type CounterVec struct{ v vec[Counter] }

// With returns the counter for the label values, given in the order of the
// label names; it creates it at zero on first use. Keep the result on hot
// paths: With looks it up in a map.
func (cv *CounterVec) With(values ...string) *Counter { return cv.v.with(values) }

// Delete removes the counter for the label values, reporting whether there
// was one.
func (cv *CounterVec) Delete(values ...string) bool { return cv.v.delete(values) }

// GaugeVec is a gauge with labels: one Gauge per set of label values.
type GaugeVec struct{ v vec[Gauge] }

// With returns the gauge for the label values, given in the order of the
// label names; it creates it at zero on first use.
func (gv *GaugeVec) With(values ...string) *Gauge { return gv.v.with(values) }

// Delete removes the gauge for the label values, reporting whether there was
// one.
func (gv *GaugeVec) Delete(values ...string) bool { return gv.v.delete(values) }

// renderLabels renders a label set in the exposition format.
func renderLabels(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		writeEscaped(&b, values[i], true)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// writeEscaped escapes s as the text format requires: backslash and newline
// in HELP text, and also the double quote in label values. Invalid UTF-8 is
// replaced, since the format is UTF-8.
func writeEscaped(b *strings.Builder, s string, quote bool) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
}

func validMetricName(s string) bool {
	for i, c := range []byte(s) {
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

func validLabelName(s string) bool {
	return validMetricName(s) && !strings.Contains(s, ":") && !strings.HasPrefix(s, "__")
}
