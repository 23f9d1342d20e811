//go:build !linux

package daemon

import (
	"errors"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

func (d *Daemon) newKernelDataplane() (dataplane.Backend, error) {
	return nil, errors.New("daemon: dataplane xfrm is the Linux kernel's; use userspace")
}

func kernelTransport(dataplane.Backend, *transport.Config) {}
