package control

import (
	"context"
	"errors"
)

// ProtocolVersion is the version of the control protocol this package speaks.
// Requests carry it; a server answers a request of another version with an
// error. Additions that an older peer may safely ignore (a new response field,
// a new command) do not change it.
const ProtocolVersion = 1

// Commands of the control protocol.
const (
	CmdUp     = "up"
	CmdDown   = "down"
	CmdStatus = "status"
	CmdReload = "reload"
	CmdRekey  = "rekey" // optional: Backends that implement Rekeyer
	// CmdUninstall removes trap policies (optional: Backends that
	// implement Uninstaller).
	CmdUninstall = "uninstall"
)

// maxRequestLine bounds one request line. Requests are a few names long; the
// bound keeps a confused client from making the daemon buffer without end.
const maxRequestLine = 64 << 10

// request is one line a client sends.
type request struct {
	Version    int    `json:"version"`
	Command    string `json:"command"`
	Connection string `json:"connection,omitempty"` // up, down, rekey, uninstall
	Child      string `json:"child,omitempty"`      // up, uninstall: one CHILD_SA, "": all of them; rekey: this CHILD_SA, "": the IKE SA
}

// response is one line the server sends. OK is false exactly when Error is
// set.
type response struct {
	Version int     `json:"version"`
	OK      bool    `json:"ok"`
	Error   string  `json:"error,omitempty"`
	Status  *Status `json:"status,omitempty"` // status
}

// Backend is what the daemon provides to the control server. Its methods are
// called concurrently, one goroutine per client connection.
//
// ctx is canceled when the client hangs up or the server is closed; a method
// must then return soon (Server.Close waits for it). An error's text is sent
// to the client as it is and shown to the operator as the one-line reason,
// so it should say why ("no proposal chosen: we offered ..., peer offered
// ..."), and it must not contain a secret.
type Backend interface {
	// Up initiates the connection conn: all its CHILD_SAs, or only child if
	// that is not empty. It blocks until they are established or the
	// attempt has failed (after the retransmission timeout at the latest).
	Up(ctx context.Context, conn, child string) error
	// Down deletes the IKE SAs of conn with their CHILD_SAs.
	Down(ctx context.Context, conn string) error
	// Status returns a snapshot of the SAs; the server does not keep or
	// modify it after encoding.
	Status(ctx context.Context) (*Status, error)
	// Reload re-reads the configuration; established SAs of unchanged
	// connections stay up.
	Reload(ctx context.Context) error
}

// Rekeyer is implemented by Backends that rekey on request (the rekey
// command); the server answers rekey with an error for the others.
type Rekeyer interface {
	// Rekey starts a rekey of the IKE SA of conn (child "") or of its
	// CHILD_SA child, as their rekey time would, and returns once it is
	// started, not when it completed.
	Rekey(ctx context.Context, conn, child string) error
}

// Uninstaller is implemented by Backends with trap policies (the uninstall
// command); the server answers uninstall with an error for the others.
type Uninstaller interface {
	// Uninstall removes the trap policies of conn's children (or of child
	// only), as `swanctl --uninstall` does; established SAs stay. Down
	// leaves trap policies in place, as `swanctl --terminate` does.
	Uninstall(ctx context.Context, conn, child string) error
}

// Error is an error the daemon reported for a request: the text of the
// Backend's error, or the server's reason for rejecting a request.
type Error struct {
	Message string
}

func (e *Error) Error() string { return e.Message }

// errClosed reports a request on a closed Client.
var errClosed = errors.New("control: client is closed")
