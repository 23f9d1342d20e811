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
	// cygnet_rekeys_total{sa}: completed rekeys, sa "ike" or "child".
	Rekeys *CounterVec
	// cygnet_deletes_total{sa,initiator}: SAs deleted, sa "ike" or
	// "child", initiator "local" or "remote" (who sent the Delete).
	Deletes *CounterVec
	// cygnet_esp_bytes_total{direction} and cygnet_esp_packets_total
	// {direction}: ESP traffic, direction "in" or "out", counting the
	// payload (inner) bytes, as the status's bytes_in/bytes_out do. Add per
	// batch, not per packet: the counter is shared by every CPU.
	ESPBytes, ESPPackets *CounterVec
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
		Rekeys:            r.NewCounterVec("cygnet_rekeys_total", "Completed rekeys of IKE SAs and CHILD_SAs.", "sa"),
		Deletes:           r.NewCounterVec("cygnet_deletes_total", "IKE SAs and CHILD_SAs deleted, by who initiated the delete.", "sa", "initiator"),
		ESPBytes:          r.NewCounterVec("cygnet_esp_bytes_total", "ESP payload bytes, by direction.", "direction"),
		ESPPackets:        r.NewCounterVec("cygnet_esp_packets_total", "ESP packets, by direction.", "direction"),
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
	for _, sa := range []string{"ike", "child"} {
		m.Rekeys.With(sa)
		for _, by := range []string{"local", "remote"} {
			m.Deletes.With(sa, by)
		}
	}
	for _, d := range []string{"in", "out"} {
		m.ESPBytes.With(d)
		m.ESPPackets.With(d)
	}
	return m
}
