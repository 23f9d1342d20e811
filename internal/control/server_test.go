package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	b := &fakeBackend{status: contractStatus()}
	s := startServer(t, b)
	c := dial(t, s)
	ctx := context.Background()

	if err := c.Up(ctx, "site", ""); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if err := c.Up(ctx, "site", "net"); err != nil {
		t.Fatalf("Up child: %v", err)
	}
	if err := c.Down(ctx, "site"); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := c.Rekey(ctx, "site", "net"); err != nil {
		t.Fatalf("Rekey: %v", err)
	}
	if err := c.Uninstall(ctx, "site", ""); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	want := contractStatus()
	want.IKESAs[0].EstablishedAt = want.IKESAs[0].EstablishedAt.UTC()
	if got, _ := json.Marshal(st); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("Status = %s\nwant %s", got, must(json.Marshal(want)))
	}
	wantCalls := []string{"up site ", "up site net", "down site", "reload", "rekey site net", "uninstall site ", "status"}
	if got := b.Calls(); !slices.Equal(got, wantCalls) {
		t.Errorf("calls = %q, want %q", got, wantCalls)
	}

	// The backend's error text reaches the client as it is.
	err = c.Down(ctx, "nope")
	var e *Error
	if !errors.As(err, &e) || e.Message != `unknown connection "nope"` {
		t.Errorf("Down(nope) = %#v", err)
	}
	// ... and the connection stays usable.
	if err := c.Reload(ctx); err != nil {
		t.Errorf("Reload after an error: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestUpBlocks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		result error
	}{
		{"succeeds", nil},
		{"fails", errNoProposal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			b := &fakeBackend{up: func(ctx context.Context, _, _ string) error { return g.wait(ctx) }}
			c := dial(t, startServer(t, b))
			done := make(chan error, 1)
			go func() { done <- c.Up(context.Background(), "site", "") }()

			waitFor(t, g.started, "Up to reach the backend")
			select {
			case err := <-done:
				t.Fatalf("Up returned before the backend did: %v", err)
			default:
			}
			g.release <- tc.result
			err := <-done
			if tc.result == nil {
				if err != nil {
					t.Fatalf("Up = %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Message != tc.result.Error() {
				t.Fatalf("Up = %v, want %q", err, tc.result)
			}
		})
	}
}

// A client that gives up (Ctrl-C, --timeout) cancels the daemon's attempt.
func TestUpCanceledByClient(t *testing.T) {
	canceled := make(chan struct{})
	started := make(chan struct{})
	b := &fakeBackend{up: func(ctx context.Context, _, _ string) error {
		close(started)
		<-ctx.Done()
		close(canceled)
		return ctx.Err()
	}}
	c := dial(t, startServer(t, b))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Up(ctx, "site", "") }()
	waitFor(t, started, "Up to reach the backend")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Up = %v, want context.Canceled", err)
	}
	waitFor(t, canceled, "the backend's context to be canceled")
	if err := c.Reload(context.Background()); err == nil {
		t.Error("a request on a client whose request was canceled succeeded")
	}
}

// A client that shuts down only its sending side (socat at the end of its
// input) still gets its answers.
func TestHalfClose(t *testing.T) {
	g := newGate()
	b := &fakeBackend{
		status: contractStatus(),
		up:     func(ctx context.Context, _, _ string) error { return g.wait(ctx) },
	}
	s := startServer(t, b)
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, `{"version":1,"command":"status"}`+"\n"+`{"version":1,"command":"up","connection":"site"}`)
	conn.(*net.UnixConn).CloseWrite()
	waitFor(t, g.started, "Up to reach the backend")
	g.release <- nil

	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"version":1,"ok":true,"status":{"ike_sas":[{`) ||
		lines[1] != `{"version":1,"ok":true}` {
		t.Errorf("replies:\n%s", out)
	}
}

func TestPeerHungUp(t *testing.T) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, full := range []bool{false, true} {
		client, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
		if err != nil {
			t.Fatal(err)
		}
		server, err := ln.AcceptUnix()
		if err != nil {
			t.Fatal(err)
		}
		if full {
			client.Close()
		} else {
			client.CloseWrite()
		}
		if n, err := server.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("Read = %d, %v; want EOF", n, err)
		}
		if got := peerHungUp(server); got != full {
			t.Errorf("closed fully: %v: peerHungUp = %v", full, got)
		}
		client.Close()
		server.Close()
	}
}

func TestConcurrentClients(t *testing.T) {
	const n = 16
	// Every Up waits until all n have started: the test finishes only if
	// the server serves the clients concurrently.
	var (
		mu      sync.Mutex
		started int
		all     = make(chan struct{})
	)
	b := &fakeBackend{status: contractStatus(), up: func(ctx context.Context, _, _ string) error {
		mu.Lock()
		started++
		if started == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	s := startServer(t, b)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			c, err := Dial(s.Path())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := c.Up(context.Background(), "site", ""); err != nil {
				errs <- err
			}
			if _, err := c.Status(context.Background()); err != nil {
				errs <- err
			}
		})
	}
	// Meanwhile one client shares its connection between goroutines.
	shared := dial(t, s)
	for range n {
		wg.Go(func() {
			if _, err := shared.Status(context.Background()); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// rawExchange sends lines on a fresh connection, shuts down the sending side
// and returns the reply lines.
func rawExchange(t *testing.T, s *Server, input string) []string {
	t.Helper()
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		io.WriteString(conn, input)
		conn.(*net.UnixConn).CloseWrite()
	}()
	var lines []string
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func TestMalformedRequests(t *testing.T) {
	s := startServer(t, &fakeBackend{})
	for _, tc := range []struct{ in, want string }{
		{`hello`, `{"version":1,"ok":false,"error":"control: malformed request: invalid character 'h' looking for beginning of value"}`},
		{`{"version":1,"command":"status"`, `{"version":1,"ok":false,"error":"control: malformed request: unexpected end of JSON input"}`},
		{`{"version":1,"command":"status"} {}`, `{"version":1,"ok":false,"error":"control: malformed request: invalid character '{' after top-level value"}`},
		{`[1,2]`, `{"version":1,"ok":false,"error":"control: malformed request: a request is a JSON object"}`},
		{`null`, `{"version":1,"ok":false,"error":"control: request has no \"version\" (this daemon speaks version 1)"}`},
		{`{"command":"status"}`, `{"version":1,"ok":false,"error":"control: request has no \"version\" (this daemon speaks version 1)"}`},
		{`{"version":"1","command":"status"}`, `{"version":1,"ok":false,"error":"control: malformed request: \"version\" must be a JSON number"}`},
		{`{"version":2,"command":"status"}`, `{"version":1,"ok":false,"error":"control: unsupported protocol version 2 (this daemon speaks version 1)"}`},
		{`{"version":1}`, `{"version":1,"ok":false,"error":"control: request has no \"command\""}`},
		{`{"version":1,"command":"fly"}`, `{"version":1,"ok":false,"error":"control: unknown command \"fly\""}`},
		{`{"version":1,"command":"up"}`, `{"version":1,"ok":false,"error":"control: up: missing \"connection\""}`},
		{`{"version":1,"command":"down","connection":""}`, `{"version":1,"ok":false,"error":"control: down: missing \"connection\""}`},
		{`{"version":1,"command":"down","connection":"site","child":"net"}`, `{"version":1,"ok":false,"error":"control: down: \"child\" is not supported: down deletes whole IKE SAs"}`},
		{`{"version":1,"command":"up","connection":"nope"}`, `{"version":1,"ok":false,"error":"unknown connection \"nope\""}`},
		{`{"version":1,"command":"rekey"}`, `{"version":1,"ok":false,"error":"control: rekey: missing \"connection\""}`},
		{`{"version":1,"command":"rekey","connection":"site"}`, `{"version":1,"ok":true}`},
		{`{"version":1,"command":"uninstall"}`, `{"version":1,"ok":false,"error":"control: uninstall: missing \"connection\""}`},
		{`{"version":1,"command":"uninstall","connection":"site","child":"net"}`, `{"version":1,"ok":true}`},
		{`{"version":1,"command":"uninstall","connection":"nope"}`, `{"version":1,"ok":false,"error":"unknown connection \"nope\""}`},
		// Unknown fields are ignored (forward compatibility).
		{`{"version":1,"command":"reload","force":true}`, `{"version":1,"ok":true}`},
	} {
		// The connection survives a bad request: a good one follows.
		got := rawExchange(t, s, tc.in+"\n"+`{"version":1,"command":"reload"}`+"\n")
		want := []string{tc.want, `{"version":1,"ok":true}`}
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.in, got, want)
		}
	}
}

func TestBlankLinesAndCRLF(t *testing.T) {
	s := startServer(t, &fakeBackend{})
	got := rawExchange(t, s, "\n\r\n"+`{"version":1,"command":"reload"}`+"\r\n\n"+`{"version":1,"command":"reload"}`)
	want := []string{`{"version":1,"ok":true}`, `{"version":1,"ok":true}`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRequestTooLong(t *testing.T) {
	s := startServer(t, &fakeBackend{})
	long := `{"version":1,"command":"status","x":"` + strings.Repeat("a", maxRequestLine) + `"}` + "\n"
	got := rawExchange(t, s, long+`{"version":1,"command":"reload"}`+"\n")
	want := []string{`{"version":1,"ok":false,"error":"control: request longer than 65536 bytes"}`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNilStatus(t *testing.T) {
	s := startServer(t, &fakeBackend{}) // status nil
	got := rawExchange(t, s, `{"version":1,"command":"status"}`)
	want := []string{`{"version":1,"ok":true,"status":{"ike_sas":[]}}`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSocketPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "cygnet.sock")
	s, err := Listen(path, &fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&^0o750 != 0 {
		t.Errorf("directory mode = %v, want at most 0750", perm)
	}
	// Nothing is left beside the socket (the private bind directory).
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the socket", len(ents))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cygnet.sock")
	// A daemon that died: its socket file is left, nobody listens.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal("stale socket not left behind:", err)
	}

	s, err := Listen(path, &fakeBackend{}, nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer s.Close()
	if err := dial(t, s).Reload(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A live daemon's socket is not taken over.
	if s2, err := Listen(path, &fakeBackend{}, nil); err == nil {
		s2.Close()
		t.Fatal("Listen took over a live socket")
	} else if !strings.Contains(err.Error(), "another daemon is listening") {
		t.Errorf("Listen over a live socket: %v", err)
	}
	if err := dial(t, s).Reload(context.Background()); err != nil {
		t.Errorf("first server broken by the second Listen: %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cygnet.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Listen(path, &fakeBackend{}, nil); err == nil {
		s.Close()
		t.Fatal("Listen replaced a regular file")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("file changed: %q, %v", b, err)
	}
}

// Close leaves alone a socket file that another daemon has put in place.
func TestCloseKeepsForeignSocket(t *testing.T) {
	s := startServer(t, &fakeBackend{})
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.Path()); err != nil {
		t.Errorf("Close removed a file it did not create: %v", err)
	}
}

// Close cancels a request in progress and tells the client why.
func TestCloseDuringUp(t *testing.T) {
	g := newGate()
	b := &fakeBackend{up: func(ctx context.Context, _, _ string) error { return g.wait(ctx) }}
	s := startServer(t, b)
	c := dial(t, s)
	done := make(chan error, 1)
	go func() { done <- c.Up(context.Background(), "site", "") }()
	waitFor(t, g.started, "Up to reach the backend")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := <-done; !errors.As(err, &e) || e.Message != "control: the daemon is shutting down" {
		t.Errorf("Up = %v", err)
	}
	if _, err := Dial(s.Path()); err == nil {
		t.Error("Dial after Close succeeded")
	}
}

func TestDialErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "none.sock")
	_, err := Dial(path)
	var de *DialError
	if !errors.As(err, &de) || de.Path != path || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Dial = %#v", err)
	}
	if got, want := err.Error(), "control: cannot reach the daemon at "+path+": is it running?"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	if de := (&DialError{Path: "/x", Err: syscall.EACCES}); de.Reason() != "permission denied" {
		t.Errorf("EACCES reason = %q", de.Reason())
	}
}

// The client rejects replies that do not follow the protocol.
func TestClientBadReplies(t *testing.T) {
	for _, tc := range []struct {
		reply string // "" closes the connection without a reply
		want  string
	}{
		{"", "control: the daemon closed the connection"},
		{`{"version":1}` + "\n", "control: malformed response: neither ok nor an error"},
		{`{"version":1,"ok":true}` + "\n", "control: malformed response: no status object"},
		{`{"version":1,"ok":true,"status":[]}` + "\n", "control: malformed response: no status object"},
		{`{"version":1,"ok":true,"status":{"ike_sas":{}}}` + "\n", "control: malformed status: "},
		{"garbage\n", "control: invalid character 'g' looking for beginning of value"},
	} {
		path := filepath.Join(t.TempDir(), "s")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, tc.reply)
			c.Close()
		}()
		c, err := Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(context.Background())
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("reply %q: err = %v, want %q", tc.reply, err, tc.want)
		}
		if tc.reply == "" || tc.reply == "garbage\n" {
			if err := c.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "broken") {
				t.Errorf("reply %q: next request: %v", tc.reply, err)
			}
		}
		c.Close()
		if err := c.Reload(context.Background()); err == nil {
			t.Error("request on a closed client succeeded")
		}
		ln.Close()
	}
}

// A Backend without Rekey or Uninstall gets an error for the command, not
// a crash.
func TestRekeyNotSupported(t *testing.T) {
	s := startServer(t, plainBackend{&fakeBackend{}})
	got := rawExchange(t, s, `{"version":1,"command":"rekey","connection":"site"}`+"\n"+
		`{"version":1,"command":"uninstall","connection":"site"}`+"\n")
	want := []string{`{"version":1,"ok":false,"error":"control: rekey is not supported by this daemon"}`,
		`{"version":1,"ok":false,"error":"control: uninstall is not supported by this daemon"}`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
