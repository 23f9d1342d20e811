package metrics

// Cygnet holds the daemon's metrics. Their names and labels are defined here
// once, so that dashboards and alerts can rely on them; docs/control-api.md
// lists them. Label values are the ones given in the comments (the runtime
// may add reasons; each must be a short fixed token, never text from a
// peer).
type Cygnet struct {
	// cygnet_ike_sas{state}: IKE SAs by state: CONNECTING, ESTABLISHED,
	// REKEYING, DELETING (as in the status JSON).
	IKESAs *GaugeVec
	// cygnet_child_sas{state}: CHILD_SAs by state: INSTALLING, INSTALLED,
	// REKEYING, DELETING.
	ChildSAs *GaugeVec
	// cygnet_ike_handshakes_total{role,outcome}: IKE SA setups that ended,
	// role "initiator" or "responder", outcome "established" or "failed".
	Handshakes *CounterVec
	// cygnet_ike_handshake_failures_total{role,reason}: failed setups by
	// reason, e.g. no_proposal_chosen, authentication_failed, timeout,
	// ts_unacceptable, invalid_ke_payload, peer_notify.
	HandshakeFailures *CounterVec
	// cygnet_ike_retransmissions_total{exchange}: IKE requests sent again,
	// by exchange: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL.
	Retransmissions *CounterVec
	// cygnet_packets_dropped_total{reason}: packets dropped, by reason, e.g.
	// ike_malformed, ike_unknown_spi, ike_rate_limited, esp_replay,
	// esp_auth_failed, esp_unknown_spi.
	Dropped *CounterVec
	// cygnet_rekeys_total{kind,role}: completed rekeys, kind "ike" or
	// "child", role "initiator" or "responder": who started the rekey
	// whose SA survived (after a collision, the winner's).
	Rekeys *CounterVec
	// cygnet_rekey_collisions_total{kind,outcome}: simultaneous rekeys
	// (RFC 7296 2.8.1, 2.8.2), kind "ike" or "child", outcome "won" (our
	// new SA survived) or "lost".
	RekeyCollisions *CounterVec
	// cygnet_deletes_total{kind,initiator}: SAs deleted other than by a
	// rekey, kind "ike" or "child", initiator "local" or "remote" (who
	// decided: sent the Delete, or, for a CHILD_SA, let it expire).
	Deletes *CounterVec
	// cygnet_dead_peers_total: IKE SAs whose peer stopped answering (a
	// liveness check or another request unanswered, RFC 7296 2.4).
	DeadPeers *Counter
	// cygnet_temporary_failures_total: TEMPORARY_FAILURE answers to our
	// requests (RFC 7296 2.25; a busy or colliding peer).
	TempFailures *Counter
	// cygnet_restarts_total{trigger,action}: re-initiations and traps
	// after the peer closed a CHILD_SA (trigger "close_action") or died
	// ("dpd_action"); action "start" or "trap".
	Restarts *CounterVec
	// cygnet_esp_bytes_total{direction} and cygnet_esp_packets_total
	// {direction}: ESP traffic, direction "in" or "out", counting the
	// payload (inner) bytes, as the status's bytes_in/bytes_out do. Add per
	// batch, not per packet: the counter is shared by every CPU.
	ESPBytes, ESPPackets *CounterVec
	// cygnet_udp_packets_total{kind,direction} and cygnet_udp_bytes_total
	// {kind,direction}: what the UDP transport moved on the IKE and NAT-T
	// ports, kind "ike" or "esp" (UDP-encapsulated), direction "in" or
	// "out"; bytes are UDP payload without the non-ESP marker. Plain ESP
	// (IP protocol 50) is not UDP and not counted here.
	UDPPackets, UDPBytes *CounterVec
	// cygnet_udp_send_errors_total: datagrams a send did not send;
	// cygnet_udp_receive_errors_total: receive calls that failed.
	UDPSendErrors, UDPReceiveErrors *Counter
	// cygnet_udp_gso_sends_total: sends that carried several ESP packets
	// in one message (UDP_SEGMENT); cygnet_udp_gro_receives_total:
	// received datagrams the kernel had coalesced (UDP_GRO), cut apart
	// again. The packets in them count in cygnet_udp_packets_total.
	UDPGSOSends, UDPGROReceives *Counter
}

// NewCygnet registers the daemon's metrics in r. The states, roles, outcomes
// and directions are created at zero, so that they show before anything has
// happened.
func NewCygnet(r *Registry) *Cygnet {
	m := &Cygnet{
		IKESAs:            r.NewGaugeVec("cygnet_ike_sas", "IKE SAs by state.", "state"),
		ChildSAs:          r.NewGaugeVec("cygnet_child_sas", "CHILD_SAs by state.", "state"),
		Handshakes:        r.NewCounterVec("cygnet_ike_handshakes_total", "IKE SA setups that ended, by our role and outcome.", "role", "outcome"),
		HandshakeFailures: r.NewCounterVec("cygnet_ike_handshake_failures_total", "IKE SA setups that failed, by our role and the reason.", "role", "reason"),
		Retransmissions:   r.NewCounterVec("cygnet_ike_retransmissions_total", "IKE requests retransmitted, by exchange type.", "exchange"),
		Dropped:           r.NewCounterVec("cygnet_packets_dropped_total", "IKE and ESP packets dropped, by reason.", "reason"),
		Rekeys:            r.NewCounterVec("cygnet_rekeys_total", "Completed rekeys of IKE SAs and CHILD_SAs, by who initiated the surviving rekey.", "kind", "role"),
		RekeyCollisions:   r.NewCounterVec("cygnet_rekey_collisions_total", "Rekey collisions, by whether our new SA survived.", "kind", "outcome"),
		Deletes:           r.NewCounterVec("cygnet_deletes_total", "IKE SAs and CHILD_SAs deleted other than by a rekey, by who initiated the delete.", "kind", "initiator"),
		DeadPeers:         r.NewCounter("cygnet_dead_peers_total", "IKE SAs whose peer stopped answering."),
		TempFailures:      r.NewCounter("cygnet_temporary_failures_total", "TEMPORARY_FAILURE answers to our requests."),
		Restarts:          r.NewCounterVec("cygnet_restarts_total", "CHILD_SAs re-initiated or trapped after the peer closed them or died.", "trigger", "action"),
		ESPBytes:          r.NewCounterVec("cygnet_esp_bytes_total", "ESP payload bytes, by direction.", "direction"),
		ESPPackets:        r.NewCounterVec("cygnet_esp_packets_total", "ESP packets, by direction.", "direction"),
		UDPPackets:        r.NewCounterVec("cygnet_udp_packets_total", "UDP datagrams on the IKE and NAT-T ports, by content (IKE or ESP) and direction.", "kind", "direction"),
		UDPBytes:          r.NewCounterVec("cygnet_udp_bytes_total", "UDP payload bytes on the IKE and NAT-T ports, by content (IKE or ESP) and direction.", "kind", "direction"),
		UDPSendErrors:     r.NewCounter("cygnet_udp_send_errors_total", "UDP datagrams a send did not send."),
		UDPReceiveErrors:  r.NewCounter("cygnet_udp_receive_errors_total", "UDP receive calls that failed."),
		UDPGSOSends:       r.NewCounter("cygnet_udp_gso_sends_total", "UDP sends that carried several ESP packets in one message (UDP_SEGMENT)."),
		UDPGROReceives:    r.NewCounter("cygnet_udp_gro_receives_total", "Received UDP datagrams that the kernel had coalesced (UDP_GRO)."),
	}
	for _, s := range []string{"CONNECTING", "ESTABLISHED", "REKEYING", "DELETING"} {
		m.IKESAs.With(s)
	}
	for _, s := range []string{"INSTALLING", "INSTALLED", "REKEYING", "DELETING"} {
		m.ChildSAs.With(s)
	}
	for _, role := range []string{"initiator", "responder"} {
		for _, outcome := range []string{"established", "failed"} {
			m.Handshakes.With(role, outcome)
		}
	}
	for _, kind := range []string{"ike", "child"} {
		for _, role := range []string{"initiator", "responder"} {
			m.Rekeys.With(kind, role)
		}
		for _, outcome := range []string{"won", "lost"} {
			m.RekeyCollisions.With(kind, outcome)
		}
		for _, by := range []string{"local", "remote"} {
			m.Deletes.With(kind, by)
		}
	}
	for _, d := range []string{"in", "out"} {
		m.ESPBytes.With(d)
		m.ESPPackets.With(d)
		for _, kind := range []string{"ike", "esp"} {
			m.UDPPackets.With(kind, d)
			m.UDPBytes.With(kind, d)
		}
	}
	return m
}
