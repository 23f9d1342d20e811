package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// Issue 6's lifecycle tests with real peers in network namespaces (root):
// continuous traffic while strongSwan and Cygnet rekey CHILD_SAs every 5 s
// and the IKE SA every 15 s, either side initiating the rekeys; two Cygnets
// rekeying the same SA at the same instant; and a dead peer found by DPD.

// rekeyTrafficDuration is how long the traffic of TestStrongSwanRekeyTraffic
// runs: 60 s, or CYGNET_REKEY_SECONDS.
func rekeyTrafficDuration(t *testing.T) time.Duration {
	if s := os.Getenv("CYGNET_REKEY_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("CYGNET_REKEY_SECONDS=%q: want a number of seconds", s)
		}
		return time.Duration(n) * time.Second
	}
	return 60 * time.Second
}

// udpStream sends numbered datagrams from one namespace to another at a
// steady rate, through whatever tunnel routes them, and counts at the
// receiver what arrived: lost, duplicated and reordered datagrams exactly.
type udpStream struct {
	name     string
	send     net.PacketConn
	recv     net.PacketConn
	dst      net.Addr
	interval time.Duration
	stop     chan struct{}
	wg       sync.WaitGroup

	mu        sync.Mutex
	sentAt    []time.Time // by sequence number
	seen      []bool      // by sequence number
	received  int         // distinct datagrams
	dups      int
	reordered int // arrived after a higher sequence number
	maxSeq    int
}

// streamResult is what a udpStream counted.
type streamResult struct {
	Sent, Received, Lost, Duplicates, Reordered int
	LostAt                                      []time.Time // when the lost ones were sent
}

func (r streamResult) String() string {
	return fmt.Sprintf("sent %d, received %d, lost %d, duplicated %d, reordered %d", r.Sent, r.Received, r.Lost, r.Duplicates, r.Reordered)
}

// startUDPStream starts sending from src in from to dst:port in to, one
// datagram every interval, until finish.
func startUDPStream(t *testing.T, name string, from, to *testbed.Netns, src, dst string, port int, interval time.Duration) *udpStream {
	t.Helper()
	s := &udpStream{name: name, interval: interval, stop: make(chan struct{}), maxSeq: -1}
	if err := inNetns(to.Name, func() (err error) {
		s.recv, err = net.ListenPacket("udp4", net.JoinHostPort(dst, strconv.Itoa(port)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := inNetns(from.Name, func() (err error) {
		s.send, err = net.ListenPacket("udp4", net.JoinHostPort(src, "0"))
		return err
	}); err != nil {
		s.recv.Close()
		t.Fatal(err)
	}
	s.dst = s.recv.LocalAddr()
	s.wg.Add(2)
	go s.receive()
	go s.sendLoop()
	t.Cleanup(func() { s.finish() })
	return s
}

func (s *udpStream) sendLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	buf := make([]byte, 64)
	for seq := 0; ; seq++ {
		binary.BigEndian.PutUint64(buf, uint64(seq))
		s.mu.Lock()
		s.sentAt = append(s.sentAt, time.Now())
		s.mu.Unlock()
		// A failed send is a datagram lost like any other.
		s.send.WriteTo(buf, s.dst)
		select {
		case <-tick.C:
		case <-s.stop:
			return
		}
	}
}

func (s *udpStream) receive() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, _, err := s.recv.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 8 {
			continue
		}
		seq := int(binary.BigEndian.Uint64(buf))
		s.mu.Lock()
		for len(s.seen) <= seq {
			s.seen = append(s.seen, false)
		}
		switch {
		case s.seen[seq]:
			s.dups++
		default:
			s.seen[seq] = true
			s.received++
			if seq < s.maxSeq {
				s.reordered++
			}
			s.maxSeq = max(s.maxSeq, seq)
		}
		s.mu.Unlock()
	}
}

// finish stops sending, gives the last datagrams a second to arrive and
// returns the counts. Later calls return the same.
func (s *udpStream) finish() streamResult {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		time.Sleep(time.Second)
		s.send.Close()
		s.recv.Close()
		s.wg.Wait()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := streamResult{Sent: len(s.sentAt), Received: s.received, Duplicates: s.dups, Reordered: s.reordered}
	for seq, at := range s.sentAt {
		if seq >= len(s.seen) || !s.seen[seq] {
			r.Lost++
			r.LostAt = append(r.LostAt, at)
		}
	}
	return r
}

// oneSA is a waitStatus-like predicate: exactly one IKE SA, ESTABLISHED,
// with exactly one CHILD_SA named child, INSTALLED and carrying the
// outbound traffic.
func oneSA(st *control.Status, conn, child string) bool {
	if len(st.IKESAs) != 1 {
		return false
	}
	ike := st.IKESAs[0]
	return ike.Connection == conn && ike.State == control.IKEEstablished && len(ike.ChildSAs) == 1 &&
		ike.ChildSAs[0].Name == child && ike.ChildSAs[0].State == control.ChildInstalled && !ike.ChildSAs[0].InboundOnly
}

// swanOneSA is oneSA for charon's view, matching Cygnet's SPIs. charon
// keeps the inbound half of a rekeyed CHILD_SA for delete_rekeyed_delay (5
// s) in state DELETED, as Cygnet does without listing it; those are not
// counted.
func swanOneSA(sas []testbed.SA, st *control.Status, conn, child string) bool {
	if len(sas) != 1 || !oneSA(st, conn, child) {
		return false
	}
	var live []testbed.ChildSA
	for _, c := range sas[0].Children {
		if c.State != "DELETED" {
			live = append(live, c)
		}
	}
	if len(live) != 1 {
		return false
	}
	s, c := sas[0], live[0]
	ike, cc := st.IKESAs[0], st.IKESAs[0].ChildSAs[0]
	return s.State == "ESTABLISHED" && c.State == "INSTALLED" && c.Name == child &&
		control.FormatIKESPI(s.SPIi) == ike.SPIi && control.FormatIKESPI(s.SPIr) == ike.SPIr &&
		control.FormatChildSPI(c.SPIIn) == cc.SPIOut && control.FormatChildSPI(c.SPIOut) == cc.SPIIn
}

// charonProblems returns the lines of charon's log that report a problem.
var charonProblemRE = regexp.MustCompile(`(?i)failed|error|invalid|unable|TEMPORARY_FAILURE|CHILD_SA_NOT_FOUND|NO_PROPOSAL|TS_UNACCEPTABLE|retransmit|dropp|discard|not found|unknown SPI|expired`)

func charonProblems(log string) []string {
	var out []string
	for line := range strings.Lines(log) {
		if charonProblemRE.MatchString(line) && !strings.Contains(line, "dropped capabilities") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// TestStrongSwanRekeyTraffic: `cygnet daemon` (userspace data plane) and
// charon (kernel-libipsec) with a UDP stream each way, a datagram every
// 10 ms, while the CHILD_SA is rekeyed every 5 s and the IKE SA every 15 s
// for a minute: once Cygnet initiates the rekeys (its rekey times short,
// strongSwan's an hour), once strongSwan does (the reverse). No datagram
// may be lost, duplicated or reordered, and afterwards both sides hold
// exactly one IKE SA and one CHILD_SA, the same. The two runs go in
// parallel, each in its own pair of namespaces.
func TestStrongSwanRekeyTraffic(t *testing.T) {
	testbed.Require(t, "root", "charon", "swanctl", "tun")
	bin := cygnetBinary(t)
	d := rekeyTrafficDuration(t)
	for _, cygRekeys := range []bool{true, false} {
		name := "strongswan rekeys"
		if cygRekeys {
			name = "cygnet rekeys"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rekeyTraffic(t, bin, cygRekeys, d)
		})
	}
}

func rekeyTraffic(t *testing.T, bin string, cygRekeys bool, d time.Duration) {
	cygNS, swanNS := testbed.NewNetns(t, "rkcyg"), testbed.NewNetns(t, "rkswan")
	testbed.Link(t, cygNS, swanNS,
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		[]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")})
	cygNS.AddAddr(t, "lo", netip.MustParsePrefix("10.1.0.1/32"))
	swanNS.AddAddr(t, "lo", netip.MustParsePrefix("10.2.0.1/32"))

	// The rekeying side's times are short, the other's an hour. strongSwan
	// subtracts up to rand_time from rekey_time and deletes an SA not
	// rekeyed by life_time (CHILD_SA) or rekey_time + over_time (IKE SA);
	// Cygnet subtracts up to a tenth and deletes a CHILD_SA at rekey_time
	// + 10%.
	swanIKE, swanChild := "rekey_time = 1h", "rekey_time = 1h"
	cygIKE, cygChild := "15s", "5s"
	if !cygRekeys {
		swanIKE = "rekey_time = 15s\n\t\tover_time = 5s\n\t\trand_time = 2s"
		// life_time outlasts a rekeyed SA's delete_rekeyed_delay (5 s
		// after the rekey at 4-5 s): an earlier hard expiry of the old
		// inbound SA races charon's own delayed delete of it ("CHILD_SA
		// ESP/0x.../... not found for delete", seen once in CI).
		swanChild = "rekey_time = 5s\n\t\t\t\tlife_time = 12s\n\t\t\t\trand_time = 1s"
		cygIKE, cygChild = "1h", "1h"
	}
	charon := testbed.StartCharon(t, swanNS, testbed.CharonConfig{Swanctl: fmt.Sprintf(swanRekeyConf, swanIKE, swanChild)})

	dir := cygNS.Dir()
	socket := filepath.Join(dir, "cygnet.sock")
	cfgPath := filepath.Join(dir, "cygnet.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(cygRekeyConf, socket, cygIKE, cygChild))
	proc := cygNS.Start(t, "cygnet", testbed.StartOptions{}, bin, "daemon", "-c", cfgPath)
	cyg := &daemonProc{t: t, name: "cygnet", socket: socket}
	waitSocket(t, cyg, proc)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cygnet's log (tail):\n%s", lastLines(proc.Output(), 80))
		}
	})

	// The side that rekeys sets the IKE SA up too.
	if cygRekeys {
		if code, out, errOut := cyg.cli("up", "rk", "rk"); code != 0 {
			t.Fatalf("cygnet up rk: exit %d\n%s%s", code, out, errOut)
		}
	} else if err := charon.Initiate(t, "rk", "rk"); err != nil {
		t.Fatalf("swanctl --initiate rk: %v", err)
	}
	charon.WaitSA(t, testbed.Established("rk", "rk"), 5*time.Second)
	cyg.waitStatus("rk up", 5*time.Second, ikeUp("rk", "rk"))

	out := startUDPStream(t, "cygnet -> strongswan", cygNS, swanNS, "10.1.0.1", "10.2.0.1", 7001, 10*time.Millisecond)
	in := startUDPStream(t, "strongswan -> cygnet", swanNS, cygNS, "10.2.0.1", "10.1.0.1", 7002, 10*time.Millisecond)
	start := time.Now()
	time.Sleep(d)
	results := []streamResult{out.finish(), in.finish()}
	elapsed := time.Since(start)
	for i, r := range results {
		name := []string{out.name, in.name}[i]
		t.Logf("%s: %s", name, r)
		if r.Lost != 0 || r.Duplicates != 0 || r.Reordered != 0 || r.Sent < int(d/(20*time.Millisecond)) {
			t.Errorf("%s: %s; lost ones sent at %v", name, r, r.LostAt)
		}
	}

	// Rekeys go on every 5 s: wait for a moment when both sides hold one
	// IKE SA and one CHILD_SA, the same ones.
	var st *control.Status
	var sas []testbed.SA
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, sas = cyg.status(), charon.ListSAs(t)
		if swanOneSA(sas, st, "rk", "rk") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not one IKE SA and one CHILD_SA on both sides:\ncygnet: %+v\ncharon:\n%s", st, testbed.FormatSAs(sas))
		}
		time.Sleep(100 * time.Millisecond)
	}

	ike := st.IKESAs[0]
	lastChild := sas[0].Children[len(sas[0].Children)-1]
	metric := func(s string) string { return cygMetric(t, cygNS, s) }
	role := "responder"
	if cygRekeys {
		role = "initiator"
	}
	// Both sides' rekey counts, taken together: rekeys go on, and one may
	// finish between reading Cygnet's metrics and charon's log. Read both
	// again (a few times, briefly) until they agree; a lasting difference
	// is the failure below. strongSwan's count: a rekeyed CHILD_SA's
	// outbound half is "established" when it carries the traffic; an IKE
	// SA "rekeyed".
	var (
		childRekeys, ikeRekeys         string
		log                            string
		swanChildRekeys, swanIKERekeys int
	)
	for i := 0; i < 20; i++ {
		childRekeys, ikeRekeys = metric(`cygnet_rekeys_total{kind="child",role="`+role+`"}`), metric(`cygnet_rekeys_total{kind="ike",role="`+role+`"}`)
		log = charon.Log()
		swanChildRekeys = len(regexp.MustCompile(`outbound CHILD_SA rk\{\d+\} established`).FindAllString(log, -1))
		swanIKERekeys = len(regexp.MustCompile(`IKE_SA rk\[\d+\] rekeyed between`).FindAllString(log, -1))
		if childRekeys == strconv.Itoa(swanChildRekeys) && ikeRekeys == strconv.Itoa(swanIKERekeys) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%v of traffic; cygnet counted %s CHILD_SA and %s IKE SA rekeys as %s (status over the IKE SA's line: %d and %d; collisions won %d, lost %d); "+
		"charon's IKE SA #%d, CHILD_SA #%d; cygnet's drops: replay %s, unknown SPI %s, ICV %s",
		elapsed.Round(time.Second), childRekeys, ikeRekeys, role, ike.ChildRekeys, ike.Rekeys, ike.CollisionsWon, ike.CollisionsLost,
		sas[0].UniqueID, lastChild.UniqueID,
		metric(`cygnet_packets_dropped_total{reason="esp_replay"}`), metric(`cygnet_packets_dropped_total{reason="esp_unknown_spi"}`),
		metric(`cygnet_packets_dropped_total{reason="esp_auth_failed"}`))
	// At least the rekeys the times promise (a minute: 11 CHILD_SA, 3 IKE
	// SA rekeys at the least, jitter aside).
	wantChild, wantIKE := int(d/(5*time.Second))-1, int(d/(15*time.Second))-1
	if n, _ := strconv.Atoi(childRekeys); n < wantChild {
		t.Errorf("only %d CHILD_SA rekeys in %v, want %d at least", n, d, wantChild)
	}
	if n, _ := strconv.Atoi(ikeRekeys); n < wantIKE {
		t.Errorf("only %d IKE SA rekeys in %v, want %d at least", n, d, wantIKE)
	}
	t.Logf("charon counted %d CHILD_SA and %d IKE SA rekeys", swanChildRekeys, swanIKERekeys)
	if n, _ := strconv.Atoi(childRekeys); n != swanChildRekeys {
		t.Errorf("CHILD_SA rekeys: cygnet counted %d, charon %d", n, swanChildRekeys)
	}
	if n, _ := strconv.Atoi(ikeRekeys); n != swanIKERekeys {
		t.Errorf("IKE SA rekeys: cygnet counted %d, charon %d", n, swanIKERekeys)
	}
	if problems := charonProblems(log); len(problems) > 0 {
		t.Errorf("charon's log reports %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	if code, _, errOut := cyg.cli("down", "rk"); code != 0 {
		t.Errorf("cygnet down rk: exit %d: %s", code, errOut)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Cygnet's side of the rekey tests: socket, IKE SA rekey_time, CHILD_SA
// rekey_time.
const cygRekeyConf = `daemon:
  listen: [192.0.2.1]
  socket: %s
  metrics: 127.0.0.1:9134
  log: {level: debug}
secrets:
  - ids: [cyg-rk.test, swan-rk.test]
    psk: "rekey test secret, long enough"
connections:
  rk:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes256gcm16-prfsha256-x25519]
    rekey_time: %s
    local: {auth: psk, id: cyg-rk.test}
    remote: {auth: psk, id: swan-rk.test}
    children:
      rk: {local_ts: [10.1.0.0/16], remote_ts: [10.2.0.0/16], esp_proposals: [aes256gcm16], rekey_time: %s}
`

// strongSwan's side: the IKE SA's and the CHILD_SA's lifetime settings.
const swanRekeyConf = `connections {
	rk {
		local_addrs = 192.0.2.2
		remote_addrs = 192.0.2.1
		proposals = aes256gcm16-prfsha256-x25519
		mobike = no
		%s
		local { auth = psk
			id = swan-rk.test }
		remote { auth = psk
			id = cyg-rk.test }
		children {
			rk {
				local_ts = 10.2.0.0/16
				remote_ts = 10.1.0.0/16
				esp_proposals = aes256gcm16
				%s
			}
		}
	}
}
secrets {
	ike-rk {
		id-1 = swan-rk.test
		id-2 = cyg-rk.test
		secret = "rekey test secret, long enough"
	}
}
`
