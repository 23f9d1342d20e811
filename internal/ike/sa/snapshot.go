package sa

// Snapshot returns the SA's state for the status API (CONTRACT.md, "Status
// JSON").
func (sa *IKESA) Snapshot() Snapshot {
	s := Snapshot{
		State:         sa.state,
		Initiator:     sa.initiator,
		Local:         sa.local,
		Remote:        sa.remote,
		SPIi:          sa.spii,
		SPIr:          sa.spir,
		NATLocal:      sa.natLocal,
		NATRemote:     sa.natRemote,
		EstablishedAt: sa.establishedAt,
		Counters:      sa.counters,
	}
	if sa.state == StateEstablished || sa.state == StateRekeying {
		s.RekeyAt = sa.rekeyAt
	}
	if sa.cfg != nil {
		s.Connection = sa.cfg.Name
	}
	if sa.localID.Type != 0 {
		s.LocalID = sa.localID.String()
	}
	if sa.authenticated {
		s.RemoteID = sa.remoteID.String()
	}
	if sa.prf != nil {
		s.Proposal = sa.suite.String()
	}
	for _, c := range sa.children {
		cs := c.sa
		s.Children = append(s.Children, ChildSnapshot{
			Name:     cs.Name,
			ReqID:    cs.ReqID,
			State:    sa.childState(c),
			Mode:     cs.Mode,
			Encap:    cs.Encap,
			SPIIn:    cs.InSPI,
			SPIOut:   cs.OutSPI,
			Proposal: cs.Suite.String(),
			LocalTS:  tsStrings(cs.LocalTS),
			RemoteTS: tsStrings(cs.RemoteTS),
			Created:  cs.Created,
			RekeyAt:  c.rekeyAt,
			ExpireAt: c.expireAt,
			Rekeys:   c.lin.rekeys,
			Outbound: c.lin.outbound == c,
		})
	}
	return s
}

// childState is c's state for the status API: DELETING while our Delete
// of it is pending or it lost a collision (or the IKE SA is being
// deleted), REKEYING while a rekey of it is in progress or it waits for
// the Delete after one, else INSTALLED.
func (sa *IKESA) childState(c *child) ChildState {
	switch {
	case c.deleting, c.redundant, sa.state == StateDeleting:
		return ChildDeleting
	case c.rekeying != nil, c.successor != nil, c.peerNew != nil:
		return ChildRekeying
	}
	return ChildInstalled
}
