package xfrm

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

// Routes for policy-based tunnels, as strongSwan's kernel-netlink installs
// them (its table 220). An XFRM policy applies to a packet only after the
// routing has found a route for it: a host with no route to a remote subnet
// (no default route, say) would drop the tunnel's traffic, and a trap's
// first packet would never reach its policy. So for the remote selectors of
// each tunnel-mode SA and trap without an if_id the backend adds a route in
// a table of its own, which a rule consults before the main table: through
// the interface and next hop towards the peer's outer address (the peer
// itself when it is on-link), with a source address from the local
// selectors where the host has one. Routes of the other family than the
// outer addresses (IPv6 inside IPv4) go onto that interface without a next
// hop: once routed, the policy sends the packet into the tunnel.
//
// The route only takes the packet to the policy; the outer packet is routed
// on its own, so a remote selector that covers the peer's address
// (0.0.0.0/0) does not divert IKE or ESP. Transport-mode SAs need no route
// (their traffic goes to the peer itself), route-based ones (if_id) get the
// routes their XFRM interface is given.
//
// Routes and rules carry the protocol number routeProto; New removes those
// a crashed Cygnet left in its table.

// routeProto marks Cygnet's routes and rules ("proto 199" in ip route).
const routeProto = 199

// routeKey identifies one route: table and destination.
type routeKey struct {
	dst netip.Prefix
}

// routeSet is the backend's routes: each counted by its users (a rekeyed
// SA shares its predecessor's routes, a trap and its SA share theirs).
type routeSet struct {
	h     *netlink.Handle
	table int
	pref  int
	log   *slog.Logger
	refs  map[routeKey]int
	rules []*netlink.Rule
}

func openRoutes(cfg *Config, log *slog.Logger) (*routeSet, error) {
	ns := netns.None()
	if cfg.Netns != "" {
		h, err := netns.GetFromPath(cfg.Netns)
		if err != nil {
			return nil, fmt.Errorf("xfrm: network namespace %s: %w", cfg.Netns, err)
		}
		defer h.Close()
		ns = h
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("xfrm: rtnetlink: %w", err)
	}
	r := &routeSet{h: h, table: cfg.RouteTable, pref: cfg.RulePriority, log: log, refs: make(map[routeKey]int)}
	if n := r.removeStale(); n > 0 {
		log.Info("xfrm: removed routes and rules of a previous run", "count", n)
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rl := r.rule(fam)
		if err := h.RuleAdd(rl); err != nil {
			if fam == netlink.FAMILY_V6 {
				log.Debug("xfrm: no IPv6 policy routing", "err", err)
				continue
			}
			r.close()
			return nil, fmt.Errorf("xfrm: adding routing rule %v: %w", rl, err)
		}
		r.rules = append(r.rules, rl)
	}
	return r, nil
}

func (r *routeSet) rule(family int) *netlink.Rule {
	rl := netlink.NewRule()
	rl.Family = family
	rl.Priority = r.pref
	rl.Table = r.table
	rl.Protocol = routeProto
	return rl
}

// removeStale deletes the rules and routes of our table that carry
// routeProto: what a Cygnet that did not Close left.
func (r *routeSet) removeStale() int {
	n := 0
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if rules, err := r.h.RuleList(fam); err == nil {
			for i := range rules {
				if rules[i].Protocol == routeProto && rules[i].Table == r.table {
					if r.h.RuleDel(&rules[i]) == nil {
						n++
					}
				}
			}
		}
		filter := &netlink.Route{Table: r.table, Protocol: routeProto}
		routes, err := r.h.RouteListFiltered(fam, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			continue
		}
		for i := range routes {
			if r.h.RouteDel(&routes[i]) == nil {
				n++
			}
		}
	}
	return n
}

// add routes the remote selectors towards the tunnel to remote (the peer's
// outer address), with a source from the local selectors, and returns the
// keys to release.
func (r *routeSet) add(local, remote []dataplane.Selector, peer netip.Addr) ([]routeKey, error) {
	via, err := r.h.RouteGet(net.IP(peer.AsSlice()))
	if err != nil || len(via) == 0 {
		return nil, fmt.Errorf("xfrm: no route to the peer %v for the tunnel's routes: %v", peer, err)
	}
	link := via[0].LinkIndex
	gw := peer
	if g, ok := netip.AddrFromSlice(via[0].Gw); ok && g.IsValid() && !g.IsUnspecified() {
		gw = g.Unmap()
	}
	var keys []routeKey
	for _, s := range remote {
		pfxs, err := rangeToPrefixes(s.Start, s.End)
		if err != nil {
			r.release(keys)
			return nil, err
		}
		for _, p := range pfxs {
			k := routeKey{dst: p}
			if r.refs[k] > 0 {
				r.refs[k]++
				keys = append(keys, k)
				continue
			}
			rt := r.route(k)
			rt.LinkIndex = link
			if p.Addr().Is4() == gw.Is4() {
				rt.Gw = net.IP(gw.AsSlice())
			} else {
				rt.Scope = netlink.SCOPE_LINK
			}
			if src := r.localSource(local, p.Addr().Is4()); src.IsValid() {
				rt.Src = net.IP(src.AsSlice())
			}
			if err := r.h.RouteReplace(rt); err != nil {
				r.release(keys)
				return nil, fmt.Errorf("xfrm: route %v via %v: %w", p, gw, err)
			}
			r.refs[k] = 1
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (r *routeSet) route(k routeKey) *netlink.Route {
	p := k.dst
	return &netlink.Route{
		Dst:      &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Table:    r.table,
		Protocol: routeProto,
	}
}

// release drops one use of each route, deleting those nobody uses.
func (r *routeSet) release(keys []routeKey) error {
	var errs []error
	for _, k := range keys {
		if r.refs[k]--; r.refs[k] > 0 {
			continue
		}
		delete(r.refs, k)
		if err := r.h.RouteDel(r.route(k)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("xfrm: removing route %v: %w", k.dst, err))
		}
	}
	return errors.Join(errs...)
}

// localSource returns an address of this host (in the backend's namespace)
// within one of the local selectors, of one family; invalid if none.
func (r *routeSet) localSource(local []dataplane.Selector, v4 bool) netip.Addr {
	family := netlink.FAMILY_V6
	if v4 {
		family = netlink.FAMILY_V4
	}
	addrs, err := r.h.AddrList(nil, family)
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
				continue // never the source of routed packets
			}
			if ip.Is4() == s.Start.Is4() && !ip.Less(s.Start) && !s.End.Less(ip) {
				return ip
			}
		}
	}
	return netip.Addr{}
}

// close removes every route and the rules.
func (r *routeSet) close() error {
	var errs []error
	for k := range r.refs {
		r.refs[k] = 1
		errs = append(errs, r.release([]routeKey{k}))
	}
	for _, rl := range r.rules {
		if err := r.h.RuleDel(rl); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("xfrm: removing routing rule %v: %w", rl, err))
		}
	}
	r.rules = nil
	r.h.Close()
	return errors.Join(errs...)
}
