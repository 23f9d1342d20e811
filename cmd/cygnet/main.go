// Command cygnet is Cygnet's one binary: the IKEv2/IPsec daemon, the client
// that controls it, and a self-contained demo (CONTRACT.md, "Binary").
//
//	cygnet daemon [-c FILE]            run the daemon in the foreground
//	cygnet [-s SOCK] up CONN [CHILD]   initiate a connection and wait
//	cygnet [-s SOCK] down CONN         delete a connection's SAs
//	cygnet [-s SOCK] status [--json]   list the SAs
//	cygnet [-s SOCK] reload            re-read the configuration
//	cygnet demo [-v]                   two peers on this machine, explained
//	cygnet version                     version and build information
//
// Errors are one line on standard error starting with "cygnet: ". Exit codes:
// 0 success, 1 failure, 2 usage error.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/control"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = ""

const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	programName = "cygnet"
)

const usage = `usage:
  cygnet daemon [-c FILE]         run the daemon in the foreground (default config ` + defaultConfig + `)
  cygnet demo [-v]                two peers on this machine build a tunnel, explained step by step
  cygnet version                  version and build information
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args (without the program name) and returns the
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "no command (try: cygnet help)")
	}
	switch args[0] {
	case "daemon":
		return runDaemon(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		if len(args) > 1 {
			return usageError(stderr, "version takes no arguments")
		}
		printVersion(stdout)
		return exitOK
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return exitOK
	}
	if control.IsCLICommand(args) {
		return control.RunCLI(args, stdout, stderr)
	}
	return usageError(stderr, fmt.Sprintf("unknown command %q (try: cygnet help)", args[0]))
}

func printUsage(w io.Writer) {
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(control.CLIUsage, "\n"), "\n") {
		if line != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	fmt.Fprint(w, usage+b.String())
}

// usageError prints a one-line usage error and returns the usage exit code.
func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "%s: %s\n", programName, msg)
	return exitUsage
}

// fail prints err, one line per line of its text, each starting with
// "cygnet: ", and returns the failure exit code. Configuration errors come
// one per line (file:line: message).
func fail(stderr io.Writer, err error) int {
	for line := range strings.SplitSeq(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(stderr, "%s: %s\n", programName, line)
	}
	return exitFailed
}

// printVersion prints the version, the Go version and the VCS state the
// binary was built from.
func printVersion(w io.Writer) {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	fmt.Fprintf(w, "cygnet %s\n", v)
	fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if !ok {
		return
	}
	var rev, when, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if rev != "" {
		fmt.Fprintf(w, "commit: %s%s", rev, modified)
		if when != "" {
			fmt.Fprintf(w, " %s", when)
		}
		fmt.Fprintln(w)
	}
}
