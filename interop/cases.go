package interop

import (
	"fmt"
	"slices"
	"strings"
)

// The interop matrix (issue 7) has eight dimensions. The full cross product
// is 3,072 combinations; the suite runs a pairwise-covering subset instead:
// every pair of values of any two dimensions appears in some case (unless no
// possible case has it), which catches every fault that needs two settings
// to show, and so every value also meets both directions.

// Dimension is one axis of the matrix: a name and its values, in the order
// the generator prefers them.
type Dimension struct {
	Name   string
	Values []string
	// Rare values are used only as often as coverage needs: between
	// candidates that cover as many new pairs, one without them wins.
	Rare []string
}

// Dimension names and values. The strings are what the matrix prints; the
// proposal values are strongSwan proposal syntax, used verbatim in both
// peers' configurations.
const (
	DimDirection = "direction"
	DimAuth      = "auth"
	DimIKE       = "ike"
	DimESP       = "esp"
	DimTS        = "ts"
	DimMode      = "mode"
	DimOuter     = "outer"
	DimInner     = "inner"

	CygnetInitiates     = "cygnet"
	StrongSwanInitiates = "strongswan"

	AuthPSK     = "psk"
	AuthECDSA   = "ecdsa-p256"
	AuthRSA     = "rsa3072-chain" // RSA-3072 leaf under an intermediate CA: IKE_AUTH is fragmented
	AuthEd25519 = "ed25519"

	TSEqual    = "equal"
	TSNarrowed = "narrowed" // the responder's configuration is narrower; it narrows (RFC 7296 2.9)
	TSSeveral  = "several"  // two subnets on each side in one CHILD_SA

	ModeTunnel    = "tunnel"
	ModeTransport = "transport"

	IPv4 = "ipv4"
	IPv6 = "ipv6"
)

// Dimensions is the matrix of issue 7. Every certificate is made by
// strongSwan's pki (see the suite).
var Dimensions = []Dimension{
	{Name: DimDirection, Values: []string{CygnetInitiates, StrongSwanInitiates}},
	{Name: DimAuth, Values: []string{AuthPSK, AuthECDSA, AuthRSA, AuthEd25519}},
	{Name: DimIKE, Values: []string{"aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048", "chacha20poly1305-prfsha256-ecp256", "aes256-sha384-ecp384"}},
	{Name: DimESP, Values: []string{"aes256gcm16", "aes128-sha256", "chacha20poly1305", "aes256gcm16-x25519"}},
	{Name: DimTS, Values: []string{TSEqual, TSNarrowed, TSSeveral}},
	// Transport mode is rare: strongSwan's kernel-libipsec, the only ESP
	// this host's strongSwan has, implements tunnel mode alone, so these
	// cases run in the test VM against the kernel's ESP (EnvOf), which
	// costs a VM boot and software emulation.
	{Name: DimMode, Values: []string{ModeTunnel, ModeTransport}, Rare: []string{ModeTransport}},
	{Name: DimOuter, Values: []string{IPv4, IPv6}},
	{Name: DimInner, Values: []string{IPv4, IPv6}},
}

// Case is one row of the matrix.
type Case struct {
	ID        int    // 1-based, stable for a given Dimensions
	Direction string // who initiates: CygnetInitiates or StrongSwanInitiates
	Auth      string
	IKE, ESP  string // proposals, strongSwan syntax
	TS        string
	Mode      string
	Outer     string // family of the IKE/ESP addresses
	Inner     string // family of the traffic selectors

	// ExpectFailure, if set, makes this a deliberately broken case: it must
	// fail, for the reason given (see BrokenCase).
	ExpectFailure string
}

// Name is the case's subtest and matrix name, e.g. "07-strongswan-ed25519".
func (c Case) Name() string {
	if c.ExpectFailure != "" {
		return fmt.Sprintf("%02d-broken-%s", c.ID, c.Auth)
	}
	return fmt.Sprintf("%02d-%s-%s", c.ID, c.Direction, c.Auth)
}

// Value returns the case's value in dimension dim.
func (c Case) Value(dim string) string {
	switch dim {
	case DimDirection:
		return c.Direction
	case DimAuth:
		return c.Auth
	case DimIKE:
		return c.IKE
	case DimESP:
		return c.ESP
	case DimTS:
		return c.TS
	case DimMode:
		return c.Mode
	case DimOuter:
		return c.Outer
	case DimInner:
		return c.Inner
	}
	panic("interop: unknown dimension " + dim)
}

// PFS reports whether the ESP proposal carries a key exchange (PFS for
// CREATE_CHILD_SA and rekeying).
func (c Case) PFS() bool {
	return strings.Contains(c.ESP, "x25519") || strings.Contains(c.ESP, "ecp") || strings.Contains(c.ESP, "modp")
}

// caseFrom builds a Case from one value index per dimension of dims.
func caseFrom(dims []Dimension, idx []int) Case {
	var c Case
	for d, dim := range dims {
		v := dim.Values[idx[d]]
		switch dim.Name {
		case DimDirection:
			c.Direction = v
		case DimAuth:
			c.Auth = v
		case DimIKE:
			c.IKE = v
		case DimESP:
			c.ESP = v
		case DimTS:
			c.TS = v
		case DimMode:
			c.Mode = v
		case DimOuter:
			c.Outer = v
		case DimInner:
			c.Inner = v
		}
	}
	return c
}

// Impossible says why a case cannot be run, or "" if it can:
//
//   - Transport mode protects the traffic between the two IKE endpoints
//     themselves (RFC 4301 4.1): its inner addresses are the outer ones, so
//     the families must agree.
//   - For the same reason a transport-mode CHILD_SA has no subnets: "several
//     subnets" needs tunnel mode.
func Impossible(c Case) string {
	if c.Mode == ModeTransport && c.Inner != c.Outer {
		return "transport mode with inner and outer addresses of different families"
	}
	if c.Mode == ModeTransport && c.TS == TSSeveral {
		return "transport mode with several subnets"
	}
	return ""
}

// pair is one required value pair: value a of dimension da, value b of
// dimension db (da < db).
type pair struct{ da, a, db, b int }

func pairsOf(idx []int) []pair {
	var ps []pair
	for i := range idx {
		for j := i + 1; j < len(idx); j++ {
			ps = append(ps, pair{i, idx[i], j, idx[j]})
		}
	}
	return ps
}

// product enumerates every combination of value indexes, first dimension
// slowest, and keeps the possible ones.
func product(dims []Dimension, possible func(Case) bool) [][]int {
	var all [][]int
	idx := make([]int, len(dims))
	for {
		if possible(caseFrom(dims, idx)) {
			all = append(all, slices.Clone(idx))
		}
		d := len(dims) - 1
		for ; d >= 0; d-- {
			idx[d]++
			if idx[d] < len(dims[d].Values) {
				break
			}
			idx[d] = 0
		}
		if d < 0 {
			return all
		}
	}
}

// Generate returns a pairwise-covering set of possible cases over dims:
// every pair of values of two dimensions that some possible case has
// appears in at least one returned case. It is greedy (each step takes the
// possible combination that covers most uncovered pairs; ties go to the one
// with fewer Rare values, then to the one whose values have been used
// least, then to enumeration order) and
// deterministic, so case IDs are stable while Dimensions does not change.
func Generate(dims []Dimension) []Case {
	possible := func(c Case) bool { return Impossible(c) == "" }
	all := product(dims, possible)
	need := map[pair]bool{}
	for _, idx := range all {
		for _, p := range pairsOf(idx) {
			need[p] = true
		}
	}
	uses := make([][]int, len(dims))
	for d := range dims {
		uses[d] = make([]int, len(dims[d].Values))
	}
	var cases []Case
	for len(need) > 0 {
		best, bestGain, bestRare, bestUse := -1, 0, 0, 0
		for i, idx := range all {
			gain := 0
			for _, p := range pairsOf(idx) {
				if need[p] {
					gain++
				}
			}
			rare, use := 0, 0
			for d, v := range idx {
				use += uses[d][v]
				if slices.Contains(dims[d].Rare, dims[d].Values[v]) {
					rare++
				}
			}
			better := gain > bestGain
			if gain == bestGain && gain > 0 {
				better = rare < bestRare || rare == bestRare && use < bestUse
			}
			if better {
				best, bestGain, bestRare, bestUse = i, gain, rare, use
			}
		}
		idx := all[best]
		for _, p := range pairsOf(idx) {
			delete(need, p)
		}
		for d, v := range idx {
			uses[d][v]++
		}
		c := caseFrom(dims, idx)
		c.ID = len(cases) + 1
		cases = append(cases, c)
	}
	return cases
}

// Uncovered lists, in a readable form, the value pairs that some possible
// case over dims has but none of cases does. Empty means cases are
// pairwise-covering.
func Uncovered(dims []Dimension, cases []Case) []string {
	possible := func(c Case) bool { return Impossible(c) == "" }
	have := map[[4]string]bool{}
	for _, c := range cases {
		for i := range dims {
			for j := i + 1; j < len(dims); j++ {
				have[[4]string{dims[i].Name, c.Value(dims[i].Name), dims[j].Name, c.Value(dims[j].Name)}] = true
			}
		}
	}
	var missing []string
	seen := map[[4]string]bool{}
	for _, idx := range product(dims, possible) {
		c := caseFrom(dims, idx)
		for i := range dims {
			for j := i + 1; j < len(dims); j++ {
				k := [4]string{dims[i].Name, c.Value(dims[i].Name), dims[j].Name, c.Value(dims[j].Name)}
				if !have[k] && !seen[k] {
					seen[k] = true
					missing = append(missing, fmt.Sprintf("%s=%s with %s=%s", k[0], k[1], k[2], k[3]))
				}
			}
		}
	}
	return missing
}

// MissingPerDirection lists the values of every dimension that do not
// appear at least once with each direction in cases (issue 7: "every value
// at least once in each direction").
func MissingPerDirection(dims []Dimension, cases []Case) []string {
	var dirs []string
	for _, d := range dims {
		if d.Name == DimDirection {
			dirs = d.Values
		}
	}
	var missing []string
	for _, dim := range dims {
		if dim.Name == DimDirection {
			continue
		}
		for _, v := range dim.Values {
			for _, dir := range dirs {
				if !slices.ContainsFunc(cases, func(c Case) bool { return c.Direction == dir && c.Value(dim.Name) == v }) {
					missing = append(missing, fmt.Sprintf("%s=%s initiated by %s", dim.Name, v, dir))
				}
			}
		}
	}
	return missing
}

// BrokenCase is the deliberately broken case: Cygnet initiates a PSK
// connection with a pre-shared key strongSwan does not have. It must fail
// with AUTHENTICATION_FAILED, and both sides must say so.
func BrokenCase(id int) Case {
	return Case{
		ID: id, Direction: CygnetInitiates, Auth: AuthPSK,
		IKE: "aes256gcm16-prfsha256-x25519", ESP: "aes256gcm16",
		TS: TSEqual, Mode: ModeTunnel, Outer: IPv4, Inner: IPv4,
		ExpectFailure: "wrong pre-shared key: AUTHENTICATION_FAILED",
	}
}
