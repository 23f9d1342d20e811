package daemon

import (
	"net/netip"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// The runtime translates between its neighbours, which do not know each
// other: config (YAML values) to the engine's sa.Config, the engine's
// ChildSA to the data plane's SA, and the engine's Snapshot plus data plane
// counters to the control API's status.

// engineParams are the daemon-wide settings that go into every sa.Config.
type engineParams struct {
	natPort    uint16
	psk        func(local, remote auth.Identity) ([]byte, bool)
	retransmit sa.Retransmit
	// reqID returns the next request ID for a child configuration.
	reqID func() uint32
}

// engineConfig converts one connection. A new ReqID is assigned to each child;
// a reload keeps the sa.Config (and so the ReqIDs) of unchanged connections.
func engineConfig(c *config.Connection, p engineParams) *sa.Config {
	ec := &sa.Config{
		Name:         c.Name,
		IKEProposals: c.Proposals,
		Local: sa.LocalAuth{
			Method: authMethod(c.Local.Auth),
			ID:     c.Local.ID,
			Cred:   c.Local.Cred,
		},
		Remote: sa.RemoteAuth{
			Method:  authMethod(c.Remote.Auth),
			ID:      c.Remote.ID,
			Roots:   c.Remote.Roots,
			CACerts: c.Remote.CACerts,
		},
		PSK:           p.psk,
		Fragmentation: c.Fragmentation,
		FragmentSize:  c.FragmentSize,
		ForceEncap:    c.Encap,
		NATPort:       p.natPort,
		// The configuration has no setting for the peer's NAT-T port: as
		// with strongSwan, it is the same as ours (4500 in production).
		RemoteNATPort: p.natPort,
		Retransmit:    p.retransmit,
		RekeyTime:     c.RekeyTime,
		RandTime:      engineRandTime(c.RandTime),
		ReauthTime:    c.ReauthTime,
		DPDDelay:      c.DPDDelay,
		DPDTimeout:    c.DPDTimeout,
		SendCertReq:   true, // as strongSwan does
		// strongSwan sends INITIAL_CONTACT unless uniqueness is off
		// (unique = never): the peer then drops SAs we have forgotten.
		InitialContact: c.Unique != "never",
	}
	for _, ch := range c.Children {
		ec.Children = append(ec.Children, &sa.ChildConfig{
			Name:         ch.Name,
			ReqID:        p.reqID(),
			LocalTS:      engineTS(ch.LocalTS),
			RemoteTS:     engineTS(ch.RemoteTS),
			Proposals:    ch.ESPProposals,
			Mode:         childMode(ch.Mode),
			RekeyTime:    ch.RekeyTime,
			RandTime:     engineRandTime(ch.RandTime),
			LifeTime:     ch.LifeTime,
			RekeyBytes:   ch.RekeyBytes,
			RekeyPackets: ch.RekeyPackets,
			LifeBytes:    ch.LifeBytes,
			LifePackets:  ch.LifePackets,
			ReplayWindow: ch.ReplayWindow,
		})
	}
	return ec
}

// engineRandTime maps a configured rand_time onto the engine's RandTime,
// whose zero means its default (a tenth of the rekey time) and a negative
// value none. The configuration has resolved its default already, so its
// 0 means no jitter.
func engineRandTime(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

func authMethod(s string) sa.AuthMethod {
	if s == "psk" {
		return sa.AuthPSK
	}
	return sa.AuthPubKey
}

func childMode(s string) sa.Mode {
	if s == "transport" {
		return sa.ModeTransport
	}
	return sa.ModeTunnel
}

func engineTS(list []config.TrafficSelector) []sa.TrafficSelector {
	out := make([]sa.TrafficSelector, 0, len(list))
	for _, t := range list {
		var ts sa.TrafficSelector
		if t.Dynamic {
			ts = sa.DynamicTS()
		} else {
			ts = sa.PrefixTS(t.Prefix)
		}
		ts.IPProtocol = t.Protocol
		ts.StartPort, ts.EndPort = t.StartPort, t.EndPort
		out = append(out, ts)
	}
	return out
}

// dataplaneSA converts a negotiated CHILD_SA. The keys are copied: the data
// plane owns and zeroes its copies, the engine its own.
func dataplaneSA(c *sa.ChildSA) *dataplane.SA {
	d := &dataplane.SA{
		ReqID:        c.ReqID,
		Name:         c.Name,
		Mode:         dataplane.Tunnel,
		Encap:        c.Encap,
		Local:        c.Local,
		Remote:       c.Remote,
		InSPI:        c.InSPI,
		OutSPI:       c.OutSPI,
		Encr:         wire.EncrID(c.Suite.Encr.ID),
		EncrKeyLen:   c.Suite.EncrKeyLen(),
		Integ:        wire.IntegID(c.Suite.Integ.ID),
		ESN:          c.Suite.ESN,
		InEncrKey:    slices.Clone(c.InEncr),
		InIntegKey:   slices.Clone(c.InInteg),
		OutEncrKey:   slices.Clone(c.OutEncr),
		OutIntegKey:  slices.Clone(c.OutInteg),
		LocalTS:      selectors(c.LocalTS),
		RemoteTS:     selectors(c.RemoteTS),
		ReplayWindow: c.ReplayWindow,
		SoftBytes:    c.RekeyBytes,
		HardBytes:    c.LifeBytes,
		SoftPackets:  c.RekeyPackets,
		HardPackets:  c.LifePackets,
	}
	if c.Mode == sa.ModeTransport {
		d.Mode = dataplane.Transport
	}
	return d
}

// selectors converts address-range selectors; other TS types cannot reach a
// CHILD_SA (the engine narrows to what it understands).
func selectors(list []wire.TrafficSelector) []dataplane.Selector {
	out := make([]dataplane.Selector, 0, len(list))
	for _, t := range list {
		if t.Type != wire.TSIPv4AddrRange && t.Type != wire.TSIPv6AddrRange {
			continue
		}
		out = append(out, dataplane.Selector{
			Start: t.Start, End: t.End, Protocol: t.IPProtocol,
			StartPort: t.StartPort, EndPort: t.EndPort,
		})
	}
	return out
}

// ikeState maps the engine's IKE SA states onto the contract's.
func ikeState(s sa.State) string {
	switch s {
	case sa.StateConnecting:
		return control.IKEConnecting
	case sa.StateEstablished:
		return control.IKEEstablished
	case sa.StateRekeying:
		return control.IKERekeying
	}
	return control.IKEDeleting // deleting, or dead and about to go
}

func childState(s sa.ChildState) string {
	switch s {
	case sa.ChildInstalling:
		return control.ChildInstalling
	case sa.ChildInstalled:
		return control.ChildInstalled
	case sa.ChildRekeying:
		return control.ChildRekeying
	}
	return control.ChildDeleting
}

// statusIKESA builds the status of one IKE SA; inherited are the lifecycle
// counters of the IKE SAs it replaced, counters returns the data plane's
// counters of a CHILD_SA by inbound SPI.
func statusIKESA(s sa.Snapshot, inherited sa.Counters, counters func(uint32) (dataplane.Counters, bool)) control.IKESA {
	life := addCounters(inherited, s.Counters)
	st := control.IKESA{
		Connection:     s.Connection,
		State:          ikeState(s.State),
		Initiator:      s.Initiator,
		Local:          addrString(s.Local),
		Remote:         addrString(s.Remote),
		LocalID:        s.LocalID,
		RemoteID:       s.RemoteID,
		SPIi:           control.FormatIKESPI(s.SPIi),
		SPIr:           control.FormatIKESPI(s.SPIr),
		Proposal:       s.Proposal,
		NATLocal:       s.NATLocal,
		NATRemote:      s.NATRemote,
		EstablishedAt:  s.EstablishedAt,
		ChildSAs:       []control.ChildSA{},
		RekeyAt:        s.RekeyAt,
		Rekeys:         life.IKERekeys(),
		ChildRekeys:    life.ChildRekeys(),
		CollisionsWon:  life.CollisionsWon(),
		CollisionsLost: life.CollisionsLost(),
		ChildDeletes:   life.ChildDeletes(),
		TempFailures:   life.TempFailures,
	}
	for _, c := range s.Children {
		cs := control.ChildSA{
			Name:     c.Name,
			State:    childState(c.State),
			Mode:     c.Mode.String(),
			Encap:    c.Encap,
			SPIIn:    control.FormatChildSPI(c.SPIIn),
			SPIOut:   control.FormatChildSPI(c.SPIOut),
			Proposal: c.Proposal,
			LocalTS:  nonNil(c.LocalTS),
			RemoteTS: nonNil(c.RemoteTS),
			Rekeys:   c.Rekeys,
			RekeyAt:  c.RekeyAt,
			// The SA of a child that does not carry its outbound traffic:
			// the rekey responder's new one until the switch, the old one
			// until its delete (RFC 7296 2.8).
			InboundOnly: !c.Outbound,
		}
		if counters != nil {
			if n, ok := counters(c.SPIIn); ok {
				cs.BytesIn, cs.BytesOut = n.BytesIn, n.BytesOut
				cs.PacketsIn, cs.PacketsOut = n.PacketsIn, n.PacketsOut
				for _, d := range n.Drops {
					cs.Drops += d
				}
			}
		}
		st.ChildSAs = append(st.ChildSAs, cs)
	}
	return st
}

func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sortStatus orders IKE SAs by connection, then age, then SPI, so that the
// output is stable.
func sortStatus(list []control.IKESA) {
	slices.SortFunc(list, func(a, b control.IKESA) int {
		if a.Connection != b.Connection {
			if a.Connection < b.Connection {
				return -1
			}
			return 1
		}
		if c := compareTime(a.EstablishedAt, b.EstablishedAt); c != 0 {
			return c
		}
		if a.SPIi != b.SPIi {
			if a.SPIi < b.SPIi {
				return -1
			}
			return 1
		}
		return 0
	})
}

func compareTime(a, b time.Time) int {
	switch {
	case a.Equal(b):
		return 0
	case a.IsZero(): // not established yet: last
		return 1
	case b.IsZero():
		return -1
	case a.Before(b):
		return -1
	}
	return 1
}
