package daemon

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane/xfrm"
)

// kernelDataplane is the xfrm backend as the runtime uses it.
type kernelDataplane struct {
	*xfrm.Backend
	d *Daemon

	idx atomic.Pointer[reqidIndex]
	// ifIDs remembers the if_id of each request ID installed, so that a
	// rekey of an SA whose connection a reload removed keeps it.
	ifIDs sync.Map // uint32 -> uint32
}

// reqidIndex maps the request IDs of one configSet's children to them.
type reqidIndex struct {
	cs       *configSet
	children map[uint32]childRef
}

type childRef struct {
	conn  *config.Connection
	child *config.Child
}

func (d *Daemon) newKernelDataplane() (dataplane.Backend, error) {
	// New removes what a Cygnet that did not exit cleanly left: states and
	// policies of Cygnet's request ID range, its routes and bypass policies.
	b, err := xfrm.New(xfrm.Config{Logger: d.log})
	if err != nil {
		return nil, fmt.Errorf("daemon: dataplane xfrm (it needs CAP_NET_ADMIN and the kernel's XFRM and ESP: modules xfrm_user, esp4, esp6; daemon.dataplane: userspace does ESP without them): %w", err)
	}
	return &kernelDataplane{Backend: b, d: d}, nil
}

// child finds the child configuration of a request ID in the configuration
// in use.
func (k *kernelDataplane) child(reqid uint32) (childRef, bool) {
	cs := k.d.cfgs.Load()
	if cs == nil {
		return childRef{}, false
	}
	idx := k.idx.Load()
	if idx == nil || idx.cs != cs {
		idx = &reqidIndex{cs: cs, children: make(map[uint32]childRef)}
		for i, c := range cs.cfg.Connections {
			for j, ch := range c.Children {
				idx.children[cs.eng[i].Children[j].ReqID] = childRef{c, ch}
			}
		}
		k.idx.Store(idx)
	}
	ref, ok := idx.children[reqid]
	return ref, ok
}

// ifID is the if_id for SAs of reqid.
func (k *kernelDataplane) ifID(reqid uint32) uint32 {
	if ref, ok := k.child(reqid); ok {
		k.ifIDs.Store(reqid, ref.conn.IfID)
		return ref.conn.IfID
	}
	if v, ok := k.ifIDs.Load(reqid); ok {
		return v.(uint32)
	}
	return 0
}

// Install implements dataplane.Backend with the connection's if_id.
func (k *kernelDataplane) Install(sa *dataplane.SA, replaces uint32) error {
	if sa == nil {
		return fmt.Errorf("%w: nil", dataplane.ErrInvalidSA)
	}
	return k.InstallWith(sa, replaces, xfrm.InstallOptions{IfID: k.ifID(sa.ReqID), InboundOnly: sa.DeferOutbound})
}

// Trap implements dataplane.Backend with the child's mode, outer addresses
// and if_id. Trapping a request ID again replaces its trap.
func (k *kernelDataplane) Trap(reqid uint32, local, remote []dataplane.Selector) error {
	ref, ok := k.child(reqid)
	if !ok || len(ref.conn.RemoteAddrs) == 0 {
		return k.Backend.Trap(reqid, local, remote)
	}
	c := ref.conn
	t := xfrm.Trap{ReqID: reqid, Name: c.Name + "/" + ref.child.Name, Mode: dataplane.Tunnel,
		LocalTS: local, RemoteTS: remote, IfID: k.ifID(reqid)}
	if ref.child.Mode == "transport" {
		t.Mode = dataplane.Transport
	}
	peer := c.RemoteAddrs[0].Unmap()
	la, err := k.d.localAddrFor(c, peer)
	if err != nil {
		return err
	}
	t.Local, t.Remote = la.Unmap(), peer
	if err := k.RemoveTrap(reqid); err != nil && !errors.Is(err, dataplane.ErrUnknownTrap) {
		return err
	}
	return k.InstallTrap(t)
}

var (
	_ dataplane.Backend = (*kernelDataplane)(nil)
	_ dataplane.Totaler = (*kernelDataplane)(nil)
	_ portBypasser      = (*kernelDataplane)(nil)
)
