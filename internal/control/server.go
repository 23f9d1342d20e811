package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Server serves the control API on a unix socket. Each client connection is
// served by one goroutine (plus one that reads ahead), which calls the
// Backend; requests on one connection are answered in order.
type Server struct {
	ln      *net.UnixListener
	path    string
	info    os.FileInfo // the socket file we created, to remove only our own
	backend Backend
	log     *slog.Logger

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[*net.UnixConn]struct{}
	closed bool
}

// Socket file and directory permissions: the socket lets whoever can connect
// bring tunnels up and down, so only the daemon's user may.
const (
	socketMode = 0o600
	dirMode    = 0o750
)

// Listen creates the unix socket at path and serves the control API on it
// until Close. It creates the socket's directory (mode 0750) if need be and
// replaces a stale socket file that no daemon listens on; it refuses to
// replace anything else, or a socket a daemon still answers on. The socket is
// created with mode 0600, and never exists at path with a wider mode. A nil
// log discards.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, info, err := listenUnix(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ln:      ln,
		path:    path,
		info:    info,
		backend: b,
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[*net.UnixConn]struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting connections, cancels the requests in progress (each
// client is sent the outcome, typically that the daemon is shutting down),
// waits for the Backend calls to return and removes the socket file (unless
// it is no longer ours).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel() // first: serve tells a closed listener from a failure by it
	err := s.ln.Close()
	now := time.Now()
	for c := range s.conns {
		// Stop the read-ahead; give the reply to a request in progress a
		// moment to go out.
		c.SetReadDeadline(now)
		c.SetWriteDeadline(now.Add(2 * time.Second))
	}
	s.mu.Unlock()
	s.wg.Wait()
	if fi, serr := os.Lstat(s.path); serr == nil && os.SameFile(fi, s.info) {
		if rerr := os.Remove(s.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

func (s *Server) serve() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than spin or give up on the socket.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("control: accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// line is one request line read off a connection, or the reason reading
// stopped early.
type line struct {
	data    []byte
	tooLong bool
}

func (s *Server) serveConn(c *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	// Read ahead in a goroutine, so that a client hanging up while its
	// request is in progress cancels the request (Ctrl-C on `cygnet up`).
	lines := make(chan line, 4)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(lines)
		sc := bufio.NewScanner(c)
		sc.Buffer(make([]byte, 0, 512), maxRequestLine)
		for sc.Scan() {
			if len(sc.Bytes()) == 0 {
				continue // blank lines are allowed between requests
			}
			select {
			case lines <- line{data: bytes.Clone(sc.Bytes())}:
			case <-ctx.Done():
				return
			}
		}
		switch err := sc.Err(); {
		case errors.Is(err, bufio.ErrTooLong):
			select {
			case lines <- line{tooLong: true}:
			case <-ctx.Done():
			}
		case err == nil && !peerHungUp(c):
			// The client shut down its sending side only (as socat does
			// at the end of its input): answer what it asked.
		default:
			cancel()
		}
	}()

	for l := range lines {
		if ctx.Err() != nil {
			return
		}
		var resp *response
		if l.tooLong {
			resp = errorResponse(fmt.Sprintf("control: request longer than %d bytes", maxRequestLine))
		} else {
			resp = s.handle(ctx, l.data)
		}
		if _, err := c.Write(encodeResponse(resp)); err != nil {
			s.log.Debug("control: cannot send reply", "err", err)
			return
		}
		if l.tooLong {
			return // the rest of the line is still unread: framing is lost
		}
	}
}

// encodeResponse encodes resp as one line. It writes the envelope of a
// status itself: encoding/json would re-scan the whole status, which is
// large with many SAs (see status.go).
func encodeResponse(resp *response) []byte {
	if resp.Status != nil {
		st, err := resp.Status.MarshalJSON()
		if err == nil {
			b := make([]byte, 0, len(st)+64)
			b = append(b, `{"version":`...)
			b = strconv.AppendInt(b, int64(resp.Version), 10)
			b = append(b, `,"ok":true,"status":`...)
			b = append(b, st...)
			return append(b, "}\n"...)
		}
		resp = errorResponse("control: cannot encode the status: " + err.Error())
	}
	b, err := marshalJSON(resp)
	if err != nil { // cannot happen: strings and bools
		b = []byte(`{"version":1,"ok":false,"error":"control: cannot encode the response"}`)
	}
	return append(b, '\n')
}

func errorResponse(msg string) *response {
	return &response{Version: ProtocolVersion, Error: msg}
}

// handle decodes and answers one request.
func (s *Server) handle(ctx context.Context, data []byte) *response {
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		return errorResponse("control: malformed request: " + jsonErrorText(err))
	}
	switch {
	case req.Version == 0:
		return errorResponse(fmt.Sprintf(`control: request has no "version" (this daemon speaks version %d)`, ProtocolVersion))
	case req.Version != ProtocolVersion:
		return errorResponse(fmt.Sprintf("control: unsupported protocol version %d (this daemon speaks version %d)", req.Version, ProtocolVersion))
	}

	var (
		err    error
		status *Status
		level  = slog.LevelInfo // operator actions are worth a line in the log
	)
	switch req.Command {
	case CmdUp:
		if req.Connection == "" {
			return errorResponse(`control: up: missing "connection"`)
		}
		err = s.backend.Up(ctx, req.Connection, req.Child)
	case CmdDown:
		if req.Connection == "" {
			return errorResponse(`control: down: missing "connection"`)
		}
		if req.Child != "" {
			return errorResponse(`control: down: "child" is not supported: down deletes whole IKE SAs`)
		}
		err = s.backend.Down(ctx, req.Connection)
	case CmdStatus:
		level = slog.LevelDebug
		status, err = s.backend.Status(ctx)
		if err == nil && status == nil {
			status = &Status{}
		}
	case CmdReload:
		err = s.backend.Reload(ctx)
	case CmdRekey:
		if req.Connection == "" {
			return errorResponse(`control: rekey: missing "connection"`)
		}
		r, ok := s.backend.(Rekeyer)
		if !ok {
			return errorResponse("control: rekey is not supported by this daemon")
		}
		err = r.Rekey(ctx, req.Connection, req.Child)
	case CmdUninstall:
		if req.Connection == "" {
			return errorResponse(`control: uninstall: missing "connection"`)
		}
		u, ok := s.backend.(Uninstaller)
		if !ok {
			return errorResponse("control: uninstall is not supported by this daemon")
		}
		err = u.Uninstall(ctx, req.Connection, req.Child)
	case "":
		return errorResponse(`control: request has no "command"`)
	default:
		return errorResponse(fmt.Sprintf("control: unknown command %q", req.Command))
	}
	if err != nil {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "control: request", "command", req.Command,
		"connection", req.Connection, "child", req.Child, "err", errText(err))
	if err != nil {
		if errors.Is(err, context.Canceled) && s.ctx.Err() != nil {
			return errorResponse("control: the daemon is shutting down")
		}
		return errorResponse(err.Error())
	}
	return &response{Version: ProtocolVersion, OK: true, Status: status}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// jsonErrorText shortens encoding/json's errors, which name Go types that
// mean nothing to a script author.
func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "a request is a JSON object"
		}
		return fmt.Sprintf("%q must be a JSON %s", te.Field, jsonKind(te.Type.Kind().String()))
	}
	return err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int":
		return "number"
	default:
		return goKind
	}
}

// listenUnix creates the listening socket at path with mode socketMode. It
// binds in a fresh private directory beside path, sets the mode and renames
// the socket into place, so that nobody can connect in the moment between
// bind and chmod.
func listenUnix(path string) (*net.UnixListener, os.FileInfo, error) {
	if path == "" {
		return nil, nil, errors.New("control: empty socket path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, nil, fmt.Errorf("control: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, nil, err
	}

	tmpDir, err := os.MkdirTemp(dir, ".cygnet-")
	if err != nil {
		return nil, nil, fmt.Errorf("control: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	bindPath := filepath.Join(tmpDir, "s")
	if len(bindPath) >= len(syscall.RawSockaddrUnix{}.Path) {
		// No room for the detour: bind in place and narrow the mode
		// right away (the directory is 0750 if we created it).
		bindPath = path
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bindPath, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("control: %w", err)
	}
	ln.SetUnlinkOnClose(false) // Close removes path, which the listener does not know
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		ln.Close()
		os.Remove(bindPath)
		return nil, nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(bindPath, socketMode); err != nil {
		return fail(err)
	}
	if bindPath != path {
		if err := os.Rename(bindPath, path); err != nil {
			return fail(err)
		}
		bindPath = path
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, info, nil
}

// removeStale removes a socket file at path that nobody listens on, left
// behind by a daemon that did not exit cleanly.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control: %s exists and is not a socket; not replacing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control: %s: another daemon is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control: %s exists and cannot be checked: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control: removing stale socket: %w", err)
	}
	return nil
}
