package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/keylog"
)

// keylogIKE returns the ikev2_decryption_table records in dir.
func keylogIKE(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, keylog.IKEFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// TestKeylogFailedAuth: the IKE SA's record is written as soon as its keys
// exist (the engine's KeysDerived), so that the IKE_AUTH of a handshake
// that fails can be decrypted: both ends have the same record, once.
func TestKeylogFailedAuth(t *testing.T) {
	o := defaultBenchOptions()
	o.alice.keylog = filepath.Join(t.TempDir(), "alice")
	o.bob.keylog = filepath.Join(t.TempDir(), "bob")
	o.bob.psk = "another secret that is long enough"
	b := newBench(t, o)
	if err := b.alice.up("site", "net"); err == nil || !strings.Contains(err.Error(), "AUTHENTICATION_FAILED") {
		t.Fatalf("up: %v, want AUTHENTICATION_FAILED", err)
	}
	b.alice.waitStatus("failed IKE SA gone", noSAs)
	b.bob.waitStatus("bob's failed IKE SA gone", noSAs)
	a, bo := keylogIKE(t, o.alice.keylog), keylogIKE(t, o.bob.keylog)
	if len(a) != 1 || len(bo) != 1 || a[0] != bo[0] {
		t.Fatalf("records: alice %d, bob %d, equal %v; want one each, the same", len(a), len(bo), len(a) == 1 && len(bo) == 1 && a[0] == bo[0])
	}
	// SPIi is alice's own SPI, which her log names.
	spiI := strings.Split(a[0], ",")[0]
	if len(spiI) != 16 || !strings.Contains(b.alice.logBuf.String(), "spi="+spiI) {
		t.Errorf("record's SPIi %q is not alice's IKE SA", spiI)
	}
}

// TestKeylogRekeyedIKESA: an IKE SA that a rekey created has its record
// too, on both ends, and nothing is written twice.
func TestKeylogRekeyedIKESA(t *testing.T) {
	o := defaultBenchOptions()
	o.alice.keylog = filepath.Join(t.TempDir(), "alice")
	o.bob.keylog = filepath.Join(t.TempDir(), "bob")
	b := newBench(t, o)
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	before := b.alice.status().IKESAs[0]
	if err := b.alice.d.Rekey(context.Background(), "site", ""); err != nil {
		t.Fatal(err)
	}
	after := b.alice.waitStatus("the IKE SA rekeyed", func(st *control.Status) bool {
		return len(st.IKESAs) == 1 && st.IKESAs[0].SPIi != before.SPIi
	}).IKESAs[0]
	b.bob.waitStatus("bob's IKE SA rekeyed", func(st *control.Status) bool {
		return len(st.IKESAs) == 1 && st.IKESAs[0].SPIi == after.SPIi
	})
	for _, dir := range []string{o.alice.keylog, o.bob.keylog} {
		recs := keylogIKE(t, dir)
		var spis []string
		for _, r := range recs {
			f := strings.Split(r, ",")
			spis = append(spis, f[0]+","+f[1])
		}
		want := []string{before.SPIi + "," + before.SPIr, after.SPIi + "," + after.SPIr}
		if fmt.Sprint(spis) != fmt.Sprint(want) {
			t.Errorf("%s: records for %v, want %v", dir, spis, want)
		}
	}
}
