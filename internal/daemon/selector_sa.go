package daemon

import (
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
)

// selector is the daemon as the engine's ConfigSelector: it reads the
// current configuration generation, so a reload applies to the next
// IKE_SA_INIT. Safe for concurrent use.
type selector Daemon

// ForInit implements sa.ConfigSelector.
func (s *selector) ForInit(local, remote netip.AddrPort) []*sa.Config {
	cs := (*Daemon)(s).cfgs.Load()
	idx := candidatesForInit(cs.cfg.Connections, local.Addr(), remote.Addr())
	out := make([]*sa.Config, len(idx))
	for i, j := range idx {
		out[i] = cs.eng[j]
	}
	return out
}

// ForAuth implements sa.ConfigSelector.
func (s *selector) ForAuth(local, remote netip.AddrPort, peer auth.Identity, hint *auth.Identity, suite algs.Suite) (*sa.Config, error) {
	cs := (*Daemon)(s).cfgs.Load()
	w := suite.Wire(1, nil)
	i, err := chooseForAuth(cs.cfg.Connections, local.Addr(), remote.Addr(), peer, hint, func(i int) bool {
		_, err := algs.Confirm(cs.eng[i].IKEProposals, w)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return cs.eng[i], nil
}

var _ sa.ConfigSelector = (*selector)(nil)
