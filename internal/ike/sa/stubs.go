package sa

// Temporary bodies so that the runtime can compile against the API; the
// real ones replace this file.

import (
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Responder is the stateless front door for IKE_SA_INIT requests (SPIr ==
// 0). It is safe for concurrent use.
//
// Half-open accounting: an IKE SA created by HandleInit counts as half-open
// until its IKE_AUTH completes or it dies; the SA tells its Responder itself,
// so the runtime has nothing to report.
type Responder struct{}

// NewResponder returns a Responder that finds configurations with sel.
func NewResponder(env *Env, sel ConfigSelector, opts ResponderOptions) *Responder {
	return &Responder{}
}

// HandleInit answers an IKE_SA_INIT request (a message that wire.Parse
// accepted, with SPIr zero). It returns a new half-open IKE SA whose response
// is in the Output, or nil and an Output holding a stateless answer (COOKIE,
// INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, INVALID_SYNTAX) or nothing (garbage
// is dropped, no state is kept). Retransmitted requests for an existing
// half-open SA are routed to that SA by the runtime (keyed by remote address
// and SPIi), which answers them from its cache.
func (r *Responder) HandleInit(now time.Time, m *wire.Message, local, remote netip.AddrPort) (*IKESA, Output) {
	return nil, Output{}
}

// HandleMalformed answers a datagram that wire.Parse rejected with err and
// that no IKE SA claims: an IKE_SA_INIT request with a major version above
// 2 gets INVALID_MAJOR_VERSION (RFC 7296 2.5); everything else is dropped.
func (r *Responder) HandleMalformed(now time.Time, datagram []byte, err error, local, remote netip.AddrPort) Output {
	return Output{}
}

// HalfOpen returns the number of half-open IKE SAs created by r.
func (r *Responder) HalfOpen() int { return 0 }

// IKESA is one IKE SA. Not safe for concurrent use: one goroutine owns it.
type IKESA struct{}

// NewInitiator returns an IKE SA of connection cfg that will initiate from
// local to remote (port 500 normally; it floats to the NAT-T ports itself).
// Nothing is sent before Initiate.
func NewInitiator(env *Env, cfg *Config, local, remote netip.AddrPort) *IKESA { return &IKESA{} }

// Initiate starts IKE_SA_INIT. The first named child (or the first
// configured one when none is named) is created in IKE_AUTH (RFC 7296 1.2);
// further children are queued as CREATE_CHILD_SA exchanges that run once the
// IKE SA is established.
func (sa *IKESA) Initiate(now time.Time, children ...string) Output { return Output{} }

// Handle processes one datagram already parsed by wire.Parse (m.Raw set)
// that the runtime routed to this SA by SPI. local and remote are where it
// arrived and where it came from.
func (sa *IKESA) Handle(now time.Time, m *wire.Message, local, remote netip.AddrPort) Output {
	return Output{}
}

// Tick runs the timers that are due (retransmission, half-open and
// reassembly timeouts, liveness checks). The runtime calls it at or after
// NextDeadline.
func (sa *IKESA) Tick(now time.Time) Output { return Output{} }

// NextDeadline is when Tick must next be called; zero: no timer armed.
func (sa *IKESA) NextDeadline() time.Time { return time.Time{} }

// Delete deletes the IKE SA politely: an INFORMATIONAL with a Delete
// payload once the exchange in flight is done (RFC 7296 1.4.1). An SA that
// is not established yet is dropped at once.
func (sa *IKESA) Delete(now time.Time) Output { return Output{} }

// CreateChild creates the CHILD_SA of the configuration's child called name
// with a CREATE_CHILD_SA exchange (RFC 7296 1.3.1), queued behind the
// exchange in flight. The result is a ChildUp or ChildFailed event.
func (sa *IKESA) CreateChild(now time.Time, name string) Output { return Output{} }

// ChildInstallFailed tells the SA that the data plane refused the CHILD_SA
// with inbound SPI inSPI: it is deleted with the peer (INFORMATIONAL
// Delete) and reported as ChildFailed.
func (sa *IKESA) ChildInstallFailed(now time.Time, inSPI uint32, err error) Output { return Output{} }

// Snapshot returns the SA's state for the status API.
func (sa *IKESA) Snapshot() Snapshot { return Snapshot{} }

// LocalSPI is our own IKE SPI (SPIi as initiator, SPIr as responder): the
// runtime's routing key.
func (sa *IKESA) LocalSPI() uint64 { return 0 }

// SPIs returns the IKE SA's SPIs (spir is zero until IKE_SA_INIT answered).
func (sa *IKESA) SPIs() (spii, spir uint64) { return 0, 0 }

// State returns the SA's state.
func (sa *IKESA) State() State { return StateConnecting }

// Done reports that the SA is finished: the runtime removes it.
func (sa *IKESA) Done() bool { return false }
