package xfrm

import (
	"errors"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

// Exempting IKE from IPsec. Once an SA's policy covers the peers' own
// addresses (transport mode; a tunnel whose selectors include the
// gateways, such as 0.0.0.0/0), the kernel would hold IKE messages, and the
// ESP-in-UDP that reaches the NAT-T socket, to that policy and drop them
// (XfrmInTmplMismatch). strongSwan exempts its IKE sockets with per-socket
// policies (BypassSocket), or, with kernel-netlink's port_bypass option,
// with global policies for its IKE ports: BypassPorts is the latter, for a
// caller that does not hold the sockets.

// bypassPriority ranks the bypass policies before every SA and trap policy
// of the backend (lower values first).
func (b *Backend) bypassPriority() uint32 { return b.cfg.PriorityBase - 1 }

// BypassPorts installs global policies that let UDP from and to the local
// ports pass without IPsec, in both families: the IKE and NAT-T ports.
// Calling it again adds the ports not yet bypassed; Close removes them, and
// New removes those a crashed Cygnet left (by their priority: no template
// names a request ID).
func (b *Backend) BypassPorts(ports ...uint16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	var errs []error
	for _, port := range ports {
		for _, family := range []uint16{afInet, afInet6} {
			for _, dir := range []uint8{dirOut, dirIn} {
				sel := selector{family: family, proto: unix.IPPROTO_UDP}
				if dir == dirOut {
					sel.sport, sel.sportMask = port, 0xffff
				} else {
					sel.dport, sel.dportMask = port, 0xffff
				}
				k := policyKey{dir: dir, sel: sel}
				if slices.Contains(b.bypass, k) {
					continue
				}
				m := newMessage(msgNewPolicy, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, sizeUserpolicyInfo)
				info := userpolicyInfo{sel: sel, priority: b.bypassPriority(), dir: dir, action: actionAllow}
				info.put(m.fixed())
				err := b.nl.do("add bypass policy "+dirName(dir)+" "+sel.String(), m, nil)
				if errors.Is(err, unix.EEXIST) {
					// Ours from before (the same selector at another
					// priority would not collide): keep it.
					err = nil
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				b.bypass = append(b.bypass, k)
			}
		}
	}
	return errors.Join(errs...)
}

// isBypass reports whether a dumped policy is one of BypassPorts'.
func (b *Backend) isBypass(p *policyInfo) bool {
	return len(p.tmpls) == 0 && p.action == actionAllow && p.priority == b.bypassPriority() &&
		p.sel.proto == unix.IPPROTO_UDP && p.ifID == 0 && p.mark == nil
}
