package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The commented sample dist/cygnet.yaml loads, with the certificate layout
// its header describes.
func TestDistSample(t *testing.T) {
	sample, err := os.ReadFile("../../dist/cygnet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pki := getPKI(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"cygnet.yaml":      sample,
		"x509/gw-a.crt":    pki.aCert,
		"private/gw-a.key": pki.aKey,
		"x509ca/ca.crt":    pki.caPEM,
	})
	cfg, err := Load(filepath.Join(dir, "cygnet.yaml"))
	if err != nil {
		t.Fatalf("Load(dist/cygnet.yaml):\n%v", err)
	}
	site, road := cfg.Connection("site"), cfg.Connection("road")
	if site == nil || road == nil || len(cfg.Connections) != 2 {
		t.Fatalf("connections: %v", cfg.Connections)
	}
	if site.Local.Cred == nil || site.Remote.Roots == nil || site.Children[0].StartAction != "start" {
		t.Errorf("site: %+v", site)
	}
	if !road.RemoteAny || len(road.RemoteAddrs) != 0 || road.DPDDelay != 60*time.Second || site.DPDDelay != 30*time.Second {
		t.Errorf("road: %+v", road)
	}
	if got := tsStrings(site.Children[0].RemoteTS); !slices.Equal(got, []string{"10.2.0.0/16", "10.3.0.0/16[tcp/443]"}) {
		t.Errorf("site remote_ts = %v", got)
	}
	// The road warrior's key is found for any client identity.
	if _, ok := cfg.PSK(road.Local.ID, mustID(t, "client@example.org")); !ok {
		t.Error("no PSK for a road-warrior client")
	}
}
