package userspace

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/esp"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

func openTUN(name string, mtu int, offload bool, batch int) (*tun.Linux, error) {
	dev, err := tun.OpenLinux(tun.LinuxConfig{Name: name, MTU: mtu, Offload: offload, Batch: batch})
	if err != nil {
		return nil, fmt.Errorf("userspace: %w", err)
	}
	return dev, nil
}

// routeProto marks the routes and rules Cygnet adds, so that a restarted
// Cygnet finds (and removes) what a crashed one left behind, and `ip route`
// and `ip rule` show them as "proto cygnet" numbers of their own (values
// above RTPROT_STATIC are for routing daemons, rtnetlink(7)).
const routeProto = 199

// routeTable keeps the routes through the TUN device (CONTRACT.md,
// "Userspace data plane"): one per remote traffic selector prefix of the
// installed SAs and trap policies, counted by their users (a rekeyed SA and
// its predecessor share their routes, and a route goes when the last of them
// does).
//
// The routes live in a table of their own (Config.RouteTable), which a rule
// consults before the main table, as strongSwan does with table 220. That
// alone would route Cygnet's own packets to a peer into the tunnel whenever
// a remote selector covers the peer's address: in transport mode always (the
// selector is the peer), in tunnel mode with 0.0.0.0/0 and the like. Bypass
// rules ahead of it keep Cygnet's packets out of the table (they jump past
// it to the rules that follow): IKE and UDP-encapsulated ESP by their source
// ports (the transport's IKE and NAT-T ports, BypassPorts) and plain ESP by
// its protocol. Rule priorities (Config.RulePriority = P):
//
//	P    ipproto udp sport <IKE port>    goto P+2   (and the NAT-T port)
//	P    ipproto esp                     goto P+2
//	P+1  lookup <RouteTable>
//	P+2  nop                              (on to the main table)
type routeTable struct {
	index int
	table int
	pref  int
	log   *slog.Logger

	mu    sync.Mutex
	refs  map[netip.Prefix]int
	ports []uint16
	rules []*netlink.Rule // installed, in the order to delete them
}

// families are the address families of the rules.
var families = []int{netlink.FAMILY_V4, netlink.FAMILY_V6}

func newRouteTable(dev tun.Device, table, pref int, log *slog.Logger) (*routeTable, error) {
	r := &routeTable{table: table, pref: pref, log: log, refs: make(map[netip.Prefix]int)}
	if l, ok := dev.(*tun.Linux); ok {
		r.index = l.Index()
	}
	r.removeStale()
	for _, fam := range families {
		nop := r.rule(fam, pref+2)
		nop.Type = unix.FR_ACT_NOP
		lookup := r.rule(fam, pref+1)
		lookup.Table = table
		espBypass := r.rule(fam, pref)
		espBypass.IPProto = esp.ProtoESP
		espBypass.Goto = pref + 2
		for _, rl := range []*netlink.Rule{nop, lookup, espBypass} {
			if err := netlink.RuleAdd(rl); err != nil {
				if fam == netlink.FAMILY_V6 {
					// A host without IPv6 routes IPv4 only.
					r.log.Debug("userspace: no IPv6 policy routing", "err", err)
					break
				}
				r.close()
				return nil, fmt.Errorf("userspace: adding routing rule %v: %w", rl, err)
			}
			r.rules = append([]*netlink.Rule{rl}, r.rules...) // delete in reverse
		}
	}
	return r, nil
}

func (r *routeTable) rule(family, pref int) *netlink.Rule {
	rl := netlink.NewRule()
	rl.Family = family
	rl.Priority = pref
	rl.Protocol = routeProto
	return rl
}

// removeStale deletes the rules a previous Cygnet left (crashed, or killed):
// ours by their protocol. Routes need no such care: they go with the TUN
// device that died with that process.
func (r *routeTable) removeStale() {
	for _, fam := range families {
		rules, err := netlink.RuleList(fam)
		if err != nil {
			continue
		}
		for i := range rules {
			if rules[i].Protocol == routeProto {
				if err := netlink.RuleDel(&rules[i]); err == nil {
					r.log.Info("userspace: removed a stale routing rule", "rule", rules[i].String())
				}
			}
		}
	}
}

// bypass makes ports the source ports whose UDP skips the route table: the
// transport's IKE and NAT-T ports.
func (r *routeTable) bypass(ports []uint16) error {
	ports = slices.Clone(ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, p := range ports {
		if slices.Contains(r.ports, p) {
			continue
		}
		for _, fam := range families {
			rl := r.rule(fam, r.pref)
			rl.IPProto = unix.IPPROTO_UDP
			rl.Sport = netlink.NewRulePortRange(p, p)
			rl.Goto = r.pref + 2
			if err := netlink.RuleAdd(rl); err != nil {
				if fam == netlink.FAMILY_V4 {
					errs = append(errs, fmt.Errorf("userspace: bypass rule for UDP port %d: %w", p, err))
				}
				continue
			}
			r.rules = append([]*netlink.Rule{rl}, r.rules...)
		}
	}
	for _, p := range r.ports {
		if slices.Contains(ports, p) {
			continue
		}
		r.rules = slices.DeleteFunc(r.rules, func(rl *netlink.Rule) bool {
			if rl.Sport == nil || rl.Sport.Start != p {
				return false
			}
			if err := netlink.RuleDel(rl); err != nil {
				r.log.Warn("userspace: removing bypass rule", "port", p, "err", err)
			}
			return true
		})
	}
	r.ports = ports
	return errors.Join(errs...)
}

// add adds the routes of the remote selectors (with a source address from
// the local ones) and returns their prefixes, for remove.
func (r *routeTable) add(local, remote []dataplane.Selector) ([]netip.Prefix, error) {
	if r.index == 0 {
		return nil, nil
	}
	var prefixes []netip.Prefix
	for _, s := range remote {
		prefixes = append(prefixes, rangePrefixes(s.Start, s.End)...)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var added []netip.Prefix
	for _, pfx := range prefixes {
		if r.refs[pfx] > 0 {
			r.refs[pfx]++
			added = append(added, pfx)
			continue
		}
		rt := r.route(pfx)
		if src := localSource(local, pfx.Addr().Is4()); src.IsValid() {
			rt.Src = net.IP(src.AsSlice())
		}
		if err := netlink.RouteReplace(rt); err != nil {
			for _, a := range added {
				r.unref(a)
			}
			return nil, fmt.Errorf("userspace: route %v via TUN: %w", pfx, err)
		}
		r.refs[pfx] = 1
		added = append(added, pfx)
	}
	return added, nil
}

func (r *routeTable) route(pfx netip.Prefix) *netlink.Route {
	return &netlink.Route{
		LinkIndex: r.index,
		Dst:       prefixNet(pfx),
		Table:     r.table,
		Protocol:  routeProto,
		Scope:     netlink.SCOPE_LINK,
	}
}

func (r *routeTable) unref(pfx netip.Prefix) {
	r.refs[pfx]--
	if r.refs[pfx] > 0 {
		return
	}
	delete(r.refs, pfx)
	if err := netlink.RouteDel(r.route(pfx)); err != nil && !errors.Is(err, unix.ESRCH) {
		r.log.Warn("userspace: removing route", "dst", pfx, "err", err)
	}
}

func (r *routeTable) remove(prefixes []netip.Prefix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pfx := range prefixes {
		r.unref(pfx)
	}
}

// close removes every route and rule; closing the device would remove the
// routes too, but a device that outlives us (a persistent one) must not
// keep them, and rules outlive any device.
func (r *routeTable) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pfx := range r.refs {
		r.refs[pfx] = 1
		r.unref(pfx)
	}
	var errs []error
	for _, rl := range r.rules {
		if err := netlink.RuleDel(rl); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("userspace: removing routing rule %v: %w", rl, err))
		}
	}
	r.rules, r.ports = nil, nil
	return errors.Join(errs...)
}

// localSource returns an address configured on this host that lies in one
// of the local selectors, to use as the routes' source; invalid if none.
func localSource(local []dataplane.Selector, v4 bool) netip.Addr {
	family := netlink.FAMILY_V6
	if v4 {
		family = netlink.FAMILY_V4
	}
	addrs, err := netlink.AddrList(nil, family)
	if err != nil {
		return netip.Addr{}
	}
	for _, s := range local {
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
				continue // never a source for routed packets
			}
			if ip.Is4() == s.Start.Is4() && !ip.Less(s.Start) && !s.End.Less(ip) {
				return ip
			}
		}
	}
	return netip.Addr{}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
