package interop

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is the outcome of one step of a case.
type Status uint8

const (
	NotRun  Status = iota // the step never ran (an earlier step stopped the case)
	Pass                  // the step ran and everything it checks held
	Fail                  // the step ran and something did not hold
	Pending               // the step cannot work yet: a feature it needs has not landed
)

func (s Status) String() string {
	switch s {
	case NotRun:
		return "not run"
	case Pass:
		return "pass"
	case Fail:
		return "FAIL"
	case Pending:
		return "pending"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// MarshalText makes a recorded run (testdata/matrix-*.json) readable.
func (s Status) MarshalText() ([]byte, error) {
	if s > Pending {
		return nil, fmt.Errorf("interop: invalid status %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads what MarshalText wrote.
func (s *Status) UnmarshalText(b []byte) error {
	for st := NotRun; st <= Pending; st++ {
		if string(b) == st.String() {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("interop: unknown status %q", b)
}

// Steps of a case, in the order they run. Wire is the conformance check of
// the case's captured frames, made after all cases ran.
const (
	StepEstablish = iota
	StepPing
	StepRekey
	StepDelete
	StepWire
	NumSteps
)

// StepNames are the matrix's column names for the steps.
var StepNames = [NumSteps]string{"establish", "ping", "rekey", "delete", "wire"}

// Step is one step's outcome. Detail is the failure's reason, the pending
// feature, or a note on a pass.
type Step struct {
	Status Status
	Detail string
}

// Result is one case's outcome.
type Result struct {
	Case  Case
	Env   Env // where it ran
	Steps [NumSteps]Step
	Setup time.Duration // from the initiation to both sides established (0: not established)
	// Notes are facts worth a line in the report that are no step's
	// outcome (e.g. "IKE_AUTH fragmented: 3 fragments out, 3 in").
	Notes []string
}

// Set records a step's outcome. A failure is never overwritten by a pass
// or a pending; further failure reasons are appended.
func (r *Result) Set(step int, st Status, format string, args ...any) {
	detail := fmt.Sprintf(format, args...)
	cur := &r.Steps[step]
	switch {
	case cur.Status == Fail && st == Fail:
		cur.Detail += "; " + detail
	case cur.Status == Fail:
		// keep the failure
	case cur.Status == Pending && st == Pass:
		// keep the pending: part of the step could not run
	default:
		*cur = Step{Status: st, Detail: detail}
	}
}

// Verdict is the checker every case goes through: a case fails if any step
// failed or did not run; it is pending if a step is pending and none
// failed; it passes only if every step passed. A pending step never counts
// as a pass.
func Verdict(r Result) (Status, string) {
	var failed, pending []string
	for i, s := range r.Steps {
		switch s.Status {
		case Fail:
			failed = append(failed, StepNames[i]+": "+s.Detail)
		case NotRun:
			reason := "did not run"
			if s.Detail != "" {
				reason += " (" + s.Detail + ")"
			}
			failed = append(failed, StepNames[i]+": "+reason)
		case Pending:
			if !slices.Contains(pending, s.Detail) {
				pending = append(pending, s.Detail)
			}
		}
	}
	switch {
	case len(failed) > 0:
		return Fail, strings.Join(failed, "; ")
	case len(pending) > 0:
		return Pending, "pending: " + strings.Join(pending, ", ")
	}
	return Pass, ""
}

// Check applies Verdict to every result and returns the problems the suite
// must report: a case that did not pass (pending is reported by the matrix,
// not as a problem), and a deliberately broken case that did not fail or
// failed without every reason it must give (mustSay lists, per broken case
// ID, substrings its failure must contain: both sides' reasons).
func Check(results []Result, mustSay map[int][]string) []string {
	var problems []string
	for _, r := range results {
		st, why := Verdict(r)
		name := r.Case.Name()
		if r.Case.ExpectFailure == "" {
			if st == Fail {
				problems = append(problems, fmt.Sprintf("%s failed: %s", name, why))
			}
			continue
		}
		if st != Fail {
			problems = append(problems, fmt.Sprintf("%s must fail (%s) but its verdict is %s %s", name, r.Case.ExpectFailure, st, why))
			continue
		}
		for _, s := range mustSay[r.Case.ID] {
			if !strings.Contains(why, s) {
				problems = append(problems, fmt.Sprintf("%s failed, but its reason lacks %q: %s", name, s, why))
			}
		}
	}
	return problems
}

// cell is a step's matrix cell.
func cell(s Step) string {
	switch s.Status {
	case Pending:
		return "pending: " + s.Detail
	case Fail:
		return "FAIL"
	}
	return s.Status.String()
}

func resultCell(r Result) string {
	st, _ := Verdict(r)
	switch {
	case r.Case.ExpectFailure != "" && st == Fail:
		return "FAIL (expected)"
	case st == Pending:
		return "incomplete"
	}
	return st.String()
}

func backendCell(e Env) string {
	if e.Backend == "" {
		return "-"
	}
	return e.Backend
}

func setupCell(r Result) string {
	if r.Setup == 0 {
		return "-"
	}
	return fmt.Sprintf("%d ms", r.Setup.Milliseconds())
}

// Text renders the matrix for a terminal (go test -v output).
func Text(results []Result) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "case\tinitiator\tauth\tIKE\tESP\tTS\tmode\touter/inner\twhere\tstrongSwan ESP\testablish\tping\trekey\tdelete\twire\tsetup\tresult")
	for _, r := range results {
		c := r.Case
		row := []string{c.Name(), c.Direction, c.Auth, c.IKE, c.ESP, c.TS, c.Mode, c.Outer + "/" + c.Inner, r.Env.String(), backendCell(r.Env)}
		for _, s := range r.Steps {
			row = append(row, cell(s))
		}
		row = append(row, setupCell(r), resultCell(r))
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	w.Flush()
	return b.String()
}

// Markdown renders the matrix as a Markdown table, followed by the reason
// of every case that did not pass.
func Markdown(results []Result) string {
	var b strings.Builder
	b.WriteString("| # | initiator | auth | IKE proposal | ESP proposal | TS | mode | outer/inner | where | strongSwan ESP | establish | ping | rekey | delete | wire | setup | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		c := r.Case
		row := []string{fmt.Sprintf("%02d", c.ID), c.Direction, c.Auth, "`" + c.IKE + "`", "`" + c.ESP + "`", c.TS, c.Mode, c.Outer + "/" + c.Inner, r.Env.String(), backendCell(r.Env)}
		if c.ExpectFailure != "" {
			row[1] = c.Direction + " (broken: " + c.ExpectFailure + ")"
		}
		for _, s := range r.Steps {
			row = append(row, cell(s))
		}
		row = append(row, setupCell(r), "**"+resultCell(r)+"**")
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	}
	var notes []string
	for _, r := range results {
		// Pending steps say why in their cells; failures get a line.
		if st, why := Verdict(r); st == Fail {
			notes = append(notes, fmt.Sprintf("- **%s** (%s): %s", r.Case.Name(), st, escapeMarkdown(why)))
		}
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", r.Case.Name(), escapeMarkdown(n)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

func escapeMarkdown(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
