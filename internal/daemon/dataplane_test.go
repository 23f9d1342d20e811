package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// Tests of the runtime with the userspace data plane: two daemons on memnet,
// each with an in-memory TUN device whose host end the test writes inner
// packets into and reads them from.

// ipv4UDP builds an IPv4 UDP packet (UDP checksum 0: none, RFC 768).
func ipv4UDP(src, dst string, payload string) []byte {
	pkt := make([]byte, 28+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[10:], tun.Checksum(pkt[:20], 0))
	binary.BigEndian.PutUint16(pkt[20:], 1000)
	binary.BigEndian.PutUint16(pkt[22:], 2000)
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload)))
	copy(pkt[28:], payload)
	return pkt
}

// inject writes packets into n's tunnel, as its host's IP stack would.
func (n *node) inject(pkts ...[]byte) {
	n.t.Helper()
	if _, err := n.host.Write(pkts, 0); err != nil {
		n.t.Fatal(err)
	}
}

// receive reads what comes out of n's tunnel until it has count packets,
// failing when none came for 10 s (a bound on silence, not on the whole
// stream, which the sender may take a while to send under -race).
func (n *node) receive(count int) [][]byte {
	n.t.Helper()
	pkts := make(chan []byte, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(pkts)
		bufs, sizes := [][]byte{make([]byte, 2000)}, []int{0}
		for range count {
			if _, err := n.host.Read(bufs, sizes, 0); err != nil {
				errc <- err
				return
			}
			pkts <- bytes.Clone(bufs[0][:sizes[0]])
		}
	}()
	var out [][]byte
	idle := time.NewTimer(10 * time.Second)
	defer idle.Stop()
	for len(out) < count {
		select {
		case p, ok := <-pkts:
			if !ok {
				n.t.Fatalf("%s: reading the TUN device: %v", n.name, <-errc)
			}
			out = append(out, p)
			idle.Reset(10 * time.Second)
		case <-idle.C:
			n.host.Close()
			var drops strings.Builder
			n.d.Metrics().WriteTo(&drops)
			for l := range strings.Lines(drops.String()) {
				if strings.HasPrefix(l, "cygnet_packets_dropped_total") {
					n.t.Logf("%s: %s", n.name, strings.TrimSpace(l))
				}
			}
			n.t.Fatalf("%s: %d of %d packets came out of the tunnel, then none for 10 s", n.name, len(out), count)
		}
	}
	return out
}

func userspaceBench(t *testing.T, edit func(o *benchOptions)) *bench {
	o := defaultBenchOptions()
	o.userspace = true
	// ESP in UDP through memnet: without, the data plane would send plain
	// ESP through a raw socket, beside the simulated network.
	o.alice.encap, o.bob.encap = true, true
	if edit != nil {
		edit(&o)
	}
	return newBench(t, o)
}

// metric returns the value of one sample of the text exposition.
func (n *node) metric(sample string) string {
	n.t.Helper()
	var b strings.Builder
	n.d.Metrics().WriteTo(&b)
	for line := range strings.SplitSeq(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	n.t.Fatalf("%s: no metric sample %s in\n%s", n.name, sample, b.String())
	return ""
}

func TestUserspaceTraffic(t *testing.T) {
	b := userspaceBench(t, nil)
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	b.bob.waitStatus("bob's CHILD_SA", established("site", "net"))
	var sent [][]byte
	for i := range 5 {
		sent = append(sent, ipv4UDP("10.1.0.1", "10.2.0.1", fmt.Sprintf("datagram %d", i)))
	}
	b.alice.inject(sent...)
	got := b.bob.receive(len(sent))
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("packet %d: sent %x, bob's TUN gave %x", i, sent[i], got[i])
		}
	}
	// And back.
	b.bob.inject(ipv4UDP("10.2.0.1", "10.1.0.1", "answer"))
	if got := b.alice.receive(1); !bytes.HasSuffix(got[0], []byte("answer")) {
		t.Fatalf("alice's TUN gave %x", got[0])
	}

	bytesOut := uint64(0)
	for _, p := range sent {
		bytesOut += uint64(len(p))
	}
	ike, _ := findIKE(b.alice.status(), "site")
	c := ike.ChildSAs[0]
	if c.PacketsOut != 5 || c.BytesOut != bytesOut || c.PacketsIn != 1 || c.BytesIn != 34 {
		t.Errorf("alice's status counters: %+v; want 5 packets (%d bytes) out, 1 (34 bytes) in", c, bytesOut)
	}
	if got := b.alice.metric(`cygnet_esp_packets_total{direction="out"}`); got != "5" {
		t.Errorf("cygnet_esp_packets_total{out} = %s, want 5", got)
	}
	if got := b.alice.metric(`cygnet_esp_bytes_total{direction="out"}`); got != fmt.Sprint(bytesOut) {
		t.Errorf("cygnet_esp_bytes_total{out} = %s, want %d", got, bytesOut)
	}

	// A packet for no SA is dropped and counted by reason.
	b.alice.inject(ipv4UDP("10.1.0.1", "10.9.0.1", "nowhere"))
	waitUntil(t, "the no-policy drop", func() bool {
		return b.alice.metric(`cygnet_packets_dropped_total{reason="esp_no_policy"}`) == "1"
	})

	// The counters outlive the SA in the metrics.
	if err := b.alice.d.Down(context.Background(), "site"); err != nil {
		t.Fatal(err)
	}
	if got := b.alice.metric(`cygnet_esp_packets_total{direction="out"}`); got != "5" {
		t.Errorf("after down: cygnet_esp_packets_total{out} = %s, want 5", got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTrapAcquire: start_action trap installs a trap policy; the first
// packet that matches it starts the negotiation (and is dropped); once the
// CHILD_SA is up, traffic flows. A second child on the same connection then
// comes with CREATE_CHILD_SA on the IKE SA that is up.
func TestTrapAcquire(t *testing.T) {
	b := userspaceBench(t, func(o *benchOptions) {
		o.alice.startAction = "trap"
		o.alice.extraConns = "" // keep the default connection only
	})
	waitUntil(t, "the trap policy", func() bool {
		return strings.Contains(b.alice.logBuf.String(), "trap policy installed")
	})
	if st := b.alice.status(); len(st.IKESAs) != 0 {
		t.Fatalf("SAs before any packet: %+v", st)
	}
	// Packets are dropped until the SA is up; keep sending, as a real
	// sender retransmits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.alice.inject(ipv4UDP("10.1.0.7", "10.2.0.9", "knock"))
		ike, ok := findIKE(b.alice.status(), "site")
		if ok && ike.State == control.IKEEstablished && len(ike.ChildSAs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SA after the trap fired; alice's status %+v", b.alice.status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(b.alice.logBuf.String(), "acquire: a packet hit the trap policy; initiating") {
		t.Error("alice did not log the acquire")
	}
	if got := b.alice.metric(`cygnet_packets_dropped_total{reason="esp_trap"}`); got == "0" {
		t.Error("no packet counted as dropped on the trap")
	}
	// Drain what went through while we polled, then one more.
	b.alice.inject(ipv4UDP("10.1.0.7", "10.2.0.9", "through"))
	for {
		got := b.bob.receive(1)
		if bytes.HasSuffix(got[0], []byte("through")) {
			break
		}
	}
	// One IKE SA, one CHILD_SA: the trap raised one negotiation.
	st := b.alice.status()
	if len(st.IKESAs) != 1 || len(st.IKESAs[0].ChildSAs) != 1 {
		t.Fatalf("alice's SAs: %+v", st)
	}
}

// TestTrapReload: a reload that removes a trapped child's connection
// removes its trap; one that brings it back installs it again.
func TestTrapReload(t *testing.T) {
	b := userspaceBench(t, func(o *benchOptions) { o.alice.startAction = "trap" })
	waitUntil(t, "the trap policy", func() bool { return len(b.alice.us.Traps()) == 1 })
	cs := b.alice.d.cfgs.Load()
	if len(cs.traps) != 1 {
		t.Fatalf("traps in the configuration: %v", cs.traps)
	}
	if reqid := b.alice.us.Traps()[0]; cs.traps[reqid] != (trapRef{"site", "net"}) {
		t.Fatalf("trap %d is %+v, want site/net", reqid, cs.traps[reqid])
	}

	o := defaultBenchOptions().alice
	o.encap = true
	noTrap := o.yaml()
	o.startAction = "trap"
	withSite := o.yaml()
	cfgPath := b.alice.d.Config().Path
	reload := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := b.alice.d.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	reload(strings.Replace(noTrap, "connections:\n  site:", "connections:\n  other:", 1))
	if traps := b.alice.us.Traps(); len(traps) != 0 {
		t.Fatalf("traps after the connection went: %v", traps)
	}
	reload(withSite)
	if traps := b.alice.us.Traps(); len(traps) != 1 {
		t.Fatalf("traps after the connection came back: %v", traps)
	}
}

// TestExpiryEvent: a CHILD_SA that reaches its packet lifetime in the data
// plane is handed to the engine (or logged while the engine cannot take it).
func TestExpiryEvent(t *testing.T) {
	b := userspaceBench(t, func(o *benchOptions) { o.alice.netChild = "rekey_packets: 3\n        life_packets: 1000" })
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	b.bob.waitStatus("bob's CHILD_SA", established("site", "net"))
	for i := range 4 {
		b.alice.inject(ipv4UDP("10.1.0.1", "10.2.0.1", fmt.Sprint(i)))
	}
	b.bob.receive(4)
	waitUntil(t, "the expiry in alice's log", func() bool {
		return strings.Contains(b.alice.logBuf.String(), "CHILD_SA lifetime reached in the data plane")
	})
}

// TestRekeyWithTraffic rekeys the CHILD_SA (about every second) and the IKE
// SA (after about two) while both sides stream through the userspace data
// plane: make-before-break in both roles, the rekey responder's outbound
// switch included (ChildUp.OutboundDeferred, ChildOutbound), and the IKE SA
// handed over to its successor (IKEAdded, IKERekeyed) with its CHILD_SAs.
// Nothing may be lost.
func TestRekeyWithTraffic(t *testing.T) {
	b := userspaceBench(t, func(o *benchOptions) {
		o.alice.connExtra = "rekey_time: 2s"
		o.alice.netChild = "rekey_time: 1s\n        life_time: 30s"
	})
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	b.bob.waitStatus("bob's CHILD_SA", established("site", "net"))
	before, _ := findIKE(b.alice.status(), "site")

	const n = 1500 // 2 ms apart: 3 s of traffic each way
	type stream struct {
		from, to *node
		src, dst string
		got      [][]byte
		done     chan struct{}
	}
	streams := []*stream{
		{from: b.alice, to: b.bob, src: "10.1.0.1", dst: "10.2.0.1"},
		{from: b.bob, to: b.alice, src: "10.2.0.1", dst: "10.1.0.1"},
	}
	for _, s := range streams {
		s.done = make(chan struct{})
		go func() {
			defer close(s.done)
			s.got = s.to.receive(n)
		}()
	}
	for i := range n {
		for _, s := range streams {
			s.from.inject(ipv4UDP(s.src, s.dst, fmt.Sprintf("#%05d", i)))
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, s := range streams {
		<-s.done
		for i, p := range s.got {
			if want := fmt.Sprintf("#%05d", i); !bytes.HasSuffix(p, []byte(want)) {
				t.Fatalf("%s -> %s: packet %d is %q, want %s (lost or reordered)", s.src, s.dst, i, p[28:], want)
			}
		}
	}

	after := b.alice.waitStatus("one IKE SA again", func(st *control.Status) bool {
		ike, ok := findIKE(st, "site")
		return ok && len(st.IKESAs) == 1 && ike.State == control.IKEEstablished && len(ike.ChildSAs) == 1
	})
	a, _ := findIKE(after, "site")
	if a.SPIi == before.SPIi || a.ChildSAs[0].SPIIn == before.ChildSAs[0].SPIIn {
		t.Errorf("not rekeyed: IKE SPIs %s then %s, CHILD_SA %s then %s", before.SPIi, a.SPIi, before.ChildSAs[0].SPIIn, a.ChildSAs[0].SPIIn)
	}
	for _, which := range []string{"ike", "child"} {
		if got := b.alice.metric(`cygnet_rekeys_total{kind="` + which + `",role="initiator"}`); got == "0" {
			t.Errorf("alice: cygnet_rekeys_total{kind=%q,role=\"initiator\"} = 0", which)
		}
		if got := b.bob.metric(`cygnet_rekeys_total{kind="` + which + `",role="responder"}`); got == "0" {
			t.Errorf("bob: cygnet_rekeys_total{kind=%q,role=\"responder\"} = 0", which)
		}
	}
	// Status sums the lifecycle counters over the IKE SA's line.
	if a.Rekeys == 0 || a.ChildRekeys == 0 || a.ChildSAs[0].Rekeys == 0 {
		t.Errorf("alice's status after the rekeys: %+v", a)
	}
	// The SAs left in the data planes are exactly the ones status shows.
	for _, nd := range []*node{b.alice, b.bob} {
		ike, _ := findIKE(nd.status(), "site")
		c, ok := nd.us.Counters(parseSPI(t, ike.ChildSAs[0].SPIIn))
		if !ok || c.PacketsIn == 0 {
			t.Errorf("%s: the CHILD_SA in status (%s) carried nothing: %+v", nd.name, ike.ChildSAs[0].SPIIn, c)
		}
		if tot := nd.us.Totals(); tot.PacketsIn < n {
			t.Errorf("%s: %d packets in over all SAs, want %d", nd.name, tot.PacketsIn, n)
		}
	}
	// A script of what happened, for the log.
	st := b.alice.metric(`cygnet_rekeys_total{kind="child",role="initiator"}`)
	if !strings.Contains(b.bob.logBuf.String(), "CHILD_SA outbound switched") {
		t.Error("bob, the responder of the CHILD_SA rekeys, never switched a deferred outbound SA")
	}
	t.Logf("alice rekeyed the CHILD_SA %s times and the IKE SA %s times during %d packets each way", st, b.alice.metric(`cygnet_rekeys_total{kind="ike",role="initiator"}`), n)
}

func parseSPI(t *testing.T, s string) uint32 {
	t.Helper()
	var v uint32
	if _, err := fmt.Sscanf(s, "%x", &v); err != nil {
		t.Fatal(err)
	}
	return v
}
