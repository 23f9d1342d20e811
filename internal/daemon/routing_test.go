package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// TestRetransmittedInitGoesToHalfOpenSA: a second copy of an IKE_SA_INIT
// request reaches the half-open SA it created (RFC 7296 2.1: the responder
// answers a retransmission with the same response), not the Responder
// (which would create a second SA).
func TestRetransmittedInitGoesToHalfOpenSA(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	init := captureFirst(t, b) // alice's request, captured at bob's address; bob stopped
	// A fresh bob, and a fake alice at alice's address to see the answers.
	o := defaultBenchOptions()
	b2 := newBench(t, benchOptions{alice: o.bob, retransmit: o.retransmit, noBob: true})
	bob := b2.alice // the first node of b2 runs bob's configuration
	rec := &recorder{ch: make(chan []byte, 16)}
	fake, err := b2.net.Listen(transport.Config{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Port: 500, NATPort: 4500}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	send := func() []byte {
		t.Helper()
		if err := fake.SendIKE(transport.Packet{Local: netip.MustParseAddrPort("192.0.2.1:500"), Remote: netip.MustParseAddrPort("192.0.2.2:500"), Data: init}); err != nil {
			t.Fatal(err)
		}
		select {
		case resp := <-rec.ch:
			return resp
		case <-time.After(10 * time.Second):
			t.Fatal("no IKE_SA_INIT response")
			return nil
		}
	}
	first, second := send(), send()
	if !bytes.Equal(first, second) {
		t.Error("the retransmission got a different response")
	}
	h, _ := wire.ParseHeader(first)
	if !h.IsResponse() || h.Exchange != wire.IKE_SA_INIT || h.SPIr == 0 {
		t.Fatalf("response header %+v", h)
	}
	st := bob.status()
	if len(st.IKESAs) != 1 || st.IKESAs[0].State != control.IKEConnecting {
		t.Errorf("bob's SAs after a retransmitted IKE_SA_INIT: %+v", st)
	}
}

// failingDataplane refuses every Install.
type failingDataplane struct{ *dataplane.None }

func (f failingDataplane) Install(*dataplane.SA, uint32) error {
	return errors.New("dataplane: no room in the SAD (test)")
}

// TestDataplaneRefuses: when the data plane refuses a CHILD_SA, the engine
// hears of it and deletes it with the peer; `up` fails saying why, and the
// IKE SA stays.
func TestDataplaneRefuses(t *testing.T) {
	o := defaultBenchOptions()
	o.aliceDP = func(n *dataplane.None) dataplane.Backend { return failingDataplane{n} }
	b := newBench(t, o)
	err := b.alice.up("site", "net")
	if err == nil || !strings.Contains(err.Error(), "no room in the SAD") {
		t.Fatalf("up: %v", err)
	}
	b.alice.waitStatus("IKE SA without children", func(st *control.Status) bool {
		return len(st.IKESAs) == 1 && st.IKESAs[0].State == control.IKEEstablished && len(st.IKESAs[0].ChildSAs) == 0
	})
	// bob installed it, then deleted it at alice's request.
	b.bob.waitStatus("bob's CHILD_SA deleted", func(st *control.Status) bool {
		return len(st.IKESAs) == 1 && len(st.IKESAs[0].ChildSAs) == 0
	})
	if n := len(b.bob.dp.Installed()); n != 0 {
		t.Errorf("bob's data plane still holds %d SAs", n)
	}
	if strings.Contains(b.alice.logBuf.String(), testPSK) || strings.Contains(b.bob.logBuf.String(), testPSK) {
		t.Error("the PSK appears in a log")
	}
}

func TestIPv6Outer(t *testing.T) {
	o := defaultBenchOptions()
	o.alice.addr, o.alice.peerAddr = "2001:db8::1", "2001:db8::2"
	o.bob.addr, o.bob.peerAddr = "2001:db8::2", "2001:db8::1"
	b := newBench(t, o)
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	a, _ := findIKE(b.alice.status(), "site")
	if a.Local != "[2001:db8::1]:500" || a.Remote != "[2001:db8::2]:500" {
		t.Errorf("addresses %s <-> %s", a.Local, a.Remote)
	}
	b.bob.waitStatus("bob established", established("site", "net"))
}

// TestShutdownBoundedWithDeadPeer: SIGTERM with a peer that no longer
// answers still ends after the shutdown timeout (virtual time).
func TestShutdownBoundedWithDeadPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := defaultBenchOptions()
		o.retransmit = sa.Retransmit{} // the engine's: the delete would be retried for minutes
		b := newBench(t, o)
		if err := b.alice.up("site", "net"); err != nil {
			t.Fatal(err)
		}
		b.net.Cut(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"))
		start := time.Now()
		b.alice.stop()
		if took := time.Since(start); took != DefaultShutdownTimeout {
			t.Errorf("shutdown took %v of virtual time, want the %v bound", took, DefaultShutdownTimeout)
		}
		if n := len(b.alice.dp.Installed()); n != 0 {
			t.Errorf("%d SAs left in the data plane", n)
		}
		b.bob.stop()
	})
}

// trafficDataplane reports inbound ESP on every SA, as a live tunnel does.
type trafficDataplane struct {
	*dataplane.None
	now func() time.Time
}

func (d trafficDataplane) Counters(spi uint32) (dataplane.Counters, bool) {
	c, ok := d.None.Counters(spi)
	c.LastIn = d.now()
	return c, ok
}

// TestESPTrafficPostponesDPD: with ESP arriving on the CHILD_SA, the
// engine sends no liveness check (RFC 7296 2.4); without, it does.
func TestESPTrafficPostponesDPD(t *testing.T) {
	for _, traffic := range []bool{false, true} {
		t.Run(fmt.Sprint("traffic=", traffic), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := defaultBenchOptions()
				o.alice.extraConns = ""
				o.alice.dpdDelay = "10s"
				if traffic {
					o.aliceDP = func(n *dataplane.None) dataplane.Backend { return trafficDataplane{n, time.Now} }
				}
				b := newBench(t, o)
				if err := b.alice.up("site", "net"); err != nil {
					t.Fatal(err)
				}
				before := b.alice.d.tr.Stats().IKEOut.Packets
				time.Sleep(35 * time.Second)
				synctest.Wait()
				sent := b.alice.d.tr.Stats().IKEOut.Packets - before
				if traffic && sent != 0 {
					t.Errorf("%d IKE messages (liveness checks) despite ESP traffic", sent)
				}
				if !traffic && sent == 0 {
					t.Error("no liveness check after 35 s of silence with dpd_delay 10s")
				}
				b.alice.stop()
				b.bob.stop()
			})
		})
	}
}
