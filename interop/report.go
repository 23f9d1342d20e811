package interop

import (
	"fmt"
	"strings"
	"time"
)

// docInfo is what docs/interop.md says about the run besides the matrix.
type docInfo struct {
	Total, Setup, Cases time.Duration
	Dataplane           string // the daemon's data plane in the run
	Parallel            string // cases run at once
	CygnetRekey         string // how Cygnet's rekeys were triggered
}

// ciRuntime is the last measured duration of the whole .ci/run (update it
// when measuring again).
const ciRuntime = "14m50s (measured 2026-11-27 from a fresh clone; this package took 22 s of the parallel test stage and its fuzz target 10 s)"

// renderDoc renders docs/interop.md from a run's results.
func renderDoc(results []Result, info docInfo) string {
	var b strings.Builder
	counts := map[Status]int{}
	for _, r := range results {
		if r.Case.ExpectFailure != "" {
			continue
		}
		st, _ := Verdict(r)
		counts[st]++
	}
	var pending []string
	for _, r := range results {
		for _, s := range r.Steps {
			if s.Status == Pending && !containsString(pending, s.Detail) {
				pending = append(pending, s.Detail)
			}
		}
	}
	fmt.Fprintf(&b, `# Interoperability with strongSwan

This file is written by the interop suite (`+"`interop/`"+`) from its last run with
`+"`-update`"+`; do not edit the matrix by hand. The suite runs in CI (`+"`.ci/run`"+`, as root
with `+"`CYGNET_STRICT=1`"+`); a normal run prints the same matrix (`+"`go test ./interop/ -run Matrix -v`"+`)
without rewriting this file.

## What runs

Two network namespaces joined by a veth pair: `+"`cygnet daemon`"+` in one, strongSwan 5.9's
charon with kernel-libipsec (userspace ESP, always UDP-encapsulated: it fakes a NAT) in the
other, both configured with every case's connection. Each case has its own pair of outer
addresses, so each peer picks the case's connection by address and every captured frame
belongs to one case. Every certificate is made by strongSwan's `+"`pki`"+`: per algorithm a root
CA (RSA: root and intermediate CA), and per case one certificate per side carrying the
case's identities. Cases run %s at a time.

Each case:

1. **establish**: the initiator (`+"`cygnet up CONN CHILD`"+`, or charon over VICI) sets up the
   IKE SA and a CHILD_SA in IKE_AUTH; both sides must agree on SPIs, identities, the
   negotiated IKE and ESP algorithms, mode, UDP encapsulation and the traffic selectors the
   plan expects (after narrowing). With the PFS ESP proposal a second CHILD_SA follows by
   CREATE_CHILD_SA with its own X25519 exchange (strongSwan must report the group on it).
   Setup time is the initiator's `+"`up`"+`/initiate call.
2. **ping**: ICMP echo from Cygnet's inner address(es) to strongSwan's through the tunnel,
   one pair per subnet; strongSwan must count the ESP packets on the CHILD_SA.
3. **rekey**: the initiator rekeys the CHILD_SA (strongSwan: VICI `+"`rekey`"+`; Cygnet in this
   run: %s); both sides must hold the same new SA (with PFS: the X25519 group), then ping
   again.
4. **delete**: the initiator deletes the IKE SA (`+"`cygnet down`"+` or VICI `+"`terminate`"+`); both sides
   must forget it.
5. **wire**: every frame sent by Cygnet's namespace (AF_PACKET capture for the whole run)
   is dissected by tshark 4.0 with Cygnet's key log as its configuration: no "Malformed"
   frame, no error-level expert info, and every encrypted IKE message and ESP packet must
   decrypt (Wireshark checks the ICV). A failure names the frame, exchange and message ID.
   The RSA cases must show IKE fragments (RFC 7383) in both directions.

A step is **pending** when a feature it needs has not landed (never counted as a pass):
it runs, and is pending only when it fails exactly as the feature's absence looks.

## The cases

A pairwise-covering set over the dimensions of issue 7 (`+"`Generate`"+` in
`+"`interop/cases.go`"+`): every pair of values of any two dimensions appears in some case,
except impossible pairs (transport mode with inner and outer addresses of different
families, transport mode with several subnets), so every value also appears with each
direction. %d cases instead of the 3,072 combinations, plus one deliberately broken case
(Cygnet initiates with a pre-shared key strongSwan does not have), which must fail with
the reason on both sides.

| dimension | values |
|---|---|
`, info.Parallel, info.CygnetRekey, len(results)-1)
	for _, d := range Dimensions {
		fmt.Fprintf(&b, "| %s | %s |\n", d.Name, "`"+strings.Join(d.Values, "`, `")+"`")
	}
	fmt.Fprintf(&b, `
## Matrix

Last run: %d passed, %d incomplete (pending steps), %d failed, of %d cases; the broken case
failed as it must. Data plane of the daemon in this run: `+"`%s`"+`.

`, counts[Pass], counts[Pending], counts[Fail]+counts[NotRun], len(results)-1, info.Dataplane)
	b.WriteString(Markdown(results))
	fmt.Fprintf(&b, `
## Pending

`)
	if len(pending) == 0 {
		b.WriteString("Nothing is pending.\n")
	}
	for _, p := range pending {
		fmt.Fprintf(&b, "- %s\n", p)
	}
	fmt.Fprintf(&b, `
Transport mode: strongSwan's only ESP implementation on these hosts is kernel-libipsec (the
kernel has XFRM but no ESP transforms), and libipsec implements tunnel mode only; charon
negotiates transport mode and then fails to install it ("IPsec SA: unsupported mode"). The
transport cases therefore check the negotiation (the IKE SA is established, strongSwan
agreed to transport mode and reached the install) and the delete, and mark the rest
pending. Running them in full needs strongSwan with kernel ESP, as in the VM of `+"`vm/`"+`.

ChaCha20-Poly1305: Wireshark 4.0 (Debian 12) has no ChaCha20-Poly1305 in its IKEv2 or ESP
decryption tables, so frames of those suites are dissected (no malformed frames, no expert
errors) but not decrypted; strongSwan authenticated every one of them.

## Runtime

This run: %v in all (namespaces, certificates and both daemons %v; the cases %v; the
wire check the rest), on the 2-CPU CI machine. In CI the package runs alongside the other
packages of `+"`go test -race ./...`"+`; all of `+"`.ci/run`"+` (formatting, vet, every test, the XFRM
tests in the VM, every fuzz target for 10 s) took %s with this suite in it.

## Recorded transcripts

`+"`interop/testdata/*.transcript`"+` are exchanges with strongSwan recorded by driving
Cygnet's sans-IO engine (`+"`internal/ike/sa`"+`) directly over a UDP socket in a namespace,
with a seeded random source and a fake clock on Cygnet's side. `+"`TestTranscripts`"+` replays
them without root or strongSwan: a fresh engine with the same seed, fed strongSwan's
recorded datagrams, must produce byte-identical datagrams and the same SPIs and keys.
`+"`go test ./interop/ -run Transcripts -update`"+` re-records them (root and strongSwan).
`, info.Total.Round(time.Second), info.Setup.Round(time.Second), info.Cases.Round(time.Second), ciRuntime)
	return b.String()
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
