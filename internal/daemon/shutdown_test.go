package daemon

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

// closeWatcher is a data plane that records what reaches it after Close.
type closeWatcher struct {
	*dataplane.None
	mu         sync.Mutex
	closed     bool
	afterClose []string
	atClose    []uint32 // SAs still installed when Close came
}

func (c *closeWatcher) Remove(spi uint32) error {
	c.mu.Lock()
	if c.closed {
		c.afterClose = append(c.afterClose, "Remove")
	}
	c.mu.Unlock()
	return c.None.Remove(spi)
}

func (c *closeWatcher) Close() error {
	c.mu.Lock()
	c.closed = true
	c.atClose = c.None.Installed()
	c.mu.Unlock()
	return c.None.Close()
}

// bubbleGoroutines returns the stacks of the goroutines of this synctest
// bubble that run Cygnet code, other than the caller and the test's own.
func bubbleGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if !strings.Contains(header, "synctest bubble") || strings.Contains(header, "[running") ||
			strings.Contains(header, "synctest.Run") {
			continue
		}
		if strings.Contains(g, "cygnet-ipsec/cygnet/") {
			out = append(out, g)
		}
	}
	return out
}

// TestShutdownClean stops a daemon right after a CHILD_SA rekey, while the
// replaced SA waits out its delete_rekeyed_delay in the data plane: the
// shutdown removes it before the data plane closes, nothing touches the
// data plane after that (no timer fires later), and no goroutine of the
// daemon outlives Run (a goroutine-leak check over the synctest bubble).
func TestShutdownClean(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := defaultBenchOptions()
		var dp *closeWatcher
		o.aliceDP = func(n *dataplane.None) dataplane.Backend {
			dp = &closeWatcher{None: n}
			return dp
		}
		b := newBench(t, o)
		if err := b.alice.up("site", "net"); err != nil {
			t.Fatal(err)
		}
		old := b.alice.status().IKESAs[0].ChildSAs[0].SPIIn
		if err := b.alice.d.Rekey(context.Background(), "site", "net"); err != nil {
			t.Fatal(err)
		}
		b.alice.waitStatus("the CHILD_SA rekeyed", func(st *control.Status) bool {
			return oneEach("net")(st) && st.IKESAs[0].ChildSAs[0].SPIIn != old
		})
		synctest.Wait()
		if n := b.alice.d.retiring.pending(); n != 1 {
			t.Errorf("%d rekeyed SAs waiting for their removal, want 1", n)
		}
		if len(dp.Installed()) != 2 {
			t.Fatalf("alice's data plane holds %x, want the new and the retired SA", dp.Installed())
		}
		// Well within deleteRekeyedDelay.
		time.Sleep(time.Second)
		b.alice.stop()
		b.bob.stop()
		time.Sleep(2 * deleteRekeyedDelay) // any timer left would fire now
		synctest.Wait()
		dp.mu.Lock()
		defer dp.mu.Unlock()
		if len(dp.atClose) != 0 || len(dp.afterClose) != 0 {
			t.Errorf("data plane at Close still held %x; called after Close: %v", dp.atClose, dp.afterClose)
		}
		if left := bubbleGoroutines(); len(left) > 0 {
			t.Errorf("%d goroutines left after Run returned:\n%s", len(left), strings.Join(left, "\n\n"))
		}
	})
}
