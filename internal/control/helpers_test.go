package control

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeBackend records calls; by default every operation succeeds at once.
type fakeBackend struct {
	mu     sync.Mutex
	calls  []string
	status *Status

	// Hooks replace the default behaviour when set.
	up     func(ctx context.Context, conn, child string) error
	down   func(ctx context.Context, conn string) error
	reload func(ctx context.Context) error
}

// Rekey makes fakeBackend a Rekeyer.
func (b *fakeBackend) Rekey(ctx context.Context, conn, child string) error {
	b.record("rekey %s %s", conn, child)
	return knownConn(conn)
}

// Uninstall makes fakeBackend an Uninstaller.
func (b *fakeBackend) Uninstall(ctx context.Context, conn, child string) error {
	b.record("uninstall %s %s", conn, child)
	return knownConn(conn)
}

// plainBackend hides fakeBackend's Rekey and Uninstall: a daemon without the command.
type plainBackend struct{ Backend }

func (b *fakeBackend) record(format string, args ...any) {
	b.mu.Lock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
	b.mu.Unlock()
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *fakeBackend) Up(ctx context.Context, conn, child string) error {
	b.record("up %s %s", conn, child)
	if b.up != nil {
		return b.up(ctx, conn, child)
	}
	return knownConn(conn)
}

func (b *fakeBackend) Down(ctx context.Context, conn string) error {
	b.record("down %s", conn)
	if b.down != nil {
		return b.down(ctx, conn)
	}
	return knownConn(conn)
}

func (b *fakeBackend) Status(ctx context.Context) (*Status, error) {
	b.record("status")
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status, nil
}

func (b *fakeBackend) Reload(ctx context.Context) error {
	b.record("reload")
	if b.reload != nil {
		return b.reload(ctx)
	}
	return nil
}

func knownConn(conn string) error {
	if conn != "site" {
		return fmt.Errorf("unknown connection %q", conn)
	}
	return nil
}

// startServer serves b on a socket in a fresh temporary directory.
func startServer(t testing.TB, b Backend) *Server {
	t.Helper()
	s, err := Listen(filepath.Join(t.TempDir(), "run", "cygnet.sock"), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t testing.TB, s *Server) *Client {
	t.Helper()
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// contractStatus is the Status of CONTRACT.md's example
// (testdata/contract-status.json).
func contractStatus() *Status {
	return &Status{IKESAs: []IKESA{{
		Connection: "site", State: IKEEstablished, Initiator: true,
		Local: "192.0.2.1:4500", Remote: "192.0.2.2:4500",
		LocalID: "gw-a.example", RemoteID: "gw-b.example",
		SPIi: FormatIKESPI(0x0123456789abcdef), SPIr: FormatIKESPI(0xfedcba9876543210),
		Proposal:      "aes256gcm16-prfsha256-x25519",
		EstablishedAt: time.Date(2026, 11, 27, 11, 0, 0, 0, time.FixedZone("CET", 3600)),
		ChildSAs: []ChildSA{{
			Name: "net", State: ChildInstalled, Mode: "tunnel", Encap: true,
			SPIIn: FormatChildSPI(0xc1a2b3c4), SPIOut: FormatChildSPI(0xc5d6e7f8),
			Proposal: "aes256gcm16",
			LocalTS:  []string{"10.1.0.0/16"}, RemoteTS: []string{"10.2.0.0/16"},
		}},
	}}}
}

// gate lets a test hold a Backend call until it says so.
type gate struct {
	started chan struct{} // receives a value when a call begins
	release chan error    // the call returns what is sent here
}

func newGate() *gate {
	return &gate{started: make(chan struct{}, 16), release: make(chan error)}
}

// wait is the Backend side: it reports the start and blocks until released
// or canceled.
func (g *gate) wait(ctx context.Context) error {
	g.started <- struct{}{}
	select {
	case err := <-g.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

var errNoProposal = errors.New("no proposal chosen: we offered aes256gcm16-prfsha256-x25519, peer offered aes128-sha1-modp1024")
