package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/keylog"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

func transportPacket(local, remote string, data []byte) transport.Packet {
	return transport.Packet{Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), Data: data}
}

func TestEstablishStatusDown(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatalf("up: %v", err)
	}
	ast := b.alice.status()
	bst := b.bob.waitStatus("bob's IKE SA", established("site", "net"))

	a, ok := findIKE(ast, "site")
	if !ok || a.State != control.IKEEstablished || !a.Initiator {
		t.Fatalf("alice's status: %+v", ast)
	}
	bb, _ := findIKE(bst, "site")
	if bb.Initiator || bb.SPIi != a.SPIi || bb.SPIr != a.SPIr {
		t.Errorf("SPIs: alice %s/%s, bob %s/%s (initiator %v)", a.SPIi, a.SPIr, bb.SPIi, bb.SPIr, bb.Initiator)
	}
	if a.LocalID != "alice.example" || a.RemoteID != "bob.example" || bb.LocalID != "bob.example" || bb.RemoteID != "alice.example" {
		t.Errorf("identities: alice %s<->%s, bob %s<->%s", a.LocalID, a.RemoteID, bb.LocalID, bb.RemoteID)
	}
	if a.Local != "192.0.2.1:500" || a.Remote != "192.0.2.2:500" {
		t.Errorf("alice's addresses %s <-> %s; want port 500 without NAT", a.Local, a.Remote)
	}
	if a.Proposal != "aes256gcm16-prfsha256-x25519" || a.EstablishedAt.IsZero() {
		t.Errorf("alice: proposal %q established %v", a.Proposal, a.EstablishedAt)
	}
	if len(a.ChildSAs) != 1 || len(bb.ChildSAs) != 1 {
		t.Fatalf("children: alice %+v, bob %+v", a.ChildSAs, bb.ChildSAs)
	}
	ac, bc := a.ChildSAs[0], bb.ChildSAs[0]
	if ac.SPIIn != bc.SPIOut || ac.SPIOut != bc.SPIIn || ac.State != control.ChildInstalled || ac.Mode != "tunnel" || ac.Proposal != "aes256gcm16" {
		t.Errorf("CHILD_SAs: alice %+v, bob %+v", ac, bc)
	}
	if !slices.Equal(ac.LocalTS, []string{"10.1.0.0/16"}) || !slices.Equal(ac.RemoteTS, []string{"10.2.0.0/16"}) ||
		!slices.Equal(bc.LocalTS, ac.RemoteTS) || !slices.Equal(bc.RemoteTS, ac.LocalTS) {
		t.Errorf("traffic selectors: alice %v/%v, bob %v/%v", ac.LocalTS, ac.RemoteTS, bc.LocalTS, bc.RemoteTS)
	}
	// The data planes hold exactly these SAs.
	if got := b.alice.dp.Installed(); len(got) != 1 || control.FormatChildSPI(got[0]) != ac.SPIIn {
		t.Errorf("alice's data plane holds %x, status says %s", got, ac.SPIIn)
	}
	if got := b.bob.dp.Installed(); len(got) != 1 || control.FormatChildSPI(got[0]) != bc.SPIIn {
		t.Errorf("bob's data plane holds %x, status says %s", got, bc.SPIIn)
	}

	// up again is a no-op: the same IKE SA.
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatalf("second up: %v", err)
	}
	if st := b.alice.status(); len(st.IKESAs) != 1 || st.IKESAs[0].SPIi != a.SPIi {
		t.Errorf("second up changed the SAs: %+v", st)
	}

	if err := b.alice.d.Down(context.Background(), "site"); err != nil {
		t.Fatalf("down: %v", err)
	}
	if st := b.alice.status(); !noSAs(st) {
		t.Errorf("alice still has SAs after down: %+v", st)
	}
	b.bob.waitStatus("bob's SAs gone", noSAs)
	if n := len(b.alice.dp.Installed()) + len(b.bob.dp.Installed()); n != 0 {
		t.Errorf("%d CHILD_SAs left in the data planes", n)
	}
}

func TestSecondChildCreateChildSA(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatalf("up net: %v", err)
	}
	spi := b.alice.status().IKESAs[0].SPIi
	if err := b.alice.up("site", "more"); err != nil {
		t.Fatalf("up more: %v", err)
	}
	st := b.alice.status()
	if len(st.IKESAs) != 1 || st.IKESAs[0].SPIi != spi || !established("site", "net", "more")(st) {
		t.Fatalf("after up more: %+v", st)
	}
	b.bob.waitStatus("bob's two children", established("site", "net", "more"))
}

func TestUpAllChildren(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	if err := b.alice.up("site", ""); err != nil {
		t.Fatalf("up: %v", err)
	}
	if st := b.alice.status(); !established("site", "net", "more")(st) {
		t.Fatalf("after up of all children: %+v", st)
	}
}

func TestUpFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*benchOptions)
		child  string
		errHas []string
		ikeUp  bool // the IKE SA survives (a CHILD_SA failure)
	}{
		{
			name:   "no common IKE proposal",
			mod:    func(o *benchOptions) { o.bob.proposals = "[aes128-sha256-modp2048]" },
			child:  "net",
			errHas: []string{"NO_PROPOSAL_CHOSEN", "aes256gcm16-prfsha256-x25519"},
		},
		{
			name:   "wrong PSK",
			mod:    func(o *benchOptions) { o.bob.psk = "another secret that is long enough" },
			child:  "net",
			errHas: []string{"AUTHENTICATION_FAILED"},
		},
		{
			name:   "no common ESP proposal",
			mod:    func(o *benchOptions) { o.bob.espProposals = "[aes128-sha256]" },
			child:  "net",
			errHas: []string{"NO_PROPOSAL_CHOSEN", "aes256gcm16"},
			ikeUp:  true,
		},
		{
			name:   "traffic selectors do not match",
			mod:    func(o *benchOptions) { o.bob.localTS, o.bob.remoteTS = "[10.7.0.0/16]", "[10.8.0.0/16]" },
			child:  "net",
			errHas: []string{"TS_UNACCEPTABLE"},
			ikeUp:  true,
		},
		{
			name:   "silent peer",
			mod:    func(o *benchOptions) { o.noBob = true },
			child:  "net",
			errHas: []string{"did not answer"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultBenchOptions()
			tc.mod(&o)
			b := newBench(t, o)
			err := b.alice.up("site", tc.child)
			if err == nil {
				t.Fatal("up succeeded")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("reason is not one line: %q", err)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("reason %q does not mention %q", err, s)
				}
			}
			if strings.Contains(err.Error(), testPSK) {
				t.Errorf("reason leaks the PSK: %q", err)
			}
			st := b.alice.status()
			if tc.ikeUp {
				if !established("site")(st) {
					t.Errorf("the IKE SA did not survive a CHILD_SA failure: %+v", st)
				}
				if len(b.alice.dp.Installed()) != 0 {
					t.Errorf("CHILD_SAs installed after a failure: %x", b.alice.dp.Installed())
				}
			} else {
				b.alice.waitStatus("failed IKE SA gone", noSAs)
			}
		})
	}
}

func TestUpUnknown(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	for _, tc := range []struct{ conn, child, want string }{
		{"nope", "", `no connection "nope"`},
		{"site", "nope", `connection "site" has no child "nope"`},
	} {
		err := b.alice.up(tc.conn, tc.child)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("up %s %s: %v, want %q", tc.conn, tc.child, err, tc.want)
		}
	}
	if err := b.alice.d.Down(context.Background(), "nope"); err == nil {
		t.Error("down of an unknown connection succeeded")
	}
	if err := b.alice.d.Down(context.Background(), "site"); err != nil {
		t.Errorf("down of a connection without SAs: %v", err)
	}
}

func TestUpCanceled(t *testing.T) {
	o := defaultBenchOptions()
	o.noBob = true
	o.retransmit = sa.Retransmit{Timeout: time.Hour, Tries: 1}
	b := newBench(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.alice.d.Up(ctx, "site", "net") }()
	b.alice.waitStatus("connecting", func(st *control.Status) bool { return len(st.IKESAs) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled up: %v", err)
	}
	b.alice.waitStatus("abandoned SA gone", noSAs)
}

func TestReloadKeepsUnchanged(t *testing.T) {
	o := defaultBenchOptions()
	// A second connection between other identities (INITIAL_CONTACT would
	// otherwise make bob drop the first IKE SA, as it should).
	other := func(me, peer, myAddr, peerAddr, localTS, remoteTS string) string {
		return `  other:
    local_addrs: [` + myAddr + `]
    remote_addrs: [` + peerAddr + `]
    dpd_delay: 0s
    local: {auth: psk, id: ` + me + `2.example}
    remote: {auth: psk, id: ` + peer + `2.example}
    children:
      x: {local_ts: [` + localTS + `], remote_ts: [` + remoteTS + `]}
`
	}
	aliceOther := other("alice", "bob", "192.0.2.1", "192.0.2.2", "10.5.0.0/16", "10.6.0.0/16")
	o.alice.extraConns = aliceOther
	o.bob.extraConns = other("bob", "alice", "192.0.2.2", "192.0.2.1", "10.6.0.0/16", "10.5.0.0/16")
	b := newBench(t, o)
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	if err := b.alice.up("other", "x"); err != nil {
		t.Fatal(err)
	}
	before, _ := findIKE(b.alice.status(), "site")

	// Same file except that "other" changes its ESP proposals.
	changed := o.alice
	changed.extraConns = strings.Replace(aliceOther, "{local_ts: [10.5.0.0/16]", "{esp_proposals: [aes128gcm16], local_ts: [10.5.0.0/16]", 1)
	cfgPath := b.alice.d.Config().Path
	if err := os.WriteFile(cfgPath, []byte(changed.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.alice.d.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	st := b.alice.waitStatus("other deleted", func(st *control.Status) bool { _, ok := findIKE(st, "other"); return !ok })
	after, ok := findIKE(st, "site")
	if !ok || after.SPIi != before.SPIi || after.State != control.IKEEstablished || len(after.ChildSAs) != 1 || after.ChildSAs[0].SPIIn != before.ChildSAs[0].SPIIn {
		t.Errorf("the unchanged connection's SAs changed: before %+v, after %+v", before, after)
	}

	// A configuration that does not load changes nothing.
	if err := os.WriteFile(cfgPath, []byte("daemon: {port: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := b.alice.d.Reload(context.Background())
	var cerr *config.Error
	if err == nil || !errors.As(err, &cerr) {
		t.Fatalf("reload of a broken file: %v", err)
	}
	if _, ok := findIKE(b.alice.status(), "site"); !ok || b.alice.d.Config().Connection("other") == nil {
		t.Error("a failed reload changed the configuration")
	}
}

func TestStartActionAndShutdown(t *testing.T) {
	o := defaultBenchOptions()
	o.alice.startAction = "start"
	b := newBench(t, o)
	b.alice.waitStatus("started at load", established("site", "net"))
	b.bob.waitStatus("bob established", established("site", "net"))
	// Stopping alice deletes its SAs politely: bob hears of it.
	b.alice.stop()
	b.bob.waitStatus("bob's SAs deleted by alice's shutdown", noSAs)
}

func TestKeylog(t *testing.T) {
	o := defaultBenchOptions()
	dir := filepath.Join(t.TempDir(), "keys")
	o.alice.keylog = dir
	b := newBench(t, o)
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	a, _ := findIKE(b.alice.status(), "site")
	ike, err := os.ReadFile(filepath.Join(dir, keylog.IKEFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(ike)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], a.SPIi+","+a.SPIr+",") || !strings.Contains(lines[0], "AES-GCM-256 with 16 octet ICV") {
		t.Errorf("%s: %q (SPIs %s %s)", keylog.IKEFile, lines, a.SPIi, a.SPIr)
	}
	esp, err := os.ReadFile(filepath.Join(dir, keylog.ESPFile))
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(string(esp)), "\n")
	c := a.ChildSAs[0]
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], `"IPv4","192.0.2.2","192.0.2.1","0x`+c.SPIIn+`"`) ||
		!strings.HasPrefix(lines[1], `"IPv4","192.0.2.1","192.0.2.2","0x`+c.SPIOut+`"`) {
		t.Errorf("%s: %q (SPIs in %s out %s)", keylog.ESPFile, lines, c.SPIIn, c.SPIOut)
	}
	for _, f := range []string{keylog.IKEFile, keylog.ESPFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v", f, err, fi.Mode())
		}
	}
	// Keys never reach the log.
	if strings.Contains(b.alice.logBuf.String(), strings.Split(lines[0], ",")[5]) {
		t.Error("an ESP key appears in the log")
	}
}

// metricsText scrapes a daemon's metrics.
func metricsText(t *testing.T, n *node) string {
	t.Helper()
	var b strings.Builder
	if _, err := n.d.Metrics().WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func wantMetrics(t *testing.T, who string, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, "\n"+l+"\n") {
			t.Errorf("%s: metrics lack %q:\n%s", who, l, text)
		}
	}
}

func TestMetrics(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	if err := b.alice.up("site", "net"); err != nil {
		t.Fatal(err)
	}
	b.bob.waitStatus("bob established", established("site", "net"))
	wantMetrics(t, "alice", metricsText(t, b.alice),
		`cygnet_ike_sas{state="ESTABLISHED"} 1`,
		`cygnet_ike_sas{state="CONNECTING"} 0`,
		`cygnet_child_sas{state="INSTALLED"} 1`,
		`cygnet_ike_handshakes_total{role="initiator",outcome="established"} 1`)
	// The transport's traffic (memnet counts as the UDP transport does):
	// at least IKE_SA_INIT and IKE_AUTH each way.
	for _, dir := range []string{"in", "out"} {
		if n := b.alice.metricInt(`cygnet_udp_packets_total{kind="ike",direction="` + dir + `"}`); n < 2 {
			t.Errorf("alice: %d IKE datagrams %s, want at least 2", n, dir)
		}
	}
	wantMetrics(t, "bob", metricsText(t, b.bob),
		`cygnet_ike_handshakes_total{role="responder",outcome="established"} 1`)

	if err := b.alice.d.Down(context.Background(), "site"); err != nil {
		t.Fatal(err)
	}
	b.bob.waitStatus("bob's SAs gone", noSAs)
	wantMetrics(t, "alice", metricsText(t, b.alice),
		`cygnet_ike_sas{state="ESTABLISHED"} 0`,
		`cygnet_child_sas{state="INSTALLED"} 0`,
		`cygnet_deletes_total{kind="ike",initiator="local"} 1`)
	wantMetrics(t, "bob", metricsText(t, b.bob),
		`cygnet_ike_sas{state="ESTABLISHED"} 0`,
		`cygnet_deletes_total{kind="ike",initiator="remote"} 1`,
		`cygnet_deletes_total{kind="child",initiator="remote"} 1`)

	// A failed handshake, counted on both sides with its reason.
	o := defaultBenchOptions()
	o.bob.proposals = "[aes128-sha256-modp2048]"
	b2 := newBench(t, o)
	if err := b2.alice.up("site", "net"); err == nil {
		t.Fatal("up succeeded")
	}
	wantMetrics(t, "alice", metricsText(t, b2.alice),
		`cygnet_ike_handshakes_total{role="initiator",outcome="failed"} 1`,
		`cygnet_ike_handshake_failures_total{role="initiator",reason="no_proposal_chosen"} 1`,
		`cygnet_ike_sas{state="CONNECTING"} 0`)
}

func TestMetricsRetransmissionsAndDrops(t *testing.T) {
	o := defaultBenchOptions()
	o.noBob = true
	b := newBench(t, o)
	if err := b.alice.up("site", "net"); err == nil {
		t.Fatal("up to nobody succeeded")
	}
	// Garbage and a message for an unknown SA reach alice.
	h := (*handler)(b.alice.d)
	h.HandleIKE(transportPacket("192.0.2.1:500", "192.0.2.9:500", []byte("short")))
	unknown := make([]byte, 28)
	unknown[0] = 1                         // SPIi
	unknown[17] = 0x20                     // version 2.0
	unknown[18] = byte(wire.INFORMATIONAL) // exchange
	unknown[27] = 28                       // length
	h.HandleIKE(transportPacket("192.0.2.1:500", "192.0.2.9:500", unknown))
	text := metricsText(t, b.alice)
	wantMetrics(t, "alice", text,
		`cygnet_ike_retransmissions_total{exchange="IKE_SA_INIT"} 3`,
		`cygnet_ike_handshake_failures_total{role="initiator",reason="timeout"} 1`,
		`cygnet_packets_dropped_total{reason="ike_malformed"} 1`)
	if !strings.Contains(text, `cygnet_packets_dropped_total{reason="ike_unknown_spi"} `) {
		t.Errorf("no unknown-SPI drops:\n%s", text)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	b := newBench(t, defaultBenchOptions())
	srv, err := b.alice.d.serveMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + b.alice.d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "# TYPE cygnet_ike_sas gauge") {
		t.Errorf("GET /metrics: %s\n%s", resp.Status, body)
	}
}
