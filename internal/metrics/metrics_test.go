package metrics

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("b_total", "A counter.")
	c.Add(41)
	c.Inc()
	g := r.NewGauge("a_gauge", "Help with a backslash \\ and a\nnewline; \"quotes\" stay.")
	g.Set(7)
	g.Dec()
	g.Add(-10)
	cv := r.NewCounterVec("c_total", "Labeled.", "reason", "dir")
	cv.With("z", "in").Add(3)
	cv.With("a", "out").Inc()
	cv.With("a", "in").Add(2)
	cv.With(`back\slash "quoted"`+"\nnewline", "\xff").Inc()
	r.NewCounterVec("d_total", "Never used: left out.", "x")
	gv := r.NewGaugeVec("e", "Gauges.", "state")
	gv.With("ESTABLISHED").Set(5)
	gv.With("CONNECTING").Set(0)
	r.NewGaugeFunc("f_inf", "Infinite.", func() float64 { return math.Inf(1) })
	r.NewGaugeFunc("f_nan", "Not a number.", math.NaN)
	r.NewGaugeFunc("f_neg_inf", "", func() float64 { return math.Inf(-1) })
	r.NewGaugeFunc("f_pi", "Pi.", func() float64 { return 3.25 })
	r.NewGaugeFunc("f_big", "Big.", func() float64 { return 1e21 })
	r.NewCounterFunc("g_total", "From elsewhere.", func() uint64 { return math.MaxUint64 })

	want := `# HELP a_gauge Help with a backslash \\ and a\nnewline; "quotes" stay.
# TYPE a_gauge gauge
a_gauge -4
# HELP b_total A counter.
# TYPE b_total counter
b_total 42
# HELP c_total Labeled.
# TYPE c_total counter
c_total{reason="a",dir="in"} 2
c_total{reason="a",dir="out"} 1
c_total{reason="back\\slash \"quoted\"\nnewline",dir="` + "\uFFFD" + `"} 1
c_total{reason="z",dir="in"} 3
# HELP e Gauges.
# TYPE e gauge
e{state="CONNECTING"} 0
e{state="ESTABLISHED"} 5
# HELP f_big Big.
# TYPE f_big gauge
f_big 1e+21
# HELP f_inf Infinite.
# TYPE f_inf gauge
f_inf +Inf
# HELP f_nan Not a number.
# TYPE f_nan gauge
f_nan NaN
# HELP f_neg_inf 
# TYPE f_neg_inf gauge
f_neg_inf -Inf
# HELP f_pi Pi.
# TYPE f_pi gauge
f_pi 3.25
# HELP g_total From elsewhere.
# TYPE g_total counter
g_total 18446744073709551615
`
	var b strings.Builder
	n, err := r.WriteTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	// Deleting a series removes it; the family goes when it is empty.
	if !gv.Delete("CONNECTING") || gv.Delete("CONNECTING") || gv.Delete("a", "b") {
		t.Error("Delete reported wrongly")
	}
	gv.Delete("ESTABLISHED")
	if s := r.text(); strings.Contains(s, "\ne{") || strings.Contains(s, "# HELP e ") {
		t.Errorf("deleted gauges still written:\n%s", s)
	}
}

func TestWithReturnsSameMetric(t *testing.T) {
	r := NewRegistry()
	cv := r.NewCounterVec("x_total", "", "a", "b")
	// Values that would collide if joined with a separator stay apart.
	c1, c2 := cv.With("a:b", "c"), cv.With("a", "b:c")
	if c1 == c2 || cv.With("a:b", "c") != c1 {
		t.Error("With does not tell label sets apart or does not return the same counter")
	}
	if c3, c4 := cv.With("1:", ""), cv.With("", "1:"); c3 == c4 {
		t.Error("length-prefixed keys collide")
	}
}

func TestRegistrationPanics(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("ok_total", "")
	cv := r.NewCounterVec("v_total", "", "a")
	for name, f := range map[string]func(){
		"empty name":         func() { r.NewCounter("", "") },
		"bad name":           func() { r.NewCounter("1abc", "") },
		"bad char":           func() { r.NewGauge("a-b", "") },
		"duplicate":          func() { r.NewGauge("ok_total", "") },
		"bad label":          func() { r.NewCounterVec("l_total", "", "a-b") },
		"reserved label":     func() { r.NewCounterVec("l_total", "", "__name") },
		"colon label":        func() { r.NewGaugeVec("l", "", "a:b") },
		"duplicate label":    func() { r.NewGaugeVec("l", "", "a", "a") },
		"too few values":     func() { cv.With() },
		"too many values":    func() { cv.With("x", "y") },
		"duplicate func":     func() { r.NewGaugeFunc("v_total", "", func() float64 { return 0 }) },
		"duplicate counterf": func() { r.NewCounterFunc("ok_total", "", func() uint64 { return 0 }) },
	} {
		func() {
			defer func() {
				if v := recover(); v == nil {
					t.Errorf("%s: no panic", name)
				} else if s, _ := v.(string); !strings.HasPrefix(s, "metrics: ") {
					t.Errorf("%s: panic %v", name, v)
				}
			}()
			f()
		}()
	}
	r.NewCounter("a:b_total", "") // colons are allowed in metric names
}

func TestConcurrentUpdates(t *testing.T) {
	r := NewRegistry()
	cv := r.NewCounterVec("x_total", "", "k")
	g := r.NewGauge("g", "")
	var wg sync.WaitGroup
	const workers, n = 8, 1000
	for i := range workers {
		wg.Go(func() {
			pre := cv.With("pre")
			for j := range n {
				pre.Inc()
				cv.With([]string{"a", "b"}[(i+j)%2]).Add(2)
				g.Inc()
				g.Dec()
				if j%100 == 0 {
					r.WriteTo(io.Discard)
				}
			}
		})
	}
	wg.Wait()
	if got := cv.With("pre").Value(); got != workers*n {
		t.Errorf("pre = %d, want %d", got, workers*n)
	}
	if got := cv.With("a").Value() + cv.With("b").Value(); got != 2*workers*n {
		t.Errorf("a+b = %d, want %d", got, 2*workers*n)
	}
	if g.Value() != 0 {
		t.Errorf("gauge = %d", g.Value())
	}
}

func TestHTTP(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("x_total", "X.").Add(3)
	srv := httptest.NewServer(NewServer("", r).Handler)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" ||
		string(body) != "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n" {
		t.Errorf("GET /metrics: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp, err = http.Head(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) {
		t.Errorf("HEAD /metrics: %d, length %d", resp.StatusCode, resp.ContentLength)
	}

	resp, err = http.Post(srv.URL+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /metrics: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	for path, code := range map[string]int{"/": 200, "/other": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, code)
		}
	}
}

func TestCygnet(t *testing.T) {
	r := NewRegistry()
	m := NewCygnet(r)
	m.IKESAs.With("ESTABLISHED").Inc()
	m.HandshakeFailures.With("initiator", "no_proposal_chosen").Inc()
	m.ESPBytes.With("in").Add(1500)
	got := r.text()
	for _, line := range []string{
		"# TYPE cygnet_ike_sas gauge\n",
		`cygnet_ike_sas{state="CONNECTING"} 0` + "\n",
		`cygnet_ike_sas{state="ESTABLISHED"} 1` + "\n",
		`cygnet_child_sas{state="INSTALLED"} 0` + "\n",
		`cygnet_ike_handshakes_total{role="responder",outcome="failed"} 0` + "\n",
		"# TYPE cygnet_ike_handshake_failures_total counter\n",
		`cygnet_ike_handshake_failures_total{role="initiator",reason="no_proposal_chosen"} 1` + "\n",
		`cygnet_deletes_total{kind="child",initiator="remote"} 0` + "\n",
		`cygnet_rekeys_total{kind="ike",role="responder"} 0` + "\n",
		`cygnet_rekey_collisions_total{kind="child",outcome="lost"} 0` + "\n",
		"cygnet_dead_peers_total 0\n",
		`cygnet_esp_bytes_total{direction="in"} 1500` + "\n",
		`cygnet_esp_packets_total{direction="out"} 0` + "\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("missing %q in:\n%s", line, got)
		}
	}
	// Families nothing has touched yet are left out.
	if strings.Contains(got, "cygnet_ike_retransmissions_total") || strings.Contains(got, "cygnet_packets_dropped_total") {
		t.Errorf("empty families written:\n%s", got)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().NewCounterVec("x_total", "", "reason").With("esp_replay")
	for b.Loop() {
		c.Inc()
	}
}

func BenchmarkCounterIncParallel(b *testing.B) {
	c := NewRegistry().NewCounterVec("x_total", "", "reason").With("esp_replay")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkWith(b *testing.B) {
	cv := NewRegistry().NewCounterVec("x_total", "", "role", "reason")
	b.ReportAllocs()
	for b.Loop() {
		cv.With("initiator", "no_proposal_chosen").Inc()
	}
}

func BenchmarkWriteTo(b *testing.B) {
	r := NewRegistry()
	m := NewCygnet(r)
	for _, reason := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		m.Dropped.With(reason).Inc()
		m.HandshakeFailures.With("initiator", reason).Inc()
	}
	b.ReportAllocs()
	for b.Loop() {
		r.WriteTo(io.Discard)
	}
}
