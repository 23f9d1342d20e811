package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

// FuzzRequest sends arbitrary bytes on the socket: the server answers every
// line with a well-formed response (or closes the connection), and never
// panics.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		`{"version":1,"command":"status"}`,
		`{"version":1,"command":"up","connection":"site"}`,
		`{"version":1,"command":"up","connection":"site","child":"net"}`,
		`{"version":1,"command":"down","connection":"site"}`,
		`{"version":1,"command":"reload"}`,
		`{"version":1,"command":"rekey","connection":"site","child":"net"}`,
		`{"version":1,"command":"uninstall","connection":"site"}`,
		`{"version":1,"command":"status"}` + "\n" + `{"version":1,"command":"reload"}` + "\n",
		`{"version":2}`,
		"\x00\xff{\n\n[]\n",
		`{"version":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	b := &fakeBackend{status: contractStatus()}
	s := startServer(f, b)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzBody(t, s, data) })
	b.mu.Lock()
	b.calls = nil // unbounded otherwise
	b.mu.Unlock()
}

func fuzzBody(t *testing.T, s *Server, data []byte) {
	{
		// The request handler on its own, line by line...
		for line := range splitLines(data) {
			checkResponse(t, encodeResponse(s.handle(context.Background(), line)))
		}
		// ... and the whole server.
		conn, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() {
			conn.Write(data)
			conn.(*net.UnixConn).CloseWrite()
		}()
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
				// The server closed the connection: at the end, or
				// after a line too long to find the next one (with
				// the rest of the input unread: hence the reset).
				break
			}
			if err != nil {
				t.Fatalf("reading replies: %v (after %q) input len %d %q", err, line, len(data), data[:min(len(data), 200)])
			}
			checkResponse(t, line)
		}
	}
}

func splitLines(data []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, maxRequestLine)
		for sc.Scan() {
			if len(sc.Bytes()) > 0 && !yield(sc.Bytes()) {
				return
			}
		}
	}
}

func checkResponse(t *testing.T, line []byte) {
	t.Helper()
	var resp struct {
		Version *int            `json:"version"`
		OK      *bool           `json:"ok"`
		Error   string          `json:"error"`
		Status  json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("reply is not JSON: %v: %q", err, line)
	}
	if resp.Version == nil || *resp.Version != ProtocolVersion || resp.OK == nil || *resp.OK == (resp.Error != "") {
		t.Fatalf("malformed reply %q", line)
	}
	if line[len(line)-1] != '\n' {
		t.Fatalf("reply without newline: %q", line)
	}
}
