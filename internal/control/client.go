package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sync"
	"syscall"
)

// Client is a connection to the daemon's control socket. Its methods may be
// called from several goroutines; requests go out one at a time. A request
// whose context is canceled closes the connection, which cancels the
// request in the daemon too; later requests fail.
type Client struct {
	mu     sync.Mutex
	conn   net.Conn
	dec    *json.Decoder
	broken error // set once the connection cannot carry another request
}

// DialError is the error of Dial when the daemon cannot be reached.
type DialError struct {
	Path string
	Err  error
}

func (e *DialError) Error() string {
	return "control: cannot reach the daemon at " + e.Path + ": " + e.Reason()
}

// Reason says in a few words why the daemon cannot be reached, for the
// operator.
func (e *DialError) Reason() string {
	if errors.Is(e.Err, fs.ErrPermission) {
		return "permission denied"
	}
	return "is it running?"
}

func (e *DialError) Unwrap() error { return e.Err }

// Dial connects to the control socket at path.
func Dial(path string) (*Client, error) {
	return DialContext(context.Background(), path)
}

// DialContext connects to the control socket at path.
func DialContext(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &DialError{Path: path, Err: unwrapOpError(err)}
	}
	return &Client{conn: conn, dec: json.NewDecoder(conn)}, nil
}

// unwrapOpError digs the errno out of a *net.OpError (connect: no such file
// or directory), which repeats the path.
func unwrapOpError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = errClosed
	}
	return c.conn.Close()
}

// Up initiates the connection conn (all its CHILD_SAs, or only child) and
// waits until it is established or has failed; the error of a failure is an
// *Error with the daemon's reason. There is no timeout but ctx's.
func (c *Client) Up(ctx context.Context, conn, child string) error {
	_, err := c.roundTrip(ctx, &request{Command: CmdUp, Connection: conn, Child: child})
	return err
}

// Down deletes the IKE SAs of conn and their CHILD_SAs.
func (c *Client) Down(ctx context.Context, conn string) error {
	_, err := c.roundTrip(ctx, &request{Command: CmdDown, Connection: conn})
	return err
}

// Status returns a snapshot of the daemon's SAs.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	raw, err := c.StatusJSON(ctx)
	if err != nil {
		return nil, err
	}
	st := new(Status)
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("control: malformed status: %w", err)
	}
	return st, nil
}

// StatusJSON returns the daemon's status as the JSON object it sent, with
// any fields this package does not know (from a newer daemon).
func (c *Client) StatusJSON(ctx context.Context) (json.RawMessage, error) {
	resp, err := c.roundTrip(ctx, &request{Command: CmdStatus})
	if err != nil {
		return nil, err
	}
	if len(resp.Status) == 0 || resp.Status[0] != '{' {
		return nil, errors.New("control: malformed response: no status object")
	}
	return resp.Status, nil
}

// Rekey starts a rekey of conn's IKE SA (child "") or of its CHILD_SA
// child; it returns once the daemon started it.
func (c *Client) Rekey(ctx context.Context, conn, child string) error {
	_, err := c.roundTrip(ctx, &request{Command: CmdRekey, Connection: conn, Child: child})
	return err
}

// Uninstall removes the trap policies of conn's children, or of child only
// (the uninstall command); established SAs stay.
func (c *Client) Uninstall(ctx context.Context, conn, child string) error {
	_, err := c.roundTrip(ctx, &request{Command: CmdUninstall, Connection: conn, Child: child})
	return err
}

// Reload makes the daemon re-read its configuration.
func (c *Client) Reload(ctx context.Context) error {
	_, err := c.roundTrip(ctx, &request{Command: CmdReload})
	return err
}

// clientResponse is a response as the client decodes it: the status stays
// raw until asked for.
type clientResponse struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error"`
	Status json.RawMessage `json:"status"`
}

func (c *Client) roundTrip(ctx context.Context, req *request) (*clientResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req.Version = ProtocolVersion
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	b = append(b, '\n')

	// Closing the connection both unblocks us and tells the daemon to
	// give up on the request.
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	var resp clientResponse
	if _, err = c.conn.Write(b); err == nil {
		err = c.dec.Decode(&resp)
	}
	if !stop() {
		c.broken = ctx.Err()
		if err != nil {
			return nil, ctx.Err()
		}
		// The answer beat the cancellation: use it.
	} else if err != nil {
		c.broken = errors.New("control: connection to the daemon is broken")
		c.conn.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("control: the daemon closed the connection")
		}
		return nil, fmt.Errorf("control: %w", err)
	}
	switch {
	case resp.Error != "":
		return nil, &Error{Message: resp.Error}
	case !resp.OK:
		return nil, errors.New("control: malformed response: neither ok nor an error")
	}
	return &resp, nil
}
