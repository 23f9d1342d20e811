package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/transport/memnet"
)

// closeRecorder records that the daemon closed its data plane.
type closeRecorder struct {
	*dataplane.None
	closed int
}

func (c *closeRecorder) Close() error {
	c.closed++
	return c.None.Close()
}

// TestNewFailures: every error New meets after it opened something returns
// that error (prefixed "daemon: ", one line) and closes what was opened —
// the data plane, the key log — instead of panicking, as it once did when
// `return nil, err` cleared the daemon its deferred cleanup closed.
func TestNewFailures(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	net := memnet.New(memnet.Config{Seed: 1})
	memListen := func(c transport.Config, h transport.Handler) (transport.Endpoint, error) { return net.Listen(c, h) }
	for _, tc := range []struct {
		name   string
		keylog string
		listen func(transport.Config, transport.Handler) (transport.Endpoint, error)
		want   string
	}{
		{name: "keylog", keylog: filepath.Join(regular, "keys"), listen: memListen, want: "not a directory"},
		{name: "transport", keylog: filepath.Join(dir, "keys"),
			listen: func(transport.Config, transport.Handler) (transport.Endpoint, error) {
				// What ListenUDP returns: a nil *UDP and an error.
				var u *transport.UDP
				return u, errors.New("transport: bind: address already in use")
			}, want: "address already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultBenchOptions().alice
			o.keylog = tc.keylog
			cfg := parseConf(t, t.TempDir(), o.yaml())
			dp := &closeRecorder{None: dataplane.NewNone(nil, nil)}
			d, err := New(cfg, Options{Listen: tc.listen, Dataplane: dp, NoControl: true})
			if err == nil || d != nil {
				t.Fatalf("New: %v, %v; want an error", d, err)
			}
			if !strings.HasPrefix(err.Error(), "daemon: ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line starting with \"daemon: \" containing %q", err, tc.want)
			}
			if dp.closed != 1 {
				t.Errorf("data plane closed %d times, want 1", dp.closed)
			}
		})
	}
}
