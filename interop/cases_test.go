package interop

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/config"
)

func TestGenerateIsPairwiseCovering(t *testing.T) {
	cases := Generate(Dimensions)
	if u := Uncovered(Dimensions, cases); len(u) > 0 {
		t.Errorf("pairs no case covers: %q", u)
	}
	if m := MissingPerDirection(Dimensions, cases); len(m) > 0 {
		t.Errorf("values missing in a direction: %q", m)
	}
	full := 1
	for _, d := range Dimensions {
		full *= len(d.Values)
	}
	// The largest pair of dimensions (4 auths x 4 proposals) needs 16 cases;
	// greedy pairwise sets stay close to that.
	if len(cases) < 16 || len(cases) > 30 {
		t.Errorf("%d cases (the cross product has %d): want 16 to 30", len(cases), full)
	}
	for i, c := range cases {
		if c.ID != i+1 {
			t.Errorf("case %d has ID %d", i, c.ID)
		}
		if why := Impossible(c); why != "" {
			t.Errorf("case %s is impossible: %s", c.Name(), why)
		}
	}
	if again := Generate(Dimensions); !slices.Equal(again, cases) {
		t.Error("Generate is not deterministic")
	}
	t.Logf("%d cases cover every pair of %d dimensions (cross product: %d)", len(cases), len(Dimensions), full)
}

// TestCoverageCheckersFail: the coverage checks must notice a missing case.
func TestCoverageCheckersFail(t *testing.T) {
	cases := Generate(Dimensions)
	// Greedy: the last case covered at least one pair nobody else did.
	if u := Uncovered(Dimensions, cases[:len(cases)-1]); len(u) == 0 {
		t.Error("Uncovered found nothing missing without the last case")
	}
	var oneWay []Case
	for _, c := range cases {
		c.Direction = CygnetInitiates
		oneWay = append(oneWay, c)
	}
	m := MissingPerDirection(Dimensions, oneWay)
	if len(m) == 0 || !strings.Contains(strings.Join(m, "\n"), "initiated by strongswan") {
		t.Errorf("MissingPerDirection with every case initiated by Cygnet: %q", m)
	}
	if u := Uncovered(Dimensions, oneWay); len(u) == 0 {
		t.Error("Uncovered found nothing missing with one direction only")
	}
}

// TestGenerateSmall checks the generator exhaustively on a small matrix
// with an impossible combination.
func TestGenerateSmall(t *testing.T) {
	dims := []Dimension{
		{Name: DimDirection, Values: []string{CygnetInitiates, StrongSwanInitiates}},
		{Name: DimMode, Values: []string{ModeTunnel, ModeTransport}, Rare: []string{ModeTransport}},
		{Name: DimOuter, Values: []string{IPv4, IPv6}},
		{Name: DimInner, Values: []string{IPv4, IPv6}},
		{Name: DimTS, Values: []string{TSEqual, TSSeveral}},
	}
	cases := Generate(dims)
	for _, c := range cases {
		if Impossible(c) != "" {
			t.Errorf("impossible case %+v", c)
		}
	}
	// Every possible pair, computed here by brute force.
	seen := map[string]bool{}
	for _, c := range cases {
		for i := range dims {
			for j := i + 1; j < len(dims); j++ {
				seen[fmt.Sprint(dims[i].Name, c.Value(dims[i].Name), dims[j].Name, c.Value(dims[j].Name))] = true
			}
		}
	}
	for _, idx := range product(dims, func(c Case) bool { return Impossible(c) == "" }) {
		c := caseFrom(dims, idx)
		for i := range dims {
			for j := i + 1; j < len(dims); j++ {
				if k := fmt.Sprint(dims[i].Name, c.Value(dims[i].Name), dims[j].Name, c.Value(dims[j].Name)); !seen[k] {
					t.Errorf("pair %s not covered", k)
				}
			}
		}
	}
	// transport+several and transport with mixed families are impossible,
	// so these pairs must not be demanded, and are not covered.
	for _, c := range cases {
		if c.Mode == ModeTransport && (c.TS == TSSeveral || c.Inner != c.Outer) {
			t.Errorf("generated %+v", c)
		}
	}
	if u := Uncovered(dims, cases); len(u) > 0 {
		t.Errorf("Uncovered: %q", u)
	}
}

func TestImpossible(t *testing.T) {
	base := Case{Mode: ModeTunnel, Outer: IPv4, Inner: IPv6, TS: TSSeveral}
	if Impossible(base) != "" {
		t.Error("tunnel mode with IPv6 in IPv4 and several subnets is possible")
	}
	tr := base
	tr.Mode = ModeTransport
	if Impossible(tr) == "" {
		t.Error("transport mode with mixed families is impossible")
	}
	tr.Inner, tr.TS = IPv4, TSSeveral
	if Impossible(tr) == "" {
		t.Error("transport mode with several subnets is impossible")
	}
	tr.TS = TSNarrowed
	if Impossible(tr) != "" {
		t.Error("transport mode narrowed to ICMP is possible")
	}
}

// TestPlans checks the layout of every case: unique addresses and names,
// ping addresses inside the selectors both sides end up with, and
// selectors of the right family.
func TestPlans(t *testing.T) {
	cases := append(Generate(Dimensions), BrokenCase(len(Generate(Dimensions))+1))
	seen := map[string]string{}
	unique := func(what, v, owner string) {
		if prev, ok := seen[what+v]; ok {
			t.Errorf("%s %s of %s also belongs to %s", what, v, owner, prev)
		}
		seen[what+v] = owner
	}
	for _, c := range cases {
		p := NewPlan(c)
		n := c.Name()
		unique("address", p.CygOuter.String(), n)
		unique("address", p.SwanOuter.String(), n)
		unique("conn", p.Conn, n)
		unique("id", p.CygID, n)
		unique("id", p.SwanID, n)
		if p.CygOuter.Is6() != (c.Outer == IPv6) {
			t.Errorf("%s: outer %s for %s", n, p.CygOuter, c.Outer)
		}
		if (p.PFSChild != "") != c.PFS() {
			t.Errorf("%s: PFS child %q for ESP %s", n, p.PFSChild, c.ESP)
		}
		within := func(a netip.Addr, ts []string) bool {
			for _, s := range ts {
				s, _, _ = strings.Cut(s, "[")
				if pr, err := netip.ParsePrefix(s); err == nil && pr.Contains(a) {
					return true
				}
			}
			return false
		}
		for _, pg := range p.Pings {
			if !within(pg[0], p.WantLocalTS) || !within(pg[1], p.WantRemoteTS) {
				t.Errorf("%s: ping %s -> %s outside the negotiated selectors %v === %v", n, pg[0], pg[1], p.WantLocalTS, p.WantRemoteTS)
			}
			if want := c.Inner == IPv6; pg[0].Is6() != want || pg[1].Is6() != want {
				t.Errorf("%s: ping %s -> %s for inner %s", n, pg[0], pg[1], c.Inner)
			}
		}
		if c.Mode == ModeTunnel {
			for _, ts := range [][]string{p.CygLocalTS, p.SwanRemoteTS} {
				for _, a := range p.CygInner {
					if !within(a, ts) && !within(a, p.PFSCygLocalTS) {
						t.Errorf("%s: Cygnet's inner %s outside %v", n, a, ts)
					}
				}
			}
		}
		if c.TS == TSNarrowed && c.Mode == ModeTunnel {
			responderTS := p.SwanLocalTS
			if c.Direction == StrongSwanInitiates {
				responderTS = p.CygRemoteTS
			}
			if !slices.Equal(responderTS, p.WantRemoteTS) || slices.Equal(p.CygLocalTS, p.SwanRemoteTS) {
				t.Errorf("%s: the responder does not narrow: %+v", n, p)
			}
		}
	}
}

// TestCygnetConfigLoads feeds the Cygnet configuration of every PSK case
// (certificate cases need pki's files) to the configuration loader.
func TestCygnetConfigLoads(t *testing.T) {
	var conns, secrets strings.Builder
	n := 0
	for _, c := range Generate(Dimensions) {
		if c.Auth != AuthPSK {
			continue
		}
		p := NewPlan(c)
		conns.WriteString(p.CygnetConnection(nil, "4s"))
		secrets.WriteString(p.CygnetSecret(casePSK))
		n++
	}
	yaml := "daemon:\n  dataplane: none\nsecrets:\n" + secrets.String() + "connections:\n" + conns.String()
	path := filepath.Join(t.TempDir(), "cygnet.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	if len(cfg.Connections) != n {
		t.Errorf("%d connections loaded, want %d", len(cfg.Connections), n)
	}
}
