package daemon

import (
	"fmt"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane/xfrm"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// newKernelDataplane opens the xfrm backend, which first removes what a
// Cygnet that did not exit cleanly left: the states and policies of its
// request ID range, its routes and rules.
func (d *Daemon) newKernelDataplane() (dataplane.Backend, error) {
	b, err := xfrm.New(xfrm.Config{Logger: d.log})
	if err != nil {
		return nil, fmt.Errorf("daemon: dataplane xfrm (it needs CAP_NET_ADMIN and the kernel's XFRM and ESP: modules xfrm_user, esp4, esp6; daemon.dataplane: userspace does ESP without them): %w", err)
	}
	return b, nil
}

// kernelTransport adds to tc what the kernel's data plane needs of the
// sockets, if dp is the kernel's.
func kernelTransport(dp dataplane.Backend, tc *transport.Config) {
	if _, ok := dp.(*xfrm.Backend); ok {
		tc.KernelEncap = true
		tc.Control = xfrm.BypassSocket
	}
}
