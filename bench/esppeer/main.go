// Command esppeer runs one side of a Cygnet userspace ESP tunnel with fixed,
// derived keys and no IKE: a TUN device, the UDP transport on the NAT-T port
// (or raw ESP), and one SA pair. The netns tests of
// internal/dataplane/userspace and bench/esp-throughput.sh start one in each
// namespace. The keys come from -seed: test traffic only.
//
//	esppeer -side a -local 192.0.2.1 -remote 192.0.2.2 -local-ts 10.1.0.0/16 -remote-ts 10.2.0.0/16
//
// It prints "ready" once the SA and routes are installed, and on SIGTERM or
// SIGINT closes the data plane (removing routes and the device), prints the
// SA's counters and exits.
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/dataplane/userspace"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
)

type suite struct {
	encr   wire.EncrID
	keyLen int
	integ  wire.IntegID
}

var suites = map[string]suite{
	"aes128gcm16":      {wire.ENCR_AES_GCM_16, 128, wire.AUTH_NONE},
	"aes256gcm16":      {wire.ENCR_AES_GCM_16, 256, wire.AUTH_NONE},
	"chacha20poly1305": {wire.ENCR_CHACHA20_POLY1305, 256, wire.AUTH_NONE},
	"aes256-sha256":    {wire.ENCR_AES_CBC, 256, wire.AUTH_HMAC_SHA2_256_128},
	"aes128-sha256":    {wire.ENCR_AES_CBC, 128, wire.AUTH_HMAC_SHA2_256_128},
}

// key derives n bytes for one direction ("a>b" or "b>a") and use.
func key(seed, dir, use string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("cygnet esppeer %s %s %s %d", seed, dir, use, i)))
		out = append(out, h[:]...)
	}
	return out[:n]
}

func selectors(list string) ([]dataplane.Selector, error) {
	var out []dataplane.Selector
	for _, s := range strings.Split(list, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		p = p.Masked()
		b := p.Addr().AsSlice()
		for i := p.Bits(); i < len(b)*8; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		end, _ := netip.AddrFromSlice(b)
		out = append(out, dataplane.Selector{Start: p.Addr(), End: end, EndPort: 0xffff})
	}
	return out, nil
}

func main() {
	side := flag.String("side", "a", "a or b: which key direction is outbound")
	local := flag.String("local", "", "local outer address")
	remote := flag.String("remote", "", "remote outer address")
	port := flag.Int("port", 4500, "NAT-T port (both sides)")
	encap := flag.Bool("encap", true, "UDP encapsulation (false: plain ESP over a raw socket)")
	suiteName := flag.String("suite", "aes256gcm16", "aes128gcm16|aes256gcm16|chacha20poly1305|aes256-sha256|aes128-sha256")
	mode := flag.String("mode", "tunnel", "tunnel or transport")
	localTS := flag.String("local-ts", "", "local traffic selectors, comma-separated prefixes")
	remoteTS := flag.String("remote-ts", "", "remote traffic selectors")
	tunName := flag.String("tun", "cygnet0", "TUN device name")
	mtu := flag.Int("mtu", 1400, "TUN MTU")
	offload := flag.Bool("offload", false, "TUN TSO offload")
	seed := flag.String("seed", "test", "key seed")
	batch := flag.Int("batch", 0, "batch size")
	udpOffload := flag.Bool("udp-offload", true, "UDP GSO/GRO on the transport's NAT-T socket (transport.Config.NoOffload when false)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()

	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "esppeer:", err)
		os.Exit(1)
	}
	s, ok := suites[*suiteName]
	if !ok {
		fail(fmt.Errorf("unknown suite %q", *suiteName))
	}
	la, err := netip.ParseAddr(*local)
	if err != nil {
		fail(err)
	}
	ra, err := netip.ParseAddr(*remote)
	if err != nil {
		fail(err)
	}
	lts, err := selectors(*localTS)
	if err != nil {
		fail(err)
	}
	rts, err := selectors(*remoteTS)
	if err != nil {
		fail(err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	b, err := userspace.New(userspace.Config{TUNName: *tunName, MTU: *mtu, Offload: *offload, BatchSize: *batch, Log: log})
	if err != nil {
		fail(err)
	}
	u, err := transport.ListenUDP(transport.Config{Addrs: []netip.Addr{la}, Port: *port + 1, NATPort: *port, NoOffload: !*udpOffload, Log: log}, handler{b})
	if err != nil {
		b.Close()
		fail(err)
	}
	b.SetTransport(u)

	out, in := "a>b", "b>a"
	spiIn, spiOut := uint32(0xa0000001), uint32(0xb0000001)
	if *side == "b" {
		out, in = in, out
		spiIn, spiOut = spiOut, spiIn
	}
	ekl := s.keyLen / 8
	if s.encr != wire.ENCR_AES_CBC {
		ekl += 4
	}
	ikl := 0
	if s.integ != wire.AUTH_NONE {
		ikl = 32
	}
	sa := &dataplane.SA{
		ReqID: 1, Name: "bench", Encap: *encap,
		Local: netip.AddrPortFrom(la, uint16(*port)), Remote: netip.AddrPortFrom(ra, uint16(*port)),
		InSPI: spiIn, OutSPI: spiOut,
		Encr: s.encr, EncrKeyLen: s.keyLen, Integ: s.integ,
		InEncrKey: key(*seed, in, "encr", ekl), OutEncrKey: key(*seed, out, "encr", ekl),
		LocalTS: lts, RemoteTS: rts, ReplayWindow: 1024,
	}
	if ikl > 0 {
		sa.InIntegKey, sa.OutIntegKey = key(*seed, in, "integ", ikl), key(*seed, out, "integ", ikl)
	}
	if *mode == "transport" {
		sa.Mode = dataplane.Transport
	}
	if err := b.Install(sa, 0); err != nil {
		u.Close()
		b.Close()
		fail(err)
	}
	fmt.Println("ready")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c, _ := b.Counters(spiIn)
	fmt.Printf("counters: in %d packets %d bytes, out %d packets %d bytes, drops %v\n", c.PacketsIn, c.BytesIn, c.PacketsOut, c.BytesOut, c.Drops)
	fmt.Printf("stats: %+v transport: %+v\n", b.Stats(), u.Stats())
	u.Close()
	if err := b.Close(); err != nil {
		fail(err)
	}
}

type handler struct{ b *userspace.Backend }

func (h handler) HandleIKE(transport.Packet)         {}
func (h handler) HandleESP(batch []transport.Packet) { h.b.HandleESP(batch) }
