package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Wire conformance: every frame on the veth is captured in Cygnet's
// namespace for the whole suite. Afterwards tshark dissects the capture once,
// with Cygnet's key log as its configuration (XDG_CONFIG_HOME), and every
// frame Cygnet's namespace sent must be free of "Malformed" and of
// error-level expert info, and every encrypted IKE message and ESP packet in
// it must decrypt with the key log (ICV checked). Frames belong to the case
// whose outer address they carry.

// wireFields are the tshark fields read per frame, in this order.
var wireFields = []string{
	"frame.number", "frame.packet_flags_direction",
	"ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
	"isakmp.ispi", "isakmp.rspi", "isakmp.exchangetype", "isakmp.messageid", "isakmp.flag_r",
	"isakmp.frag.number", "isakmp.enc.decrypted", "isakmp.ikev2.integrity_checksum",
	"esp.spi", "esp.protocol", "esp.icv_bad",
	"_ws.malformed", "_ws.expert.severity", "_ws.expert.message", "_ws.col.Protocol",
	"frame.protocols",
}

// frame is one dissected frame.
type frame struct {
	no       int
	out      bool // sent by Cygnet's namespace
	src, dst netip.Addr
	spii     string
	spir     string
	exch     string
	msgID    string
	response bool
	fragment bool // an SKF payload (RFC 7383)
	ike      bool
	ikeDec   bool // isakmp.enc.decrypted present
	ikeBad   bool // Wireshark found the ICV wrong
	esp      bool
	espSPI   string
	espDec   bool // the next header is known: decrypted
	espBad   bool
	malform  bool
	errors   []string // error-level expert messages
	proto    string
}

// expert severity of errors (epan/proto.h PI_ERROR).
const piError = 0x00800000

var exchangeNames = map[string]string{"34": "IKE_SA_INIT", "35": "IKE_AUTH", "36": "CREATE_CHILD_SA", "37": "INFORMATIONAL"}

// describe names a frame for a failure message.
func (f frame) describe() string {
	switch {
	case f.ike:
		kind := "request"
		if f.response {
			kind = "response"
		}
		name := exchangeNames[f.exch]
		if name == "" {
			name = "exchange " + f.exch
		}
		s := fmt.Sprintf("frame %d: %s %s message ID %s, SPIi %s SPIr %s", f.no, name, kind, f.msgID, f.spii, f.spir)
		if f.fragment {
			s += " (fragment)"
		}
		return s
	case f.esp:
		return fmt.Sprintf("frame %d: ESP SPI %s", f.no, f.espSPI)
	}
	return fmt.Sprintf("frame %d: %s %s -> %s", f.no, f.proto, f.src, f.dst)
}

// dissect runs tshark over the capture with xdg as its configuration home.
func dissect(t *testing.T, pcap, xdg string) []frame {
	t.Helper()
	args := []string{"-r", pcap, "-n", "-2", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|",
		"-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE"}
	for _, f := range wireFields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*60e9)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+xdg, "HOME="+xdg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	var frames []frame
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		v := strings.Split(line, "\t")
		for len(v) < len(wireFields) {
			v = append(v, "")
		}
		f := frame{proto: v[20]}
		f.no, _ = strconv.Atoi(v[0])
		dir, _ := strconv.ParseUint(strings.TrimPrefix(v[1], "0x"), 16, 32)
		f.out = dir&3 == 2
		// The outer header is the first IP layer; a decrypted ESP packet
		// has the inner one too (ip.src then holds both, outer first).
		src, dst := v[2], v[3]
		if outerIPv6(v[21]) {
			src, dst = v[4], v[5]
		}
		f.src, _ = netip.ParseAddr(firstOf(src))
		f.dst, _ = netip.ParseAddr(firstOf(dst))
		f.spii, f.spir, f.exch, f.msgID = v[6], v[7], firstOf(v[8]), firstOf(v[9])
		f.ike = v[6] != ""
		f.response = firstOf(v[10]) == "1" || firstOf(v[10]) == "True"
		f.fragment = v[11] != ""
		f.ikeDec = v[12] != ""
		f.ikeBad = v[13] != ""
		f.espSPI = firstOf(v[14])
		f.esp = f.espSPI != ""
		f.espDec = v[15] != ""
		f.espBad = firstOf(v[16]) == "1" || firstOf(v[16]) == "True"
		f.malform = v[17] != ""
		sev := strings.Split(v[18], "|")
		msgs := strings.Split(v[19], "|")
		for i, s := range sev {
			n, err := strconv.ParseUint(s, 0, 32)
			if err == nil && n >= piError {
				m := ""
				if i < len(msgs) {
					m = msgs[i]
				}
				f.errors = append(f.errors, m)
			}
		}
		frames = append(frames, f)
	}
	return frames
}

// outerIPv6 reports whether a frame.protocols chain ("eth:ethertype:ipv6:
// udp:esp:ip:icmp") has IPv6 as its first IP layer.
func outerIPv6(protocols string) bool {
	for _, p := range strings.Split(protocols, ":") {
		switch p {
		case "ip":
			return false
		case "ipv6":
			return true
		}
	}
	return false
}

// firstOf returns the first of several aggregated occurrences.
func firstOf(s string) string {
	s, _, _ = strings.Cut(s, "|")
	return s
}

// wireDecryptable reports whether Wireshark 4.0 can decrypt a proposal: it
// has no ChaCha20-Poly1305 in its IKEv2 or ESP tables, so Cygnet's key log
// (keys.IKEDecryptionRecord) writes no record for it.
func wireDecryptable(proposal string) bool { return !strings.Contains(proposal, "chacha20poly1305") }

// wireTally is what the wire check found for one case.
type wireTally struct {
	ikeOut, espOut  int // frames Cygnet sent
	fragOut, fragIn int // IKE fragments (SKF) sent and received
	undecryptable   int // encrypted with ChaCha20-Poly1305, which Wireshark 4.0 cannot decrypt
	nokey           int // IKE_AUTH of an SA that never got established (no key-log record)
	problems        []string
}

// classifyWire checks every frame Cygnet's namespace sent and attributes
// frames to the plans by Cygnet's outer address; problems of frames that
// belong to no case are returned apart.
func classifyWire(frames []frame, plans []Plan) (tallies []wireTally, hostProblems []string) {
	byAddr := map[netip.Addr]int{}
	for i, p := range plans {
		byAddr[p.CygOuter] = i
	}
	tallies = make([]wireTally, len(plans))
	for _, f := range frames {
		addr := f.dst
		if f.out {
			addr = f.src
		}
		i, ok := byAddr[addr]
		if f.fragment && !f.out && ok {
			tallies[i].fragIn++
		}
		if !f.out {
			continue
		}
		var problems []string
		if f.malform {
			problems = append(problems, "Malformed Packet")
		}
		for _, e := range f.errors {
			problems = append(problems, "expert error: "+e)
		}
		if !ok {
			if f.ike || f.esp {
				// Every case has its own addresses: IKE or ESP from
				// another one went out from the wrong address.
				problems = append(problems, "IKE or ESP from an address of no case")
			}
			for _, pr := range problems {
				hostProblems = append(hostProblems, f.describe()+": "+pr)
			}
			continue
		}
		p, ta := plans[i], &tallies[i]
		switch {
		case f.ike:
			ta.ikeOut++
			if f.fragment {
				ta.fragOut++
			}
			switch {
			case f.exch == "34": // IKE_SA_INIT is not encrypted
			case !wireDecryptable(p.Case.IKE):
				ta.undecryptable++
			case f.ikeBad:
				problems = append(problems, "IKE integrity checksum incorrect with Cygnet's key log")
			case !f.ikeDec && p.Case.ExpectFailure != "":
				// The key log gets an IKE SA's record when it is
				// established: a failed IKE_AUTH cannot be decrypted.
				ta.nokey++
			case !f.ikeDec:
				problems = append(problems, "not decrypted with Cygnet's key log")
			}
		case f.esp:
			ta.espOut++
			switch {
			case !wireDecryptable(p.Case.ESP):
				ta.undecryptable++
			case f.espBad:
				problems = append(problems, "ESP ICV incorrect with Cygnet's key log")
			case !f.espDec:
				problems = append(problems, "ESP not decrypted with Cygnet's key log")
			}
		}
		for _, pr := range problems {
			ta.problems = append(ta.problems, f.describe()+": "+pr)
		}
	}
	return tallies, hostProblems
}

// applyWire sets each case's wire step from its tally.
func applyWire(plans []Plan, results []Result, tallies []wireTally) {
	for i, p := range plans {
		ta, r := tallies[i], &results[i]
		const limit = 5
		switch {
		case len(ta.problems) > 0:
			more := ""
			if len(ta.problems) > limit {
				more = fmt.Sprintf(" (and %d more)", len(ta.problems)-limit)
				ta.problems = ta.problems[:limit]
			}
			r.Set(StepWire, Fail, "%s%s", strings.Join(ta.problems, "; "), more)
		case ta.ikeOut == 0:
			r.Set(StepWire, Fail, "no IKE frame from Cygnet captured (capture broken?)")
		default:
			r.Set(StepWire, Pass, "")
		}
		if p.Case.Auth == AuthRSA && p.Case.ExpectFailure == "" {
			// RFC 7383: the RSA-3072 chain does not fit 1280 octets.
			if ta.fragOut < 2 || ta.fragIn < 2 {
				r.Set(StepWire, Fail, "IKE fragmentation expected with the RSA-3072 chain: %d fragments from Cygnet, %d from strongSwan", ta.fragOut, ta.fragIn)
			}
			r.Notes = append(r.Notes, fmt.Sprintf("IKE_AUTH fragmented (RFC 7383): %d SKF fragments from Cygnet, %d from strongSwan", ta.fragOut, ta.fragIn))
		}
		if ta.nokey > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%d IKE_AUTH frames from Cygnet dissected, not decrypted: the key log only has established IKE SAs", ta.nokey))
		}
		if ta.undecryptable > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("ChaCha20-Poly1305: %d encrypted frames from Cygnet dissected, not decrypted (Wireshark 4.0 cannot)", ta.undecryptable))
		}
	}
}

// checkWire dissects the suite's capture (pcap, with the key log of
// Cygnet in xdg/wireshark) and sets every case's wire step.
func checkWire(t *testing.T, pcap, xdg string, plans []Plan, results []Result) {
	t.Helper()
	frames := dissect(t, pcap, xdg)
	tallies, hostProblems := classifyWire(frames, plans)
	for _, pr := range hostProblems {
		t.Errorf("wire conformance (frame of no case): %s", pr)
	}
	applyWire(plans, results, tallies)
	out := 0
	for _, f := range frames {
		if f.out {
			out++
		}
	}
	t.Logf("wire: %d frames captured, %d sent by Cygnet's namespace", len(frames), out)
	// The control: without the key log nothing may decrypt, or the check
	// above proves nothing.
	for _, f := range dissect(t, pcap, t.TempDir()) {
		if f.out && (f.ikeDec || f.espDec) {
			t.Errorf("wire: %s decrypts without Cygnet's key log: the decryption check is void", f.describe())
			break
		}
	}
	for i, ta := range tallies {
		t.Logf("wire %s: %d IKE and %d ESP frames from Cygnet, IKE fragments %d out and %d in", plans[i].Case.Name(), ta.ikeOut, ta.espOut, ta.fragOut, ta.fragIn)
	}
}
