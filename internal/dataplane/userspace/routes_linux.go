package userspace

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

func openTUN(name string, mtu int, offload bool, batch int) (*tun.Linux, error) {
	dev, err := tun.OpenLinux(tun.LinuxConfig{Name: name, MTU: mtu, Offload: offload, Batch: batch})
	if err != nil {
		return nil, fmt.Errorf("userspace: %w", err)
	}
	return dev, nil
}

// routeProto marks the routes Cygnet adds (RTPROT_STATIC), so `ip route`
// shows them as static routes through the TUN device.
const routeProto = unix.RTPROT_STATIC

// routeTable keeps one route per remote traffic selector prefix through the
// TUN device (CONTRACT.md, "Userspace data plane"), counted by the SAs that
// need it: a rekeyed SA and its predecessor share their routes, and the
// route goes when the last of them does.
type routeTable struct {
	index int
	log   *slog.Logger

	mu   sync.Mutex
	refs map[netip.Prefix]int
}

func newRouteTable(dev tun.Device, log *slog.Logger) *routeTable {
	r := &routeTable{log: log, refs: make(map[netip.Prefix]int)}
	if l, ok := dev.(*tun.Linux); ok {
		r.index = l.Index()
	}
	return r
}

// add adds the routes of p's remote selectors and returns their prefixes.
// A transport-mode SA gets none: its remote selector is the peer itself,
// whose IKE and ESP must not be routed into the tunnel.
func (r *routeTable) add(p *saPair) ([]netip.Prefix, error) {
	if r.index == 0 || p.transportMode {
		return nil, nil
	}
	var prefixes []netip.Prefix
	for _, s := range p.remoteTS {
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
		src := localSource(p.localTS, pfx.Addr().Is4())
		rt := &netlink.Route{
			LinkIndex: r.index,
			Dst:       prefixNet(pfx),
			Protocol:  routeProto,
			Scope:     netlink.SCOPE_LINK,
		}
		if src.IsValid() {
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

func (r *routeTable) unref(pfx netip.Prefix) {
	r.refs[pfx]--
	if r.refs[pfx] > 0 {
		return
	}
	delete(r.refs, pfx)
	rt := &netlink.Route{LinkIndex: r.index, Dst: prefixNet(pfx), Protocol: routeProto, Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteDel(rt); err != nil && !errors.Is(err, unix.ESRCH) {
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

// close removes every route; closing the device would remove them too, but
// a device that outlives us (a persistent one) must not keep them.
func (r *routeTable) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pfx := range r.refs {
		r.refs[pfx] = 1
		r.unref(pfx)
	}
	return nil
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

// rangePrefixes covers start..end with the fewest prefixes.
func rangePrefixes(start, end netip.Addr) []netip.Prefix {
	if !start.IsValid() || start.Is4() != end.Is4() || end.Less(start) {
		return nil
	}
	var out []netip.Prefix
	for {
		// The largest prefix that starts at start and ends at or before end.
		bits := start.BitLen()
		for bits > 0 {
			p, err := start.Prefix(bits - 1)
			if err != nil || p.Addr() != start || end.Less(lastAddr(p)) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(start, bits)
		out = append(out, p)
		last := lastAddr(p)
		if last == end || len(out) > 256 {
			return out
		}
		start = last.Next()
		if !start.IsValid() {
			return out
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
