//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

func kernelDemoPossible() (bool, string) { return false, "on Linux" }

func demoKernel(context.Context, io.Writer, demoOptions, *demoPKI, string) error {
	return errors.New("the kernel part of the demo needs Linux")
}
