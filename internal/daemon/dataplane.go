package daemon

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane/userspace"
)

// The runtime's side of the data plane beyond installing and removing
// CHILD_SAs (worker.go): building the backend daemon.dataplane names, trap
// policies for start_action: trap and the Acquires they raise, lifetime
// expiry events, and the backend's totals as metrics.

// newDataplane builds the backend cfg names.
func (d *Daemon) newDataplane(cfg *config.Config) (dataplane.Backend, error) {
	switch cfg.Daemon.Dataplane {
	case "none":
		return dataplane.NewNone(d.rand, d.now), nil
	case "userspace":
		// One TUN device with TCP segmentation offload; routes per SA in
		// their own table, with Cygnet's IKE and ESP kept out of it
		// (userspace.routeTable). The transport comes with SetTransport.
		b, err := userspace.New(userspace.Config{
			TUNName: cfg.Daemon.TUN,
			Offload: true,
			Rand:    d.rand,
			Now:     d.now,
			Log:     d.log,
		})
		if err != nil {
			return nil, fmt.Errorf("daemon: dataplane userspace: %w (it needs CAP_NET_ADMIN and /dev/net/tun; daemon.dataplane: none negotiates IKE without moving packets)", err)
		}
		return b, nil
	case "xfrm":
		// The Linux kernel's IPsec (kernel.go).
		return d.newKernelDataplane()
	}
	return nil, fmt.Errorf("daemon: dataplane %q is not available; use userspace, xfrm, or none to negotiate IKE without moving packets", cfg.Daemon.Dataplane)
}

// trapRef names the child configuration a trap policy belongs to.
type trapRef struct {
	conn, child string
}

// trapIndex maps the ReqIDs of cs's children that may have a trap policy
// (start_action, close_action or dpd_action trap) to them, so that an
// Acquire finds its child in the configuration in use.
func trapIndex(cs *configSet) map[uint32]trapRef {
	idx := make(map[uint32]trapRef)
	for i, c := range cs.cfg.Connections {
		for j, ch := range c.Children {
			if ch.StartAction == "trap" || ch.CloseAction == "trap" || ch.DPDAction == "trap" {
				idx[cs.eng[i].Children[j].ReqID] = trapRef{c.Name, ch.Name}
			}
		}
	}
	return idx
}

// trap installs the trap policy of child ch of c (start_action: trap).
func (d *Daemon) trap(cs *configSet, c *config.Connection, ch *config.Child) {
	if _, none := d.dp.(*dataplane.None); none {
		d.log.Warn("start_action trap acts as none with this data plane (no packets to trigger it)", "conn", c.Name, "child", ch.Name, "dataplane", cs.cfg.Daemon.Dataplane)
		return
	}
	_, ec := cs.lookup(c.Name)
	reqid := uint32(0)
	for _, ecc := range ec.Children {
		if ecc.Name == ch.Name {
			reqid = ecc.ReqID
		}
	}
	t, err := d.trapSpec(c, ch, reqid)
	if err == nil {
		err = d.dp.Trap(t)
	}
	if err != nil {
		d.log.Warn("start_action trap: no trap policy", "conn", c.Name, "child", ch.Name, "err", err.Error())
		return
	}
	d.log.Info("trap policy installed: the first matching packet starts the negotiation", "conn", c.Name, "child", ch.Name,
		"local_ts", fmt.Sprint(t.LocalTS), "remote_ts", fmt.Sprint(t.RemoteTS))
}

// untrap removes the trap policies of cs's children of connection conn.
func (d *Daemon) untrap(cs *configSet, conn string) {
	for reqid, ref := range trapIndex(cs) {
		if ref.conn == conn {
			d.dp.Untrap(reqid) // unknown if trapping failed: nothing to undo
		}
	}
}

// trapSelectors turns a child's configured selectors into the data plane's,
// resolving "dynamic" (the IKE SA's own addresses, RFC 7296 2.9) to the
// addresses an initiation would use.
func (d *Daemon) trapSelectors(c *config.Connection, ch *config.Child) (local, remote []dataplane.Selector, err error) {
	if len(c.RemoteAddrs) == 0 {
		return nil, nil, fmt.Errorf("daemon: connection %q has no remote address to initiate to", c.Name)
	}
	peer := c.RemoteAddrs[0]
	convert := func(list []config.TrafficSelector, dynamic func() (netip.Addr, error)) ([]dataplane.Selector, error) {
		var out []dataplane.Selector
		for _, ts := range list {
			pfx := ts.Prefix
			if ts.Dynamic {
				a, err := dynamic()
				if err != nil {
					return nil, err
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, dataplane.Selector{Start: pfx.Masked().Addr(), End: lastAddr(pfx), Protocol: ts.Protocol, StartPort: ts.StartPort, EndPort: ts.EndPort})
		}
		return out, nil
	}
	if local, err = convert(ch.LocalTS, func() (netip.Addr, error) { return d.localAddrFor(c, peer) }); err != nil {
		return nil, nil, err
	}
	remote, err = convert(ch.RemoteTS, func() (netip.Addr, error) { return peer, nil })
	return local, remote, err
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// dataplaneEvent receives the data plane's events, on the backend's
// goroutines: it must not block, so the work goes to the background or to
// the worker that owns the SA.
func (d *Daemon) dataplaneEvent(ev dataplane.Event) {
	switch ev.Kind {
	case dataplane.Acquire:
		d.acquire(ev)
	case dataplane.SoftExpire, dataplane.HardExpire:
		d.expired(ev)
	default:
		d.log.Debug("data plane event", "kind", ev.Kind.String(), "spi", fmt.Sprintf("%08x", ev.InSPI), "reqid", ev.ReqID)
	}
}

// acquire starts the negotiation of the child whose trap policy a packet hit
// (RFC 4301 5.1): Up creates an IKE SA, or, with one up, only the CHILD_SA
// (CREATE_CHILD_SA). One negotiation per trap at a time; the data plane
// dropped the packet, and its sender will retransmit once the SA is up.
func (d *Daemon) acquire(ev dataplane.Event) {
	ref, ok := d.cfgs.Load().traps[ev.ReqID]
	if !ok {
		d.log.Debug("acquire for no trap of the configuration in use", "reqid", ev.ReqID)
		return
	}
	if _, busy := d.acquiring.LoadOrStore(ev.ReqID, true); busy {
		return
	}
	started := d.background(func(ctx context.Context) {
		defer d.acquiring.Delete(ev.ReqID)
		d.log.Info("acquire: a packet hit the trap policy; initiating", "conn", ref.conn, "child", ref.child,
			"src", ev.Packet.Start.String(), "dst", ev.Packet.End.String(), "proto", ev.Packet.Protocol)
		if err := d.Up(ctx, ref.conn, ref.child); err != nil && ctx.Err() == nil {
			d.log.Warn("acquire: initiation failed", "conn", ref.conn, "child", ref.child, "reason", err.Error())
		}
	})
	if !started {
		d.acquiring.Delete(ev.ReqID)
	}
}

// background runs fn in a goroutine that Run waits for before it stops,
// with Run's context; it reports false (and runs nothing) when the daemon is
// not running.
func (d *Daemon) background(fn func(ctx context.Context)) bool {
	d.bgMu.Lock()
	defer d.bgMu.Unlock()
	if d.closing || d.ctx == nil {
		return false
	}
	ctx := d.ctx
	d.bg.Go(func() { fn(ctx) })
	return true
}

// expired hands a lifetime event of the data plane (bytes, packets or the
// sequence number space) to the engine, on the worker that owns the
// CHILD_SA: a soft expiry starts a rekey, a hard one deletes the SA.
func (d *Daemon) expired(ev dataplane.Event) {
	v, ok := d.children.Load(ev.InSPI)
	if !ok {
		return
	}
	e := v.(*ikeEntry)
	hard := ev.Kind == dataplane.HardExpire
	d.background(func(ctx context.Context) {
		e.owner.do(ctx, func(w *worker) {
			name, ok := e.children[ev.InSPI]
			if !ok || e.dead {
				return
			}
			d.log.Info("CHILD_SA lifetime reached in the data plane", "conn", e.conn, "child", name,
				"spi_in", fmt.Sprintf("%08x", ev.InSPI), "hard", hard)
			w.apply(e, e.sa.ChildExpired(d.now(), ev.InSPI, hard))
		})
	})
}
