package xfrm

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

var (
	gcm16   = algCase{name: "aes128gcm16", encr: wire.ENCR_AES_GCM_16, keyBits: 128}
	chacha  = algCase{name: "chacha20poly1305", encr: wire.ENCR_CHACHA20_POLY1305, keyBits: 256}
	cbcSHA2 = algCase{name: "aes128-sha256", encr: wire.ENCR_AES_CBC, keyBits: 128, integ: wire.AUTH_HMAC_SHA2_256_128}
)

// installPair allocates the inbound SPIs from the kernels (ALLOCSPI at the
// SA's local address), builds the SAs and installs them on both sides.
func installPair(t *testing.T, a, b *site, alg algCase, mode dataplane.Mode, v6, encap bool, reqid uint32, opts InstallOptions) (sa, sb *dataplane.SA) {
	t.Helper()
	var aLocal, bLocal netip.AddrPort
	if mode == dataplane.Tunnel {
		aLocal, bLocal = netip.AddrPortFrom(a.wire(v6), 0), netip.AddrPortFrom(b.wire(v6), 0)
	} else {
		aLocal, bLocal = netip.AddrPortFrom(a.inner(v6), 0), netip.AddrPortFrom(b.inner(v6), 0)
	}
	if encap {
		aLocal, bLocal = netip.AddrPortFrom(aLocal.Addr(), 4500), netip.AddrPortFrom(bLocal.Addr(), 4500)
	}
	spiA, err := a.b.AllocSPIFor(aLocal.Addr(), bLocal.Addr(), reqid)
	if err != nil {
		t.Fatal(err)
	}
	spiB, err := b.b.AllocSPIFor(bLocal.Addr(), aLocal.Addr(), reqid)
	if err != nil {
		t.Fatal(err)
	}
	aTS, bTS := hostTS(a.inner(v6)), hostTS(b.inner(v6))
	if opts.IfID != 0 {
		aTS, bTS = anyTS(v6), anyTS(v6)
	}
	sa, sb = newPair(t, alg, mode, aLocal, bLocal, aTS, bTS, reqid, spiA, spiB)
	sa.Encap, sb.Encap = encap, encap
	// Through Install: the options travel in the SA.
	sa.IfID, sb.IfID = opts.IfID, opts.IfID
	sa.DeferOutbound, sb.DeferOutbound = opts.InboundOnly, opts.InboundOnly
	if err := a.b.Install(sa, 0); err != nil {
		t.Fatalf("install in %s: %v", a.ns.Name, err)
	}
	if err := b.b.Install(sb, 0); err != nil {
		t.Fatalf("install in %s: %v", b.ns.Name, err)
	}
	for _, k := range [][]byte{sa.InEncrKey, sa.OutEncrKey, sa.InIntegKey, sa.OutIntegKey} {
		for _, x := range k {
			if x != 0 {
				t.Fatal("Install left a copy of a key in the SA")
			}
		}
	}
	return sa, sb
}

// pingBoth pings a->b and b->a between the inner addresses and requires
// every reply.
func pingBoth(t *testing.T, a, b *site, v6 bool, count int) {
	t.Helper()
	for _, p := range [][2]*site{{a, b}, {b, a}} {
		src, dst := p[0], p[1]
		if sent, got := ping(t, src, src.inner(v6), dst.inner(v6), count, 20*time.Millisecond); got != sent || sent != count {
			t.Fatalf("ping %v -> %v: sent %d, %d replies\n%s\n%s", src.inner(v6), dst.inner(v6), sent, got, src.xfrmStats(t), dst.xfrmStats(t))
		}
	}
}

// TestPing installs SA pairs for each algorithm, family and mode, pings
// both ways, and checks that only ESP left the namespace and that the
// kernel's counters counted the packets.
func TestPing(t *testing.T) {
	a, b := newSites(t)
	type tc struct {
		alg   algCase
		mode  dataplane.Mode
		v6    bool
		encap bool
	}
	var cases []tc
	for _, alg := range []algCase{
		gcm16,
		{name: "aes256gcm16", encr: wire.ENCR_AES_GCM_16, keyBits: 256},
		{name: "aes128gcm8", encr: wire.ENCR_AES_GCM_8, keyBits: 128},
		{name: "aes192gcm12", encr: wire.ENCR_AES_GCM_12, keyBits: 192},
		chacha,
		cbcSHA2,
		{name: "aes256-sha1", encr: wire.ENCR_AES_CBC, keyBits: 256, integ: wire.AUTH_HMAC_SHA1_96},
		{name: "aes192-sha384", encr: wire.ENCR_AES_CBC, keyBits: 192, integ: wire.AUTH_HMAC_SHA2_384_192},
		{name: "aes256-sha512", encr: wire.ENCR_AES_CBC, keyBits: 256, integ: wire.AUTH_HMAC_SHA2_512_256},
		{name: "aes256gcm16-esn", encr: wire.ENCR_AES_GCM_16, keyBits: 256, esn: true},
		{name: "aes128-sha256-esn", encr: wire.ENCR_AES_CBC, keyBits: 128, integ: wire.AUTH_HMAC_SHA2_256_128, esn: true},
	} {
		cases = append(cases, tc{alg: alg, mode: dataplane.Tunnel})
	}
	for _, alg := range []algCase{gcm16, chacha, cbcSHA2} {
		cases = append(cases,
			tc{alg: alg, mode: dataplane.Tunnel, v6: true},
			tc{alg: alg, mode: dataplane.Transport},
			tc{alg: alg, mode: dataplane.Transport, v6: true})
	}
	cases = append(cases,
		tc{alg: gcm16, mode: dataplane.Tunnel, encap: true},
		tc{alg: chacha, mode: dataplane.Tunnel, v6: true, encap: true},
		tc{alg: cbcSHA2, mode: dataplane.Transport, encap: true})
	encapOpen := map[bool]bool{}
	parent := t
	for i, c := range cases {
		family := "ipv4"
		if c.v6 {
			family = "ipv6"
		}
		name := fmt.Sprintf("%s/%s/%s", c.mode, family, c.alg.name)
		if c.encap {
			name += "/encap"
		}
		t.Run(name, func(t *testing.T) {
			if c.encap && !encapOpen[c.v6] {
				encapSocket(parent, a, c.v6, 4500)
				encapSocket(parent, b, c.v6, 4500)
				encapOpen[c.v6] = true
			}
			reqid := uint32(100 + i)
			before := a.b.Totals()
			sa, sb := installPair(t, a, b, c.alg, c.mode, c.v6, c.encap, reqid, InstallOptions{})
			capA := testbed.StartCapture(t, a.ns, a.dev)
			const n = 5
			pingBoth(t, a, b, c.v6, n)
			capA.Stop(t)
			kinds := sentKinds(capA)
			want := "esp"
			if c.encap {
				want = "esp-in-udp"
			}
			if kinds[want] < 2*n || kinds["icmp"] != 0 {
				t.Errorf("frames sent by %s: %v; want at least %d %s and no plaintext ICMP echo", a.ns.Name, kinds, 2*n, want)
			}
			ca, ok := a.b.Counters(sa.InSPI)
			if !ok {
				t.Fatal("no counters")
			}
			// a sent n requests and n replies, and received as many.
			if ca.PacketsOut < 2*n || ca.PacketsIn < 2*n || ca.BytesIn == 0 || ca.BytesOut == 0 {
				t.Errorf("counters in %s: %+v", a.ns.Name, ca)
			}
			if ca.LastIn.IsZero() || ca.LastOut.IsZero() {
				t.Errorf("counters in %s: no last-use times: %+v", a.ns.Name, ca)
			}
			live := a.b.Totals()
			for _, r := range []struct {
				s   *site
				spi uint32
			}{{a, sa.InSPI}, {b, sb.InSPI}} {
				if err := r.s.b.Remove(r.spi); err != nil {
					t.Fatal(err)
				}
				if _, ok := r.s.b.Counters(r.spi); ok {
					t.Error("counters of a removed SA")
				}
				r.s.requireEmpty(t)
			}
			// Totals count the live pair, then keep what it counted.
			after := a.b.Totals()
			for _, tot := range []dataplane.Totals{live, after} {
				if tot.PacketsIn-before.PacketsIn < ca.PacketsIn || tot.PacketsOut-before.PacketsOut < ca.PacketsOut ||
					tot.BytesIn-before.BytesIn < ca.BytesIn || tot.BytesOut-before.BytesOut < ca.BytesOut {
					t.Errorf("totals in %s: before %+v, with the SA %+v, after its removal %+v; its counters %+v", a.ns.Name, before, live, after, ca)
					break
				}
			}
		})
	}
}

// TestXfrmInterface: route-based mode. The SAs and their wildcard policies
// carry an if_id; traffic routed into the XFRM interface with that if_id is
// protected, other traffic is not touched.
func TestXfrmInterface(t *testing.T) {
	a, b := newSites(t)
	const ifID = 42
	for _, s := range []*site{a, b} {
		s.ip(t, "link", "add", "ipsec42", "type", "xfrm", "dev", s.dev, "if_id", fmt.Sprint(ifID))
		s.ip(t, "link", "set", "ipsec42", "up")
	}
	for _, p := range [][2]*site{{a, b}, {b, a}} {
		s, peer := p[0], p[1]
		s.ip(t, "route", "replace", peer.inner4.String()+"/32", "dev", "ipsec42", "src", s.inner4.String())
		s.ip(t, "-6", "route", "replace", peer.inner6.String()+"/128", "dev", "ipsec42", "src", s.inner6.String())
	}
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv6=%v", v6), func(t *testing.T) {
			sa, sb := installPair(t, a, b, gcm16, dataplane.Tunnel, v6, false, 7, InstallOptions{IfID: ifID})
			if out := a.ip(t, "xfrm", "policy"); !strings.Contains(out, "if_id 0x2a") {
				t.Errorf("policies without if_id:\n%s", out)
			}
			capA := testbed.StartCapture(t, a.ns, a.dev)
			pingBoth(t, a, b, v6, 5)
			capA.Stop(t)
			if kinds := sentKinds(capA); kinds["esp"] < 10 || kinds["icmp"] != 0 {
				t.Errorf("frames sent: %v", kinds)
			}
			// Traffic not routed into the interface is not protected: the
			// wire addresses ping in the clear.
			if sent, got := ping(t, a, a.wire(v6), b.wire(v6), 2, 20*time.Millisecond); got != sent {
				t.Errorf("plain ping on the wire: sent %d, got %d", sent, got)
			}
			if c, _ := a.b.Counters(sa.InSPI); c.PacketsIn < 10 {
				t.Errorf("counters: %+v", c)
			}
			a.b.Remove(sa.InSPI)
			b.b.Remove(sb.InSPI)
			a.requireEmpty(t)
			b.requireEmpty(t)
		})
	}
}

// TestRekeyNoLoss replaces an SA pair under a ping, make-before-break on
// both ends: both install the new inbound SA, then both switch outbound,
// then the old SAs go. No echo may be lost, and both SAs carry traffic.
func TestRekeyNoLoss(t *testing.T) {
	a, b := newSites(t)
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv6=%v", v6), func(t *testing.T) {
			oldA, oldB := installPair(t, a, b, gcm16, dataplane.Tunnel, v6, false, 9, InstallOptions{})
			const count = 150
			var (
				wg         sync.WaitGroup
				sent, recv int
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				sent, recv = ping(t, a, a.inner(v6), b.inner(v6), count, 10*time.Millisecond)
			}()
			time.Sleep(300 * time.Millisecond)

			spiA, err := a.b.AllocSPIFor(oldA.Local.Addr(), oldA.Remote.Addr(), 9)
			if err != nil {
				t.Fatal(err)
			}
			spiB, err := b.b.AllocSPIFor(oldB.Local.Addr(), oldB.Remote.Addr(), 9)
			if err != nil {
				t.Fatal(err)
			}
			newA, newB := newPair(t, gcm16, dataplane.Tunnel, oldA.Local, oldA.Remote, oldA.LocalTS, oldA.RemoteTS, 9, spiA, spiB)
			// RFC 7296 2.8: each end must accept the new SA before the
			// other sends on it.
			if err := a.b.InstallWith(newA, oldA.InSPI, InstallOptions{InboundOnly: true}); err != nil {
				t.Fatal(err)
			}
			if err := b.b.InstallWith(newB, oldB.InSPI, InstallOptions{InboundOnly: true}); err != nil {
				t.Fatal(err)
			}
			if err := b.b.ActivateOutbound(newB.InSPI); err != nil {
				t.Fatal(err)
			}
			if err := a.b.ActivateOutbound(newA.InSPI); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			// Packets still in flight under the old SPIs were accepted
			// while the old inbound SAs lived; now they go.
			if err := a.b.Remove(oldA.InSPI); err != nil {
				t.Fatal(err)
			}
			if err := b.b.Remove(oldB.InSPI); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if sent != count || recv != count {
				t.Fatalf("rekey under ping: sent %d, %d replies (want %d)", sent, recv, count)
			}
			c, _ := a.b.Counters(newA.InSPI)
			if c.PacketsIn == 0 || c.PacketsOut == 0 {
				t.Errorf("the new SA carried nothing: %+v", c)
			}
			a.b.Remove(newA.InSPI)
			b.b.Remove(newB.InSPI)
			a.requireEmpty(t)
			b.requireEmpty(t)
		})
	}
}

// TestInstallReplaceAtomic: a plain Install with replaces switches the
// outbound direction to the new SA at once.
func TestInstallReplaceAtomic(t *testing.T) {
	a, b := newSites(t)
	oldA, oldB := installPair(t, a, b, chacha, dataplane.Tunnel, false, false, 3, InstallOptions{})
	pingBoth(t, a, b, false, 2)
	spiA, _ := a.b.AllocSPIFor(oldA.Local.Addr(), oldA.Remote.Addr(), 3)
	spiB, _ := b.b.AllocSPIFor(oldB.Local.Addr(), oldB.Remote.Addr(), 3)
	newA, newB := newPair(t, chacha, dataplane.Tunnel, oldA.Local, oldA.Remote, oldA.LocalTS, oldA.RemoteTS, 3, spiA, spiB)
	if err := b.b.Install(newB, oldB.InSPI); err != nil {
		t.Fatal(err)
	}
	if err := a.b.Install(newA, oldA.InSPI); err != nil {
		t.Fatal(err)
	}
	before, _ := a.b.Counters(oldA.InSPI)
	pingBoth(t, a, b, false, 3)
	after, _ := a.b.Counters(oldA.InSPI)
	if after.PacketsOut != before.PacketsOut {
		t.Errorf("the old outbound SA still carries traffic: %d -> %d packets", before.PacketsOut, after.PacketsOut)
	}
	if c, _ := a.b.Counters(newA.InSPI); c.PacketsOut < 6 || c.PacketsIn < 6 {
		t.Errorf("new SA counters: %+v", c)
	}
	// Installing a replacement of an unknown SA fails.
	_, _, err := func() (uint32, uint32, error) {
		x, _ := newPair(t, chacha, dataplane.Tunnel, oldA.Local, oldA.Remote, oldA.LocalTS, oldA.RemoteTS, 3, 0x7777, 0x8888)
		return 0, 0, a.b.Install(x, 0x12345)
	}()
	if !errors.Is(err, dataplane.ErrUnknownSPI) {
		t.Errorf("replacing an unknown SPI: %v", err)
	}
}

// TestAcquire: a trap policy makes the kernel send an ACQUIRE for the first
// packet; the SA installed for it takes the policy over; removing the SA
// brings the trap back.
func TestAcquire(t *testing.T) {
	a, b := newSites(t)
	const reqid = 11
	tr := Trap{ReqID: reqid, Name: "trap", Mode: dataplane.Tunnel,
		Local: a.wire4, Remote: b.wire4, LocalTS: hostTS(a.inner4), RemoteTS: hostTS(b.inner4)}
	if err := a.b.InstallTrap(tr); err != nil {
		t.Fatal(err)
	}
	ping(t, a, a.inner4, b.inner4, 1, 0)
	e := a.waitEvent(t, "acquire", func(e dataplane.Event) bool { return e.Kind == dataplane.Acquire })
	if e.ReqID != reqid || e.Packet.Start != a.inner4 || e.Packet.End != b.inner4 || e.Packet.Protocol != 1 {
		t.Errorf("acquire event %+v", e)
	}
	if e.Packet.StartPort != 8<<8 {
		t.Errorf("acquire: ICMP type/code %#x, want echo request (0x0800)", e.Packet.StartPort)
	}
	sa, sb := installPair(t, a, b, gcm16, dataplane.Tunnel, false, false, reqid, InstallOptions{})
	pingBoth(t, a, b, false, 3)
	a.b.Remove(sa.InSPI)
	b.b.Remove(sb.InSPI)
	if out := a.ip(t, "xfrm", "policy"); !strings.Contains(out, "dir out") {
		t.Errorf("the trap's policy went with the SA:\n%s", out)
	}
	if err := a.b.RemoveTrap(reqid); err != nil {
		t.Fatal(err)
	}
	a.requireEmpty(t)
}

// TestExpire: packet lifetimes raise one SoftExpire, then one HardExpire,
// and the SA can still be removed after the kernel deleted its states.
func TestExpire(t *testing.T) {
	a, b := newSites(t)
	spiA, _ := a.b.AllocSPIFor(a.wire4, b.wire4, 5)
	spiB, _ := b.b.AllocSPIFor(b.wire4, a.wire4, 5)
	sa, sb := newPair(t, gcm16, dataplane.Tunnel, netip.AddrPortFrom(a.wire4, 0), netip.AddrPortFrom(b.wire4, 0),
		hostTS(a.inner4), hostTS(b.inner4), 5, spiA, spiB)
	sa.SoftPackets, sa.HardPackets = 3, 6
	if err := a.b.Install(sa, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.b.Install(sb, 0); err != nil {
		t.Fatal(err)
	}
	// Requests 1-6 use the outbound state; at the 4th it passes the soft
	// limit, and the 7th finds it at the hard one and expires it (the
	// packet is dropped). Replies 1-6 stay within the inbound state's
	// limits. No 8th packet: it would find no SA and raise an ACQUIRE,
	// whose larval state the kernel keeps for xfrm_acq_expires.
	ping(t, a, a.inner4, b.inner4, 7, 20*time.Millisecond)
	a.waitEvent(t, "soft expire", func(e dataplane.Event) bool {
		return e.Kind == dataplane.SoftExpire && e.InSPI == sa.InSPI && e.ReqID == 5
	})
	a.waitEvent(t, "hard expire", func(e dataplane.Event) bool {
		return e.Kind == dataplane.HardExpire && e.InSPI == sa.InSPI && e.ReqID == 5
	})
	a.eventsMu.Lock()
	var soft, hard int
	for _, e := range a.events {
		switch e.Kind {
		case dataplane.SoftExpire:
			soft++
		case dataplane.HardExpire:
			hard++
		}
	}
	a.eventsMu.Unlock()
	if soft != 1 || hard != 1 {
		t.Errorf("%d soft and %d hard expire events, want one each", soft, hard)
	}
	// The outbound state is gone: its 6 packets come from the EXPIRE
	// message, and the 7th, which found the state expired, is a drop.
	check := func(when string) {
		tot := a.b.Totals()
		if tot.PacketsOut < 6 || tot.PacketsIn < 6 || tot.Drops[dataplane.DropExpired] < 1 {
			t.Errorf("totals %s: %+v, want at least 6 packets each way and an expired drop", when, tot)
		}
	}
	check("after the hard expiry")
	if err := a.b.Remove(sa.InSPI); err != nil {
		t.Fatal(err)
	}
	check("after Remove")
	if err := b.b.Remove(sb.InSPI); err != nil {
		t.Fatal(err)
	}
}

// TestAllocSPI: SPIs from AllocSPI are above 255 and distinct; a reserved
// SPI can be removed; one reserved at the unspecified address still
// installs (the reservation goes).
func TestAllocSPI(t *testing.T) {
	a, b := newSites(t)
	seen := make(map[uint32]bool)
	for range 20 {
		spi, err := a.b.AllocSPI()
		if err != nil {
			t.Fatal(err)
		}
		if spi < 256 || seen[spi] {
			t.Fatalf("AllocSPI returned %08x (seen: %v)", spi, seen[spi])
		}
		seen[spi] = true
	}
	for spi := range seen {
		if err := a.b.Remove(spi); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.b.Remove(0x4242); !errors.Is(err, dataplane.ErrUnknownSPI) {
		t.Errorf("Remove of an unknown SPI: %v", err)
	}
	a.requireEmpty(t)

	spiA, err := a.b.AllocSPI()
	if err != nil {
		t.Fatal(err)
	}
	spiB, _ := b.b.AllocSPI()
	sa, sb := newPair(t, gcm16, dataplane.Tunnel, netip.AddrPortFrom(a.wire4, 0), netip.AddrPortFrom(b.wire4, 0),
		hostTS(a.inner4), hostTS(b.inner4), 1, spiA, spiB)
	if err := a.b.Install(sa, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.b.Install(sb, 0); err != nil {
		t.Fatal(err)
	}
	pingBoth(t, a, b, false, 2)
	if err := a.b.Install(sa, 0); !errors.Is(err, dataplane.ErrSPIInUse) {
		t.Errorf("second Install of one SPI: %v", err)
	}
	out := a.ip(t, "xfrm", "state")
	if strings.Count(out, "proto esp spi") != 2 {
		t.Errorf("want the two states of the pair and no reservation:\n%s", out)
	}
}

// TestStaleCleanup: a backend that dies without Close leaves its states and
// policies; the next New in the namespace removes them and leaves other
// programs' alone.
func TestStaleCleanup(t *testing.T) {
	a, b := newSites(t)
	// A foreign state and policy (request ID outside Cygnet's range).
	a.ip(t, "xfrm", "state", "add", "src", "192.0.2.9", "dst", "192.0.2.1", "proto", "esp", "spi", "0x999",
		"reqid", "5", "mode", "tunnel", "aead", "rfc4106(gcm(aes))", "0x"+strings.Repeat("11", 20), "128")
	a.ip(t, "xfrm", "policy", "add", "src", "10.9.0.0/16", "dst", "10.1.0.0/16", "dir", "in",
		"tmpl", "src", "192.0.2.9", "dst", "192.0.2.1", "proto", "esp", "reqid", "5", "mode", "tunnel")
	installPair(t, a, b, gcm16, dataplane.Tunnel, false, false, 21, InstallOptions{})
	if err := a.b.InstallTrap(Trap{ReqID: 22, Mode: dataplane.Transport, LocalTS: hostTS(a.inner6), RemoteTS: hostTS(b.inner6)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.b.AllocSPI(); err != nil {
		t.Fatal(err)
	}
	if err := a.b.BypassPorts(500, 4500); err != nil {
		t.Fatal(err)
	}
	if out := a.ip(t, "route", "show", "table", fmt.Sprint(DefaultRouteTable)); !strings.Contains(out, b.inner4.String()) {
		t.Fatalf("no tunnel route before the crash:\n%s", out)
	}
	// Crash: the sockets close, nothing is removed.
	crashed := a.b
	crashed.mu.Lock()
	crashed.closed = true
	crashed.mu.Unlock()
	crashed.mon.close()
	<-crashed.monDone
	crashed.nl.close()
	if out := a.ip(t, "xfrm", "state"); strings.Count(out, "proto esp spi") != 4 {
		t.Fatalf("before the restart:\n%s", out)
	}

	a.open(t) // New removes the leftovers
	state, policy := a.ip(t, "xfrm", "state"), a.ip(t, "xfrm", "policy")
	if strings.Count(state, "proto esp spi") != 1 || !strings.Contains(state, "reqid 5 ") {
		t.Errorf("after the restart, want only the foreign state:\n%s", state)
	}
	if strings.Count(policy, "dir ") != 1 || !strings.Contains(policy, "10.9.0.0/16") {
		t.Errorf("after the restart, want only the foreign policy:\n%s", policy)
	}
	a.requireNoRoutes(t)
	if out := a.ip(t, "rule"); strings.Count(out, fmt.Sprintf("lookup %d", DefaultRouteTable)) != 1 {
		t.Errorf("after the restart, want the new backend's rule only:\n%s", out)
	}
	a.ip(t, "xfrm", "state", "flush")
	a.ip(t, "xfrm", "policy", "flush")
}

// TestInvalidSA: SAs no kernel could take are refused with ErrInvalidSA
// before anything is installed.
func TestInvalidSA(t *testing.T) {
	a, b := newSites(t)
	base := func() *dataplane.SA {
		sa, _ := newPair(t, gcm16, dataplane.Tunnel, netip.AddrPortFrom(a.wire4, 0), netip.AddrPortFrom(b.wire4, 0),
			hostTS(a.inner4), hostTS(b.inner4), 1, 0x1000, 0x2000)
		return sa
	}
	for _, c := range []struct {
		name string
		mod  func(*dataplane.SA)
	}{
		{"short key", func(sa *dataplane.SA) { sa.InEncrKey = sa.InEncrKey[:16] }},
		{"reserved SPI", func(sa *dataplane.SA) { sa.InSPI = 255 }},
		{"3DES", func(sa *dataplane.SA) { sa.Encr = wire.ENCR_3DES }},
		{"AEAD with integrity", func(sa *dataplane.SA) { sa.Integ = wire.AUTH_HMAC_SHA2_256_128 }},
		{"mixed families", func(sa *dataplane.SA) { sa.Remote = netip.AddrPortFrom(b.wire6, 0) }},
		{"no TS pair", func(sa *dataplane.SA) { sa.RemoteTS = hostTS(b.inner6) }},
		{"huge window", func(sa *dataplane.SA) { sa.ReplayWindow = 1 << 20 }},
		{"reqid out of range", func(sa *dataplane.SA) { sa.ReqID = ReqIDSpan }},
		{"encap without ports", func(sa *dataplane.SA) { sa.Encap = true }},
	} {
		sa := base()
		c.mod(sa)
		if err := a.b.Install(sa, 0); !errors.Is(err, dataplane.ErrInvalidSA) {
			t.Errorf("%s: Install: %v, want ErrInvalidSA", c.name, err)
		}
	}
	a.requireEmpty(t)
}

// TestClosed: after Close every method fails with ErrClosed.
func TestClosed(t *testing.T) {
	a, _ := newSites(t)
	be, err := New(Config{Netns: a.path(), ReqIDBase: DefaultReqIDBase + ReqIDSpan})
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := be.AllocSPI(); !errors.Is(err, dataplane.ErrClosed) {
		t.Errorf("AllocSPI after Close: %v", err)
	}
	if err := be.Remove(0x1234); !errors.Is(err, dataplane.ErrClosed) {
		t.Errorf("Remove after Close: %v", err)
	}
	if err := be.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestTrapInterface: dataplane.Backend's Trap (no outer addresses: a
// transport-mode template) raises an Acquire with the packet's selector,
// rate-limited; a tunnel-mode SA of the same reqid then carries the
// traffic, and after its removal the trap is still there; trapping again
// replaces the selectors; Untrap of a missing trap is ErrUnknownTrap.
func TestTrapInterface(t *testing.T) {
	a, b := newSites(t)
	const reqid = 12
	// The ACQUIRE leaves a larval state in the kernel (spi 0, transport
	// mode, the packet's addresses) that the tunnel-mode SA below does not
	// complete: it goes after net.core.xfrm_acq_expires, here 2 s.
	if err := writeSysctl(a.path(), "net/core/xfrm_acq_expires", "2"); err != nil {
		t.Fatal(err)
	}
	// dataplane.Backend's trap methods, without outer addresses.
	var be dataplane.Backend = a.b
	if err := be.Trap(dataplane.Trap{ReqID: reqid, LocalTS: hostTS(a.inner6), RemoteTS: hostTS(b.inner6)}); err != nil {
		t.Fatal(err)
	}
	ping(t, a, a.inner6, b.inner6, 1, 0)
	e := a.waitEvent(t, "acquire", func(e dataplane.Event) bool { return e.Kind == dataplane.Acquire && e.ReqID == reqid })
	if e.Packet.Start != a.inner6 || e.Packet.End != b.inner6 || e.Packet.Protocol != 58 {
		t.Errorf("acquire event %+v", e)
	}
	sa, sb := installPair(t, a, b, chacha, dataplane.Tunnel, true, false, reqid, InstallOptions{})
	pingBoth(t, a, b, true, 3)
	if err := a.b.Remove(sa.InSPI); err != nil {
		t.Fatal(err)
	}
	b.b.Remove(sb.InSPI)
	if out := a.ip(t, "xfrm", "policy"); !strings.Contains(out, "dir out") {
		t.Errorf("the trap went with the SA:\n%s", out)
	}
	// Replace the selectors: the old policy goes, the new one is there.
	if err := be.Trap(dataplane.Trap{ReqID: reqid, LocalTS: hostTS(a.inner4), RemoteTS: hostTS(b.inner4)}); err != nil {
		t.Fatal(err)
	}
	out := a.ip(t, "xfrm", "policy")
	if strings.Contains(out, "fd01::1") || !strings.Contains(out, "10.1.0.1") {
		t.Errorf("after re-trapping:\n%s", out)
	}
	if err := be.Untrap(reqid); err != nil {
		t.Fatal(err)
	}
	if err := be.Untrap(reqid); !errors.Is(err, dataplane.ErrUnknownTrap) {
		t.Errorf("Untrap of a removed trap: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if strings.TrimSpace(a.ip(t, "xfrm", "state")) == "" {
			break
		}
	}
	a.requireEmpty(t)
}

// TestDeferOutbound: dataplane.SA.DeferOutbound keeps outbound traffic on
// the old SA until ActivateOutbound.
func TestDeferOutbound(t *testing.T) {
	a, b := newSites(t)
	oldA, oldB := installPair(t, a, b, gcm16, dataplane.Tunnel, false, false, 4, InstallOptions{})
	spiA, _ := a.b.AllocSPIFor(oldA.Local.Addr(), oldA.Remote.Addr(), 4)
	spiB, _ := b.b.AllocSPIFor(oldB.Local.Addr(), oldB.Remote.Addr(), 4)
	newA, newB := newPair(t, gcm16, dataplane.Tunnel, oldA.Local, oldA.Remote, oldA.LocalTS, oldA.RemoteTS, 4, spiA, spiB)
	newA.DeferOutbound, newB.DeferOutbound = true, true
	if err := a.b.Install(newA, oldA.InSPI); err != nil {
		t.Fatal(err)
	}
	if err := b.b.Install(newB, oldB.InSPI); err != nil {
		t.Fatal(err)
	}
	pingBoth(t, a, b, false, 2)
	if c, _ := a.b.Counters(newA.InSPI); c.PacketsOut != 0 || c.PacketsIn != 0 {
		t.Errorf("deferred SA carried traffic before ActivateOutbound: %+v", c)
	}
	for _, x := range []struct {
		s   *site
		spi uint32
	}{{b, newB.InSPI}, {a, newA.InSPI}} {
		if err := x.s.b.ActivateOutbound(x.spi); err != nil {
			t.Fatal(err)
		}
		if err := x.s.b.ActivateOutbound(x.spi); err != nil {
			t.Errorf("second ActivateOutbound: %v", err)
		}
	}
	pingBoth(t, a, b, false, 2)
	if c, _ := a.b.Counters(newA.InSPI); c.PacketsOut != 4 || c.PacketsIn != 4 {
		t.Errorf("activated SA: %+v", c)
	}
	if err := a.b.ActivateOutbound(0x4242); !errors.Is(err, dataplane.ErrUnknownSPI) {
		t.Errorf("ActivateOutbound of an unknown SPI: %v", err)
	}
	// The kernel sends on the newest outbound state: the old pair cannot
	// take the traffic back, and says so, until the new one goes.
	if err := a.b.ActivateOutbound(oldA.InSPI); !errors.Is(err, dataplane.ErrInvalidSA) {
		t.Errorf("ActivateOutbound of the older pair: %v", err)
	}
	if err := a.b.Remove(newA.InSPI); err != nil {
		t.Fatal(err)
	}
	if err := a.b.ActivateOutbound(oldA.InSPI); err != nil {
		t.Errorf("ActivateOutbound of the only pair: %v", err)
	}
}

// TestRoutes: without routes of its own to the peer's inner addresses, a
// host reaches them through the routes the backend adds for tunnels (table
// DefaultRouteTable, with the local inner address as source, IPv6 inside
// IPv4 included), and for traps, whose first packet must reach the policy.
// Transport mode and if_id get none; the routes go with their SAs.
func TestRoutes(t *testing.T) {
	a, b := newSites(t)
	for _, p := range [][2]*site{{a, b}, {b, a}} {
		s, peer := p[0], p[1]
		s.ip(t, "route", "del", peer.inner4.String()+"/32")
		s.ip(t, "-6", "route", "del", peer.inner6.String()+"/128")
	}
	table := func(s *site, fam string) string {
		return s.ip(t, fam, "route", "show", "table", fmt.Sprint(DefaultRouteTable))
	}
	const reqid = 21
	var sas [2]*dataplane.SA
	spi := [2]uint32{}
	for i, s := range []*site{a, b} {
		var err error
		if spi[i], err = s.b.AllocSPIFor(s.wire4, []*site{b, a}[i].wire4, reqid); err != nil {
			t.Fatal(err)
		}
	}
	both := func(s *site) []dataplane.Selector { return append(hostTS(s.inner4), hostTS(s.inner6)...) }
	sas[0], sas[1] = newPair(t, gcm16, dataplane.Tunnel, netip.AddrPortFrom(a.wire4, 0), netip.AddrPortFrom(b.wire4, 0),
		both(a), both(b), reqid, spi[0], spi[1])
	for i, s := range []*site{a, b} {
		if err := s.b.Install(sas[i], 0); err != nil {
			t.Fatal(err)
		}
	}
	want4 := fmt.Sprintf("%s via %s dev %s proto 199 src %s", b.inner4, b.wire4, a.dev, a.inner4)
	want6 := fmt.Sprintf("%s dev %s proto 199 src %s", b.inner6, a.dev, a.inner6)
	if got := table(a, "-4"); !strings.Contains(got, want4) {
		t.Errorf("IPv4 routes: %q, want %q", got, want4)
	}
	if got := table(a, "-6"); !strings.Contains(got, want6) {
		t.Errorf("IPv6 routes: %q, want %q", got, want6)
	}
	pingBoth(t, a, b, false, 3)
	pingBoth(t, a, b, true, 3)
	for i, s := range []*site{a, b} {
		if err := s.b.Remove(sas[i].InSPI); err != nil {
			t.Fatal(err)
		}
		s.requireNoRoutes(t)
	}

	// A trap's route takes the first packet to the trap policy.
	tr := Trap{ReqID: reqid, Name: "trap", Mode: dataplane.Tunnel, Local: a.wire4, Remote: b.wire4,
		LocalTS: hostTS(a.inner4), RemoteTS: hostTS(b.inner4)}
	if err := a.b.InstallTrap(tr); err != nil {
		t.Fatal(err)
	}
	if got := table(a, "-4"); !strings.Contains(got, want4) {
		t.Errorf("trap route: %q, want %q", got, want4)
	}
	ping(t, a, a.inner4, b.inner4, 1, 0)
	a.waitEvent(t, "acquire", func(e dataplane.Event) bool { return e.Kind == dataplane.Acquire && e.ReqID == reqid })
	// The SA negotiated for it completes the kernel's acquire state (same
	// mode, addresses and reqid) and shares the route.
	sa, sb := installPair(t, a, b, gcm16, dataplane.Tunnel, false, false, reqid, InstallOptions{})
	pingBoth(t, a, b, false, 3)
	if err := a.b.RemoveTrap(reqid); err != nil {
		t.Fatal(err)
	}
	pingBoth(t, a, b, false, 1)
	a.b.Remove(sa.InSPI)
	b.b.Remove(sb.InSPI)
	a.requireEmpty(t)

	// Transport mode: no routes.
	installPair(t, a, b, gcm16, dataplane.Transport, false, false, reqid+1, InstallOptions{})
	a.requireNoRoutes(t)
}

// TestBypassPorts: with a transport-mode SA between two hosts (any protocol),
// UDP from and to a bypassed port passes in the clear, on sockets without
// per-socket policies; other UDP goes into the SA.
func TestBypassPorts(t *testing.T) {
	a, b := newSites(t)
	for _, s := range []*site{a, b} {
		if err := s.b.BypassPorts(5000); err != nil {
			t.Fatal(err)
		}
		if err := s.b.BypassPorts(5000); err != nil {
			t.Fatalf("again: %v", err)
		}
	}
	if out := a.ip(t, "xfrm", "policy"); strings.Count(out, "proto 17 ") != 4 {
		t.Errorf("bypass policies:\n%s", out)
	}
	installPair(t, a, b, gcm16, dataplane.Transport, false, false, 31, InstallOptions{})
	udp := func(s *site, port int) int {
		fd := -1
		if err := inNetns(s.path(), func() (err error) {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: s.inner4.As4(), Port: port}); err != nil {
			t.Fatal(err)
		}
		tv := unix.NsecToTimeval(int64(2 * time.Second))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		return fd
	}
	capA := testbed.StartCapture(t, a.ns, a.dev)
	for _, port := range []int{5000, 5001} {
		fa, fb := udp(a, port), udp(b, port)
		if err := unix.Sendto(fa, []byte("hello"), 0, &unix.SockaddrInet4{Addr: b.inner4.As4(), Port: port}); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if n, _, err := unix.Recvfrom(fb, buf, 0); err != nil || string(buf[:n]) != "hello" {
			t.Errorf("port %d: received %q, %v", port, buf[:max(n, 0)], err)
		}
	}
	frames := capA.Frames()
	plain, esp := 0, 0
	for _, f := range frames {
		if !f.Outgoing {
			continue
		}
		switch f.Kind {
		case testbed.FrameESP:
			esp++
		case testbed.FrameOther:
			if f.Dst == b.inner4 {
				plain++ // the bypassed datagram
			}
		}
	}
	if plain != 1 || esp != 1 {
		t.Errorf("sent %d plaintext and %d ESP frames to %v, want one each", plain, esp, b.inner4)
	}
}
