// Package control is the daemon's control API and the command-line client of
// it (CONTRACT.md, "Binary" and "Status JSON"; docs/control-api.md describes
// the protocol for scripts).
//
// The daemon serves the API on a unix socket with Listen, answering from a
// Backend it provides. The protocol is newline-delimited JSON: one request
// object per line, one response object per line, in order, several per
// connection if the client likes. The cygnet command's up, down, status and
// reload subcommands are RunCLI, a thin client built on Dial and Client.
package control
