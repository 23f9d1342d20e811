package daemon

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/transport/memnet"
)

// manyConns returns n extra connections named c0..c(n-1) between distinct
// identities (so INITIAL_CONTACT of one does not replace another).
func manyConns(n int, me, peer, myAddr, peerAddr string, mirror bool) string {
	var b strings.Builder
	for i := range n {
		l, r := fmt.Sprintf("10.%d.1.0/24", 100+i), fmt.Sprintf("10.%d.2.0/24", 100+i)
		if mirror {
			l, r = r, l
		}
		fmt.Fprintf(&b, `  c%[1]d:
    local_addrs: [%[4]s]
    remote_addrs: [%[5]s]
    dpd_delay: 0s
    local: {auth: psk, id: "%[2]s-%[1]d.example"}
    remote: {auth: psk, id: "%[3]s-%[1]d.example"}
    children:
      n: {local_ts: [%[6]s], remote_ts: [%[7]s]}
`, i, me, peer, myAddr, peerAddr, l, r)
	}
	return b.String()
}

// TestManyConcurrentUps brings up 40 connections at once over a link that
// loses, duplicates and reorders datagrams: the workers route every message
// to its SA, retransmissions recover the losses, and nothing is mixed up.
func TestManyConcurrentUps(t *testing.T) {
	const n = 40
	o := defaultBenchOptions()
	o.alice.extraConns = manyConns(n, "alice", "bob", "192.0.2.1", "192.0.2.2", false)
	o.bob.extraConns = manyConns(n, "bob", "alice", "192.0.2.2", "192.0.2.1", true)
	o.faults = memnet.Faults{Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, ReorderDelay: 5 * time.Millisecond}
	o.retransmit = sa.Retransmit{Timeout: 100 * time.Millisecond, Base: 1.2, Tries: 12}
	b := newBench(t, o)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = b.alice.up(fmt.Sprintf("c%d", i), "n") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("c%d: %v", i, err)
		}
	}
	st := b.alice.status()
	if len(st.IKESAs) != n {
		t.Fatalf("%d IKE SAs, want %d", len(st.IKESAs), n)
	}
	seen := map[string]bool{}
	for _, ike := range st.IKESAs {
		if ike.State != "ESTABLISHED" || len(ike.ChildSAs) != 1 || seen[ike.SPIi] {
			t.Errorf("bad or duplicate IKE SA: %+v", ike)
		}
		seen[ike.SPIi] = true
		var i int
		fmt.Sscanf(ike.Connection, "c%d", &i)
		if want := fmt.Sprintf("10.%d.1.0/24", 100+i); ike.ChildSAs[0].LocalTS[0] != want {
			t.Errorf("%s: local TS %v, want %s", ike.Connection, ike.ChildSAs[0].LocalTS, want)
		}
	}
	b.bob.waitStatus("bob has them all", func(st *control.Status) bool { return len(st.IKESAs) == n })
	// The SAs are spread over the workers (SPI mod workers).
	per := map[int]int{}
	for spi := range seen {
		var v uint64
		fmt.Sscanf(spi, "%x", &v)
		per[int(v%3)]++
	}
	if len(per) != 3 {
		t.Errorf("SAs per worker: %v", per)
	}
}

// TestNATKeepalives: with encap forced, alice fakes a NAT in front of
// herself (RFC 7296 2.23) and must then send a NAT-keepalive every 20 s
// when nothing else goes out (RFC 3948 4). Virtual time (testing/synctest).
func TestNATKeepalives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := defaultBenchOptions()
		o.alice.encap = true
		b := newBench(t, o)
		if err := b.alice.up("site", "net"); err != nil {
			t.Fatal(err)
		}
		st := b.alice.status()
		if !st.IKESAs[0].NATLocal || !st.IKESAs[0].ChildSAs[0].Encap || !strings.HasSuffix(st.IKESAs[0].Local, ":4500") {
			t.Fatalf("forced encapsulation: %+v", st.IKESAs[0])
		}
		before := b.alice.d.tr.Stats().KeepalivesOut
		time.Sleep(65 * time.Second)
		synctest.Wait()
		if got := b.alice.d.tr.Stats().KeepalivesOut - before; got != 3 {
			t.Errorf("%d keepalives in 65 s, want 3", got)
		}
		if got := b.bob.d.tr.Stats().KeepalivesOut; got != 0 {
			t.Errorf("bob (no NAT in front of him) sent %d keepalives", got)
		}
		b.alice.stop()
		b.bob.stop()
	})
}
