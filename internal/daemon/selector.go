package daemon

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
)

// Choosing a connection for a peer that initiates, as strongSwan's backend
// manager does (src/libcharon/config/backend_manager.c): first by addresses
// when IKE_SA_INIT arrives (the IKE proposals come from the candidates), then
// by identities in IKE_AUTH, once the peer has named itself (RFC 7296 2.15:
// the identity is not trusted until its AUTH verifies; the engine checks
// that with the configuration chosen here).

// Address match scores: a connection that names the address beats one that
// accepts any; the peer's address weighs more than ours.
const (
	addrAny         = 1
	addrLocalExact  = 4
	addrRemoteExact = 8
)

// addrScore rates how well conn's addresses fit an IKE SA between local and
// remote; 0 means they do not fit.
func addrScore(conn *config.Connection, local, remote netip.Addr) int {
	local, remote = local.Unmap(), remote.Unmap()
	score := 0
	switch {
	case len(conn.LocalAddrs) == 0:
		score += addrAny
	case slices.Contains(conn.LocalAddrs, local):
		score += addrLocalExact
	default:
		return 0
	}
	switch {
	case slices.Contains(conn.RemoteAddrs, remote):
		score += addrRemoteExact
	case conn.RemoteAny:
		score += addrAny
	default:
		return 0
	}
	return score
}

// Identity match scores, strongSwan's id_match_t in spirit.
const (
	idNone    = 0
	idAny     = 1 // %any on either side, or no identity to compare
	idPattern = 2 // a configured pattern such as "*.example" matches
	idExact   = 3
)

// idScore rates how well a configured identity fits one the peer sent. With
// no identity sent (no IDr hint) anything fits. Like strongSwan, it matches
// both ways, because the IDr hint an initiator sends may itself be %any.
func idScore(configured auth.Identity, sent *auth.Identity) int {
	switch {
	case sent == nil || configured.Any() || sent.Any():
		return idAny
	case configured.Equal(*sent):
		return idExact
	case configured.Matches(*sent):
		return idPattern
	case sent.Matches(configured):
		return idAny
	}
	return idNone
}

// localIdentity is the identity a connection authenticates as: the configured
// one, or the subject of its certificate when none is configured (as
// strongSwan does).
func localIdentity(conn *config.Connection) auth.Identity {
	if conn.Local.ID.Any() && conn.Local.Cred != nil {
		return conn.Local.Cred.DefaultIdentity()
	}
	return conn.Local.ID
}

// candidatesForInit returns the indices of the connections an IKE_SA_INIT
// from remote to local may belong to, best address match first (file order
// among equals).
func candidatesForInit(conns []*config.Connection, local, remote netip.Addr) []int {
	type cand struct{ i, score int }
	var cs []cand
	for i, c := range conns {
		if s := addrScore(c, local, remote); s > 0 {
			cs = append(cs, cand{i, s})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return cmp.Compare(b.score, a.score) })
	idx := make([]int, len(cs))
	for i, c := range cs {
		idx[i] = c.i
	}
	return idx
}

// chooseForAuth picks, among the connections whose addresses fit, the one for
// the identities the peer sent in IKE_AUTH: its own (IDi) and, if it sent
// one, the identity it expects of us (the IDr hint, RFC 7296 3.5). suiteOK
// says whether a connection accepts the IKE suite already negotiated. The
// best identity match wins, then the best address match, then file order.
func chooseForAuth(conns []*config.Connection, local, remote netip.Addr, peer auth.Identity, hint *auth.Identity, suiteOK func(i int) bool) (int, error) {
	best, bestID, bestAddr := -1, 0, 0
	var rejected []string
	for i, c := range conns {
		a := addrScore(c, local, remote)
		if a == 0 {
			continue
		}
		them := idScore(c.Remote.ID, &peer)
		me := idScore(localIdentity(c), hint)
		if them == idNone || me == idNone {
			rejected = append(rejected, fmt.Sprintf("%s (expects %s, is %s)", c.Name, c.Remote.ID, localIdentity(c)))
			continue
		}
		if suiteOK != nil && !suiteOK(i) {
			rejected = append(rejected, c.Name+" (does not accept the negotiated IKE proposal)")
			continue
		}
		if id := them + me; best < 0 || id > bestID || id == bestID && a > bestAddr {
			best, bestID, bestAddr = i, id, a
		}
	}
	if best >= 0 {
		return best, nil
	}
	hintText := ""
	if hint != nil {
		hintText = fmt.Sprintf(" expecting us to be %s", hint)
	}
	if len(rejected) == 0 {
		return -1, fmt.Errorf("daemon: no connection for %s%s from %v to %v", peer, hintText, remote, local)
	}
	return -1, fmt.Errorf("daemon: no connection for %s%s from %v to %v: %s", peer, hintText, remote, local, strings.Join(rejected, ", "))
}
