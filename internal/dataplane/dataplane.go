// Package dataplane is the boundary between Cygnet's IKE side and whatever
// moves ESP packets (DESIGN.md, "Data plane Backend"): the Backend interface,
// the types it speaks (SAs with their keys, traffic selectors, counters,
// events), and the "none" backend, which negotiates nothing on the wire and
// only keeps the books.
//
// Implementations: None (IKE only), userspace (ESP over TUN, RFC 4303 with
// internal/esp) and xfrm (the Linux kernel over netlink). The package does not
// import the IKE engine: the runtime translates the engine's CHILD_SAs into
// SAs here.
//
// Make-before-break is part of every backend's contract (DESIGN.md,
// "Invariants"): a rekeyed SA's replacement is installed inbound first, the
// outbound direction switches atomically, and the old inbound SA stays live
// until the runtime removes it, so that packets still in flight under the old
// SPI are accepted. The initiator of a rekey switches outbound at Install;
// the responder installs with SA.DeferOutbound and switches with
// ActivateOutbound once the initiator holds the new SA (RFC 7296 2.8).
package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Mode is the IPsec mode of an SA (RFC 4301 4.1).
type Mode uint8

const (
	Tunnel Mode = iota
	Transport
)

func (m Mode) String() string {
	switch m {
	case Tunnel:
		return "tunnel"
	case Transport:
		return "transport"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Selector is one traffic selector (RFC 7296 3.13.1, RFC 4301 4.4.1): a range
// of addresses of one family, an IP protocol (0: any) and a range of ports
// (0-65535: any; for ICMP, type and code as RFC 4301 4.4.1.1 describes).
type Selector struct {
	Start, End         netip.Addr
	Protocol           uint8
	StartPort, EndPort uint16
}

// String prints the selector as strongSwan does: a prefix where the range is
// one ("10.1.0.0/16"), else "start-end", then "[proto/port]" if it narrows
// protocol or ports.
func (s Selector) String() string {
	var addr string
	if p, ok := rangePrefix(s.Start, s.End); ok {
		addr = p.String()
	} else {
		addr = s.Start.String() + "-" + s.End.String()
	}
	anyPort := s.StartPort == 0 && s.EndPort == 0xffff
	if s.Protocol == 0 && anyPort {
		return addr
	}
	proto := fmt.Sprint(s.Protocol)
	switch s.Protocol {
	case 0:
		proto = ""
	case 1:
		proto = "icmp"
	case 6:
		proto = "tcp"
	case 17:
		proto = "udp"
	case 58:
		proto = "ipv6-icmp"
	}
	switch {
	case anyPort:
		return addr + "[" + proto + "]"
	case s.StartPort == s.EndPort:
		return fmt.Sprintf("%s[%s/%d]", addr, proto, s.StartPort)
	default:
		return fmt.Sprintf("%s[%s/%d-%d]", addr, proto, s.StartPort, s.EndPort)
	}
}

// rangePrefix returns the prefix covering exactly start..end, if there is one.
func rangePrefix(start, end netip.Addr) (netip.Prefix, bool) {
	if !start.IsValid() || start.BitLen() != end.BitLen() {
		return netip.Prefix{}, false
	}
	for bits := 0; bits <= start.BitLen(); bits++ {
		p, err := start.Prefix(bits)
		if err != nil || p.Addr() != start {
			continue
		}
		if lastAddr(p) == end {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// SA is a CHILD_SA pair as a backend installs it: an inbound SA (packets from
// Remote to Local with InSPI) and an outbound SA (Local to Remote with OutSPI).
//
// The key slices belong to the backend once Install succeeds: the caller must
// not keep or modify them, and the backend zeroes them when the SA is removed
// (DESIGN.md: key material is zeroed when its SA dies). If Install fails, the
// caller still owns them and should zero them itself (Zero).
type SA struct {
	// ReqID ties the SA to its policies; it is stable for one CHILD_SA
	// configuration instance, so a rekeyed SA keeps its predecessor's.
	ReqID uint32
	// Name is the CHILD_SA configuration's name, for logs and status.
	Name string
	Mode Mode
	// Encap is UDP encapsulation of ESP (RFC 3948): then the ports of
	// Local and Remote are the NAT-T ports ESP goes between.
	Encap bool

	// Local and Remote are the outer addresses of the tunnel (or the
	// endpoints, in transport mode).
	Local, Remote netip.AddrPort

	InSPI, OutSPI uint32

	Encr wire.EncrID
	// EncrKeyLen is the negotiated Key Length attribute in bits (128, 192,
	// 256 for AES), or the cipher's fixed length.
	EncrKeyLen int
	// Integ is AUTH_NONE with an AEAD.
	Integ wire.IntegID
	// ESN: 64-bit extended sequence numbers (RFC 4303 2.2.1).
	ESN bool

	// The keys of each direction; an AEAD's encryption key includes its
	// salt (RFC 4106 8.1, RFC 7634 2), integrity keys are empty then.
	InEncrKey, InIntegKey, OutEncrKey, OutIntegKey []byte

	// LocalTS and RemoteTS are the negotiated traffic selectors.
	LocalTS, RemoteTS []Selector

	// ReplayWindow is the inbound anti-replay window in packets; 0: off.
	ReplayWindow int

	// Lifetimes in bytes and packets (0: none); the backend raises
	// SoftExpire and HardExpire events when they are reached.
	SoftBytes, HardBytes, SoftPackets, HardPackets uint64

	// DeferOutbound installs the inbound SA and the outbound SA, but
	// outbound traffic of ReqID stays on the SA that carries it now (the
	// one Install replaces, if any) until ActivateOutbound names this SA.
	// The responder of a CHILD_SA rekey needs this (RFC 7296 2.8): the
	// initiator may not hold the new SA before our answer reaches it, so
	// it must be able to receive on the new SA before we send on it.
	DeferOutbound bool

	// IfID binds the pair to the XFRM interface with this if_id
	// (route-based mode, connections.X.if_id): its states and policies
	// apply only to traffic routed through that interface. 0: policy-based
	// mode. Backends without XFRM interfaces refuse an SA with IfID != 0
	// (ErrInvalidSA), except None, which only keeps the books.
	IfID uint32
}

// Zero overwrites the SA's keys with zeros.
func (sa *SA) Zero() {
	for _, k := range [][]byte{sa.InEncrKey, sa.InIntegKey, sa.OutEncrKey, sa.OutIntegKey} {
		clear(k)
	}
}

// LogValue describes the SA without its keys.
func (sa *SA) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", sa.Name),
		slog.Uint64("reqid", uint64(sa.ReqID)),
		slog.String("spi_in", fmt.Sprintf("%08x", sa.InSPI)),
		slog.String("spi_out", fmt.Sprintf("%08x", sa.OutSPI)),
		slog.String("mode", sa.Mode.String()),
		slog.Bool("encap", sa.Encap),
		slog.Uint64("if_id", uint64(sa.IfID)),
		slog.String("local", sa.Local.String()),
		slog.String("remote", sa.Remote.String()),
	)
}

// String describes the SA without its keys.
func (sa *SA) String() string {
	return fmt.Sprintf("%s reqid %d in %08x out %08x %s %v<->%v", sa.Name, sa.ReqID, sa.InSPI, sa.OutSPI, sa.Mode, sa.Local, sa.Remote)
}

// GoString keeps %#v from printing keys.
func (sa *SA) GoString() string { return "dataplane.SA{" + sa.String() + "}" }

// DropReason says why a backend dropped a packet.
type DropReason uint8

const (
	DropReplay    DropReason = iota // outside or already seen in the replay window (RFC 4303 3.4.3)
	DropIntegrity                   // ICV check failed (RFC 4303 3.4.4)
	DropMalformed                   // bad padding, bad next header, truncated
	DropPolicy                      // inner packet not within the SA's selectors (RFC 4301 5.2)
	DropNoSA                        // no SA for the SPI, or no SA for an outbound packet
	DropExpired                     // the SA's hard lifetime or sequence space is used up
	// Outbound packets that go into no SA (Totals only):
	DropNoPolicy // matched no policy (RFC 4301 5.1: DISCARD)
	DropTrap     // matched a trap policy: dropped after raising Acquire
	DropError    // a send or device write failed
	NumDropReasons
)

func (r DropReason) String() string {
	switch r {
	case DropReplay:
		return "replay"
	case DropIntegrity:
		return "integrity"
	case DropMalformed:
		return "malformed"
	case DropPolicy:
		return "policy"
	case DropNoSA:
		return "no_sa"
	case DropExpired:
		return "expired"
	case DropNoPolicy:
		return "no_policy"
	case DropTrap:
		return "trap"
	case DropError:
		return "error"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// Counters are one SA pair's traffic counters. Bytes count inner packets
// (what the tunnel carried), as strongSwan and the kernel report them.
type Counters struct {
	BytesIn, BytesOut     uint64
	PacketsIn, PacketsOut uint64
	// Drops counts inbound packets dropped for this SA, by reason.
	Drops [NumDropReasons]uint64
	// LastIn and LastOut are when the last packet was accepted or sent;
	// zero if none was. DPD can skip a liveness check after recent
	// inbound traffic (RFC 7296 2.4).
	LastIn, LastOut time.Time
}

// Totals are a backend's traffic counters summed over every SA it has held,
// removed ones included, so they only grow: what the runtime exports as
// metrics. Drops also counts the packets that belonged to no SA (an unknown
// SPI, no policy, a trap, a failed send).
type Totals struct {
	BytesIn, BytesOut     uint64
	PacketsIn, PacketsOut uint64
	Drops                 [NumDropReasons]uint64
}

// Totaler is implemented by backends that move packets and count them.
type Totaler interface {
	Totals() Totals
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// Acquire: an outbound packet matched a trap policy without an SA
	// (RFC 4301 5.1: the IKE side should negotiate one). Packet says
	// which; ReqID names the trap.
	Acquire EventKind = iota
	// SoftExpire: the SA reached its soft lifetime; rekey it.
	SoftExpire
	// HardExpire: the SA reached its hard lifetime; the backend no longer
	// uses it. Delete it.
	HardExpire
)

func (k EventKind) String() string {
	switch k {
	case Acquire:
		return "acquire"
	case SoftExpire:
		return "soft-expire"
	case HardExpire:
		return "hard-expire"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is something the data plane tells the IKE side.
type Event struct {
	Kind EventKind
	// InSPI names the SA of an expire event (0 for Acquire).
	InSPI uint32
	// ReqID is the SA's or the trap policy's request ID.
	ReqID uint32
	// Packet is the selector of the packet that triggered an Acquire: its
	// source and destination (Start is the source address, End the
	// destination), protocol and ports. Zero otherwise.
	Packet Selector
}

// Trap describes the trap policy of a CHILD_SA configuration that is
// negotiated on demand (start_action: trap, RFC 4301 5.1).
type Trap struct {
	// ReqID is the CHILD_SA configuration's request ID: the SA negotiated
	// for the trap is installed with it, and Acquire events carry it.
	ReqID uint32
	// Name is the CHILD_SA configuration's name, for logs.
	Name string
	Mode Mode
	// Local and Remote are the outer addresses the SA will use (tunnel
	// endpoints; in transport mode the hosts), or invalid if not known. A
	// kernel backend needs them: its ACQUIRE creates a larval state from
	// the trap's template, which only an SA of the same mode and addresses
	// completes.
	Local, Remote netip.Addr
	// LocalTS and RemoteTS are the configured selectors ("dynamic"
	// resolved to the outer addresses).
	LocalTS, RemoteTS []Selector
	// IfID: as SA.IfID.
	IfID uint32
}

// Backend is a data plane. Its methods are safe for concurrent use: the
// runtime calls them from several workers at once.
type Backend interface {
	// AllocSPI returns an inbound SPI that no installed SA uses and that
	// AllocSPI has not returned recently; SPIs 0-255 are never returned
	// (RFC 4303 2.1). An allocation that no Install uses within a few
	// minutes becomes free again (as the kernel's larval SAs do).
	AllocSPI() (uint32, error)

	// Install makes an SA pair live: inbound first, then outbound. With
	// replaces != 0 (the inbound SPI of the SA being rekeyed) the outbound
	// switch from the old SA to the new one is atomic and the old inbound
	// stays live until Remove(old) (make-before-break). With
	// sa.DeferOutbound there is no switch yet: the old SA (or whichever SA
	// of sa.ReqID carries outbound traffic now) keeps carrying it until
	// ActivateOutbound(sa.InSPI). On success the backend owns sa and its
	// keys.
	Install(sa *SA, replaces uint32) error

	// ActivateOutbound switches the outbound traffic of the ReqID of the
	// SA pair with inbound SPI inSPI to that pair, atomically: every packet
	// is sealed either with the SA that carried it before or with this
	// one, none is lost or sent twice, and from the switch on none uses the
	// old one. The SAs that carried it stay installed (their inbound
	// included) until removed. Activating a pair that already carries its
	// ReqID's traffic is a no-op. Unknown SPIs give ErrUnknownSPI.
	ActivateOutbound(inSPI uint32) error

	// Remove deletes the SA pair whose inbound SPI is inSPI and zeroes its
	// keys. It also frees an SPI that AllocSPI returned and no Install
	// used. Unknown SPIs give ErrUnknownSPI.
	Remove(inSPI uint32) error

	// Counters returns the counters of the SA pair with inbound SPI inSPI.
	Counters(inSPI uint32) (Counters, bool)

	// SetEventHandler sets the function that receives events; nil drops
	// them. The handler runs on the backend's goroutines and must not
	// block: hand events off.
	SetEventHandler(func(Event))

	// Trap installs a trap policy for the CHILD_SA configuration t.ReqID
	// (start_action: trap, RFC 4301 5.1): an outbound packet that matches
	// t.LocalTS × t.RemoteTS (source in a local selector, destination in a
	// remote one) and no installed SA raises an Acquire event with this
	// reqid and the packet's selector, and is dropped. Backends rate-limit
	// Acquires per trap (the runtime negotiates once, not per packet).
	// Trap policies rank after every SA's policies and stay installed
	// while SAs come and go: when the SAs of the reqid are removed, its
	// traffic raises Acquire again. Trapping a reqid again replaces its
	// trap.
	Trap(t Trap) error

	// Untrap removes the trap policy of reqid; without one it returns
	// ErrUnknownTrap.
	Untrap(reqid uint32) error

	// Close removes everything the backend installed (zeroing the keys)
	// and releases its resources. Later calls fail with ErrClosed.
	Close() error
}

// Errors a backend returns; implementations wrap them where they apply, so
// test with errors.Is.
var (
	ErrClosed      = errors.New("dataplane: backend is closed")
	ErrUnknownSPI  = errors.New("dataplane: no SA with this inbound SPI")
	ErrSPIInUse    = errors.New("dataplane: inbound SPI already installed")
	ErrInvalidSA   = errors.New("dataplane: invalid SA")
	ErrNoFreeSPI   = errors.New("dataplane: no free inbound SPI")
	ErrUnknownTrap = errors.New("dataplane: no trap policy with this reqid")
)
