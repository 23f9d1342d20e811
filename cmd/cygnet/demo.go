package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/control"
	"github.com/cygnet-ipsec/cygnet/internal/daemon"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane/userspace"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// runDemo is `cygnet demo [-v]`: two daemons on this host, "alice" on
// 127.0.0.1 and "bob" on 127.0.0.2, build an IPsec tunnel over real UDP
// sockets, send datagrams through it, and the demo explains each step from
// what actually crossed the wire. No root, no configuration: the
// certificates and the configuration are made on the fly in a temporary
// directory, and the data planes run in this process on in-memory TUN
// devices. As root it then does the same with the kernel: two network
// namespaces, two `cygnet daemon` processes with real TUN devices, and a
// real ping. -v shows the daemons' logs.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	verbose := fs.Bool("v", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, "usage: cygnet demo [-v]\n")
			return exitOK
		}
		return usageError(stderr, "demo: "+err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "demo takes no arguments besides -v")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var logw io.Writer
	if *verbose {
		logw = &lockedWriter{w: stderr} // both daemons log to it
	}
	opts := demoOptions{logw: logw}
	opts.kernel, opts.kernelWhy = kernelDemoPossible()
	if opts.kernel {
		self, err := os.Executable()
		if err != nil {
			return fail(stderr, fmt.Errorf("demo: %w", err))
		}
		opts.self = self
	}
	if err := demo(ctx, stdout, opts); err != nil {
		return fail(stderr, fmt.Errorf("demo: %w", err))
	}
	return exitOK
}

// The demo's cast.
const (
	aliceAddr = "127.0.0.1"
	bobAddr   = "127.0.0.2"
	aliceID   = "alice.cygnet.example"
	bobID     = "bob.cygnet.example"
	ikeProp   = "aes256gcm16-prfsha256-x25519"
	espProp   = "aes256gcm16"
)

// The demo's inner addresses: alice's network is 10.1.0.0/16, bob's
// 10.2.0.0/16.
var (
	aliceInner = netip.MustParseAddr("10.1.0.1")
	bobInner   = netip.MustParseAddr("10.2.0.1")
)

// demoOptions: logw receives both daemons' logs (nil: none); with kernel,
// the demo goes on with network namespaces, running self (this binary) as
// the daemons; kernelWhy says why it cannot otherwise.
type demoOptions struct {
	logw      io.Writer
	kernel    bool
	kernelWhy string
	self      string
}

// demoPeer is one of the two daemons.
type demoPeer struct {
	name   string
	d      *daemon.Daemon
	signer *countingSigner
	// host is the host's end of the peer's in-memory TUN device: the demo
	// plays the peer's IP stack on it.
	host   *tun.Mem
	done   chan error
	cancel context.CancelFunc
}

func demo(ctx context.Context, out io.Writer, opts demoOptions) (err error) {
	logw := opts.logw
	start := time.Now()
	dir, err := os.MkdirTemp("", "cygnet-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	pki, err := newDemoPKI(dir)
	if err != nil {
		return fmt.Errorf("making certificates: %w", err)
	}
	ikePort, natPort, err := freePortPair(aliceAddr, bobAddr)
	if err != nil {
		return err
	}
	tap := new(wireTap)
	alice, err := startDemoPeer(ctx, "alice", aliceAddr, aliceID, bobAddr, bobID, "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16", pki, ikePort, natPort, tap, logw)
	if err != nil {
		return err
	}
	defer alice.stop()
	bob, err := startDemoPeer(ctx, "bob", bobAddr, bobID, aliceAddr, aliceID, "10.2.0.0/16", "10.1.0.0/16", "10.4.0.0/16", "10.3.0.0/16", pki, ikePort, natPort, nil, logw)
	if err != nil {
		return err
	}
	defer bob.stop()

	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("Cygnet demo: two IKEv2 peers on this machine build an IPsec tunnel and send traffic through it.")
	p("")
	p("  alice  %s  UDP port %d (IKE) and %d (NAT-T), identity %s, network %s", aliceAddr, ikePort, natPort, aliceID, "10.1.0.0/16")
	p("  bob    %s  the same ports, identity %s, network %s", bobAddr, bobID, "10.2.0.0/16")
	p("  A throw-away certification authority (ECDSA P-256) has just certified both identities.")
	p("  Data plane: userspace ESP, in this process, on an in-memory TUN device per peer (the demo")
	p("  plays each peer's IP stack). encap: true puts ESP in UDP on the NAT-T port (RFC 3948), as")
	p("  behind a NAT, so that no raw socket and no root is needed.")
	p("")
	p("$ cygnet up tunnel net          (on alice)")
	t0 := time.Now()
	if err := alice.d.Up(ctx, "tunnel", "net"); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	took := time.Since(t0)
	st, err := alice.d.Status(ctx)
	if err != nil {
		return err
	}
	if len(st.IKESAs) != 1 || len(st.IKESAs[0].ChildSAs) != 1 {
		return fmt.Errorf("unexpected status after up: %d IKE SAs", len(st.IKESAs))
	}
	ike := st.IKESAs[0]
	msgs := tap.take()
	init := msgs.exchange(wire.IKE_SA_INIT)
	authMsgs := msgs.exchange(wire.IKE_AUTH)
	p("  established in %s: 4 messages, 2 round trips.", roundDuration(took))
	p("")

	p("Phase 1a: IKE_SA_INIT, in the clear")
	init.print(out)
	p("  alice offered %s; bob chose %s:", offered(init), ike.Proposal)
	for _, kw := range strings.Split(ike.Proposal, "-") {
		p("    %-15s %s", kw, describeKeyword(kw))
	}
	if ke := init.ke(); ke != nil {
		p("  Diffie-Hellman: each side sent a fresh %d-byte public value (KE) and a random nonce (Nonce).", len(ke.Data))
	}
	p("  From the shared secret and the nonces both computed SKEYSEED and the IKE SA's keys;")
	p("  the keys themselves never crossed the wire. The IKE SA is named by its two SPIs:")
	p("    alice (initiator) %s   bob (responder) %s", ike.SPIi, ike.SPIr)
	p("")

	p("Phase 1b: IKE_AUTH, encrypted and authenticated with the IKE SA's keys (the SK payload)")
	authMsgs.print(out)
	p("  Each side proved its identity with a signature, made with the private key of its")
	p("  certificate (ECDSA P-256, RFC 7427), over its IKE_SA_INIT message, the other's nonce")
	p("  and its identity (RFC 7296 2.15), and checked the other's signature and certificate")
	p("  against the CA: alice is %s, bob is %s.", ike.LocalID, ike.RemoteID)
	p("  Signatures made: alice %d, bob %d.", alice.signer.n.Load(), bob.signer.n.Load())
	total := authMsgs.bytes()
	for _, id := range []string{aliceID, bobID} {
		if authMsgs.contains([]byte(id)) || init.contains([]byte(id)) {
			p("  WARNING: %q appears in the captured bytes.", id)
		} else {
			p("  Hidden from a sniffer: %q appears nowhere in the %d captured bytes of IKE_AUTH.", id, total)
		}
	}
	p("")

	child := ike.ChildSAs[0]
	p("Phase 2: the first CHILD_SA, negotiated inside IKE_AUTH")
	printChild(out, child)
	p("  Its keys come from the IKE SA's SK_d and the nonces: no extra round trip, no extra")
	p("  public-key operation.")
	p("")

	if err := demoTraffic(out, alice, bob, tap, natPort); err != nil {
		return err
	}

	p("$ cygnet up tunnel second       (on alice)")
	aliceSigs, bobSigs := alice.signer.n.Load(), bob.signer.n.Load()
	t0 = time.Now()
	if err := alice.d.Up(ctx, "tunnel", "second"); err != nil {
		return fmt.Errorf("up second: %w", err)
	}
	took = time.Since(t0)
	if st, err = alice.d.Status(ctx); err != nil {
		return err
	}
	create := tap.take().exchange(wire.CREATE_CHILD_SA)
	p("Phase 2 again: CREATE_CHILD_SA adds a second CHILD_SA to the same IKE SA (%s)", roundDuration(took))
	create.print(out)
	for _, c := range st.IKESAs[0].ChildSAs {
		if c.Name == "second" {
			printChild(out, c)
		}
	}
	p("  Signatures made for it: alice %d, bob %d. Phase 2 needs no public-key operation: the",
		alice.signer.n.Load()-aliceSigs, bob.signer.n.Load()-bobSigs)
	p("  new keys come from SK_d and two fresh nonces. (A key exchange in esp_proposals, e.g.")
	p("  %s-x25519, adds one Diffie-Hellman for perfect forward secrecy.)", espProp)
	p("")

	p("$ cygnet status                 (on alice)")
	var table bytes.Buffer
	if err := control.WriteTable(&table, st, time.Now()); err != nil {
		return err
	}
	for line := range strings.SplitSeq(strings.TrimRight(table.String(), "\n"), "\n") {
		p("  %s", line)
	}
	p("")

	p("$ cygnet down tunnel            (on alice)")
	if err := alice.d.Down(ctx, "tunnel"); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	del := tap.take().exchange(wire.INFORMATIONAL)
	del.print(out)
	bst, err := bob.d.Status(ctx)
	if err != nil {
		return err
	}
	ast, err := alice.d.Status(ctx)
	if err != nil {
		return err
	}
	p("  An INFORMATIONAL exchange with a Delete payload: IKE SAs left on alice %d, on bob %d.", len(ast.IKESAs), len(bst.IKESAs))
	p("")
	if opts.kernel {
		if err := demoKernel(ctx, out, opts, pki, dir); err != nil {
			return err
		}
	} else {
		p("As root, the demo goes on with the kernel: two network namespaces, real TUN devices and a")
		p("real ping (%s).", opts.kernelWhy)
		p("")
	}
	p("Done in %s. Run `cygnet demo -v` to see both daemons' logs.", roundDuration(time.Since(start)))
	return nil
}

// demoTraffic sends datagrams and a ping from alice's network to bob's
// through the tunnel and shows them on the wire and at bob's end.
func demoTraffic(out io.Writer, alice, bob *demoPeer, tap *wireTap, natPort int) error {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("Traffic: alice's IP stack sends three UDP datagrams and a ping from %v to %v.", aliceInner, bobInner)
	p("  Its route for 10.2.0.0/16 leads into the TUN device; the data plane finds the CHILD_SA")
	p("  whose traffic selectors match each packet, seals it in ESP and sends it to bob.")
	tap.takeESP()
	var pkts [][]byte
	for i := 1; i <= 3; i++ {
		pkts = append(pkts, udp4(aliceInner, bobInner, 40000, 7, fmt.Appendf(nil, "hello bob #%d", i)))
	}
	pkts = append(pkts, icmpEcho(aliceInner, bobInner, 8, 1, 1, []byte("cygnet demo ping")))
	if _, err := alice.host.Write(pkts, 0); err != nil {
		return err
	}
	got, err := readTUN(bob.host, len(pkts))
	if err != nil {
		return fmt.Errorf("bob's TUN device: %w", err)
	}
	sent := tap.takeESP()
	p("  On the wire, UDP port %d to port %d (ESP in UDP):", natPort, natPort)
	sent.print(out)
	p("  The ESP header shows only the SPI (which SA) and the sequence number (against replays);")
	p("  the rest is ciphertext and a 16-byte ICV. %q is nowhere in the %d bytes.", "hello bob", sent.bytes())
	if sent.contains([]byte("hello bob")) {
		p("  WARNING: %q appears in the ESP bytes.", "hello bob")
	}
	p("  bob's TUN device gives bob's IP stack what came out of the tunnel, decrypted and checked")
	p("  against the CHILD_SA's traffic selectors (RFC 4301 5.2):")
	var echo innerPacket
	for _, pkt := range got {
		ip, ok := parseInner(pkt)
		if !ok {
			p("    %d bytes that are not what alice sent", len(pkt))
			continue
		}
		p("    %s", ip)
		if ip.proto == 1 {
			echo = ip
		}
	}
	p("  bob's IP stack answers the ping; the reply goes back through the CHILD_SA's other SA:")
	reply := icmpEcho(echo.dst, echo.src, 0, echo.id, echo.seq, echo.payload)
	if _, err := bob.host.Write([][]byte{reply}, 0); err != nil {
		return err
	}
	back, err := readTUN(alice.host, 1)
	if err != nil {
		return fmt.Errorf("alice's TUN device: %w", err)
	}
	tap.takeESP().print(out)
	if ip, ok := parseInner(back[0]); ok {
		p("    alice's TUN device: %s", ip)
	}
	p("")
	return nil
}

// readTUN reads n packets from a host end of an in-memory TUN device,
// waiting 5 s at most.
func readTUN(host *tun.Mem, n int) ([][]byte, error) {
	type result struct {
		pkts [][]byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var pkts [][]byte
		bufs, sizes := [][]byte{make([]byte, host.MTU())}, []int{0}
		for len(pkts) < n {
			if _, err := host.Read(bufs, sizes, 0); err != nil {
				ch <- result{pkts, err}
				return
			}
			pkts = append(pkts, bytes.Clone(bufs[0][:sizes[0]]))
		}
		ch <- result{pkts, nil}
	}()
	select {
	case r := <-ch:
		return r.pkts, r.err
	case <-time.After(5 * time.Second):
		host.Close() // ends the reader
		r := <-ch
		return nil, fmt.Errorf("%d of %d packets arrived", len(r.pkts), n)
	}
}

// roundDuration rounds d for humans: 3ms, 412µs.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

func printChild(out io.Writer, c control.ChildSA) {
	fmt.Fprintf(out, "  %s: %s === %s, %s mode, %s (%s)\n", c.Name,
		strings.Join(c.LocalTS, ","), strings.Join(c.RemoteTS, ","), c.Mode, c.Proposal, describeKeyword(c.Proposal))
	fmt.Fprintf(out, "    alice -> bob  ESP SPI %s (chosen by bob)\n", c.SPIOut)
	fmt.Fprintf(out, "    bob -> alice  ESP SPI %s (chosen by alice)\n", c.SPIIn)
	fmt.Fprintf(out, "  One SA per direction, each with its own keys.\n")
}

// describeKeyword explains a strongSwan proposal keyword.
func describeKeyword(kw string) string {
	switch kw {
	case "aes256gcm16":
		return "AES-256 in GCM mode with a 16-byte ICV: encryption and integrity in one"
	case "aes128gcm16":
		return "AES-128 in GCM mode with a 16-byte ICV"
	case "prfsha256":
		return "HMAC-SHA-256 as the pseudorandom function that derives the keys"
	case "x25519":
		return "Diffie-Hellman over Curve25519"
	case "ecp256":
		return "Diffie-Hellman over NIST P-256"
	}
	return kw
}

// startDemoPeer writes a configuration for one peer, loads it like the daemon
// does, and starts a daemon on it.
func startDemoPeer(ctx context.Context, name, addr, id, peerAddr, peerID, lts, rts, lts2, rts2 string, pki *demoPKI, ikePort, natPort int, tap *wireTap, logw io.Writer) (*demoPeer, error) {
	certPath, _, err := pki.issue(id, int64(len(name)+1))
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(certPath)
	yaml := fmt.Sprintf(`# %[1]s's side of the demo
daemon:
  listen: [%[2]s]
  port: %[6]d
  nat_port: %[7]d
  dataplane: userspace # given as an in-memory device below
connections:
  tunnel:
    local_addrs: [%[2]s]
    remote_addrs: [%[4]s]
    proposals: [%[8]s]
    encap: true
    local: {auth: pubkey, id: %[3]s, certs: [%[3]s.crt], key: %[3]s.key}
    remote: {auth: pubkey, id: %[5]s, cacerts: [ca.crt]}
    children:
      net: {local_ts: [%[10]s], remote_ts: [%[11]s], esp_proposals: [%[9]s]}
      second: {local_ts: [%[12]s], remote_ts: [%[13]s], esp_proposals: [%[9]s]}
`, name, addr, id, peerAddr, peerID, ikePort, natPort, ikeProp, espProp, lts, rts, lts2, rts2)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	// Count the signatures made with this peer's key.
	conn := cfg.Connection("tunnel")
	signer := &countingSigner{Signer: conn.Local.Cred.Key}
	conn.Local.Cred = &auth.Credential{Chain: conn.Local.Cred.Chain, Key: signer}

	log := slog.New(slog.DiscardHandler)
	if logw != nil {
		log = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug})).With("peer_name", name)
	}
	listen := func(c transport.Config, h transport.Handler) (transport.Endpoint, error) {
		if tap != nil {
			h = tapHandler{Handler: h, tap: tap}
		}
		u, err := transport.ListenUDP(c, h)
		if err != nil || tap == nil {
			return u, err
		}
		return tapEndpoint{UDP: u, tap: tap}, nil
	}
	dev, host := tun.NewMemPair(name, userspace.DefaultMTU, 0)
	dp, err := userspace.New(userspace.Config{Device: dev, Log: log})
	if err != nil {
		return nil, err
	}
	d, err := daemon.New(cfg, daemon.Options{Listen: listen, Logger: log, NoControl: true, Dataplane: dp})
	if err != nil {
		dp.Close()
		return nil, err
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &demoPeer{name: name, d: d, signer: signer, host: host, done: make(chan error, 1), cancel: cancel}
	go func() { p.done <- d.Run(dctx) }()
	return p, nil
}

func (p *demoPeer) stop() {
	p.cancel()
	<-p.done
	p.host.Close()
}

// freePortPair finds two UDP ports free on both addresses, so that both peers
// use the same IKE and NAT-T ports (as on the Internet, where both use 500
// and 4500).
func freePortPair(a, b string) (ike, nat int, err error) {
	for range 50 {
		var ports []int
		var conns []*net.UDPConn
		ok := true
		for range 2 {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(a+":0")))
			if err != nil {
				return 0, 0, err
			}
			conns = append(conns, c)
			port := c.LocalAddr().(*net.UDPAddr).Port
			c2, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(b), uint16(port))))
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c2)
			ports = append(ports, port)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return ports[0], ports[1], nil
		}
	}
	return 0, 0, fmt.Errorf("no free UDP port pair on %s and %s (is %s usable? Linux routes 127.0.0.0/8 to lo)", a, b, b)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// wireTap records every IKE datagram and ESP packet alice sends and
// receives: what a sniffer between the two peers would capture (UDP
// payloads).
type wireTap struct {
	mu   sync.Mutex
	msgs []tapped
	esp  []tapped
}

type tapped struct {
	sent bool
	data []byte
}

func (t *wireTap) add(sent bool, data []byte) {
	t.mu.Lock()
	t.msgs = append(t.msgs, tapped{sent, bytes.Clone(data)})
	t.mu.Unlock()
}

func (t *wireTap) addESP(sent bool, batch []transport.Packet) {
	t.mu.Lock()
	for _, p := range batch {
		t.esp = append(t.esp, tapped{sent, bytes.Clone(p.Data)})
	}
	t.mu.Unlock()
}

// takeESP returns the ESP packets captured since the last call.
func (t *wireTap) takeESP() espCapture {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := espCapture(t.esp)
	t.esp = nil
	return c
}

// take returns the IKE messages captured since the last call.
func (t *wireTap) take() capture {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := capture(t.msgs)
	t.msgs = nil
	return c
}

type tapHandler struct {
	transport.Handler
	tap *wireTap
}

func (h tapHandler) HandleIKE(p transport.Packet) {
	h.tap.add(false, p.Data)
	h.Handler.HandleIKE(p)
}

func (h tapHandler) HandleESP(batch []transport.Packet) {
	h.tap.addESP(false, batch)
	h.Handler.HandleESP(batch)
}

type tapEndpoint struct {
	*transport.UDP
	tap *wireTap
}

func (e tapEndpoint) SendIKE(p transport.Packet) error {
	e.tap.add(true, p.Data)
	return e.UDP.SendIKE(p)
}

func (e tapEndpoint) SendESP(batch []transport.Packet) error {
	e.tap.addESP(true, batch)
	return e.UDP.SendESP(batch)
}

// espCapture is a list of captured ESP packets (from the SPI on), in order.
type espCapture []tapped

// print lists the packets as a sniffer sees them: the SPI and sequence
// number of the ESP header (RFC 4303 2), and the size.
func (c espCapture) print(out io.Writer) {
	for _, m := range c {
		dir := "bob -> alice"
		if m.sent {
			dir = "alice -> bob"
		}
		if len(m.data) < 8 {
			fmt.Fprintf(out, "    %s  %d bytes\n", dir, len(m.data))
			continue
		}
		// After SPI and sequence number: the 8-byte IV of AES-GCM
		// (RFC 4106 3.1), then ciphertext.
		fmt.Fprintf(out, "    %s  ESP SPI %08x seq %d  %3d bytes  ciphertext %x...\n", dir,
			binary.BigEndian.Uint32(m.data), binary.BigEndian.Uint32(m.data[4:]), len(m.data), m.data[min(len(m.data), 16):min(len(m.data), 28)])
	}
}

func (c espCapture) bytes() int {
	n := 0
	for _, m := range c {
		n += len(m.data)
	}
	return n
}

func (c espCapture) contains(b []byte) bool {
	for _, m := range c {
		if bytes.Contains(m.data, b) {
			return true
		}
	}
	return false
}

// capture is a list of captured IKE datagrams, in order.
type capture []tapped

func (c capture) exchange(x wire.ExchangeType) capture {
	var out capture
	for _, m := range c {
		if h, err := wire.ParseHeader(m.data); err == nil && h.Exchange == x {
			out = append(out, m)
		}
	}
	return out
}

func (c capture) bytes() int {
	n := 0
	for _, m := range c {
		n += len(m.data)
	}
	return n
}

func (c capture) contains(b []byte) bool {
	for _, m := range c {
		if bytes.Contains(m.data, b) {
			return true
		}
	}
	return false
}

// ke returns the KE payload of the first message.
func (c capture) ke() *wire.KE {
	for _, m := range c {
		if msg, err := wire.Parse(m.data); err == nil {
			for _, pl := range msg.Payloads {
				if ke, ok := pl.(*wire.KE); ok {
					return ke
				}
			}
		}
	}
	return nil
}

// offered describes the SA payload of the first request.
func offered(c capture) string {
	for _, m := range c {
		msg, err := wire.Parse(m.data)
		if err != nil || msg.IsResponse() {
			continue
		}
		for _, pl := range msg.Payloads {
			if sa, ok := pl.(*wire.SA); ok {
				if len(sa.Proposals) == 1 {
					return "1 proposal"
				}
				return fmt.Sprintf("%d proposals", len(sa.Proposals))
			}
		}
	}
	return "its proposals"
}

// print lists the messages as a sniffer sees them: direction, exchange,
// request or response, message ID, size, and the payloads in the clear.
func (c capture) print(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, m := range c {
		dir := "bob -> alice"
		if m.sent {
			dir = "alice -> bob"
		}
		msg, err := wire.Parse(m.data)
		if err != nil {
			fmt.Fprintf(tw, "  %s\t%d bytes\tunparsed: %v\n", dir, len(m.data), err)
			continue
		}
		kind := "request"
		if msg.IsResponse() {
			kind = "response"
		}
		var pls []string
		for _, pl := range msg.Payloads {
			switch pl := pl.(type) {
			case *wire.Notify:
				pls = append(pls, "N("+pl.NotifyType.String()+")")
			case *wire.Encrypted:
				pls = append(pls, fmt.Sprintf("SK{%d encrypted bytes}", len(pl.Data)))
			case *wire.EncryptedFragment:
				pls = append(pls, fmt.Sprintf("SKF{fragment %d/%d, %d encrypted bytes}", pl.Number, pl.Total, len(pl.Data)))
			default:
				pls = append(pls, pl.Type().String())
			}
		}
		fmt.Fprintf(tw, "  %s\t%s %s #%d\t%d bytes\t%s\n", dir, msg.Exchange, kind, msg.MessageID, len(m.data), strings.Join(pls, " "))
	}
	tw.Flush()
}
