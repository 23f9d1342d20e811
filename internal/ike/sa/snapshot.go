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
			State:    c.state,
			Mode:     cs.Mode,
			Encap:    cs.Encap,
			SPIIn:    cs.InSPI,
			SPIOut:   cs.OutSPI,
			Proposal: cs.Suite.String(),
			LocalTS:  tsStrings(cs.LocalTS),
			RemoteTS: tsStrings(cs.RemoteTS),
			Created:  cs.Created,
		})
	}
	return s
}
