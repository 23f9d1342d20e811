package daemon

import (
	"sync"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

// The kernel data plane (daemon.dataplane: xfrm) and route-based mode.
//
// The xfrm backend needs of the transport that the NAT-T sockets carry
// UDP_ENCAP, so that the kernel decapsulates ESP-in-UDP (RFC 3948), and that
// every IKE socket bypasses IPsec (xfrm.BypassSocket, as strongSwan does):
// otherwise an SA whose policy covers the peers (transport mode, a remote
// selector of 0.0.0.0/0) would catch IKE and the ESP-in-UDP arriving there.
//
// Route-based mode (connections.X.if_id) puts the connection's if_id on every
// SA (dataplane.SA.IfID) and trap (dataplane.Trap.IfID) of its children; the
// data plane refuses it unless it is the kernel's.
//
// kernel_linux.go opens the backend and sets up the transport for it.

// ifIDs finds the connection's if_id of a CHILD_SA by its request ID, in the
// configuration in use; it remembers each one it found, so that a rekey of
// an SA whose connection a reload removed keeps it.
type ifIDs struct {
	mu    sync.Mutex
	cs    *configSet
	byReq map[uint32]uint32 // of cs, and remembered
}

func (x *ifIDs) of(cs *configSet, reqid uint32) uint32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byReq == nil {
		x.byReq = make(map[uint32]uint32)
	}
	if cs != nil && cs != x.cs {
		x.cs = cs
		for i, c := range cs.cfg.Connections {
			for j := range c.Children {
				x.byReq[cs.eng[i].Children[j].ReqID] = c.IfID
			}
		}
	}
	return x.byReq[reqid]
}

// trapSpec is the trap of child ch of c with request ID reqid: its mode, the
// outer addresses an initiation would use (the kernel's ACQUIRE creates a
// larval state from them, which the negotiated SA then completes), its
// selectors and the connection's if_id.
func (d *Daemon) trapSpec(c *config.Connection, ch *config.Child, reqid uint32) (dataplane.Trap, error) {
	local, remote, err := d.trapSelectors(c, ch)
	if err != nil {
		return dataplane.Trap{}, err
	}
	t := dataplane.Trap{ReqID: reqid, Name: c.Name + "/" + ch.Name, Mode: dataplane.Tunnel,
		LocalTS: local, RemoteTS: remote, IfID: c.IfID}
	if ch.Mode == "transport" {
		t.Mode = dataplane.Transport
	}
	peer := c.RemoteAddrs[0].Unmap() // trapSelectors checked there is one
	la, err := d.localAddrFor(c, peer)
	if err != nil {
		return dataplane.Trap{}, err
	}
	t.Local, t.Remote = la.Unmap(), peer
	return t, nil
}
