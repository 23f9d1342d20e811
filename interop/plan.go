package interop

import (
	"fmt"
	"net/netip"
	"strings"
)

// A Plan is everything one case needs on the wire and in the two peers'
// configurations: its own outer addresses (every case has a pair of its
// own, so the peers pick connections by address and every captured frame
// belongs to exactly one case), identities, traffic selectors as each side
// configures them, the selectors both must end up with, and the inner
// addresses to ping between.
type Plan struct {
	Case Case

	Conn      string // connection name on both sides, "c07"
	Child     string // the CHILD_SA created in IKE_AUTH, "n07"
	PFSChild  string // with a PFS ESP proposal: a second CHILD_SA created by CREATE_CHILD_SA, "p07"; else ""
	CygID     string // identities (FQDNs; certificates carry them as subjectAltName)
	SwanID    string
	CygOuter  netip.Addr
	SwanOuter netip.Addr

	// Traffic selectors in configuration syntax (strongSwan's, which
	// Cygnet shares), from each side's point of view.
	CygLocalTS, CygRemoteTS   []string
	SwanLocalTS, SwanRemoteTS []string
	// The same for the PFS child, configured alike on both sides.
	PFSCygLocalTS, PFSCygRemoteTS []string
	// WantPFSLocalTS and WantPFSRemoteTS are the PFS child's selectors
	// after negotiation, from Cygnet's side.
	WantPFSLocalTS, WantPFSRemoteTS []string

	// WantLocalTS and WantRemoteTS are what the CHILD_SA's selectors must
	// be after negotiation, from Cygnet's side, as both peers print them.
	WantLocalTS, WantRemoteTS []string

	// Pings lists (Cygnet's inner address, strongSwan's inner address)
	// pairs to ping between through the tunnel: one per subnet pair.
	Pings [][2]netip.Addr
	// CygInner and SwanInner are the inner host addresses each namespace
	// needs (on lo): kernel-libipsec and Cygnet's userspace data plane use
	// them as the source of their routes.
	CygInner, SwanInner []netip.Addr
}

// NewPlan lays out case c. IDs must be below 50.
func NewPlan(c Case) Plan {
	i := c.ID
	p := Plan{
		Case:   c,
		Conn:   fmt.Sprintf("c%02d", i),
		Child:  fmt.Sprintf("n%02d", i),
		CygID:  fmt.Sprintf("cygnet-%02d.interop.test", i),
		SwanID: fmt.Sprintf("swan-%02d.interop.test", i),
	}
	if c.PFS() {
		p.PFSChild = fmt.Sprintf("p%02d", i)
	}
	if c.Outer == IPv6 {
		p.CygOuter = netip.MustParseAddr(fmt.Sprintf("2001:db8::a:%x", i))
		p.SwanOuter = netip.MustParseAddr(fmt.Sprintf("2001:db8::b:%x", i))
	} else {
		p.CygOuter = netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		p.SwanOuter = netip.AddrFrom4([4]byte{192, 0, 2, byte(110 + i)})
	}

	initiatorIsCygnet := c.Direction == CygnetInitiates

	if c.Mode == ModeTransport {
		// RFC 7296 2.9 / RFC 4301 4.1: the selectors are the endpoints.
		proto := "icmp"
		if c.Outer == IPv6 {
			proto = "ipv6-icmp"
		}
		dyn, narrow := []string{"dynamic"}, []string{"dynamic[" + proto + "]"}
		p.CygLocalTS, p.CygRemoteTS = dyn, dyn
		p.SwanLocalTS, p.SwanRemoteTS = dyn, dyn
		p.WantLocalTS = []string{hostPrefix(p.CygOuter)}
		p.WantRemoteTS = []string{hostPrefix(p.SwanOuter)}
		if c.TS == TSNarrowed {
			if initiatorIsCygnet {
				p.SwanLocalTS, p.SwanRemoteTS = narrow, narrow
			} else {
				p.CygLocalTS, p.CygRemoteTS = narrow, narrow
			}
			p.WantLocalTS[0] += "[" + proto + "]"
			p.WantRemoteTS[0] += "[" + proto + "]"
		}
		p.Pings = [][2]netip.Addr{{p.CygOuter, p.SwanOuter}}
		if p.PFSChild != "" {
			// The same two hosts, UDP only: its policy differs from
			// the first child's (all protocols, or ICMP when
			// narrowed), and the pings do not take it.
			p.PFSCygLocalTS, p.PFSCygRemoteTS = []string{"dynamic[udp]"}, []string{"dynamic[udp]"}
			p.WantPFSLocalTS = []string{hostPrefix(p.CygOuter) + "[udp]"}
			p.WantPFSRemoteTS = []string{hostPrefix(p.SwanOuter) + "[udp]"}
		}
		return p
	}

	// Tunnel mode: each side has a block (10.i.0.0/16 or fd00:a:i::/48 on
	// Cygnet's, 10.100+i.0.0/16 or fd00:b:i::/48 on strongSwan's) with
	// subnets k = 1, 2, 3 in it (/24 or /64) and a host ...1 in each.
	cygBlock, swanBlock := innerBlock(c.Inner, 0xa, i), innerBlock(c.Inner, 0xb, i)
	cygNet := func(k int) netip.Prefix { return subnet(cygBlock, k) }
	swanNet := func(k int) netip.Prefix { return subnet(swanBlock, k) }
	strs := func(ps ...netip.Prefix) []string {
		var s []string
		for _, p := range ps {
			s = append(s, p.String())
		}
		return s
	}
	switch c.TS {
	case TSEqual:
		p.CygLocalTS, p.CygRemoteTS = strs(cygBlock), strs(swanBlock)
		p.SwanLocalTS, p.SwanRemoteTS = strs(swanBlock), strs(cygBlock)
		p.WantLocalTS, p.WantRemoteTS = strs(cygBlock), strs(swanBlock)
		p.Pings = [][2]netip.Addr{{host(cygNet(1)), host(swanNet(1))}}
	case TSNarrowed:
		// The initiator proposes the blocks; the responder is configured
		// with one subnet of each and narrows to it.
		p.CygLocalTS, p.CygRemoteTS = strs(cygBlock), strs(swanBlock)
		p.SwanLocalTS, p.SwanRemoteTS = strs(swanBlock), strs(cygBlock)
		if initiatorIsCygnet {
			p.SwanLocalTS, p.SwanRemoteTS = strs(swanNet(1)), strs(cygNet(1))
		} else {
			p.CygLocalTS, p.CygRemoteTS = strs(cygNet(1)), strs(swanNet(1))
		}
		p.WantLocalTS, p.WantRemoteTS = strs(cygNet(1)), strs(swanNet(1))
		p.Pings = [][2]netip.Addr{{host(cygNet(1)), host(swanNet(1))}}
	case TSSeveral:
		p.CygLocalTS, p.CygRemoteTS = strs(cygNet(1), cygNet(2)), strs(swanNet(1), swanNet(2))
		p.SwanLocalTS, p.SwanRemoteTS = strs(swanNet(1), swanNet(2)), strs(cygNet(1), cygNet(2))
		p.WantLocalTS, p.WantRemoteTS = p.CygLocalTS, p.CygRemoteTS
		p.Pings = [][2]netip.Addr{{host(cygNet(1)), host(swanNet(1))}, {host(cygNet(2)), host(swanNet(2))}}
	}
	for _, pg := range p.Pings {
		p.CygInner = append(p.CygInner, pg[0])
		p.SwanInner = append(p.SwanInner, pg[1])
	}
	if p.PFSChild != "" {
		// Outside the first child's blocks: a responder that picks child
		// configurations by first fit rather than best fit would otherwise
		// take the first child's for it.
		cygPFS, swanPFS := innerBlock(c.Inner, 0xc, i), innerBlock(c.Inner, 0xd, i)
		p.PFSCygLocalTS, p.PFSCygRemoteTS = strs(cygPFS), strs(swanPFS)
		p.WantPFSLocalTS, p.WantPFSRemoteTS = p.PFSCygLocalTS, p.PFSCygRemoteTS
		// kernel-libipsec wants a local address inside its selectors.
		p.SwanInner = append(p.SwanInner, host(subnet(swanPFS, 1)))
		p.CygInner = append(p.CygInner, host(subnet(cygPFS, 1)))
	}
	return p
}

func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// innerBlock is a block for case i (i < 50): side 0xa (Cygnet's) is
// 10.i.0.0/16 or fd00:a:i::/48, side 0xb (strongSwan's) 10.100+i.0.0/16 or
// fd00:b:i::/48; 0xc and 0xd, the PFS child's, are 10.50+i.0.0/16 and
// 10.150+i.0.0/16, or fd00:c:i::/48 and fd00:d:i::/48.
func innerBlock(family string, side, i int) netip.Prefix {
	if family == IPv6 {
		return netip.MustParsePrefix(fmt.Sprintf("fd00:%x:%x::/48", side, i))
	}
	second := i + map[int]int{0xa: 0, 0xb: 100, 0xc: 50, 0xd: 150}[side]
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", second))
}

// subnet returns subnet k of a block: the /24 10.x.k.0 or the /64 ...:k::.
func subnet(block netip.Prefix, k int) netip.Prefix {
	a := block.Addr().AsSlice()
	if block.Addr().Is4() {
		a[2] = byte(k)
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(a)), 24)
	}
	a[6], a[7] = byte(k>>8), byte(k)
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(a)), 64)
}

// host is the first host of a subnet (10.x.k.1, ...:k::1).
func host(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// Credentials names the files of one side's certificate authentication.
type Credentials struct {
	Cert  string   // our leaf certificate (PEM)
	Chain []string // intermediates to send after it
	Key   string   // its private key (PEM)
	Roots []string // trust anchors for the peer's chain
}

// CygnetConnection renders the case's connection for Cygnet's YAML
// configuration (indented for the "connections:" mapping). cred is nil for
// PSK cases. rekey is the CHILD_SA rekey_time Cygnet uses ("" for the
// default): when Cygnet initiates, the suite makes it rekey soon.
func (p Plan) CygnetConnection(cred *Credentials, rekey string) string {
	var b strings.Builder
	q := func(ss ...string) string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%q", s))
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	fmt.Fprintf(&b, "  %s:\n", p.Conn)
	fmt.Fprintf(&b, "    local_addrs: %s\n", q(p.CygOuter.String()))
	fmt.Fprintf(&b, "    remote_addrs: %s\n", q(p.SwanOuter.String()))
	fmt.Fprintf(&b, "    proposals: %s\n", q(p.Case.IKE))
	if cred == nil {
		fmt.Fprintf(&b, "    local: {auth: psk, id: %q}\n", p.CygID)
		fmt.Fprintf(&b, "    remote: {auth: psk, id: %q}\n", p.SwanID)
	} else {
		fmt.Fprintf(&b, "    local: {auth: pubkey, id: %q, certs: %s, key: %q}\n", p.CygID, q(append([]string{cred.Cert}, cred.Chain...)...), cred.Key)
		fmt.Fprintf(&b, "    remote: {auth: pubkey, id: %q, cacerts: %s}\n", p.SwanID, q(cred.Roots...))
	}
	b.WriteString("    children:\n")
	child := func(name string, local, remote []string) {
		fmt.Fprintf(&b, "      %s:\n", name)
		fmt.Fprintf(&b, "        local_ts: %s\n", q(local...))
		fmt.Fprintf(&b, "        remote_ts: %s\n", q(remote...))
		fmt.Fprintf(&b, "        esp_proposals: %s\n", q(p.Case.ESP))
		fmt.Fprintf(&b, "        mode: %s\n", p.Case.Mode)
		if rekey != "" {
			fmt.Fprintf(&b, "        rekey_time: %s\n        life_time: 1h\n", rekey)
		}
	}
	child(p.Child, p.CygLocalTS, p.CygRemoteTS)
	if p.PFSChild != "" {
		child(p.PFSChild, p.PFSCygLocalTS, p.PFSCygRemoteTS)
	}
	return b.String()
}

// CygnetSecret renders the case's entry of Cygnet's "secrets:" list ("" for
// certificate cases).
func (p Plan) CygnetSecret(psk string) string {
	if p.Case.Auth != AuthPSK {
		return ""
	}
	return fmt.Sprintf("  - ids: [%q, %q]\n    psk: %q\n", p.CygID, p.SwanID, psk)
}

// SwanConnection renders the case's connection for strongSwan's
// swanctl.conf (inside "connections { }"). cert is strongSwan's certificate
// file name in its x509 directory ("" for PSK).
func (p Plan) SwanConnection(cert string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\t%s {\n", p.Conn)
	fmt.Fprintf(&b, "\t\tversion = 2\n\t\tlocal_addrs = %s\n\t\tremote_addrs = %s\n", p.SwanOuter, p.CygOuter)
	fmt.Fprintf(&b, "\t\tproposals = %s\n", p.Case.IKE)
	// With kernel-libipsec a route change looks like a roam to MOBIKE.
	b.WriteString("\t\tmobike = no\n\t\tunique = never\n")
	if cert == "" {
		fmt.Fprintf(&b, "\t\tlocal {\n\t\t\tauth = psk\n\t\t\tid = %s\n\t\t}\n", p.SwanID)
		fmt.Fprintf(&b, "\t\tremote {\n\t\t\tauth = psk\n\t\t\tid = %s\n\t\t}\n", p.CygID)
	} else {
		fmt.Fprintf(&b, "\t\tlocal {\n\t\t\tauth = pubkey\n\t\t\tid = %s\n\t\t\tcerts = %s\n\t\t}\n", p.SwanID, cert)
		fmt.Fprintf(&b, "\t\tremote {\n\t\t\tauth = pubkey\n\t\t\tid = %s\n\t\t}\n", p.CygID)
	}
	b.WriteString("\t\tchildren {\n")
	child := func(name string, local, remote []string) {
		fmt.Fprintf(&b, "\t\t\t%s {\n", name)
		fmt.Fprintf(&b, "\t\t\t\tlocal_ts = %s\n\t\t\t\tremote_ts = %s\n", strings.Join(local, ","), strings.Join(remote, ","))
		fmt.Fprintf(&b, "\t\t\t\tesp_proposals = %s\n\t\t\t\tmode = %s\n", p.Case.ESP, p.Case.Mode)
		b.WriteString("\t\t\t}\n")
	}
	child(p.Child, p.SwanLocalTS, p.SwanRemoteTS)
	if p.PFSChild != "" {
		child(p.PFSChild, p.PFSCygRemoteTS, p.PFSCygLocalTS)
	}
	b.WriteString("\t\t}\n\t}\n")
	return b.String()
}

// SwanSecret renders the case's PSK for swanctl.conf's "secrets { }".
func (p Plan) SwanSecret(psk string) string {
	if p.Case.Auth != AuthPSK {
		return ""
	}
	return fmt.Sprintf("\tike-%s {\n\t\tid-1 = %s\n\t\tid-2 = %s\n\t\tsecret = %q\n\t}\n", p.Conn, p.SwanID, p.CygID, psk)
}
