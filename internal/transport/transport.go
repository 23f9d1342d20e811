// Package transport moves IKE messages and UDP-encapsulated ESP packets
// between Cygnet and its peers: UDP sockets on the IKE port (500) and the
// NAT-T port (4500), and the framing that tells the two apart there.
//
// On the IKE port every datagram is an IKE message. On the NAT-T port
// (RFC 3948, RFC 7296 2.23) a datagram is an IKE message behind a four-octet
// non-ESP marker, a one-octet NAT-keepalive, or an ESP packet starting at its
// SPI. Classify implements that demultiplexing; UDP applies it to real
// sockets, and the memnet subpackage to a simulated network for tests.
//
// The transport decides nothing about SAs: IKE messages go to
// Handler.HandleIKE, ESP packets to Handler.HandleESP, in batches.
//
// On Linux the sockets move datagrams in batches (recvmmsg, sendmmsg), and
// the NAT-T sockets use the kernel's UDP offloads where it has them: a run
// of equal-sized ESP packets to one peer leaves as one message with
// UDP_SEGMENT (GSO), and with UDP_GRO the kernel hands such runs up whole,
// to be cut apart here. Both keep the datagrams on the wire as they were.
package transport

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
)

// Packet is one IKE message or one ESP packet, with its addresses.
type Packet struct {
	// Local is the address and port the datagram arrived on, or is to be
	// sent from. On receive its address is the datagram's destination
	// address, also when the socket is bound to a wildcard address.
	Local netip.AddrPort
	// Remote is the peer's address and port.
	Remote netip.AddrPort
	// Data is an IKE message without the non-ESP marker, or an ESP packet
	// starting at its SPI.
	Data []byte
}

// Handler receives what the transport reads. Its methods run on the
// transport's reader goroutines, one per socket: a slow handler stalls that
// socket, so hand work off rather than doing it inline. A handler must not
// call Close.
type Handler interface {
	// HandleIKE gets one IKE message. p.Data is a buffer of its own: the
	// handler may keep it.
	HandleIKE(p Packet)
	// HandleESP gets UDP-encapsulated ESP packets. The slice and every
	// Data in it belong to the transport and are valid only during the
	// call: the data plane decrypts in place or copies.
	HandleESP(batch []Packet)
}

// Endpoint is what the runtime and data plane send through. *UDP and
// *memnet.Endpoint implement it.
type Endpoint interface {
	// SendIKE sends one IKE message from p.Local (address and port) to
	// p.Remote, prepending the non-ESP marker when p.Local's port is the
	// NAT-T port. SendIKE does not keep p.Data.
	SendIKE(p Packet) error
	// SendESP sends ESP packets, each from its Local (a NAT-T port) to its
	// Remote. It does not keep the slice or the Data buffers.
	SendESP(batch []Packet) error
	// SendKeepalive sends a NAT-keepalive from local (a NAT-T port).
	SendKeepalive(local, remote netip.AddrPort) error
	// LocalAddrs lists the bound addresses and ports.
	LocalAddrs() []netip.AddrPort
	// Stats returns a snapshot of the counters.
	Stats() Stats
	// Close stops the readers and waits for them.
	Close() error
}

// Config configures ListenUDP (and memnet's Listen).
type Config struct {
	// Addrs are the local addresses to bind. Empty means the wildcard
	// addresses of IPv4 and IPv6 (IPv6 is skipped if the host has none).
	Addrs []netip.Addr
	// Port is the IKE port (500 in production). NATPort is the NAT-T port
	// (4500). Zero picks a free port, the same one for every address; the
	// daemon's config supplies 500 and 4500.
	Port, NATPort int
	// BatchSize is how many datagrams one recvmmsg/sendmmsg call moves at
	// most. Zero means DefaultBatchSize.
	BatchSize int
	// SocketBuffer is the SO_RCVBUF/SO_SNDBUF size asked for on NAT-T
	// sockets, which carry ESP. Zero means DefaultSocketBuffer; negative
	// leaves the kernel's default.
	SocketBuffer int
	// KernelEncap sets UDP_ENCAP_ESPINUDP on the NAT-T sockets, so that the
	// kernel's XFRM stack decapsulates ESP for SAs it holds (and swallows
	// NAT-keepalives) while IKE still reaches us. Only for the xfrm data
	// plane; the userspace data plane must leave it off.
	KernelEncap bool
	// Control, if set, is called with every socket the transport binds
	// (the IKE and NAT-T ports, each address and family) after its own
	// options are set and before it is used; an error fails ListenUDP.
	// The xfrm data plane uses it for per-socket IPsec bypass policies
	// (xfrm.BypassSocket). memnet ignores it.
	Control func(fd int, v6 bool) error
	// NoOffload leaves UDP segmentation offload (UDP_SEGMENT: a run of
	// equal-sized ESP packets to one peer leaves in one send) and UDP GRO
	// (the kernel hands such runs up whole) off on the NAT-T sockets. They
	// are on by default where the kernel has them (Linux 4.18 and 5.0).
	NoOffload bool
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
}

// Defaults for Config's zero values.
const (
	DefaultBatchSize    = 32
	DefaultSocketBuffer = 4 << 20
	// MaxBatchSize bounds BatchSize.
	MaxBatchSize = 1024
)

// Errors. Send errors wrap these where they apply; test with errors.Is.
var (
	// ErrClosed is returned by sends on a closed endpoint. It is net.ErrClosed.
	ErrClosed = net.ErrClosed
	// ErrNoSocket means no bound socket matches the packet's Local address
	// and port (or its address family).
	ErrNoSocket = errors.New("transport: no socket for local address")
	// ErrNotNATPort means an ESP packet or keepalive was to be sent from a
	// port that is not the NAT-T port.
	ErrNotNATPort = errors.New("transport: ESP and keepalives go from the NAT-T port only")
	// ErrBadESP means an outbound ESP packet is too short or has SPI zero,
	// which the peer would read as IKE (RFC 3948 2.1).
	ErrBadESP = errors.New("transport: ESP packet too short or with SPI zero")
)

// Counter counts packets and their bytes.
type Counter struct {
	Packets, Bytes uint64
}

func (c *Counter) add(o Counter) {
	c.Packets += o.Packets
	c.Bytes += o.Bytes
}

// DropReason says why a received datagram went to no handler.
type DropReason uint8

const (
	// DropKeepalive: a NAT-keepalive (RFC 3948 2.3), dropped as it should be.
	DropKeepalive DropReason = iota
	// DropShort: too short to be an IKE message or an ESP packet.
	DropShort
	// DropTruncated: longer than the receive buffer.
	DropTruncated
	// NumDropReasons is the number of reasons (the length of Stats.Drops).
	NumDropReasons
)

func (r DropReason) String() string {
	switch r {
	case DropKeepalive:
		return "keepalive"
	case DropShort:
		return "short"
	case DropTruncated:
		return "truncated"
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// Stats are an endpoint's counters since it was opened. Bytes count UDP
// payload, without the non-ESP marker for IKE.
type Stats struct {
	IKEIn, IKEOut Counter
	ESPIn, ESPOut Counter
	KeepalivesOut uint64
	// Drops counts received datagrams by DropReason.
	Drops [NumDropReasons]uint64
	// SendErrors counts packets that a send call did not send.
	SendErrors uint64
	// ReceiveErrors counts failed receive calls (not packets).
	ReceiveErrors uint64
	// GSOOut counts sends that carried several ESP packets in one
	// message (UDP_SEGMENT); GROIn counts received datagrams that the
	// kernel had coalesced (UDP_GRO) and the transport cut apart. The
	// packets are counted in ESPOut, ESPIn and IKEIn as always.
	GSOOut, GROIn uint64
}
