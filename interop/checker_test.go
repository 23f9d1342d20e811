package interop

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// The checkers must be able to fail: these meta-tests feed them failing
// cases and bad frames and require that they say so.

func TestVerdict(t *testing.T) {
	pass := Step{Status: Pass}
	all := func(s Step) [NumSteps]Step {
		var steps [NumSteps]Step
		for i := range steps {
			steps[i] = s
		}
		return steps
	}
	for _, c := range []struct {
		name  string
		steps [NumSteps]Step
		want  Status
		why   string
	}{
		{"all pass", all(pass), Pass, ""},
		{"one failure", func() [NumSteps]Step { s := all(pass); s[StepRekey] = Step{Fail, "no rekey"}; return s }(), Fail, "rekey: no rekey"},
		{"pending is not a pass", func() [NumSteps]Step { s := all(pass); s[StepPing] = Step{Pending, FeatureDataplane}; return s }(), Pending, FeatureDataplane},
		{"failure beats pending", func() [NumSteps]Step {
			s := all(pass)
			s[StepPing] = Step{Pending, FeatureDataplane}
			s[StepWire] = Step{Fail, "frame 7: Malformed Packet"}
			return s
		}(), Fail, "frame 7"},
		{"a step that did not run fails", func() [NumSteps]Step { s := all(pass); s[StepDelete] = Step{}; return s }(), Fail, "delete: did not run"},
		{"nothing ran", [NumSteps]Step{}, Fail, "establish: did not run"},
	} {
		st, why := Verdict(Result{Steps: c.steps})
		if st != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: Verdict = %v %q, want %v with %q", c.name, st, why, c.want, c.why)
		}
	}
}

func TestResultSetKeepsFailures(t *testing.T) {
	var r Result
	r.Set(StepRekey, Fail, "first")
	r.Set(StepRekey, Pass, "")
	r.Set(StepRekey, Pending, FeatureChildRekey)
	r.Set(StepRekey, Fail, "second")
	if s := r.Steps[StepRekey]; s.Status != Fail || s.Detail != "first; second" {
		t.Errorf("after fail, pass, pending, fail: %+v", s)
	}
	r.Set(StepPing, Pending, FeatureDataplane)
	r.Set(StepPing, Pass, "")
	if s := r.Steps[StepPing]; s.Status != Pending {
		t.Errorf("a pass overwrote a pending step: %+v", s)
	}
}

// TestCheckFlagsFailingCases is the meta-test of the suite's checker: a
// failing case is reported, a broken case that passes (or fails without
// both sides' reasons) is reported, and only a broken case that fails for
// the right reasons, or a passing or pending case, is not.
func TestCheckFlagsFailingCases(t *testing.T) {
	good := Result{Case: Case{ID: 1, Direction: CygnetInitiates, Auth: AuthPSK}}
	for i := range good.Steps {
		good.Steps[i] = Step{Status: Pass}
	}
	failing := good
	failing.Case.ID = 2
	failing.Steps[StepPing] = Step{Fail, "ping 10.2.1.1 -> 10.102.1.1 through the tunnel: 3 sent, 0 answered"}
	pending := good
	pending.Case.ID = 3
	pending.Steps[StepRekey] = Step{Pending, FeatureChildRekey}
	broken := BrokenCase(4)
	brokenRight := Result{Case: broken}
	brokenRight.Steps[StepEstablish] = Step{Fail, "cygnet: peer rejected our authentication (AUTHENTICATION_FAILED); strongSwan: tried 1 shared key, but MAC mismatched"}
	brokenPassed := Result{Case: broken}
	for i := range brokenPassed.Steps {
		brokenPassed.Steps[i] = Step{Status: Pass}
	}
	brokenVague := Result{Case: broken}
	brokenVague.Steps[StepEstablish] = Step{Fail, "cygnet: timeout"}
	mustSay := map[int][]string{broken.ID: brokenReasons}

	for _, c := range []struct {
		name    string
		results []Result
		want    []string // substrings, one per expected problem
	}{
		{"all good", []Result{good, pending, brokenRight}, nil},
		{"a failing case", []Result{good, failing, brokenRight}, []string{"02-cygnet-psk failed: ping: ping 10.2.1.1"}},
		{"the broken case passed", []Result{good, brokenPassed}, []string{"must fail"}},
		{"the broken case failed without reasons", []Result{brokenVague}, []string{`lacks "AUTHENTICATION_FAILED"`, `lacks "MAC mismatched"`}},
	} {
		problems := Check(c.results, mustSay)
		if len(problems) != len(c.want) {
			t.Errorf("%s: Check = %q, want %d problems", c.name, problems, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(problems[i], w) {
				t.Errorf("%s: problem %q lacks %q", c.name, problems[i], w)
			}
		}
	}
	if st, _ := Verdict(pending); st == Pass {
		t.Error("a pending case passed")
	}
}

func TestMatrixRendering(t *testing.T) {
	r := Result{Case: Generate(Dimensions)[0], Env: HostEnv}
	r.Steps = [NumSteps]Step{{Pass, ""}, {Pending, FeatureDataplane}, {Fail, "x | y"}, {Pass, ""}, {}}
	r.Notes = []string{"a note"}
	md := Markdown([]Result{r})
	for _, want := range []string{"| 01 |", "| host | kernel-libipsec |", "pending: " + FeatureDataplane, "| FAIL |", "**FAIL**", `x \| y`, "wire: did not run", "a note"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	txt := Text([]Result{r})
	if !strings.Contains(txt, "01-cygnet-psk") || !strings.Contains(txt, "FAIL") || !strings.Contains(txt, "kernel-libipsec") {
		t.Errorf("Text:\n%s", txt)
	}

	// The document merges the environments' runs: a case from the VM's,
	// one from the host's, and the rest not run.
	transport := CasesIn(VMEnv, AllCases())[0]
	vmResult := Result{Case: transport, Env: VMEnv}
	for i := range vmResult.Steps {
		vmResult.Steps[i] = Step{Status: Pass}
	}
	doc := renderDoc([]Run{
		{Env: HostEnv, Results: []Result{r}, Parallel: "6", Dataplane: "userspace", Date: "2026-11-27"},
		{Env: VMEnv, Results: []Result{vmResult}, Date: "2026-11-28"},
	})
	for _, want := range []string{"# Interoperability with strongSwan", "| auth |", "## Pending", "- " + FeatureDataplane,
		fmt.Sprintf("| %02d |", transport.ID), "| VM | kernel-netlink |", "Host run 2026-11-27, VM run 2026-11-28",
		"Last runs: 1 passed, 0 incomplete", "no run in the host recorded for this case"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/interop.md lacks %q", want)
		}
	}
}

// TestMergeRuns: every case comes from its environment's run; a case that
// run lacks, or has in another form (the cases changed since), did not run.
func TestMergeRuns(t *testing.T) {
	all := AllCases()
	pass := func(c Case, env Env) Result {
		r := Result{Case: c, Env: env}
		for i := range r.Steps {
			r.Steps[i] = Step{Status: Pass}
		}
		return r
	}
	host, vm := Run{Env: HostEnv}, Run{Env: VMEnv}
	for _, c := range all {
		if EnvOf(c) == VMEnv {
			vm.Results = append(vm.Results, pass(c, VMEnv))
		} else {
			host.Results = append(host.Results, pass(c, HostEnv))
		}
	}
	// A transport case in the host's run does not count: it belongs in the VM.
	host.Results = append(host.Results, pass(vm.Results[0].Case, HostEnv))
	stale := vm.Results[1].Case
	vm.Results[1].Case.ESP = "aes128gcm16" // recorded before the cases changed
	merged := mergeRuns([]Run{host, vm})
	if len(merged) != len(all) {
		t.Fatalf("%d results for %d cases", len(merged), len(all))
	}
	for i, r := range merged {
		st, why := Verdict(r)
		switch {
		case r.Case != all[i]:
			t.Errorf("result %d is of case %+v, want %+v", i, r.Case, all[i])
		case r.Case == stale:
			if st != Fail || !strings.Contains(why, "no run in the VM") {
				t.Errorf("the stale case: %v %s", st, why)
			}
		case st != Pass:
			t.Errorf("%s: %v %s", r.Case.Name(), st, why)
		case r.Env != EnvOf(r.Case):
			t.Errorf("%s from the %s", r.Case.Name(), r.Env.Name)
		}
	}
}

// TestRunRoundTrip: a recorded run reads back as it was written.
func TestRunRoundTrip(t *testing.T) {
	r := Result{Case: AllCases()[2], Env: VMEnv, Setup: 1234 * time.Microsecond, Notes: []string{"n"}}
	r.Steps = [NumSteps]Step{{Pass, ""}, {Fail, "why"}, {Pending, FeatureChildRekey}, {NotRun, "x"}, {Pass, ""}}
	run := Run{Env: VMEnv, Date: "2026-11-27", Results: []Result{r}, Total: time.Minute, VMTime: 40 * time.Second, Dataplane: "userspace"}
	path := filepath.Join(t.TempDir(), "run.json")
	if err := writeRun(path, run); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"Status": "pending"`) {
		t.Errorf("statuses are not written as words:\n%s", b)
	}
	got, err := readRun(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, run) {
		t.Errorf("read back %+v, wrote %+v", got, run)
	}
	var st Status
	if err := st.UnmarshalText([]byte("passed")); err == nil {
		t.Error("UnmarshalText accepted an unknown status")
	}
}

// TestWireCheckerFlagsBadFrames feeds classifyWire frames that must each be
// reported, naming the frame, and frames that must not.
func TestWireCheckerFlagsBadFrames(t *testing.T) {
	plans := []Plan{NewPlan(Generate(Dimensions)[0])} // AES-GCM, IPv4
	var chacha Case                                   // ChaCha20-Poly1305 for both, without the RSA chain's fragments
	for _, c := range Generate(Dimensions) {
		if strings.Contains(c.IKE, "chacha") && strings.Contains(c.ESP, "chacha") && c.Auth != AuthRSA {
			chacha = c
			break
		}
	}
	plans = append(plans, NewPlan(chacha))
	a, b := plans[0].CygOuter, plans[1].CygOuter
	other := netip.MustParseAddr("192.0.2.250")
	frames := []frame{
		{no: 1, out: true, src: a, ike: true, exch: "34"},                                         // IKE_SA_INIT: fine
		{no: 2, out: true, src: a, ike: true, exch: "35", msgID: "1", ikeDec: true},               // decrypted: fine
		{no: 3, out: true, src: a, ike: true, exch: "35", msgID: "1"},                             // not decrypted
		{no: 4, out: true, src: a, ike: true, exch: "37", msgID: "2", ikeDec: true, ikeBad: true}, // bad ICV
		{no: 5, out: true, src: a, esp: true, espSPI: "0xc0ffee01"},                               // ESP not decrypted
		{no: 6, out: true, src: a, esp: true, espSPI: "0xc0ffee01", espDec: true, espBad: true},
		{no: 7, out: true, src: a, ike: true, exch: "34", malform: true},
		{no: 8, out: true, src: a, ike: true, exch: "34", errors: []string{"Bad length"}},
		{no: 9, out: false, dst: a, ike: true, exch: "35", malform: true},       // strongSwan's: not ours to judge
		{no: 10, out: true, src: b, ike: true, exch: "35", msgID: "1"},          // ChaCha20: cannot decrypt
		{no: 11, out: true, src: other, malform: true, proto: "ARP"},            // no case's
		{no: 12, out: true, src: other, esp: true, espSPI: "0x1", espDec: true}, // ESP from no case's address
	}
	tallies, host := classifyWire(frames, plans)
	want := []string{"frame 3: IKE_AUTH request message ID 1", "frame 4: INFORMATIONAL", "frame 5: ESP SPI 0xc0ffee01: ESP not decrypted",
		"frame 6: ESP SPI 0xc0ffee01: ESP ICV incorrect", "frame 7", "frame 8", "expert error: Bad length"}
	got := strings.Join(tallies[0].problems, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("the wire checker did not report %q; it reported:\n%s", w, got)
		}
	}
	if strings.Contains(got, "frame 1:") || strings.Contains(got, "frame 2:") || strings.Contains(got, "frame 9:") {
		t.Errorf("the wire checker reported a good frame:\n%s", got)
	}
	if len(tallies[1].problems) != 0 || tallies[1].undecryptable != 1 {
		t.Errorf("ChaCha20-Poly1305 frame: %+v", tallies[1])
	}
	if len(host) != 2 || !strings.Contains(host[0], "frame 11") || !strings.Contains(host[1], "frame 12: ESP SPI 0x1: IKE or ESP from an address of no case") {
		t.Errorf("frames of no case: %q", host)
	}
	results := make([]Result, len(plans))
	applyWire(plans, results, tallies)
	if results[0].Steps[StepWire].Status != Fail || results[1].Steps[StepWire].Status != Pass {
		t.Errorf("wire steps: %+v / %+v", results[0].Steps[StepWire], results[1].Steps[StepWire])
	}
}

// TestWireDissectFlagsMalformed runs the real dissection (tshark, no root)
// over a crafted capture: an IKE message whose SA payload claims more octets
// than there are must come back as Malformed, a well-formed one must not.
func TestWireDissectFlagsMalformed(t *testing.T) {
	testbed.Require(t, "tshark")
	ikeMsg := func(next byte, body []byte) []byte {
		h := make([]byte, 28, 28+len(body))
		copy(h, []byte{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11})
		h[16], h[17], h[18], h[19] = next, 0x20, 34, 0x08
		binary.BigEndian.PutUint32(h[24:], uint32(28+len(body)))
		return append(h, body...)
	}
	src, dst := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.111")
	pcap := filepath.Join(t.TempDir(), "crafted.pcap")
	if err := os.WriteFile(pcap, classicPcap(
		udpFrame(src, dst, 500, 500, ikeMsg(33, []byte{0, 0, 0, 0x40, 0, 0, 0, 0})), // SA payload claims 64 octets
		udpFrame(src, dst, 500, 500, ikeMsg(0, nil)),
	), 0o600); err != nil {
		t.Fatal(err)
	}
	frames := dissect(t, pcap, t.TempDir())
	if len(frames) != 2 {
		t.Fatalf("tshark dissected %d frames, want 2", len(frames))
	}
	if !frames[0].malform || frames[1].malform {
		t.Errorf("malformed flags: %v %v, want true false", frames[0].malform, frames[1].malform)
	}
	if !frames[0].ike || frames[0].exch != "34" || frames[0].spii == "" {
		t.Errorf("frame 1 not read as IKE_SA_INIT: %+v", frames[0])
	}
	// Classic pcap has no direction: call them Cygnet's.
	for i := range frames {
		frames[i].out = true
	}
	plan := NewPlan(Case{ID: 1, Direction: CygnetInitiates, Auth: AuthPSK, IKE: "aes256gcm16-prfsha256-x25519", ESP: "aes256gcm16",
		TS: TSEqual, Mode: ModeTunnel, Outer: IPv4, Inner: IPv4})
	tallies, _ := classifyWire(frames, []Plan{plan})
	if got := strings.Join(tallies[0].problems, "\n"); !strings.Contains(got, "frame 1: IKE_SA_INIT request message ID") || !strings.Contains(got, "Malformed Packet") {
		t.Errorf("wire checker on the crafted capture: %q", got)
	}
}

// udpFrame builds an Ethernet/IPv4/UDP frame (UDP checksum 0: none).
func udpFrame(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	udp := binary.BigEndian.AppendUint16(nil, sport)
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0)
	udp = append(udp, payload...)
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip = append(ip, src.AsSlice()...)
	ip = append(ip, dst.AsSlice()...)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	eth := []byte{2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 0x08, 0x00}
	return append(append(eth, ip...), udp...)
}

// classicPcap writes frames as a libpcap file (Ethernet).
func classicPcap(frames ...[]byte) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, 1)
	for _, f := range frames {
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, uint32(len(f)))
		b = le.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}
