package daemon

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane/xfrm"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// newKernelDataplane opens the xfrm backend, which first removes what a
// Cygnet that did not exit cleanly left: the states and policies of its
// request ID range, its routes and rules. It then checks that the kernel
// does ESP at all: a kernel with XFRM but without the ESP transform (no
// esp4 module, as on some container hosts) accepts policies and SPIs and
// would fail only at the first CHILD_SA.
func (d *Daemon) newKernelDataplane() (dataplane.Backend, error) {
	b, err := xfrm.New(xfrm.Config{Logger: d.log})
	if err != nil {
		return nil, fmt.Errorf("daemon: dataplane xfrm (it needs CAP_NET_ADMIN and the kernel's XFRM and ESP: modules xfrm_user, esp4, esp6; daemon.dataplane: userspace does ESP without them): %w", err)
	}
	if err := probeKernelESP(); err != nil {
		b.Close()
		return nil, fmt.Errorf("daemon: dataplane xfrm: this kernel has no ESP (an AES-GCM ESP state was refused: %v; load esp4 and esp6, or use daemon.dataplane: userspace)", err)
	}
	return b, nil
}

// The probe state: a transport-mode ESP state to a documentation address
// (RFC 5737), with a request ID at the top of Cygnet's xfrm range, so that
// if the daemon dies between adding and deleting it the next start removes
// it with the rest of a previous run's states.
var (
	probeSrc   = net.IPv4(192, 0, 2, 254)
	probeDst   = net.IPv4(192, 0, 2, 255)
	probeSPI   = 0xc7fffffe
	probeReqID = xfrm.DefaultReqIDBase + xfrm.ReqIDSpan - 1
)

// probeKernelESP adds and deletes an AES-GCM ESP state (RFC 4106) in the
// daemon's network namespace. The kernel builds the state's transform,
// loading esp4 and the cipher on demand, before it looks for a duplicate:
// EEXIST also proves ESP.
func probeKernelESP() error {
	st := &netlink.XfrmState{
		Src: probeSrc, Dst: probeDst, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT,
		Spi: probeSPI, Reqid: probeReqID,
		// A key of zeros: the state never carries a packet (no policy
		// points to it) and lives for a moment.
		Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: make([]byte, 20), ICVLen: 128},
	}
	err := netlink.XfrmStateAdd(st)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := netlink.XfrmStateDel(st); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("removing the probe state: %w", err)
	}
	return nil
}

// kernelTransport adds to tc what the kernel's data plane needs of the
// sockets, if dp is the kernel's.
func kernelTransport(dp dataplane.Backend, tc *transport.Config) {
	if _, ok := dp.(*xfrm.Backend); ok {
		tc.KernelEncap = true
		tc.Control = xfrm.BypassSocket
	}
}
