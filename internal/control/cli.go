package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/config"
)

// CLICommands are the subcommands of cygnet that RunCLI implements.
var CLICommands = []string{CmdUp, CmdDown, CmdStatus, CmdReload, CmdRekey, CmdUninstall}

// CLIUsage describes RunCLI's command line, for cygnet's help text.
const CLIUsage = `cygnet [-s SOCK] [-c FILE] up CONN [CHILD] [--timeout DURATION]
cygnet [-s SOCK] [-c FILE] down CONN
cygnet [-s SOCK] [-c FILE] status [--json]
cygnet [-s SOCK] [-c FILE] reload
cygnet [-s SOCK] [-c FILE] rekey CONN [CHILD]
cygnet [-s SOCK] [-c FILE] uninstall CONN [CHILD]

  -s, --socket SOCK    the daemon's control socket (default: $CYGNET_SOCKET, else the
                       socket of the configuration file, else ` + config.DefaultSocket + `)
  -c, --config FILE    read the socket path from FILE (default ` + config.DefaultPath + `)
  --timeout DURATION   up: give up waiting after DURATION (default: wait for the daemon)
  --json               status: print the status JSON instead of a table
`

// Exit codes of RunCLI.
const (
	ExitOK          = 0
	ExitFailed      = 1   // the daemon reported a failure or cannot be reached
	ExitUsage       = 2   // bad command line
	ExitInterrupted = 130 // SIGINT or SIGTERM while waiting (128 + SIGINT, as shells do)
)

// IsCLICommand reports whether the command in args, the command line
// without the program name, is one RunCLI implements; the global flags
// RunCLI takes (-s SOCK, -c FILE) may come before it.
func IsCLICommand(args []string) bool {
	fs, _ := newFlagSet()
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		return false
	}
	return slices.Contains(CLICommands, fs.Arg(0))
}

// RunCLI runs one of cygnet's control subcommands (CLICommands) and returns
// the process's exit code: args is the command line without the program
// name, e.g. ["-s", "/run/cygnet/cygnet.sock", "up", "site"]. Results go to
// stdout; errors go to stderr, each line starting with "cygnet: ". SIGINT
// and SIGTERM stop the wait (and, for up, the daemon's attempt).
func RunCLI(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{
		stdout:        stdout,
		stderr:        stderr,
		getenv:        os.Getenv,
		defaultConfig: config.DefaultPath,
		now:           time.Now,
	}
	return c.run(ctx, args)
}

// cli holds what RunCLI takes from the process, so that tests can replace it.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	defaultConfig  string
	now            func() time.Time
	timeout        time.Duration // up --timeout, for the message
}

type cliFlags struct {
	socket, config string
	json           bool
	timeout        time.Duration
}

func newFlagSet() (*flag.FlagSet, *cliFlags) {
	f := new(cliFlags)
	fs := flag.NewFlagSet("cygnet", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.socket, "s", "", "")
	fs.StringVar(&f.socket, "socket", "", "")
	fs.StringVar(&f.config, "c", "", "")
	fs.StringVar(&f.config, "config", "", "")
	fs.BoolVar(&f.json, "json", false, "")
	fs.DurationVar(&f.timeout, "timeout", 0, "")
	return fs, f
}

// parseArgs parses flags anywhere on the command line (cygnet status --json
// and cygnet --json status alike) and returns the other arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (c *cli) run(ctx context.Context, args []string) int {
	fs, f := newFlagSet()
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		io.WriteString(c.stdout, "usage:\n"+indent(CLIUsage))
		return ExitOK
	}
	if err != nil {
		return c.usage(err.Error())
	}
	if msg := checkArgs(fs, pos); msg != "" {
		return c.usage(msg)
	}
	cmd := pos[0]

	path, err := c.socketPath(f)
	if err != nil {
		c.printErr(err)
		return ExitFailed
	}

	if cmd == CmdUp && f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, f.timeout, errTimeout)
		defer cancel()
		c.timeout = f.timeout
	}
	client, err := DialContext(ctx, path)
	if err != nil {
		return c.fail(ctx, cmd, err)
	}
	defer client.Close()

	switch cmd {
	case CmdUp:
		conn, child, what := connChild(pos)
		if err := client.Up(ctx, conn, child); err != nil {
			return c.fail(ctx, cmd, err)
		}
		fmt.Fprintf(c.stdout, "%s: established\n", printable(what))
	case CmdDown:
		if err := client.Down(ctx, pos[1]); err != nil {
			return c.fail(ctx, cmd, err)
		}
		fmt.Fprintf(c.stdout, "%s: deleted\n", printable(pos[1]))
	case CmdStatus:
		if f.json {
			raw, err := client.StatusJSON(ctx)
			if err != nil {
				return c.fail(ctx, cmd, err)
			}
			var b bytes.Buffer
			if err := json.Indent(&b, raw, "", "  "); err != nil {
				return c.fail(ctx, cmd, fmt.Errorf("control: malformed status: %w", err))
			}
			b.WriteByte('\n')
			c.stdout.Write(b.Bytes())
			break
		}
		st, err := client.Status(ctx)
		if err != nil {
			return c.fail(ctx, cmd, err)
		}
		WriteTable(c.stdout, st, c.now())
	case CmdReload:
		if err := client.Reload(ctx); err != nil {
			return c.fail(ctx, cmd, err)
		}
		io.WriteString(c.stdout, "configuration reloaded\n")
	case CmdRekey:
		conn, child, what := connChild(pos)
		if err := client.Rekey(ctx, conn, child); err != nil {
			return c.fail(ctx, cmd, err)
		}
		fmt.Fprintf(c.stdout, "%s: rekeying\n", printable(what))
	case CmdUninstall:
		conn, child, what := connChild(pos)
		if err := client.Uninstall(ctx, conn, child); err != nil {
			return c.fail(ctx, cmd, err)
		}
		fmt.Fprintf(c.stdout, "%s: trap policies removed\n", printable(what))
	}
	return ExitOK
}

// connChild reads the CONN [CHILD] arguments of pos (command first) and
// names them for the output: "site" or "site/net".
func connChild(pos []string) (conn, child, what string) {
	conn, what = pos[1], pos[1]
	if len(pos) == 3 {
		child = pos[2]
		what += "/" + child
	}
	return conn, child, what
}

var errTimeout = errors.New("timeout")

// checkArgs checks the command and its arguments; it returns what is wrong.
func checkArgs(fs *flag.FlagSet, pos []string) string {
	if len(pos) == 0 {
		return "missing command (" + strings.Join(CLICommands, ", ") + ")"
	}
	cmd := pos[0]
	var bad string
	fs.Visit(func(fl *flag.Flag) {
		switch {
		case fl.Name == "json" && cmd != CmdStatus:
			bad = "--json is only for status"
		case fl.Name == "timeout" && cmd != CmdUp:
			bad = "--timeout is only for up"
		}
	})
	if bad != "" {
		return bad
	}
	n := len(pos) - 1
	switch cmd {
	case CmdUp:
		if n < 1 || n > 2 {
			return "usage: cygnet [-s SOCK] up CONN [CHILD]"
		}
	case CmdDown:
		if n != 1 {
			return "usage: cygnet [-s SOCK] down CONN"
		}
	case CmdStatus:
		if n != 0 {
			return "usage: cygnet [-s SOCK] status [--json]"
		}
	case CmdReload:
		if n != 0 {
			return "usage: cygnet [-s SOCK] reload"
		}
	case CmdRekey:
		if n < 1 || n > 2 {
			return "usage: cygnet [-s SOCK] rekey CONN [CHILD]"
		}
	case CmdUninstall:
		if n < 1 || n > 2 {
			return "usage: cygnet [-s SOCK] uninstall CONN [CHILD]"
		}
	default:
		return fmt.Sprintf("unknown command %q", cmd)
	}
	for _, a := range pos[1:] {
		if a == "" {
			return cmd + ": empty name"
		}
	}
	return ""
}

// socketPath finds the control socket: -s, else the socket of the
// configuration file named with -c, else $CYGNET_SOCKET, else the socket of
// the default configuration file if there is one we may read, else
// config.DefaultSocket. (CONTRACT.md has no -c for the client; an explicit
// -c is a command-line choice and beats the environment.)
func (c *cli) socketPath(f *cliFlags) (string, error) {
	if f.socket != "" {
		return f.socket, nil
	}
	if f.config != "" {
		d, err := config.LoadDaemon(f.config)
		if err != nil {
			return "", err
		}
		return d.Socket, nil
	}
	if s := c.getenv("CYGNET_SOCKET"); s != "" {
		return s, nil
	}
	d, err := config.LoadDaemon(c.defaultConfig)
	switch {
	case err == nil:
		return d.Socket, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return config.DefaultSocket, nil
	default:
		return "", err
	}
}

// fail prints the error of cmd and returns the exit code for it.
func (c *cli) fail(ctx context.Context, cmd string, err error) int {
	var de *DialError
	switch {
	case errors.As(err, &de):
		fmt.Fprintf(c.stderr, "cygnet: cannot reach the daemon at %s: %s\n", de.Path, de.Reason())
		return ExitFailed
	case context.Cause(ctx) == errTimeout:
		fmt.Fprintf(c.stderr, "cygnet: %s: no result within %v; the daemon stops trying\n", cmd, c.timeout)
		return ExitFailed
	case ctx.Err() != nil:
		fmt.Fprintf(c.stderr, "cygnet: %s: interrupted\n", cmd)
		return ExitInterrupted
	}
	c.printErr(err)
	return ExitFailed
}

// printErr prints err one line at a time, each starting with "cygnet: " (a
// reload can fail with one configuration error per line).
func (c *cli) printErr(err error) {
	msg := strings.TrimPrefix(err.Error(), "control: ")
	var b strings.Builder
	for l := range strings.Lines(msg) {
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			continue
		}
		b.WriteString("cygnet: ")
		b.WriteString(printable(l))
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		b.WriteString("cygnet: unknown error\n")
	}
	io.WriteString(c.stderr, b.String())
}

func (c *cli) usage(msg string) int {
	if !strings.HasPrefix(msg, "usage: ") {
		msg += " (cygnet --help for usage)"
	}
	fmt.Fprintf(c.stderr, "cygnet: %s\n", msg)
	return ExitUsage
}

func indent(s string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		if l != "\n" {
			b.WriteString("  ")
		}
		b.WriteString(l)
	}
	return b.String()
}
