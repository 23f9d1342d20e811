//go:build !linux

package xfrm

import "errors"

// Backend is the XFRM data plane; it exists on Linux only.
type Backend struct{}

// New fails: XFRM is Linux's.
func New(cfg Config) (*Backend, error) {
	return nil, errors.New("xfrm: the kernel data plane needs Linux")
}
