package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// A Run is one environment's run of the matrix. With -update each
// environment's test records its run in testdata/matrix-<env>.json, and
// docs/interop.md is rendered from the latest run of every environment, so
// the host's cases and the VM's appear in one matrix.
type Run struct {
	Env     Env
	Date    string // UTC day of the run
	Results []Result
	// Timings: Total is the whole test. Setup (namespaces, certificates,
	// both daemons) and Cases are measured where the cases ran, so in the
	// VM they are inside VMTime (boot, run, power off).
	Total, Setup, Cases, VMTime time.Duration
	Dataplane                   string // the daemon's data plane
	Parallel                    string // cases run at once
	CygnetRekey                 string // how Cygnet's rekeys were triggered
}

// runFile is where a run in env is recorded, relative to the package.
func runFile(env Env) string {
	return "testdata/matrix-" + strings.ToLower(env.Name) + ".json"
}

func readRun(path string) (Run, error) {
	var r Run
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("interop: %s: %v", path, err)
	}
	return r, nil
}

func writeRun(path string, r Run) error {
	b, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// AllCases is the matrix: the generated cases and the deliberately broken
// one.
func AllCases() []Case {
	cases := Generate(Dimensions)
	return append(cases, BrokenCase(len(cases)+1))
}

// mergeRuns returns a result for every case of AllCases, from the run of
// the environment the case belongs in. A case that run lacks (no run
// recorded, or one from before the cases changed) gets steps that did not
// run, which the matrix shows as a failure.
func mergeRuns(runs []Run) []Result {
	var out []Result
	for _, c := range AllCases() {
		env := EnvOf(c)
		r := Result{Case: c, Env: env}
		for i := range r.Steps {
			r.Steps[i] = Step{NotRun, "no run in the " + env.Name + " recorded for this case"}
		}
		for _, run := range runs {
			if run.Env != env {
				continue
			}
			if i := slices.IndexFunc(run.Results, func(r Result) bool { return r.Case == c }); i >= 0 {
				r = run.Results[i]
			}
		}
		out = append(out, r)
	}
	return out
}

// ciRuntime is the last measured duration of the whole .ci/run (update it
// when measuring again).
const ciRuntime = "12m44s (measured 2026-11-27 from a fresh clone; this package took 13 s of the parallel test stage, 32 s of the VM stage, and its fuzz target 10 s)"

// renderDoc renders docs/interop.md from the latest run of each
// environment.
func renderDoc(runs []Run) string {
	results := mergeRuns(runs)
	var host, vm Run
	for _, r := range runs {
		switch r.Env {
		case HostEnv:
			host = r
		case VMEnv:
			vm = r
		}
	}
	var b strings.Builder
	counts := map[Status]int{}
	brokenOK := true
	for _, r := range results {
		st, _ := Verdict(r)
		if r.Case.ExpectFailure != "" {
			brokenOK = brokenOK && st == Fail
			continue
		}
		counts[st]++
	}
	var pending []string
	for _, r := range results {
		for _, s := range r.Steps {
			if s.Status == Pending && !slices.Contains(pending, s.Detail) {
				pending = append(pending, s.Detail)
			}
		}
	}
	nHost, nVM := 0, 0
	for _, c := range AllCases() {
		if EnvOf(c) == VMEnv {
			nVM++
		} else {
			nHost++
		}
	}
	fmt.Fprintf(&b, `# Interoperability with strongSwan

This file is written by the interop suite (`+"`interop/`"+`) from the last runs recorded with
`+"`-update`"+` (`+"`interop/testdata/matrix-host.json`, `matrix-vm.json`"+`); do not edit the
matrix by hand. The suite runs in CI (`+"`.ci/run`"+`, as root with `+"`CYGNET_STRICT=1`"+`): the
host's cases in `+"`go test ./...`"+`, the VM's in `+"`vm/run-xfrm-tests.sh`"+`. A normal run prints
its part of the matrix (`+"`go test ./interop/ -run Matrix -v`"+`) without rewriting this file.

    go test ./interop/ -run 'Matrix$' -update                      # the host's cases
    CYGNET_INTEROP_VM=1 go test ./interop/ -run 'MatrixKernel$' -update   # the VM's (root, QEMU)

## What runs

The cases run where strongSwan can do what they need (`+"`EnvOf`"+` in `+"`interop/env.go`"+`):

- **host** (%d cases: tunnel mode, and the broken case). Two network namespaces joined by a
  veth pair: `+"`cygnet daemon`"+` in one, strongSwan 5.9's charon with **kernel-libipsec** in
  the other. The hosts' kernel has XFRM but no ESP transforms, so libipsec (ESP in charon,
  over a TUN device) is strongSwan's only ESP here; it always UDP-encapsulates (it fakes a
  NAT), so IKE moves to port 4500. Cases run %s at a time.
- **VM** (%d cases: transport mode, which libipsec does not implement: charon negotiates it
  and then fails with "IPsec SA: unsupported mode"). The same harness inside Cygnet's QEMU
  test VM (`+"`vm/`"+`), whose kernel has ESP, against charon with **kernel-netlink**: the
  kernel's ESP, no NAT, IKE on port 500 and ESP as IP protocol 50. The VM boots once for all
  of them; they run in parallel in it. Certificates and the cygnet binary are made on the
  host and reach the VM through a shared directory (9p), and the capture and Cygnet's key
  log come back through it: tshark dissects them on the host (in the VM, under software
  emulation, it takes 10-40 s just to start).

Both peers are configured with every case's connection of their environment. Each case has
its own pair of outer addresses, so each peer picks the case's connection by address and
every captured frame belongs to one case. Every certificate is made by strongSwan's
`+"`pki`"+`: per algorithm a root CA (RSA: root and intermediate CA), and per case one
certificate per side carrying the case's identities. The daemon's data plane is `+"`%s`"+` in
both environments: in the VM, Cygnet's own transport-mode ESP meets the kernel's, an
independent implementation (with `+"`dataplane: xfrm`"+` both ends' ESP would be the same kernel
code; `+"`TestXFRMStrongSwan`"+` in `+"`cmd/cygnet`"+` covers that pairing).

Each case:

1. **establish**: the initiator (`+"`cygnet up CONN CHILD`"+`, or charon over VICI) sets up the
   IKE SA and a CHILD_SA in IKE_AUTH; both sides must agree on SPIs, identities, the
   negotiated IKE and ESP algorithms, mode, UDP encapsulation (as strongSwan's backend
   does it), the IKE port and the traffic selectors the plan expects (after narrowing).
   With the PFS ESP proposal a second CHILD_SA follows by CREATE_CHILD_SA with its own
   X25519 exchange (strongSwan must report the group on it); in transport mode it covers
   the same two hosts for UDP only. Setup time is the initiator's `+"`up`"+`/initiate call.
2. **ping**: ICMP echo from Cygnet's inner address(es) to strongSwan's through the tunnel
   (transport mode: between the two hosts), one pair per subnet; strongSwan must count the
   ESP packets on the CHILD_SA, and the captured frames must show Cygnet's requests leaving
   as ESP between the case's outer addresses (in UDP where libipsec fakes the NAT) and none
   in the clear.
3. **rekey**: the initiator rekeys the CHILD_SA (strongSwan: VICI `+"`rekey`"+`; Cygnet: %s);
   both sides must hold the same new SA (with PFS: the X25519 group), then ping again.
4. **delete**: the initiator deletes the IKE SA (`+"`cygnet down`"+` or VICI `+"`terminate`"+`); both sides
   must forget it.
5. **wire**: every frame sent by Cygnet's namespace (AF_PACKET capture for the whole run)
   is dissected by tshark 4.0 with Cygnet's key log as its configuration: no "Malformed"
   frame, no error-level expert info, and every encrypted IKE message and ESP packet must
   decrypt (Wireshark checks the ICV); without the key log nothing may decrypt. A failure
   names the frame, exchange and message ID. The RSA cases must show IKE fragments
   (RFC 7383) in both directions.

A step is **pending** when a feature it needs has not landed (never counted as a pass):
it runs, and is pending only when it fails exactly as the feature's absence looks.

## The cases

A pairwise-covering set over the dimensions of issue 7 (`+"`Generate`"+` in
`+"`interop/cases.go`"+`): every pair of values of any two dimensions appears in some case,
except impossible pairs (transport mode with inner and outer addresses of different
families, transport mode with several subnets), so every value also appears with each
direction (transport mode: %s). %d cases instead of
the 3,072 combinations, plus one deliberately broken case (Cygnet initiates with a
pre-shared key strongSwan does not have), which must fail with the reason on both sides.

| dimension | values |
|---|---|
`, nHost, host.Parallel, nVM, host.Dataplane, host.CygnetRekey, transportDirections(), len(results)-1)
	for _, d := range Dimensions {
		fmt.Fprintf(&b, "| %s | %s |\n", d.Name, "`"+strings.Join(d.Values, "`, `")+"`")
	}
	broken := "the broken case failed as it must"
	if !brokenOK {
		broken = "the broken case did NOT fail as it must"
	}
	fmt.Fprintf(&b, `
## Matrix

Last runs: %d passed, %d incomplete (pending steps), %d failed, of %d cases; %s.
Host run %s, VM run %s.

`, counts[Pass], counts[Pending], counts[Fail]+counts[NotRun], len(results)-1, broken, orNone(host.Date), orNone(vm.Date))
	b.WriteString(Markdown(results))
	b.WriteString("\n## Pending\n\n")
	if len(pending) == 0 {
		b.WriteString("Nothing is pending.\n")
	}
	for _, p := range pending {
		fmt.Fprintf(&b, "- %s\n", p)
	}
	fmt.Fprintf(&b, `
ChaCha20-Poly1305: Wireshark 4.0 (Debian 12) has no ChaCha20-Poly1305 in its IKEv2 or ESP
decryption tables, so frames of those suites are dissected (no malformed frames, no expert
errors) but not decrypted; strongSwan authenticated every one of them.

## Runtime

On the 2-CPU CI machine:

- host: %v in all (namespaces, certificates and both daemons %v; the cases %v; the wire
  check the rest). In CI this runs alongside the other packages of `+"`go test -race ./...`"+`.
- VM: %v in all: the VM %v (boot, run and power off; inside it the namespaces and both
  daemons took %v, the cases %v), before it the certificates and the cygnet binary, after
  it the wire check, on the host. In CI this is one more VM in `+"`vm/run-xfrm-tests.sh`"+`.

All of `+"`.ci/run`"+` (formatting, vet, every test, the VM tests, every fuzz target for 10 s) took
%s.

## Recorded transcripts

`+"`interop/testdata/*.transcript`"+` are exchanges with strongSwan recorded by driving
Cygnet's sans-IO engine (`+"`internal/ike/sa`"+`) directly over a UDP socket in a namespace,
with a seeded random source and a fake clock on Cygnet's side. `+"`TestTranscripts`"+` replays
them without root or strongSwan: a fresh engine with the same seed, fed strongSwan's
recorded datagrams, must produce byte-identical datagrams and the same SPIs and keys.
`+"`go test ./interop/ -run Transcripts -update`"+` re-records them (root and strongSwan).
`, round(host.Total), round(host.Setup), round(host.Cases),
		round(vm.Total), round(vm.VMTime), round(vm.Setup), round(vm.Cases), ciRuntime)
	return b.String()
}

// transportDirections says how many transport-mode cases each side
// initiates.
func transportDirections() string {
	n := map[string]int{}
	for _, c := range Generate(Dimensions) {
		if c.Mode == ModeTransport {
			n[c.Direction]++
		}
	}
	return fmt.Sprintf("%d initiated by Cygnet, %d by strongSwan", n[CygnetInitiates], n[StrongSwanInitiates])
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }

func orNone(date string) string {
	if date == "" {
		return "not recorded"
	}
	return date
}
