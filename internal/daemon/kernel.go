package daemon

// The kernel data plane (daemon.dataplane: xfrm). The xfrm backend takes
// more than dataplane.Backend carries; kernelDataplane adds it from the
// configuration, by the SA's or trap's request ID:
//
//   - the connection's if_id (route-based mode with an XFRM interface) on
//     every SA and trap of its children;
//   - a trap's mode and outer addresses: the kernel's ACQUIRE creates a
//     larval state from the trap policy's template, which only an SA of the
//     same mode, addresses and request ID completes (xfrm_state_add deletes
//     it); with the transport-mode template dataplane.Backend.Trap can give,
//     a tunnel's larval state would linger for net.core.xfrm_acq_expires.
//
// Around it (daemon.go): the NAT-T sockets get UDP_ENCAP, so that the kernel
// decapsulates ESP-in-UDP, and the IKE and NAT-T ports global bypass
// policies (xfrm.Backend.BypassPorts, strongSwan's port_bypass), so that an
// SA whose policy covers the peers (transport mode, 0.0.0.0/0) does not
// catch IKE.

// portBypasser is a data plane that exempts the IKE ports from IPsec: the
// kernel's, whose NAT-T sockets also need UDP_ENCAP.
type portBypasser interface {
	BypassPorts(ports ...uint16) error
}
