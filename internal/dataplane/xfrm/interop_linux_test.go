package xfrm

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/esp"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// TestUserspaceInterop: the kernel's ESP (this backend, in namespace a)
// against Cygnet's userspace ESP (internal/esp, in namespace b) with the same
// keys. a pings b's inner address; b takes each ESP packet off a raw socket,
// opens it with esp.Inbound, answers the echo request and seals the reply
// with esp.Outbound. Every reply must reach a's ping: the two
// implementations agree byte for byte, both ways (RFC 4303 2, RFC 4106,
// RFC 7634, RFC 4868, ESN per RFC 4303 2.2.1).
func TestUserspaceInterop(t *testing.T) {
	a, b := newSites(t)
	cases := []struct {
		alg algCase
		v6  bool
	}{
		{gcm16, false},
		{gcm16, true},
		{algCase{name: "aes256gcm8", encr: wire.ENCR_AES_GCM_8, keyBits: 256}, false},
		{chacha, false},
		{chacha, true},
		{cbcSHA2, false},
		{cbcSHA2, true},
		{algCase{name: "aes256-sha512", encr: wire.ENCR_AES_CBC, keyBits: 256, integ: wire.AUTH_HMAC_SHA2_512_256}, false},
		{algCase{name: "aes128gcm16-esn", encr: wire.ENCR_AES_GCM_16, keyBits: 128, esn: true}, false},
		{algCase{name: "aes128-sha256-esn", encr: wire.ENCR_AES_CBC, keyBits: 128, integ: wire.AUTH_HMAC_SHA2_256_128, esn: true}, true},
	}
	for i, c := range cases {
		family := "ipv4"
		if c.v6 {
			family = "ipv6"
		}
		t.Run(family+"/"+c.alg.name, func(t *testing.T) {
			spiA, err := a.b.AllocSPIFor(a.wire(c.v6), b.wire(c.v6), 30)
			if err != nil {
				t.Fatal(err)
			}
			sa, sb := newPair(t, c.alg, dataplane.Tunnel, netip.AddrPortFrom(a.wire(c.v6), 0), netip.AddrPortFrom(b.wire(c.v6), 0),
				hostTS(a.inner(c.v6)), hostTS(b.inner(c.v6)), 30, spiA, uint32(0x5000+i))
			if err := a.b.Install(sa, 0); err != nil {
				t.Fatal(err)
			}
			defer a.b.Remove(sa.InSPI)
			cfg := func(spi uint32, k, ik []byte) esp.Config {
				return esp.Config{SPI: spi, Mode: esp.Tunnel, Encr: c.alg.encr, EncrKeyLen: c.alg.keyBits, EncrKey: k,
					Integ: c.alg.integ, IntegKey: ik, ESN: c.alg.esn, ReplayWindow: 64}
			}
			in, err := esp.NewInbound(cfg(sb.InSPI, sb.InEncrKey, sb.InIntegKey))
			if err != nil {
				t.Fatal(err)
			}
			out, err := esp.NewOutbound(cfg(sb.OutSPI, sb.OutEncrKey, sb.OutIntegKey))
			if err != nil {
				t.Fatal(err)
			}
			r := startResponder(t, b, c.v6, in, out, a.wire(c.v6))
			const n = 5
			sent, got := ping(t, a, a.inner(c.v6), b.inner(c.v6), n, 20*time.Millisecond)
			r.stop()
			if sent != n || got != n {
				t.Fatalf("sent %d, %d replies; userspace opened %d, failed %d (%v)", sent, got, r.opened.Load(), r.failed.Load(), r.lastErr())
			}
			if cnt, _ := a.b.Counters(sa.InSPI); cnt.PacketsIn < n || cnt.PacketsOut < n {
				t.Errorf("kernel counters %+v", cnt)
			}
		})
	}
}

// responder is userspace ESP on a raw IPPROTO_ESP socket: it answers ICMP
// echo requests that arrive inside ESP.
type responder struct {
	fd      int
	done    chan struct{}
	quit    chan struct{}
	opened  atomic.Int64
	failed  atomic.Int64
	mu      sync.Mutex
	errText string
}

func (r *responder) lastErr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errText
}

func (r *responder) fail(err error) {
	r.failed.Add(1)
	r.mu.Lock()
	r.errText = err.Error()
	r.mu.Unlock()
}

func (r *responder) stop() {
	close(r.quit)
	<-r.done
	unix.Close(r.fd)
}

func startResponder(t *testing.T, s *site, v6 bool, in *esp.Inbound, out *esp.Outbound, peer netip.Addr) *responder {
	t.Helper()
	family := unix.AF_INET
	var to unix.Sockaddr
	if v6 {
		family = unix.AF_INET6
		to = &unix.SockaddrInet6{Addr: peer.As16()}
	} else {
		to = &unix.SockaddrInet4{Addr: peer.As4()}
	}
	r := &responder{done: make(chan struct{}), quit: make(chan struct{})}
	err := inNetns(s.path(), func() error {
		var err error
		r.fd, err = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ESP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(r.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			select {
			case <-r.quit:
				return
			default:
			}
			n, _, err := unix.Recvfrom(r.fd, buf, 0)
			if err != nil {
				continue
			}
			pkt := buf[:n]
			if !v6 {
				// Raw IPv4 sockets deliver the IP header; IPv6 ones do not.
				pkt = pkt[int(pkt[0]&0xf)*4:]
			}
			inner, next, err := in.Open(nil, pkt)
			if err != nil {
				r.fail(fmt.Errorf("esp.Open: %w", err))
				continue
			}
			r.opened.Add(1)
			reply, err := echoReply(inner, next)
			if err != nil {
				r.fail(err)
				continue
			}
			sealed, err := out.Seal(nil, reply, next)
			if err != nil {
				r.fail(err)
				continue
			}
			if err := unix.Sendto(r.fd, sealed, 0, to); err != nil {
				r.fail(err)
			}
		}
	}()
	return r
}

// echoReply turns a tunnel-mode inner ICMP(v6) echo request into its reply.
func echoReply(p []byte, next uint8) ([]byte, error) {
	switch next {
	case esp.ProtoIPv4:
		if len(p) < 28 || p[9] != unix.IPPROTO_ICMP {
			return nil, fmt.Errorf("inner packet is not ICMP over IPv4")
		}
		l := int(binary.BigEndian.Uint16(p[2:]))
		hl := int(p[0]&0xf) * 4
		if l > len(p) || hl < 20 || hl+8 > l {
			return nil, fmt.Errorf("inner IPv4 length %d of %d", l, len(p))
		}
		p = append([]byte(nil), p[:l]...) // trims TFC padding
		if p[hl] != 8 {
			return nil, fmt.Errorf("inner ICMP type %d", p[hl])
		}
		var src [4]byte
		copy(src[:], p[12:16])
		copy(p[12:16], p[16:20])
		copy(p[16:20], src[:])
		p[8] = 64
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], inetChecksum(p[:hl]))
		icmp := p[hl:]
		icmp[0] = 0
		icmp[2], icmp[3] = 0, 0
		binary.BigEndian.PutUint16(icmp[2:], inetChecksum(icmp))
		return p, nil
	case esp.ProtoIPv6:
		if len(p) < 48 || p[6] != unix.IPPROTO_ICMPV6 {
			return nil, fmt.Errorf("inner packet is not ICMPv6 over IPv6")
		}
		l := 40 + int(binary.BigEndian.Uint16(p[4:]))
		if l > len(p) {
			return nil, fmt.Errorf("inner IPv6 length %d of %d", l, len(p))
		}
		p = append([]byte(nil), p[:l]...)
		if p[40] != 128 {
			return nil, fmt.Errorf("inner ICMPv6 type %d", p[40])
		}
		var src [16]byte
		copy(src[:], p[8:24])
		copy(p[8:24], p[24:40])
		copy(p[24:40], src[:])
		p[7] = 64
		icmp := p[40:]
		icmp[0] = 129
		icmp[2], icmp[3] = 0, 0
		// RFC 8200 8.1: the checksum covers a pseudo-header.
		pseudo := make([]byte, 0, 40+len(icmp))
		pseudo = append(pseudo, p[8:40]...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(icmp)))
		pseudo = append(pseudo, 0, 0, 0, unix.IPPROTO_ICMPV6)
		pseudo = append(pseudo, icmp...)
		binary.BigEndian.PutUint16(icmp[2:], inetChecksum(pseudo))
		return p, nil
	}
	return nil, fmt.Errorf("inner next header %d", next)
}
