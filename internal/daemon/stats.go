package daemon

import (
	"errors"
	"strings"
	"sync"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/metrics"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

// Why the runtime dropped a received packet (label values of
// cygnet_packets_dropped_total; the transport's own drops are added at
// scrape time under "udp_*").
type dropReason int

const (
	dropMalformed   dropReason = iota // not a parseable IKE message
	dropNoSA                          // for no IKE SA of ours
	dropInboxFull                     // the owning worker was flooded
	dropNoDataplane                   // ESP, but the data plane takes none
	numDropReasons
)

func (r dropReason) String() string {
	switch r {
	case dropMalformed:
		return "ike_malformed"
	case dropNoSA:
		return "ike_unknown_spi"
	case dropInboxFull:
		return "ike_inbox_full"
	case dropNoDataplane:
		return "esp_no_dataplane"
	}
	return "other"
}

// stats records the runtime's metrics (internal/metrics.Cygnet). Every
// update is an atomic add on a pre-resolved counter, so the workers never
// wait for each other here.
type stats struct {
	reg *metrics.Registry
	m   *metrics.Cygnet

	drops                      [numDropReasons]*metrics.Counter
	ikeGauge                   map[sa.State]*metrics.Gauge
	childInstalled             *metrics.Gauge
	keepalives, sendErrors     *metrics.Counter
	ikeDeletesLocal, ikeDelRem *metrics.Counter
	childDelLocal, childDelRem *metrics.Counter
	// Lifecycle counters fed from the engine's per-IKE SA Counters
	// (lifecycle); [0] CHILD_SA, [1] IKE SA, then by role (initiator,
	// responder) or outcome (won, lost).
	rekeys, collisions         [2][2]*metrics.Counter
	handshakeOK, handshakeFail [2]*metrics.Counter // by role: 0 initiator, 1 responder
	transportMu                sync.Mutex
	transportSeen              transport.Stats // at the last scrape
	transportDrops             [transport.NumDropReasons]*metrics.Counter
	transportStats             func() transport.Stats
	// The transport's traffic: [0] IKE, [1] ESP; then in, out.
	udpPackets, udpBytes [2][2]*metrics.Counter

	// The data plane's totals, exported by scrape-time deltas as the
	// transport's drops are.
	dataplaneTotals func() dataplane.Totals
	dataplaneSeen   dataplane.Totals
	espBytes        [2]*metrics.Counter // in, out
	espPackets      [2]*metrics.Counter
	espDrops        [dataplane.NumDropReasons]*metrics.Counter
}

// espDropLabel is the cygnet_packets_dropped_total reason of a data plane
// drop.
func espDropLabel(r dataplane.DropReason) string {
	switch r {
	case dataplane.DropIntegrity:
		return "esp_auth_failed"
	case dataplane.DropNoSA:
		return "esp_unknown_spi"
	}
	return "esp_" + r.String()
}

func newStats() *stats {
	reg := metrics.NewRegistry()
	m := metrics.NewCygnet(reg)
	s := &stats{reg: reg, m: m, ikeGauge: make(map[sa.State]*metrics.Gauge)}
	for r := range numDropReasons {
		s.drops[r] = m.Dropped.With(r.String())
	}
	for _, st := range []sa.State{sa.StateConnecting, sa.StateEstablished, sa.StateRekeying, sa.StateDeleting} {
		s.ikeGauge[st] = m.IKESAs.With(ikeState(st))
	}
	s.childInstalled = m.ChildSAs.With(control.ChildInstalled)
	s.keepalives = reg.NewCounter("cygnet_nat_keepalives_sent_total", "NAT-keepalives sent (RFC 3948 4).")
	s.sendErrors = reg.NewCounter("cygnet_ike_send_errors_total", "IKE datagrams the transport failed to send.")
	s.ikeDeletesLocal = m.Deletes.With("ike", "local")
	s.ikeDelRem = m.Deletes.With("ike", "remote")
	s.childDelLocal = m.Deletes.With("child", "local")
	s.childDelRem = m.Deletes.With("child", "remote")
	for i, kind := range []string{"child", "ike"} {
		s.rekeys[i] = [2]*metrics.Counter{m.Rekeys.With(kind, "initiator"), m.Rekeys.With(kind, "responder")}
		s.collisions[i] = [2]*metrics.Counter{m.RekeyCollisions.With(kind, "won"), m.RekeyCollisions.With(kind, "lost")}
	}
	for i, role := range []string{"initiator", "responder"} {
		s.handshakeOK[i] = m.Handshakes.With(role, "established")
		s.handshakeFail[i] = m.Handshakes.With(role, "failed")
	}
	for r := range transport.NumDropReasons {
		s.transportDrops[r] = m.Dropped.With("udp_" + r.String())
	}
	for i, dir := range []string{"in", "out"} {
		s.espBytes[i] = m.ESPBytes.With(dir)
		s.espPackets[i] = m.ESPPackets.With(dir)
		for k, kind := range []string{"ike", "esp"} {
			s.udpPackets[k][i] = m.UDPPackets.With(kind, dir)
			s.udpBytes[k][i] = m.UDPBytes.With(kind, dir)
		}
	}
	for r := range dataplane.NumDropReasons {
		s.espDrops[r] = m.Dropped.With(espDropLabel(r))
	}
	return s
}

func roleIndex(initiator bool) int {
	if initiator {
		return 0
	}
	return 1
}

func (s *stats) drop(r dropReason)         { s.drops[r].Inc() }
func (s *stats) dropN(r dropReason, n int) { s.drops[r].Add(uint64(n)) }
func (s *stats) keepalive()                { s.keepalives.Inc() }
func (s *stats) sendError()                { s.sendErrors.Inc() }
func (s *stats) childInstalledInc()        { s.childInstalled.Inc() }
func (s *stats) childRemoved()             { s.childInstalled.Dec() }

// ikeState moves an IKE SA between the state gauges; StateDead (and a
// state of -1, "not counted") count nowhere.
func (s *stats) ikeStateChange(from, to sa.State) {
	if from == to {
		return
	}
	if g := s.ikeGauge[from]; g != nil {
		g.Dec()
	}
	if g := s.ikeGauge[to]; g != nil {
		g.Inc()
	}
}

func (s *stats) handshakeEstablished(initiator bool) { s.handshakeOK[roleIndex(initiator)].Inc() }

// handshakeFailed counts a failed IKE SA setup under a reason of bounded
// cardinality: the notify that failed it (from a fixed list), "timeout" for
// a silent peer, "peer_notify" for another notify from the peer, else
// "other". Text from the peer never becomes a label.
func (s *stats) handshakeFailed(initiator bool, err error) {
	s.handshakeFail[roleIndex(initiator)].Inc()
	s.m.HandshakeFailures.With([]string{"initiator", "responder"}[roleIndex(initiator)], failureReason(err)).Inc()
}

func failureReason(err error) string {
	var ne *sa.NotifyError
	switch {
	case errors.Is(err, sa.ErrNoAnswer):
		return "timeout"
	case errors.As(err, &ne):
		switch ne.Type {
		case wire.NO_PROPOSAL_CHOSEN, wire.AUTHENTICATION_FAILED, wire.TS_UNACCEPTABLE,
			wire.INVALID_KE_PAYLOAD, wire.INVALID_SYNTAX, wire.SINGLE_PAIR_REQUIRED,
			wire.UNSUPPORTED_CRITICAL_PAYLOAD, wire.INVALID_MAJOR_VERSION,
			wire.NO_ADDITIONAL_SAS, wire.TEMPORARY_FAILURE, wire.INTERNAL_ADDRESS_FAILURE,
			wire.FAILED_CP_REQUIRED:
			return strings.ToLower(ne.Type.String())
		}
		if ne.Remote {
			return "peer_notify"
		}
	}
	return "other"
}

// retransmitted counts a retransmitted request of exchange x.
func (s *stats) retransmitted(x wire.ExchangeType) {
	name := "other"
	switch x {
	case wire.IKE_SA_INIT, wire.IKE_AUTH, wire.CREATE_CHILD_SA, wire.INFORMATIONAL:
		name = x.String()
	}
	s.m.Retransmissions.With(name).Inc()
}

// lifecycle exports what an IKE SA's engine counters gained since before
// (the engine's Counters are per IKE SA and only grow).
func (s *stats) lifecycle(now, before sa.Counters) {
	add := func(c *metrics.Counter, now, before uint64) {
		if now > before {
			c.Add(now - before)
		}
	}
	add(s.rekeys[0][0], now.ChildRekeysInitiated, before.ChildRekeysInitiated)
	add(s.rekeys[0][1], now.ChildRekeysResponded, before.ChildRekeysResponded)
	add(s.rekeys[1][0], now.IKERekeysInitiated, before.IKERekeysInitiated)
	add(s.rekeys[1][1], now.IKERekeysResponded, before.IKERekeysResponded)
	add(s.collisions[0][0], now.ChildCollisionsWon, before.ChildCollisionsWon)
	add(s.collisions[0][1], now.ChildCollisionsLost, before.ChildCollisionsLost)
	add(s.collisions[1][0], now.IKECollisionsWon, before.IKECollisionsWon)
	add(s.collisions[1][1], now.IKECollisionsLost, before.IKECollisionsLost)
	add(s.m.TempFailures, now.TempFailures, before.TempFailures)
}

// ikeDeleted counts an IKE SA deleted (not by a rekey): by the peer (its
// Delete) or by us.
func (s *stats) ikeDeleted(byPeer bool) {
	if byPeer {
		s.ikeDelRem.Inc()
	} else {
		s.ikeDeletesLocal.Inc()
	}
}

// childDeleted counts a CHILD_SA deleted (not by a rekey), with its IKE SA
// or alone: by the peer or by us (a command, its hard lifetime).
func (s *stats) childDeleted(byPeer bool) {
	if byPeer {
		s.childDelRem.Inc()
	} else {
		s.childDelLocal.Inc()
	}
}

func (s *stats) deadPeer() { s.m.DeadPeers.Inc() }

// restarted counts a close_action or dpd_action applied.
func (s *stats) restarted(trigger, action string) { s.m.Restarts.With(trigger, action).Inc() }

// syncDataplane adds the data plane's traffic and drops since the last
// call; the metrics endpoint calls it before every scrape (the data plane
// sums per SA then, never per packet).
func (s *stats) syncDataplane() {
	if s.dataplaneTotals == nil {
		return
	}
	t := s.dataplaneTotals()
	s.transportMu.Lock()
	defer s.transportMu.Unlock()
	seen := &s.dataplaneSeen
	add := addIncrease
	add(s.espBytes[0], t.BytesIn, &seen.BytesIn)
	add(s.espBytes[1], t.BytesOut, &seen.BytesOut)
	add(s.espPackets[0], t.PacketsIn, &seen.PacketsIn)
	add(s.espPackets[1], t.PacketsOut, &seen.PacketsOut)
	for r := range dataplane.NumDropReasons {
		add(s.espDrops[r], t.Drops[r], &seen.Drops[r])
	}
}

// addIncrease adds to c what a cumulative count gained since before, and
// remembers now.
func addIncrease(c *metrics.Counter, now uint64, before *uint64) {
	if now > *before {
		c.Add(now - *before)
		*before = now
	}
}

// syncTransport adds the transport's counters' increase since the last
// call (traffic, drops, errors, offloads); the metrics endpoint calls it
// before every scrape. The transport counts on its own goroutines without
// the registry; this is the only place they meet.
func (s *stats) syncTransport() {
	if s.transportStats == nil {
		return
	}
	st := s.transportStats()
	s.transportMu.Lock()
	defer s.transportMu.Unlock()
	seen := &s.transportSeen
	for r := range transport.NumDropReasons {
		addIncrease(s.transportDrops[r], st.Drops[r], &seen.Drops[r])
	}
	for k, pair := range [2][2]struct{ now, seen *transport.Counter }{
		{{&st.IKEIn, &seen.IKEIn}, {&st.IKEOut, &seen.IKEOut}},
		{{&st.ESPIn, &seen.ESPIn}, {&st.ESPOut, &seen.ESPOut}},
	} {
		for dir, c := range pair {
			addIncrease(s.udpPackets[k][dir], c.now.Packets, &c.seen.Packets)
			addIncrease(s.udpBytes[k][dir], c.now.Bytes, &c.seen.Bytes)
		}
	}
	addIncrease(s.m.UDPSendErrors, st.SendErrors, &seen.SendErrors)
	addIncrease(s.m.UDPReceiveErrors, st.ReceiveErrors, &seen.ReceiveErrors)
	addIncrease(s.m.UDPGSOSends, st.GSOOut, &seen.GSOOut)
	addIncrease(s.m.UDPGROReceives, st.GROIn, &seen.GROIn)
}
