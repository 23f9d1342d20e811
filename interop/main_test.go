package interop

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

var update = flag.Bool("update", false,
	"rewrite docs/interop.md from this run's matrix and re-record the transcripts in testdata/ (needs root and strongSwan)")

// defaultParallel is how many cases run at once unless -test.parallel is
// given. A case mostly waits (for the peer, for a rekey timer, for ping),
// so more cases than CPUs keep the machine busy without crowding it.
const defaultParallel = "6"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			explicit = true
		}
	})
	if !explicit {
		if err := flag.Set("test.parallel", defaultParallel); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}
