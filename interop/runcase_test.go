package interop

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// runCase runs one case's steps — establish, ping through, rekey the
// CHILD_SA, delete — recording each step's outcome in r. A step that fails
// also fails the subtest (except in the deliberately broken case, whose
// failure the matrix checker verifies). The wire step is checkWire's.
func (s *suite) runCase(t *testing.T, p Plan, r *Result) {
	r.Case = p.Case
	defer func() {
		for i, st := range r.Steps[:StepWire] {
			if st.Status == Fail && p.Case.ExpectFailure == "" {
				t.Errorf("%s: %s", StepNames[i], st.Detail)
			}
		}
	}()

	if p.Case.ExpectFailure != "" {
		s.runBroken(t, p, r)
		return
	}
	if !s.establish(t, p, r) {
		for _, step := range []int{StepPing, StepRekey, StepDelete} {
			r.Set(step, NotRun, "establish failed")
		}
		// Do not leave half an SA behind for the other cases' sake.
		s.cli("down", p.Conn)
		s.charon.Terminate(t, p.Conn)
		return
	}
	established := time.Now()
	s.ping(t, p, r, StepPing)
	s.rekey(t, p, r, established)
	s.delete(t, p, r)
}

// establish initiates the case's connection from the initiating side, waits
// until both sides have it, and compares what they agreed on. It reports
// whether the later steps can run.
func (s *suite) establish(t *testing.T, p Plan, r *Result) bool {
	start := time.Now()
	var initErr string
	if p.Case.Direction == CygnetInitiates {
		if code, out, errOut := s.cli("up", p.Conn, p.Child); code != 0 {
			initErr = fmt.Sprintf("cygnet up %s %s: exit %d: %s%s", p.Conn, p.Child, code, out, strings.TrimSpace(errOut))
		}
	} else if err := s.charon.Initiate(t, p.Conn, p.Child); err != nil {
		initErr = err.Error()
	}
	setup := time.Since(start)

	if initErr != "" {
		r.Set(StepEstablish, Fail, "%s", initErr)
		return false
	}
	r.Setup = setup

	sas, err := s.waitSwan(t, "established "+p.Conn, testbed.Established(p.Conn, p.Child))
	if err != nil {
		r.Set(StepEstablish, Fail, "%v", err)
		return false
	}
	ike, err := s.waitCyg("established "+p.Conn, p.Conn, func(sa control.IKESA, ok bool) bool {
		c, cok := cygChild(sa, p.Child)
		return ok && sa.State == control.IKEEstablished && cok && c.State == control.ChildInstalled
	})
	if err != nil {
		r.Set(StepEstablish, Fail, "%v", err)
		return false
	}
	swan, _ := testbed.FindSA(sas, p.Conn)
	if problems := compareSAs(s.env, p, ike, swan, p.Child, false); len(problems) > 0 {
		r.Set(StepEstablish, Fail, "%s", strings.Join(problems, "; "))
		return false
	}

	// With a PFS proposal, a second CHILD_SA by CREATE_CHILD_SA with a
	// key exchange of its own (RFC 7296 1.3.1).
	if p.PFSChild != "" {
		if p.Case.Direction == CygnetInitiates {
			if code, out, errOut := s.cli("up", p.Conn, p.PFSChild); code != 0 {
				r.Set(StepEstablish, Fail, "cygnet up %s %s (CREATE_CHILD_SA with PFS): exit %d: %s%s", p.Conn, p.PFSChild, code, out, strings.TrimSpace(errOut))
				return false
			}
		} else if err := s.charon.Initiate(t, p.Conn, p.PFSChild); err != nil {
			r.Set(StepEstablish, Fail, "CREATE_CHILD_SA with PFS: %v", err)
			return false
		}
		sas, err := s.waitSwan(t, "CHILD_SA "+p.PFSChild, testbed.Established(p.Conn, p.Child, p.PFSChild))
		if err != nil {
			r.Set(StepEstablish, Fail, "%v", err)
			return false
		}
		ike, err := s.waitCyg("CHILD_SA "+p.PFSChild, p.Conn, func(sa control.IKESA, ok bool) bool {
			c, cok := cygChild(sa, p.PFSChild)
			return ok && cok && c.State == control.ChildInstalled
		})
		if err != nil {
			r.Set(StepEstablish, Fail, "%v", err)
			return false
		}
		swan, _ := testbed.FindSA(sas, p.Conn)
		if problems := compareSAs(s.env, p, ike, swan, p.PFSChild, true); len(problems) > 0 {
			r.Set(StepEstablish, Fail, "CREATE_CHILD_SA with PFS: %s", strings.Join(problems, "; "))
			return false
		}
	}
	r.Set(StepEstablish, Pass, "")
	return true
}

// compareSAs compares Cygnet's view of the case's IKE SA and CHILD_SA child
// with strongSwan's, and both with the plan and what strongSwan's backend
// in env does. pfs says child was created by CREATE_CHILD_SA with the ESP
// proposal's key exchange.
func compareSAs(env Env, p Plan, ike control.IKESA, swan testbed.SA, child string, pfs bool) []string {
	var problems []string
	cc, _ := cygChild(ike, child)
	sc, _ := swan.Child(child)
	wantESP := strings.TrimSuffix(p.Case.ESP, "-x25519")
	wantDH := ""
	if pfs {
		wantESP, wantDH = p.Case.ESP, "CURVE_25519"
	}
	wantLocal, wantRemote := p.WantLocalTS, p.WantRemoteTS
	if child == p.PFSChild {
		wantLocal, wantRemote = p.WantPFSLocalTS, p.WantPFSRemoteTS
	}
	// kernel-libipsec fakes a NAT: IKE floats to 4500 and ESP is
	// UDP-encapsulated. With kernel-netlink neither happens.
	port, encap := uint16(500), "false false"
	if env.FakesNAT() {
		port, encap = 4500, "true true"
	}
	outer := func(a netip.Addr) string { return netip.AddrPortFrom(a, port).String() }
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"cygnet initiator", ike.Initiator, p.Case.Direction == CygnetInitiates},
		{"strongswan initiator", swan.Initiator, p.Case.Direction == StrongSwanInitiates},
		{"IKE SPIi", ike.SPIi, control.FormatIKESPI(swan.SPIi)},
		{"IKE SPIr", ike.SPIr, control.FormatIKESPI(swan.SPIr)},
		{"cygnet's identities", ike.LocalID + " " + ike.RemoteID, swan.RemoteID + " " + swan.LocalID},
		{"cygnet's remote identity", ike.RemoteID, p.SwanID},
		{"cygnet's local address", ike.Local, outer(p.CygOuter)},
		{"cygnet's remote address", ike.Remote, outer(p.SwanOuter)},
		{"IKE proposal (cygnet)", ike.Proposal, p.Case.IKE},
		{"IKE encryption (strongswan)", swan.EncrAlg, ikeEncr[p.Case.IKE]},
		{"IKE key exchange (strongswan)", swan.DHGroup, ikeKE[p.Case.IKE]},
		{"CHILD_SA mode", cc.Mode + " " + sc.Mode, p.Case.Mode + " " + strings.ToUpper(p.Case.Mode)},
		{"CHILD_SA encap", fmt.Sprint(cc.Encap, sc.Encap), encap},
		{"ESP proposal (cygnet)", cc.Proposal, wantESP},
		{"ESP encryption (strongswan)", sc.EncrAlg, espEncr[p.Case.ESP]},
		{"ESP key exchange (strongswan)", sc.DHGroup, wantDH},
		{"our inbound SPI = their outbound", cc.SPIIn, control.FormatChildSPI(sc.SPIOut)},
		{"our outbound SPI = their inbound", cc.SPIOut, control.FormatChildSPI(sc.SPIIn)},
		{"local TS (cygnet)", strings.Join(cc.LocalTS, ","), strings.Join(wantLocal, ",")},
		{"remote TS (cygnet)", strings.Join(cc.RemoteTS, ","), strings.Join(wantRemote, ",")},
		{"local TS (strongswan)", strings.Join(sc.LocalTS, ","), strings.Join(wantRemote, ",")},
		{"remote TS (strongswan)", strings.Join(sc.RemoteTS, ","), strings.Join(wantLocal, ",")},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			problems = append(problems, fmt.Sprintf("%s: %v, want %v", c.what, c.got, c.want))
		}
	}
	return problems
}

// strongSwan's names of the proposals' encryption and key exchange.
var (
	ikeEncr = map[string]string{
		"aes256gcm16-prfsha256-x25519":      "AES_GCM_16",
		"aes128-sha256-modp2048":            "AES_CBC",
		"chacha20poly1305-prfsha256-ecp256": "CHACHA20_POLY1305",
		"aes256-sha384-ecp384":              "AES_CBC",
	}
	ikeKE = map[string]string{
		"aes256gcm16-prfsha256-x25519":      "CURVE_25519",
		"aes128-sha256-modp2048":            "MODP_2048",
		"chacha20poly1305-prfsha256-ecp256": "ECP_256",
		"aes256-sha384-ecp384":              "ECP_384",
	}
	espEncr = map[string]string{
		"aes256gcm16":        "AES_GCM_16",
		"aes128-sha256":      "AES_CBC",
		"chacha20poly1305":   "CHACHA20_POLY1305",
		"aes256gcm16-x25519": "AES_GCM_16",
	}
)

// ping sends pings from Cygnet's inner addresses to strongSwan's through the
// tunnel and checks that strongSwan counted them on the CHILD_SA.
func (s *suite) ping(t *testing.T, p Plan, r *Result, step int) {
	if s.dataplane != "userspace" {
		r.Set(step, Pending, FeatureDataplane)
		return
	}
	before := s.swanPacketsIn(t, p)
	mark := len(s.capture.Packets())
	for _, pg := range p.Pings {
		// ping may send more than asked when replies are slow (testbed.Ping).
		if sent, got := s.cygNS.Ping(t, pg[0], pg[1], pings, 50*time.Millisecond); got < pings {
			r.Set(step, Fail, "ping %s -> %s through the tunnel: %d sent, %d answered", pg[0], pg[1], sent, got)
			return
		}
	}
	if problem := s.pingFrames(p, mark); problem != "" {
		r.Set(step, Fail, "%s", problem)
		return
	}
	// Every echo request came in ESP on one of the child's SAs (around a
	// rekey there are two; one may be gone by now).
	var in uint64
	for spi, n := range s.swanPacketsIn(t, p) {
		in += n - min(n, before[spi])
	}
	if in < uint64(pings*len(p.Pings)) {
		r.Set(step, Fail, "strongSwan counted %d ESP packets in on %s for %d pings", in, p.Child, pings*len(p.Pings))
		return
	}
	r.Set(step, Pass, "")
}

// pingFrames checks the frames Cygnet's namespace sent since the first
// mark were captured: the echo requests of the case's pings left as ESP
// between the case's outer addresses (UDP-encapsulated where strongSwan's
// backend fakes a NAT, IP protocol 50 where not), and none in the clear. It
// returns what is wrong, or "".
func (s *suite) pingFrames(p Plan, mark int) string {
	want := testbed.FrameESP
	if s.env.FakesNAT() {
		want = testbed.FrameESPInUDP
	}
	pkts := s.capture.Packets()[mark:]
	esp, other, clear := 0, 0, 0
	for _, pkt := range pkts {
		if !pkt.Outgoing {
			continue
		}
		f := testbed.ParseFrame(pkt.Data, s.capture.LinkType)
		switch {
		case f.Src != p.CygOuter || f.Dst != p.SwanOuter:
			if f.Kind == testbed.FrameICMPEcho && slices.Contains(p.Pings, [2]netip.Addr{f.Src, f.Dst}) {
				clear++
			}
		case f.Kind == want:
			esp++
		case f.Kind == testbed.FrameESP || f.Kind == testbed.FrameESPInUDP:
			other++
		case f.Kind == testbed.FrameICMPEcho:
			clear++ // transport mode: the hosts' own addresses
		}
	}
	if n := pings * len(p.Pings); esp < n || other > 0 || clear > 0 {
		return fmt.Sprintf("on the wire, for %d echo requests Cygnet sent %d %s frames from %s to %s, %d other ESP frames and %d echo frames in the clear",
			n, esp, want, p.CygOuter, p.SwanOuter, other, clear)
	}
	return ""
}

// swanPacketsIn returns strongSwan's inbound packet counters of the case's
// CHILD_SAs named p.Child, by inbound SPI.
func (s *suite) swanPacketsIn(t *testing.T, p Plan) map[uint32]uint64 {
	sa, _ := testbed.FindSA(s.charon.ListSAs(t), p.Conn)
	m := map[uint32]uint64{}
	for _, c := range sa.Children {
		if c.Name == p.Child {
			m[c.SPIIn] = c.PacketsIn
		}
	}
	return m
}

// rekey rekeys the case's CHILD_SA from the initiating side: strongSwan on
// command (VICI rekey), Cygnet on its rekey_time (cygRekeyTime). It checks
// that both sides replaced the SA with the same new one (with the PFS
// proposal's key exchange), then pings through the new SA.
func (s *suite) rekey(t *testing.T, p Plan, r *Result, established time.Time) {
	old, _, err := s.cygSA(p.Conn)
	if err != nil {
		r.Set(StepRekey, Fail, "%v", err)
		return
	}
	oldChild, _ := cygChild(old, p.Child)
	if p.Case.Direction == StrongSwanInitiates {
		v := s.charon.Vici(t, waitTime)
		res, err := v.Call("rekey", (&testbed.ViciMessage{}).Add("child", p.Child))
		if err != nil || res.Get("success") != "yes" {
			r.Set(StepRekey, Fail, "strongSwan's rekey of %s: %v %s", p.Child, err, res.Get("errmsg"))
			return
		}
	}
	rekeyed := func(sa control.IKESA, ok bool) bool {
		c, cok := cygChild(sa, p.Child)
		return ok && cok && c.State == control.ChildInstalled && c.SPIIn != oldChild.SPIIn
	}
	// Cygnet rekeys on `cygnet rekey` where the daemon implements it, else
	// cygRekeyTime (less jitter) after the CHILD_SA was created;
	// strongSwan at once. Without the feature, Cygnet answers strongSwan's
	// request with TEMPORARY_FAILURE (strongSwan logs it and retries
	// later), or never starts its own.
	deadline := time.Now().Add(waitTime)
	if p.Case.Direction == CygnetInitiates {
		code, _, errOut := s.cli("rekey", p.Conn, p.Child)
		switch {
		case code == 0:
			s.rekeyCommand.Store(true)
		case strings.Contains(errOut, "not supported"):
			// The control API has the command, the daemon not yet.
			deadline = established.Add(cygRekeyTime + rekeyMargin)
			s.rekeyTimer.Store(true)
		default:
			r.Set(StepRekey, Fail, "cygnet rekey %s %s: exit %d: %s", p.Conn, p.Child, code, strings.TrimSpace(errOut))
			return
		}
	}
	var ike control.IKESA
	for {
		sa, ok, err := s.cygSA(p.Conn)
		if err == nil && rekeyed(sa, ok) {
			ike = sa
			break
		}
		tempFail := ""
		if p.Case.Direction == StrongSwanInitiates {
			tempFail = s.swanLogLine(p.Conn, "TEMPORARY_FAILURE")
		}
		switch {
		case tempFail != "" && !Landed[FeatureChildRekey]:
			r.Set(StepRekey, Pending, FeatureChildRekey)
			return
		case time.Now().Before(deadline):
			time.Sleep(100 * time.Millisecond)
			continue
		case Landed[FeatureChildRekey] || p.Case.Direction == StrongSwanInitiates:
			r.Set(StepRekey, Fail, "CHILD_SA %s not rekeyed in time (strongSwan: %q); cygnet: %+v", p.Child, tempFail, sa)
		default:
			r.Set(StepRekey, Pending, FeatureChildRekey)
		}
		return
	}
	if !Landed[FeatureChildRekey] {
		t.Logf("a CHILD_SA rekey worked: mark %q landed in features.go", FeatureChildRekey)
	}
	// strongSwan holds the same new SA, and the old one is gone (or going).
	newChild, _ := cygChild(ike, p.Child)
	sas, err := s.waitSwan(t, "rekeyed "+p.Child, func(sas []testbed.SA) bool {
		sa, ok := testbed.FindSA(sas, p.Conn)
		if !ok {
			return false
		}
		for _, c := range sa.Children {
			if c.Name == p.Child && c.State == "INSTALLED" && control.FormatChildSPI(c.SPIOut) == newChild.SPIIn {
				return true
			}
		}
		return false
	})
	if err != nil {
		r.Set(StepRekey, Fail, "%v", err)
		return
	}
	swan, _ := testbed.FindSA(sas, p.Conn)
	for _, c := range swan.Children {
		if c.Name == p.Child && control.FormatChildSPI(c.SPIOut) == newChild.SPIIn {
			swan.Children = []testbed.ChildSA{c}
			break
		}
	}
	if problems := compareSAs(s.env, p, ike, swan, p.Child, p.Case.PFS()); len(problems) > 0 {
		r.Set(StepRekey, Fail, "after the rekey: %s", strings.Join(problems, "; "))
		return
	}
	r.Set(StepRekey, Pass, "")
	if s.dataplane == "userspace" {
		s.ping(t, p, r, StepRekey)
	}
}

// delete deletes the IKE SA from the initiating side and waits until both
// sides have forgotten it.
func (s *suite) delete(t *testing.T, p Plan, r *Result) {
	if p.Case.Direction == CygnetInitiates {
		if code, _, errOut := s.cli("down", p.Conn); code != 0 {
			r.Set(StepDelete, Fail, "cygnet down %s: exit %d: %s", p.Conn, code, strings.TrimSpace(errOut))
			return
		}
	} else if err := s.charon.Terminate(t, p.Conn); err != nil {
		r.Set(StepDelete, Fail, "%v", err)
		return
	}
	if _, err := s.waitSwan(t, p.Conn+" gone", testbed.Gone(p.Conn)); err != nil {
		r.Set(StepDelete, Fail, "%v", err)
		return
	}
	if _, err := s.waitCyg(p.Conn+" gone", p.Conn, func(_ control.IKESA, ok bool) bool { return !ok }); err != nil {
		r.Set(StepDelete, Fail, "%v", err)
		return
	}
	r.Set(StepDelete, Pass, "")
}

// runBroken runs the deliberately broken case: Cygnet initiates with a PSK
// strongSwan does not share. Establishment must fail, and both sides must
// say why: Cygnet in `cygnet up`'s one line, strongSwan in its log. The
// reasons go into the establish step's failure, where Check looks for them.
func (s *suite) runBroken(t *testing.T, p Plan, r *Result) {
	start := time.Now()
	code, out, errOut := s.cli("up", p.Conn)
	r.Setup = 0
	for _, step := range []int{StepPing, StepRekey, StepDelete} {
		r.Set(step, NotRun, "establish failed")
	}
	if code == 0 {
		r.Set(StepEstablish, Pass, "cygnet up succeeded with the wrong key after %v", time.Since(start))
		s.cli("down", p.Conn)
		return
	}
	cygReason := strings.TrimSpace(errOut)
	if strings.Count(cygReason, "\n") > 0 || out != "" {
		t.Errorf("cygnet up's failure is not one line: stdout %q, stderr %q", out, errOut)
	}
	// strongSwan answered AUTHENTICATION_FAILED; its log says why.
	var swanReason string
	deadline := time.Now().Add(waitTime)
	for swanReason == "" && time.Now().Before(deadline) {
		swanReason = s.swanLogLine(p.Conn, "MAC mismatched")
		time.Sleep(20 * time.Millisecond)
	}
	if swanReason == "" {
		swanReason = "(no reason in its log: " + strings.Join(s.swanLog(p.Conn), " / ") + ")"
	}
	r.Set(StepEstablish, Fail, "cygnet: %s; strongSwan: %s", strings.TrimPrefix(cygReason, "cygnet: "), swanReason)
	// Neither side may keep an SA.
	if _, err := s.waitSwan(t, p.Conn+" gone", testbed.Gone(p.Conn)); err != nil {
		t.Error(err)
	}
	if _, err := s.waitCyg(p.Conn+" gone", p.Conn, func(_ control.IKESA, ok bool) bool { return !ok }); err != nil {
		t.Error(err)
	}
}
