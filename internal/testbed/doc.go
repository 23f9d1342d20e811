// Package testbed is Cygnet's harness for tests against real peers: network
// namespaces joined by veth pairs, strongSwan's charon as the IKEv2/IPsec
// peer, packet captures read back with tshark, ping and iperf3 through the
// tunnel. Only tests import it. Everything a test creates is removed by
// t.Cleanup, also when the test fails midway, and every wait is bounded.
//
// # Components and skipping
//
// Require(t, "root", "charon", "tshark", ...) skips a test whose components
// are missing, with the apt-get line that installs them; with CYGNET_STRICT=1
// (CI) it fails it instead. Root(t) is Require(t, "root").
//
// # Namespaces
//
//	left, right := testbed.NewNetns(t, "left"), testbed.NewNetns(t, "right")
//	lif, rif := testbed.Link(t, left, right,
//		[]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")},
//		[]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("2001:db8::2/64")})
//	left.AddAddr(t, "lo", netip.MustParsePrefix("10.1.0.1/32")) // tunnel inner address
//	out := left.Run(t, "ip", "route")                            // fails the test on error
//	cmd := left.Command(ctx, "cygnet", "daemon", "-c", cfg)      // caller runs it
//	p := left.Start(t, "cygnet", testbed.StartOptions{}, "cygnet", "daemon", "-c", cfg) // stopped at cleanup
//	sent, received := left.Ping(t, src, dst, 3, 50*time.Millisecond)
//
// Names are "cygtb-<prefix>-<pid>-<n>", unique across parallel tests and
// parallel test binaries. Cleanup kills whatever still runs inside a namespace
// before deleting it (deleting a namespace with processes inside only removes
// its name). Processes the harness starts carry CYGNET_TESTBED_OWNER=<pid of
// the test binary> and get SIGKILL when the test binary dies (Pdeathsig), so
// a binary killed by `go test -timeout` leaves only namespaces behind; Sweep
// (run by the first NewNetns of each binary) deletes those of dead binaries.
// Leftovers and CheckLeftovers report what a binary has not cleaned up.
//
// # charon
//
//	c := testbed.StartCharon(t, left, testbed.CharonConfig{
//		Swanctl: conf,                           // swanctl.conf text, strongSwan syntax
//		Files:   cert.CharonFiles(t),            // x509ca/ca.crt, x509/peer.crt, private/peer.key
//		ExtraStrongswanConf: "charon {\n dos_protection = no\n}",
//		LogLevel: 4,                             // logs IKE and ESP keys: tests only
//	})
//	err := c.Initiate(t, "psk", "net")          // waits for the outcome (15 s at most)
//	sas := c.WaitSA(t, testbed.Established("psk", "net"), 5*time.Second)
//	child, _ := sas[0].Child("net")             // SPIs, algorithms, counters, selectors
//	err = c.Terminate(t, "psk")
//	out, err := c.Swanctl(t, "--list-conns")    // anything else
//	v := c.Vici(t, 10*time.Second)              // raw VICI, e.g. for many SAs at once
//
// Each charon runs inside its namespace with its own strongswan.conf, swanctl
// directory, VICI socket and log file, and a private /run (charon hard-codes
// /var/run/charon.pid). It uses kernel-libipsec: the kernel here has XFRM but
// no ESP transform, so charon does ESP itself over a TUN device (ipsec0) and
// routes the remote selectors there (table 220) with the local inner address
// as source. testdata/swanctl-psk.conf.tmpl and swanctl-ecdsa.conf.tmpl are
// reference configurations that interoperate (see TestCharonToCharon).
// ListSAs reads charon's SAs over VICI (a small client in vici.go), not by
// parsing `swanctl --raw`, whose values with spaces are not quoted.
//
// # Certificates made by strongSwan
//
//	ca := testbed.NewCA(t, dir, "ecdsa", "C=CH, O=Cygnet, CN=Test CA")
//	cert := testbed.Issue(t, ca, "rsa", 3072, "C=CH, O=Cygnet, CN=peer", "peer.example")
//
// # Captures, iperf3
//
//	capture := testbed.StartCapture(t, left, lif) // frames are recorded once it returns
//	...
//	n := capture.Count(t, "esp && frame.packet_flags_direction == 2") // sent by left
//	rows := capture.Fields(t, "isakmp", []string{"isakmp.ispi", "isakmp.exchangetype"})
//	bps := testbed.Iperf3(t, right, left, serverAddr, 5, false)
//
// # Learned here (beyond ../shared/notes/strongswan-testbed.md)
//
//   - Both charons with kernel-libipsec fake their NAT-D hashes, so each side
//     sees "nat-remote = yes": a Cygnet peer of such a charon must detect the
//     NAT, move to port 4500 after IKE_SA_INIT and UDP-encapsulate ESP.
//   - swanctl --load-all exits 0 after a syntax error in swanctl.conf (it
//     prints "syntax error ..." and loads nothing) and after a missing
//     credential directory (it also wants "bliss"); it exits 22 only when a
//     connection is rejected. Load therefore also reads its output.
//   - charon exits 20-40 ms after SIGTERM here, with or without SAs up. On
//     SIGSEGV it logs "[DMN] thread N received 11" and then hangs instead of
//     exiting; StartCharon's cleanup fails the test on that line, and on a
//     charon that exited by itself during the test.
//   - dumpcap/tshark -i (Wireshark 4.0) loses the frames of the last kernel
//     ring block when stopped, so a ping just before Stop is missing from the
//     file; hence the AF_PACKET capture in capture.go. tshark also costs about
//     0.3 s of CPU per start: Counts evaluates many filters in one run.
//   - `ping -c N -w D` keeps sending until N replies arrived, so under load it
//     can send more than N; Ping reports both numbers.
package testbed
