package daemon

import (
	"testing"
	"time"
)

// rand_time reaches the engine: the configuration's default as a value, its
// 0 (no jitter) as the engine's negative (the engine's 0 is its own default).
func TestEngineConfigRandTime(t *testing.T) {
	for _, tc := range []struct {
		conn, child    string // extra keys: lines of connection site, of child net
		ike, childRand time.Duration
	}{
		{"", "", 24 * time.Minute, 6 * time.Minute},
		{"rand_time: 0s", "rand_time: 0s", -1, -1},
		{"rand_time: 10m", "rand_time: 1m", 10 * time.Minute, time.Minute},
	} {
		o := defaultBenchOptions().alice
		o.connExtra, o.netChild = tc.conn, tc.child
		cfg := parseConf(t, t.TempDir(), o.yaml())
		// The defaults: rekey_time 4h for the IKE SA, 1h for children.
		ec := engineConfig(cfg.Connection("site"), engineParams{reqID: func() uint32 { return 1 }})
		if ec.RandTime != tc.ike || ec.Child("net").RandTime != tc.childRand {
			t.Errorf("{%s} {%s}: engine RandTime %v, child %v; want %v, %v", tc.conn, tc.child, ec.RandTime, ec.Child("net").RandTime, tc.ike, tc.childRand)
		}
	}
}
