package main

import "io"

// runDemo is `cygnet demo`.
func runDemo(args []string, stdout, stderr io.Writer) int {
	return usageError(stderr, "demo: not implemented yet")
}
