package sa

import (
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Env holds what the engine needs from outside; it is shared by all IKE SAs
// of a daemon. Its functions may be called from several goroutines at once
// (one per IKE SA owner, and the Responder's callers), so they must be safe
// for concurrent use; Rand is read under no lock of ours.
type Env struct {
	// Rand supplies nonces, key exchange private keys, SPIs drawn by the
	// engine, IVs and retransmission jitter: crypto/rand.Reader in production
	// (nil means crypto/rand.Reader), a seeded reader in tests.
	Rand io.Reader
	// Log receives the engine's log lines; nil discards them. Attributes:
	// spi_i, spi_r, msgid, exchange, peer (and conn, reason, ...).
	Log *slog.Logger
	// NewIKESPI returns a fresh non-zero local IKE SPI, unique in the daemon
	// (the runtime's routing key). nil: the engine draws one from Rand, and
	// the runtime must then cope with (improbable) collisions itself.
	NewIKESPI func() uint64
	// NewChildSPI returns a fresh inbound ESP SPI (the data plane owns the
	// SAD). An SPI handed out for a CHILD_SA that then fails is reported in
	// ChildFailed.SPI so that the data plane can release it.
	NewChildSPI func() (uint32, error)
	// KeyLog asks for KeysDerived events: set it only when the keys are
	// written to a key log, so that no copy of them is made otherwise.
	KeyLog bool

	// nonceHook, in tests only, may rewrite each CREATE_CHILD_SA nonce we
	// draw (to decide which side wins a rekey collision).
	nonceHook func(nonce []byte)
}

// AuthMethod is how one side of a connection authenticates.
type AuthMethod uint8

const (
	// AuthPSK is a pre-shared key (RFC 7296 2.15, auth method 2).
	AuthPSK AuthMethod = iota + 1
	// AuthPubKey is a signature with a certificate's key: RSA (method 1 or
	// RFC 7427 method 14), ECDSA (methods 9-11 or 14), Ed25519 (14).
	AuthPubKey
)

func (m AuthMethod) String() string {
	switch m {
	case AuthPSK:
		return "psk"
	case AuthPubKey:
		return "pubkey"
	}
	return fmt.Sprintf("AuthMethod(%d)", uint8(m))
}

// CertPolicy says when we send our certificates in CERT payloads.
type CertPolicy uint8

const (
	// CertAlways sends our certificate chain whenever we authenticate with a
	// public key (the zero value; what package auth recommends: most peers
	// do not hold our certificate).
	CertAlways CertPolicy = iota
	// CertIfAsked sends it only if the peer sent a CERTREQ (strongSwan's
	// send_cert = ifasked).
	CertIfAsked
	// CertNever never sends certificates (the peer holds ours).
	CertNever
)

// LocalAuth is how we authenticate to the peer.
type LocalAuth struct {
	Method AuthMethod
	// ID is our identity. %any (the zero Identity) means: the subject DN of
	// our certificate with AuthPubKey, our IKE address with AuthPSK
	// (strongSwan's defaults).
	ID auth.Identity
	// Cred is our certificate chain and key (AuthPubKey only).
	Cred *auth.Credential
	// PreferPSS signs with RSASSA-PSS rather than PKCS#1 v1.5 when RFC 7427
	// signatures are possible (strongSwan's "rsa/pss").
	PreferPSS bool
	// SendCert says when CERT payloads go out (default CertAlways).
	SendCert CertPolicy
}

// RemoteAuth is how the peer must authenticate to us.
type RemoteAuth struct {
	Method AuthMethod
	// ID is the identity the peer must have; %any (the zero Identity) or a
	// pattern ("*.example", "CN=*") accepts what its certificate proves.
	// A concrete ID is also sent as the IDr hint in IKE_AUTH (RFC 7296 3.5).
	ID auth.Identity
	// Roots are the trust anchors for the peer's certificate chain
	// (AuthPubKey).
	Roots *x509.CertPool
	// CACerts are the same anchors as certificates: our CERTREQ names them
	// (RFC 7296 3.7). Optional; without them no CERTREQ is sent.
	CACerts []*x509.Certificate
	// AllowSHA1 accepts RSA signatures with SHA-1 (auth method 1, from peers
	// that do not implement RFC 7427). RFC 8247 2.4 deprecates them; off by
	// default.
	AllowSHA1 bool
}

// Retransmit sets the initiator's retransmission schedule (RFC 7296 2.1):
// the n-th retransmission (n = 1..Tries) goes out Timeout*Base^(n-1) after
// the previous transmission, and the exchange fails Timeout*Base^Tries after
// the last one. With strongSwan's defaults (4s, 1.8, 5) that is after about
// 165 s.
type Retransmit struct {
	Timeout time.Duration // first timeout; default 4s
	Base    float64       // growth factor; default 1.8
	Tries   int           // retransmissions before giving up; default 5
	// Jitter in [0, 1) shortens each timeout by a random fraction of up
	// to Jitter (strongSwan's retransmit_jitter), so that many SAs started
	// together do not retransmit in lockstep. Default 0.
	Jitter float64
	// Limit caps a single timeout; 0: no cap.
	Limit time.Duration
}

// Config is one connection's configuration. It is immutable once handed to
// the engine and shared by all IKE SAs of the connection. Zero durations
// and sizes mean the documented defaults.
type Config struct {
	Name         string
	IKEProposals []algs.Proposal // in preference order
	Local        LocalAuth
	Remote       RemoteAuth
	// PSK returns the pre-shared key between the two identities (RFC 7296
	// 2.15); false: none. Called with our identity and the peer's.
	PSK func(local, remote auth.Identity) ([]byte, bool)

	// Fragmentation announces and uses IKE fragmentation (RFC 7383).
	Fragmentation bool
	// FragmentSize is the largest IKE datagram we send, in bytes, counting
	// the IP and UDP headers and the non-ESP marker (default 1280).
	FragmentSize int
	// ForceEncap fakes a NAT (RFC 7296 2.23, strongSwan's encap=yes): we send
	// a NAT_DETECTION_SOURCE_IP that cannot match, so that both sides float
	// to the NAT-T port and encapsulate ESP in UDP.
	ForceEncap bool
	// NATPort is our NAT-T port (default 4500); RemoteNATPort the peer's
	// (default 4500).
	NATPort, RemoteNATPort uint16

	Retransmit Retransmit
	// HalfOpenTimeout is how long a responder waits for IKE_AUTH after
	// IKE_SA_INIT (default 30s). The initiator's handshake is bounded by
	// the retransmission schedule.
	HalfOpenTimeout time.Duration
	// RekeyTime is the IKE SA's rekey interval (RFC 7296 2.18); 0: never.
	// The rekey starts RekeyTime after the SA was established, less a
	// random part of up to RandTime (RFC 7296 2.8.1: jitter, so that both
	// ends do not start at once). ReauthTime (reauthentication) is not
	// implemented: it is ignored.
	RekeyTime, ReauthTime time.Duration
	// RandTime is the largest random amount subtracted from RekeyTime
	// (strongSwan's rand_time); 0: a tenth of RekeyTime; negative: none.
	RandTime time.Duration
	// DPDDelay: after this long without hearing from the peer, an empty
	// INFORMATIONAL checks that it is alive (RFC 7296 2.4); 0: off. An
	// unanswered check fails the IKE SA after the retransmission schedule,
	// or after DPDTimeout if that is shorter (0: the schedule alone).
	DPDDelay, DPDTimeout time.Duration
	// RekeyOutboundTimeout bounds how long the responder of a CHILD_SA
	// rekey keeps sending on the old SA when the initiator's Delete of it
	// does not come (RFC 7296 2.8 lets the initiator delete it "after the
	// new one is established"): that long after our answer, and once the
	// peer has sent a later request (so it holds our answer and the new
	// SA), outbound switches to the new SA anyway. Default 5s.
	RekeyOutboundTimeout time.Duration

	Children []*ChildConfig
	// SendCertReq sends CERTREQ payloads naming Remote.CACerts when the peer
	// authenticates with a public key. strongSwan always does; the runtime
	// should default it to true.
	SendCertReq bool
	// InitialContact sends INITIAL_CONTACT in IKE_AUTH (RFC 7296 2.4): the
	// peer then deletes other IKE SAs it has with our identity.
	InitialContact bool
}

// Child returns the child configuration called name, or nil.
func (c *Config) Child(name string) *ChildConfig {
	for _, ch := range c.Children {
		if ch.Name == name {
			return ch
		}
	}
	return nil
}

// Mode is a CHILD_SA's encapsulation mode.
type Mode uint8

const (
	ModeTunnel    Mode = iota // the default (RFC 7296 1.3.1)
	ModeTransport             // requested with USE_TRANSPORT_MODE
)

func (m Mode) String() string {
	switch m {
	case ModeTunnel:
		return "tunnel"
	case ModeTransport:
		return "transport"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// TrafficSelector is a configured traffic selector (RFC 7296 3.13.1): the
// wire selector, or, with Dynamic set, the IKE SA's own address on that side
// (resolved when the CHILD_SA is negotiated), keeping IPProtocol and ports.
type TrafficSelector struct {
	wire.TrafficSelector
	Dynamic bool
}

// PrefixTS returns a selector for all traffic of prefix p (any protocol, any
// port).
func PrefixTS(p netip.Prefix) TrafficSelector {
	p = p.Masked()
	return TrafficSelector{TrafficSelector: rangeTS(p.Addr(), lastAddr(p), 0, 0, 0xffff)}
}

// DynamicTS returns the "dynamic" selector: the IKE address of its side, any
// protocol, any port.
func DynamicTS() TrafficSelector {
	return TrafficSelector{Dynamic: true, TrafficSelector: wire.TrafficSelector{EndPort: 0xffff}}
}

// ChildConfig is one CHILD_SA's configuration.
type ChildConfig struct {
	Name string
	// ReqID is copied into every ChildSA of this configuration: the runtime
	// assigns it, unique and stable per child configuration, for policies.
	ReqID             uint32
	LocalTS, RemoteTS []TrafficSelector // empty: [dynamic]
	Proposals         []algs.Proposal   // ESP; a key exchange in them means PFS for CREATE_CHILD_SA
	Mode              Mode
	// RekeyTime is the soft lifetime: the CHILD_SA is rekeyed (RFC 7296
	// 1.3.3) RekeyTime after its creation less a random part of up to
	// RandTime (0: a tenth of RekeyTime; negative: none). 0: never.
	RekeyTime, RandTime time.Duration
	// LifeTime is the hard lifetime: an SA still alive then is deleted.
	LifeTime time.Duration
	RekeyBytes, RekeyPackets,
	LifeBytes, LifePackets uint64
	ReplayWindow int
}

// ConfigSelector is how a responder finds configuration for an unknown
// peer. It is called from the Responder's callers and from IKE SAs, possibly
// concurrently.
type ConfigSelector interface {
	// ForInit returns the connections an IKE_SA_INIT from remote to local may
	// belong to, best address match first; IKE proposals are chosen from
	// them (the first whose proposals match wins).
	ForInit(local, remote netip.AddrPort) []*Config
	// ForAuth picks the connection for the identities seen in IKE_AUTH (the
	// peer's ID, and the IDr hint if the initiator sent one) among those
	// compatible with the negotiated IKE suite. nil and an error: no
	// connection (the responder answers AUTHENTICATION_FAILED). The peer's
	// identity is not authenticated yet: the engine verifies AUTH against
	// the returned configuration before it trusts anything.
	ForAuth(local, remote netip.AddrPort, peer auth.Identity, hint *auth.Identity, suite algs.Suite) (*Config, error)
}

// ResponderOptions tune the Responder's denial-of-service defences (RFC
// 7296 2.6).
type ResponderOptions struct {
	// CookieThreshold is the number of half-open IKE SAs at and above which
	// an IKE_SA_INIT without a valid COOKIE is answered with a COOKIE
	// (stateless). 0: the default, 30 (strongSwan's cookie_threshold);
	// negative: always demand cookies.
	CookieThreshold int
	// CookieRotate is how often the cookie secret changes (default 1 min);
	// a cookie made with the previous secret is still accepted.
	CookieRotate time.Duration
	// MaxHalfOpen is a hard cap: beyond it IKE_SA_INIT requests are dropped
	// (even with a valid cookie). 0: no cap.
	MaxHalfOpen int
}

// Output is what one step produced. The runtime applies Events in order
// FIRST (install CHILD_SAs before the packet that lets the peer use them
// goes out), then sends Packets in order.
type Output struct {
	Packets []Packet
	Events  []Event
}

// Packet is one datagram to send. Local's port picks the socket; the
// transport adds the non-ESP marker on the NAT-T port (RFC 3948 2.2).
type Packet struct {
	Local, Remote netip.AddrPort
	Data          []byte
}

// Event is something the runtime must act on or report. The set is closed:
// the types below.
type Event interface{ event() }

// KeysDerived reports that the SK_* keys of an IKE SA exist (RFC 7296
// 2.14): ours after IKE_SA_INIT, before IKE_AUTH is sent or answered, so
// that a capture of an IKE_AUTH that fails can still be decrypted; and,
// from the old IKE SA's step, those of an IKE SA a rekey created (2.18; one
// per new IKE SA, redundant ones of a collision included). SPIi and SPIr
// name the IKE SA the keys belong to. Only with Env.KeyLog.
type KeysDerived struct {
	SPIi, SPIr uint64
	// KeyLog is the Wireshark ikev2_decryption_table record of the IKE SA
	// (keys.IKEDecryptionRecord; empty for suites Wireshark cannot
	// decrypt). It holds the SA's secrets: write it only where the
	// operator asked.
	KeyLog string
}

// Established reports an IKE SA that completed IKE_AUTH.
type Established struct {
	SA Snapshot
	// KeyLog is the record KeysDerived carried for this IKE SA.
	//
	// Deprecated: write KeysDerived.KeyLog, which comes before IKE_AUTH
	// (and for rekeyed IKE SAs too); this copy goes once the daemon does.
	KeyLog string
	// InitialContact: the peer sent INITIAL_CONTACT (RFC 7296 2.4); the
	// runtime should delete other IKE SAs between the same identities.
	InitialContact bool
}

// ChildUp reports a new CHILD_SA to install.
//
// Make-before-break (RFC 7296 2.8): with Replaces set, the new SA replaces
// that one. Without OutboundDeferred, install the new pair and switch the
// child's outbound traffic to it at once (we initiated the rekey, or won
// its collision). With OutboundDeferred, install only its inbound half and
// keep sending on the SA that carries the child's traffic now, until a
// ChildOutbound names the new SA (we answered the peer's rekey: the peer
// may not hold the new SA before our answer reaches it). The replaced SA
// stays installed, inbound included, until its own ChildDown.
// OutboundDeferred may also come without Replaces (an SA created by a rekey
// collision that will be deleted again; its outbound is never used).
type ChildUp struct {
	Child            *ChildSA
	Replaces         *ChildSA
	OutboundDeferred bool
}

// ChildOutbound reports that outbound traffic of Child's CHILD_SA must now
// use Child (installed earlier with ChildUp.OutboundDeferred): the data
// plane switches the child's outbound SA to it atomically. The SA that
// carried the traffic stays installed until its ChildDown.
type ChildOutbound struct {
	Child *ChildSA
}

// Cause says why an SA went away, so that the runtime can apply the
// connection's policy (close_action for CausePeer, dpd_action for
// CauseDeadPeer) without parsing reasons.
type Cause uint8

const (
	CauseLocal     Cause = iota // we deleted it (a command, reload, shutdown)
	CausePeer                   // the peer deleted it
	CauseDeadPeer               // the peer stopped answering (RFC 7296 2.4)
	CauseExpired                // its hard lifetime ended without a rekey
	CauseRekeyed                // a rekey replaced it: nothing to do
	CauseRedundant              // a duplicate made by a rekey collision (RFC 7296 2.8.1): nothing to do
	CauseFailed                 // a protocol or installation error
)

func (c Cause) String() string {
	switch c {
	case CauseLocal:
		return "local"
	case CausePeer:
		return "peer"
	case CauseDeadPeer:
		return "dead-peer"
	case CauseExpired:
		return "expired"
	case CauseRekeyed:
		return "rekeyed"
	case CauseRedundant:
		return "redundant"
	case CauseFailed:
		return "failed"
	}
	return fmt.Sprintf("Cause(%d)", uint8(c))
}

// ChildDown reports a CHILD_SA to remove (deleted by either side, replaced
// by a rekey, expired, or with its IKE SA). If it carried the child's
// outbound traffic and another SA of the child remains, a ChildOutbound
// for that one comes first.
type ChildDown struct {
	Child  *ChildSA
	Reason string
	Cause  Cause
}

// ChildFailed reports a CHILD_SA that could not be created; the IKE SA stays
// up (RFC 7296 2.21.3).
type ChildFailed struct {
	Name string
	Err  error
	// SPI is the inbound SPI Env.NewChildSPI gave for it (0 if none), which
	// the data plane may release.
	SPI uint32
	// Rekeying, if set, is the CHILD_SA whose rekey failed: it stays
	// installed and the rekey is retried later (or it expires).
	Rekeying *ChildSA
}

// Failed reports that the IKE SA failed (handshake, AUTH, dead peer). Its
// CHILD_SAs have been reported down before it.
type Failed struct {
	Err   error
	Cause Cause // CauseDeadPeer when the peer stopped answering, else CauseFailed
}

// Deleted reports that the IKE SA finished normally (deleted by either
// side, or replaced by a rekey: Cause CauseRekeyed, and its CHILD_SAs live
// on in the new IKE SA).
type Deleted struct {
	Reason string
	Cause  Cause
}

// IKEAdded hands the runtime a new IKE SA created by a rekey of this one
// (RFC 7296 1.3.2) that does not take over yet: route its LocalSPI to it,
// on the same owner, and Tick it by its NextDeadline. It is one of the two
// IKE SAs of a rekey collision (2.8.2); an IKERekeyed names the winner
// later, and the loser is deleted by the side that created it.
type IKEAdded struct {
	SA *IKESA
}

// IKERekeyed reports that New replaces this IKE SA (RFC 7296 1.3.2, 2.18):
// register New (unless an IKEAdded did already), move this SA's CHILD_SAs
// and their routing to it (no data plane change), and keep this SA until
// it is Done: it only finishes its own deletion and reports no ChildDown
// for the CHILD_SAs it handed over.
type IKERekeyed struct {
	New *IKESA
}

// NATDetected reports what NAT detection found (RFC 7296 2.23) after
// IKE_SA_INIT: Local, a NAT in front of us (or one we fake with
// ForceEncap); Remote, one in front of the peer. Either floats IKE to the
// NAT-T ports and encapsulates ESP in UDP.
type NATDetected struct{ Local, Remote bool }

func (KeysDerived) event()   {}
func (Established) event()   {}
func (ChildUp) event()       {}
func (ChildOutbound) event() {}
func (ChildDown) event()     {}
func (ChildFailed) event()   {}
func (Failed) event()        {}
func (Deleted) event()       {}
func (NATDetected) event()   {}
func (IKEAdded) event()      {}
func (IKERekeyed) event()    {}

// ChildSA is a negotiated CHILD_SA pair as the data plane needs it. The
// engine does not change a ChildSA after reporting it.
type ChildSA struct {
	Name  string
	ReqID uint32 // from ChildConfig.ReqID
	Mode  Mode
	// Encap: ESP in UDP (RFC 3948) between the NAT-T ports of Local and
	// Remote (a NAT was detected or ForceEncap).
	Encap         bool
	Local, Remote netip.AddrPort // outer addresses and ports
	InSPI, OutSPI uint32
	Suite         algs.Suite
	// Keys per direction; AEAD encryption keys end with the salt.
	InEncr, InInteg, OutEncr, OutInteg []byte
	LocalTS, RemoteTS                  []wire.TrafficSelector // as negotiated (narrowed)
	ReplayWindow                       int
	Created, RekeyAt, ExpireAt         time.Time // zero: none
	RekeyBytes, RekeyPackets,
	LifeBytes, LifePackets uint64
}

// State is an IKE SA's state.
type State uint8

const (
	StateConnecting  State = iota // IKE_SA_INIT and IKE_AUTH in progress
	StateEstablished              // authenticated; CHILD_SAs can be created
	StateRekeying                 // our rekey of it is in flight; still the live SA
	StateDeleting                 // our delete is in flight, or it was replaced by a rekey and waits for its delete
	StateDead                     // failed or deleted; Done soon
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "CONNECTING"
	case StateEstablished:
		return "ESTABLISHED"
	case StateRekeying:
		return "REKEYING"
	case StateDeleting:
		return "DELETING"
	case StateDead:
		return "DEAD"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ChildState is a CHILD_SA's state in a Snapshot.
type ChildState uint8

const (
	ChildInstalling ChildState = iota
	ChildInstalled
	ChildRekeying
	ChildDeleting
)

func (s ChildState) String() string {
	switch s {
	case ChildInstalling:
		return "INSTALLING"
	case ChildInstalled:
		return "INSTALLED"
	case ChildRekeying:
		return "REKEYING"
	case ChildDeleting:
		return "DELETING"
	}
	return fmt.Sprintf("ChildState(%d)", uint8(s))
}

// Snapshot is an IKE SA as the status API shows it (CONTRACT.md, "Status
// JSON"); counters come from the data plane.
type Snapshot struct {
	Connection        string
	State             State
	Initiator         bool
	Local, Remote     netip.AddrPort
	LocalID, RemoteID string // RemoteID is empty until the peer authenticated
	SPIi, SPIr        uint64
	Proposal          string // the IKE suite in strongSwan syntax; empty before IKE_SA_INIT completed
	NATLocal          bool
	NATRemote         bool
	EstablishedAt     time.Time // zero until established
	RekeyAt           time.Time // when the next IKE SA rekey is due; zero: none
	Children          []ChildSnapshot
	Counters          Counters
}

// Counters count lifecycle events of one IKE SA (not inherited by the IKE
// SA that replaces it): the runtime exports their increase as metrics.
// "Initiated" and "Responded" say who started the rekey whose SA survived:
// we, or the peer (after a collision, the winner's).
type Counters struct {
	// CHILD_SAs replaced by a rekey, counted when the replaced SA goes.
	ChildRekeysInitiated, ChildRekeysResponded uint64
	// This IKE SA replaced by a rekey (at most 1 in all), counted when it
	// hands its CHILD_SAs over.
	IKERekeysInitiated, IKERekeysResponded uint64
	// Rekey collisions (RFC 7296 2.8.1, 2.8.2) our new SA survived (won) or
	// the peer's did (lost); a collision only one end noticed (the other's
	// request came too late, 2.25) counts as lost at that end only.
	ChildCollisionsWon, ChildCollisionsLost uint64
	IKECollisionsWon, IKECollisionsLost     uint64
	// CHILD_SAs deleted other than by a rekey (and not with the IKE SA):
	// by us (a command, the hard lifetime, a failure) or by the peer.
	ChildDeletesLocal, ChildDeletesRemote uint64
	// TEMPORARY_FAILURE answers received (RFC 7296 2.25).
	TempFailures uint64
}

// ChildRekeys is the number of CHILD_SA rekeys, either side initiating.
func (c Counters) ChildRekeys() uint64 { return c.ChildRekeysInitiated + c.ChildRekeysResponded }

// IKERekeys is 1 once the IKE SA was replaced by a rekey.
func (c Counters) IKERekeys() uint64 { return c.IKERekeysInitiated + c.IKERekeysResponded }

// CollisionsWon counts the rekey collisions, CHILD and IKE, we won.
func (c Counters) CollisionsWon() uint64 { return c.ChildCollisionsWon + c.IKECollisionsWon }

// CollisionsLost counts the rekey collisions, CHILD and IKE, we lost.
func (c Counters) CollisionsLost() uint64 { return c.ChildCollisionsLost + c.IKECollisionsLost }

// ChildDeletes counts the CHILD_SAs deleted other than by a rekey.
func (c Counters) ChildDeletes() uint64 { return c.ChildDeletesLocal + c.ChildDeletesRemote }

// ChildSnapshot is a CHILD_SA in a Snapshot.
type ChildSnapshot struct {
	Name              string
	ReqID             uint32
	State             ChildState
	Mode              Mode
	Encap             bool
	SPIIn, SPIOut     uint32
	Proposal          string   // the ESP suite in strongSwan syntax
	LocalTS, RemoteTS []string // CIDR prefixes, or "a-b" ranges; "[proto/port]" appended when restricted (TSString)
	Created           time.Time
	RekeyAt, ExpireAt time.Time // the next rekey (jittered) and the hard lifetime; zero: none
	// Rekeys is how often this child has been rekeyed: the SA is the
	// (Rekeys+1)-th of its line.
	Rekeys uint64
	// Outbound: this SA carries the child's outbound traffic (false for an
	// SA whose outbound is deferred, and for one being replaced).
	Outbound bool
}
