package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane/userspace"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/transport/memnet"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// A two-daemon test bench on a memnet network: "alice" at 192.0.2.1 and
// "bob" at 192.0.2.2, each a full runtime with the none data plane.

const testPSK = "a test secret that is long enough"

// peerConf describes one side's configuration for confYAML.
type peerConf struct {
	name, addr, peerName, peerAddr string
	proposals, espProposals        string // YAML flow lists
	psk                            string
	extraConns                     string // more connections, YAML, indented by 2
	startAction                    string
	keylog                         string
	socket                         string
	localTS, remoteTS              string
	moreLocalTS, moreRemoteTS      string
	encap                          bool
	dpdDelay                       string
	netChild                       string // more keys of child net, YAML lines at its level ("life_packets: 5")
	connExtra                      string // more keys of connection site, YAML lines at its level
}

func (p peerConf) yaml() string {
	if p.proposals == "" {
		p.proposals = "[aes256gcm16-prfsha256-x25519]"
	}
	if p.espProposals == "" {
		p.espProposals = "[aes256gcm16]"
	}
	if p.psk == "" {
		p.psk = testPSK
	}
	if p.dpdDelay == "" {
		p.dpdDelay = "0s"
	}
	if p.startAction == "" {
		p.startAction = "none"
	}
	if p.localTS == "" {
		p.localTS, p.remoteTS = "[10.1.0.0/16]", "[10.2.0.0/16]"
	}
	if p.moreLocalTS == "" {
		p.moreLocalTS, p.moreRemoteTS = "[10.3.0.0/16]", "[10.4.0.0/16]"
	}
	connExtra := ""
	if p.connExtra != "" {
		connExtra = "    " + p.connExtra + "\n"
	}
	netChild := ""
	if p.netChild != "" {
		netChild = "        " + p.netChild + "\n"
	}
	socket := ""
	if p.socket != "" {
		socket = fmt.Sprintf("  socket: %q\n", p.socket)
	}
	return fmt.Sprintf(`daemon:
  listen: [%[2]s]
%[11]s  dataplane: none
  keylog: %[10]q
  log: {level: debug}
secrets:
  - ids: [%[1]s.example, %[3]s.example, %[1]s2.example, %[3]s2.example]
    psk: %[5]q
  - psk: %[5]q # for the generated identities of some tests
connections:
  site:
    local_addrs: [%[2]s]
    remote_addrs: [%[4]s]
    proposals: %[6]s
    dpd_delay: %[17]s
    encap: %[16]v
%[19]s
    local: {auth: psk, id: %[1]s.example}
    remote: {auth: psk, id: %[3]s.example}
    children:
      net:
        local_ts: %[12]s
        remote_ts: %[13]s
        esp_proposals: %[7]s
        start_action: %[9]s
%[18]s
      more:
        local_ts: %[14]s
        remote_ts: %[15]s
        esp_proposals: %[7]s
%[8]s`, p.name, p.addr, p.peerName, p.peerAddr, p.psk, p.proposals, p.espProposals, p.extraConns, p.startAction, p.keylog, socket, p.localTS, p.remoteTS, p.moreLocalTS, p.moreRemoteTS, p.encap, p.dpdDelay, netChild, connExtra)
}

func parseConf(t testing.TB, dir, text string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "cygnet.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config:\n%s\n%v", text, err)
	}
	return cfg
}

// node is one running daemon of a bench.
type node struct {
	t    testing.TB
	name string
	d    *Daemon
	dp   *dataplane.None
	// With benchOptions.userspace: the data plane and the host's end of
	// its in-memory TUN device (write to send into the tunnel, read what
	// comes out).
	us     *userspace.Backend
	host   *tun.Mem
	dir    string
	cancel context.CancelFunc
	done   chan error
	logBuf *syncBuffer
}

type bench struct {
	t          testing.TB
	net        *memnet.Network
	alice, bob *node
}

type benchOptions struct {
	alice, bob peerConf
	retransmit sa.Retransmit
	faults     memnet.Faults
	noBob      bool // alice's peer does not exist
	// aliceDP, if set, wraps alice's data plane.
	aliceDP func(*dataplane.None) dataplane.Backend
	// userspace: both run the userspace data plane on in-memory TUN
	// devices, its ESP through memnet.
	userspace bool
}

func defaultBenchOptions() benchOptions {
	return benchOptions{
		alice: peerConf{name: "alice", addr: "192.0.2.1", peerName: "bob", peerAddr: "192.0.2.2"},
		bob: peerConf{name: "bob", addr: "192.0.2.2", peerName: "alice", peerAddr: "192.0.2.1",
			localTS: "[10.2.0.0/16]", remoteTS: "[10.1.0.0/16]", moreLocalTS: "[10.4.0.0/16]", moreRemoteTS: "[10.3.0.0/16]"},
		// Fast failure for the tests where a peer stays silent.
		retransmit: sa.Retransmit{Timeout: 200 * time.Millisecond, Base: 1.5, Tries: 3},
	}
}

func newBench(t testing.TB, o benchOptions) *bench {
	t.Helper()
	b := &bench{t: t, net: memnet.New(memnet.Config{Seed: 1, Faults: o.faults})}
	b.alice = b.start(o.alice, o.retransmit, o.aliceDP, o.userspace)
	if !o.noBob {
		b.bob = b.start(o.bob, o.retransmit, nil, o.userspace)
	}
	return b
}

func (b *bench) start(p peerConf, rt sa.Retransmit, wrap func(*dataplane.None) dataplane.Backend, us bool) *node {
	t := b.t
	t.Helper()
	dir := t.TempDir()
	cfg := parseConf(t, dir, p.yaml())
	n := &node{t: t, name: p.name, dir: dir, logBuf: new(syncBuffer)}
	var dp dataplane.Backend
	if us {
		dev, host := tun.NewMemPair(p.name, 1400, 256)
		u, err := userspace.New(userspace.Config{Device: dev, AcquireInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		n.us, n.host, dp = u, host, u
		t.Cleanup(func() { host.Close() })
	} else {
		n.dp = dataplane.NewNone(nil, nil)
		dp = n.dp
	}
	if wrap != nil {
		dp = wrap(n.dp)
	}
	log := slog.New(slog.NewTextHandler(n.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(cfg, Options{
		Listen: func(c transport.Config, h transport.Handler) (transport.Endpoint, error) {
			return b.net.Listen(c, h)
		},
		Dataplane:  dp,
		Logger:     log,
		Workers:    3,
		NoControl:  p.socket == "",
		Retransmit: rt,
		Rand:       rand.NewChaCha8([32]byte{byte(len(p.name)), 7}),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.d = d
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done = make(chan error, 1)
	go func() { n.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("log of %s:\n%s", n.name, n.logBuf.String())
		}
	})
	return n
}

// stop ends the daemon's Run and waits for it.
func (n *node) stop() {
	n.cancel()
	select {
	case err := <-n.done:
		if err != nil {
			n.t.Errorf("%s: Run: %v", n.name, err)
		}
		n.done <- nil // later stops return at once
	case <-time.After(30 * time.Second):
		n.t.Errorf("%s: Run did not return", n.name)
	}
}

func (n *node) status() *control.Status {
	n.t.Helper()
	st, err := n.d.Status(context.Background())
	if err != nil {
		n.t.Fatalf("%s: Status: %v", n.name, err)
	}
	return st
}

// waitStatus polls Status until pred holds (bounded).
func (n *node) waitStatus(what string, pred func(*control.Status) bool) *control.Status {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := n.status()
		if pred(st) {
			return st
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: timed out waiting for %s; status: %+v", n.name, what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (n *node) up(conn, child string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.d.Up(ctx, conn, child)
}

// noSAs is a waitStatus predicate.
func noSAs(st *control.Status) bool { return len(st.IKESAs) == 0 }

// established is a waitStatus predicate: conn has an ESTABLISHED IKE SA with
// the children INSTALLED.
func established(conn string, children ...string) func(*control.Status) bool {
	return func(st *control.Status) bool {
		for _, ike := range st.IKESAs {
			if ike.Connection != conn || ike.State != control.IKEEstablished {
				continue
			}
			ok := true
			for _, c := range children {
				found := false
				for _, ch := range ike.ChildSAs {
					found = found || ch.Name == c && ch.State == control.ChildInstalled
				}
				ok = ok && found
			}
			if ok {
				return true
			}
		}
		return false
	}
}

func findIKE(st *control.Status, conn string) (control.IKESA, bool) {
	for _, ike := range st.IKESAs {
		if ike.Connection == conn {
			return ike, true
		}
	}
	return control.IKESA{}, false
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
