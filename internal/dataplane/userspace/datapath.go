package userspace

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/esp"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// readTUN is the outbound stage: read a batch from TUN, match each packet
// against the SPD and seal it in place, then hand the batch to sendLoop.
// Sealing here, in one goroutine, keeps sequence numbers in TUN order; the
// sender works on the previous batch meanwhile.
func (b *Backend) readTUN() {
	defer b.wg.Done()
	defer close(b.sendQ)
	var last struct {
		f    flow
		spd  *spd
		pol  *policy
		fine bool
	}
	for {
		var bt *batch
		select {
		case bt = <-b.outPool:
		case <-b.closing:
			return
		}
		n, err := b.dev.Read(bt.bufs, bt.sizes, headroom)
		if err != nil {
			b.outPool <- bt
			if errors.Is(err, tun.ErrClosed) {
				return
			}
			select {
			case <-b.closing:
				return
			default:
			}
			b.log.Warn("userspace: TUN read failed", "err", err)
			continue
		}
		table := b.spd.Load()
		now := b.now().UnixNano()
		bt.pkts, bt.raw = bt.pkts[:0], bt.raw[:0]
		var touched *saPair
		for i := range n {
			buf := bt.bufs[i]
			pkt := buf[headroom : headroom+bt.sizes[i]]
			f, ok := parseFlow(pkt)
			if !ok {
				b.stats.malformedOut.Add(1)
				continue
			}
			// Consecutive packets of one flow (the common case in a
			// batch: a TCP burst) reuse the previous lookup.
			var pol *policy
			if last.fine && last.spd == table && last.f == f {
				pol = last.pol
			} else {
				pol = table.lookup(&f)
				last.f, last.spd, last.pol, last.fine = f, table, pol, true
			}
			if pol == nil {
				b.stats.noPolicyOut.Add(1)
				continue
			}
			if pol.trap != nil {
				b.stats.trapDrops.Add(1)
				b.acquire(pol.trap, &f)
				continue
			}
			p := pol.pair
			if p.dead.Load() {
				p.expiredOut.Add(1)
				continue
			}
			if touched != p {
				if touched != nil {
					touched.lastOut.Store(now)
					b.checkLimits(touched)
				}
				touched = p
			}
			sealed, ok := b.seal(p, buf, pkt)
			if !ok {
				continue
			}
			tp := transport.Packet{Local: p.local, Remote: p.remote, Data: sealed}
			if p.encap {
				bt.pkts = append(bt.pkts, tp)
			} else {
				bt.raw = append(bt.raw, tp)
			}
		}
		if touched != nil {
			touched.lastOut.Store(now)
			b.checkLimits(touched)
		}
		if len(bt.pkts) == 0 && len(bt.raw) == 0 {
			b.outPool <- bt
			continue
		}
		b.sendQ <- bt
	}
}

// seal protects pkt (which lies at buf[headroom:]) with p's outbound SA in
// place and returns the ESP packet, a slice of buf.
func (b *Backend) seal(p *saPair, buf, pkt []byte) ([]byte, bool) {
	payload, nh := pkt, uint8(0)
	if p.transportMode {
		_, pl, proto, err := esp.SplitTransport(pkt)
		if err != nil {
			b.stats.malformedOut.Add(1)
			return nil, false
		}
		payload, nh = pl, proto
	} else {
		var err error
		if nh, err = esp.TunnelNextHeader(pkt); err != nil {
			b.stats.malformedOut.Add(1)
			return nil, false
		}
	}
	start := len(buf) - cap(payload) // payload's offset in buf
	off := p.out.PayloadOffset()
	if start < off {
		b.stats.malformedOut.Add(1)
		return nil, false
	}
	dst := buf[start-off : start-off]
	sealed, err := p.out.Seal(dst, payload, nh)
	if err != nil {
		if errors.Is(err, esp.ErrSequenceExhausted) {
			b.hardExpire(p)
		}
		return nil, false
	}
	return sealed, true
}

// sendLoop is the last outbound stage: one batched send per batch.
func (b *Backend) sendLoop() {
	defer b.wg.Done()
	for bt := range b.sendQ {
		if len(bt.pkts) > 0 {
			if s := b.sender.Load(); s != nil {
				if err := s.s.SendESP(bt.pkts); err != nil {
					b.stats.sendErrors.Add(1)
				}
			} else {
				b.stats.sendErrors.Add(uint64(len(bt.pkts)))
			}
		}
		if len(bt.raw) > 0 {
			b.mu.Lock()
			raw := b.raw
			b.mu.Unlock()
			if raw == nil {
				b.stats.sendErrors.Add(uint64(len(bt.raw)))
			} else if failed := raw.send(bt.raw); failed > 0 {
				b.stats.sendErrors.Add(uint64(failed))
			}
		}
		b.outPool <- bt
	}
}

// HandleESP takes UDP-encapsulated ESP packets from the transport (it is
// the data plane's half of transport.Handler). The batch is valid only
// during the call: each packet is opened into a pooled buffer here, and the
// TUN writer takes the batch from there.
func (b *Backend) HandleESP(batch []transport.Packet) {
	b.handleESP(batch, true)
}

func (b *Backend) handleESP(pkts []transport.Packet, encap bool) {
	for len(pkts) > 0 {
		var bt *batch
		select {
		case bt = <-b.inPool:
		case <-b.closing:
			return
		}
		n := min(len(pkts), len(bt.bufs))
		b.openBatch(bt, pkts[:n], encap)
		pkts = pkts[n:]
		if len(bt.out) == 0 {
			b.inPool <- bt
			continue
		}
		select {
		case b.writeQ <- bt:
		case <-b.closing:
			return
		}
	}
}

func (b *Backend) openBatch(bt *batch, pkts []transport.Packet, encap bool) {
	bt.out = bt.out[:0]
	var touched *saPair
	now := b.now().UnixNano()
	for i := range pkts {
		data := pkts[i].Data
		if len(data) < 8 {
			b.stats.malformedIn.Add(1)
			continue
		}
		spi := binary.BigEndian.Uint32(data)
		v, ok := b.sad.Load(spi)
		if !ok {
			b.stats.noSAIn.Add(1)
			continue
		}
		p := v.(*saPair)
		if p.dead.Load() {
			p.expiredIn.Add(1)
			continue
		}
		// RFC 4301 5.2 / RFC 3948: the SA decides; a packet for an
		// encapsulated SA arriving as plain ESP (or the reverse) is not
		// its traffic.
		if p.encap != encap {
			p.malformedIn.Add(1)
			continue
		}
		buf := bt.bufs[len(bt.out)]
		var pkt []byte
		if p.transportMode {
			pkt = b.openTransport(p, buf, data, pkts[i].Remote.Addr(), pkts[i].Local.Addr())
		} else {
			pkt = b.openTunnel(p, buf, data)
		}
		if pkt == nil {
			continue
		}
		if !p.inboundAllowed(pkt) {
			p.policyDrops.Add(1)
			continue
		}
		if touched != p {
			if touched != nil {
				touched.lastIn.Store(now)
				b.checkLimits(touched)
			}
			touched = p
		}
		bt.out = append(bt.out, buf[:headroom+len(pkt)])
	}
	if touched != nil {
		touched.lastIn.Store(now)
		b.checkLimits(touched)
	}
}

// openTunnel opens a tunnel-mode ESP packet into buf[headroom:] and returns
// the inner packet without TFC padding (RFC 4303 2.7), or nil.
func (b *Backend) openTunnel(p *saPair, buf, data []byte) []byte {
	out, nh, err := p.in.Open(buf[headroom:headroom], data)
	if err != nil {
		return nil // counted by esp
	}
	var ipLen int
	switch {
	case nh == esp.ProtoIPv4 && len(out) >= 20 && out[0]>>4 == 4:
		ipLen = int(binary.BigEndian.Uint16(out[2:]))
	case nh == esp.ProtoIPv6 && len(out) >= 40 && out[0]>>4 == 6:
		ipLen = 40 + int(binary.BigEndian.Uint16(out[4:]))
	default:
		p.malformedIn.Add(1)
		return nil
	}
	if ipLen > len(out) || ipLen < 20 {
		p.malformedIn.Add(1)
		return nil
	}
	if &out[0] != &buf[headroom] {
		// Open grew the buffer (a packet larger than the pool's): copy
		// what fits, drop what does not.
		if headroom+ipLen > len(buf) {
			p.malformedIn.Add(1)
			return nil
		}
		copy(buf[headroom:], out[:ipLen])
	}
	return buf[headroom : headroom+ipLen]
}

// openTransport opens a transport-mode ESP packet and rebuilds the IP
// packet in front of its payload from the outer addresses (RFC 4303 3.1.1):
// src is the peer, dst us. With UDP encapsulation a NAT may have rewritten
// the addresses the TCP or UDP checksum covers, so it is recomputed
// (RFC 3948 3.1.2 leaves the receiver that choice).
func (b *Backend) openTransport(p *saPair, buf, data []byte, src, dst netip.Addr) []byte {
	hl := 20
	if src.Is6() && !src.Is4In6() {
		hl = 40
	}
	start := headroom + hl
	out, nh, err := p.in.Open(buf[start:start], data)
	if err != nil {
		return nil
	}
	if len(out) > 0 && &out[0] != &buf[start] {
		if start+len(out) > len(buf) {
			p.malformedIn.Add(1)
			return nil
		}
		copy(buf[start:], out)
	}
	pkt := buf[headroom : start+len(out)]
	h := pkt[:hl]
	clear(h)
	if hl == 20 {
		h[0] = 0x45
		h[8] = 64
		s, d := src.Unmap().As4(), dst.Unmap().As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
	} else {
		h[0] = 0x60
		h[7] = 64
		s, d := src.As16(), dst.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
	}
	if err := esp.FixTransportHeader(h, nh, len(out)); err != nil {
		p.malformedIn.Add(1)
		return nil
	}
	if p.encap {
		fixL4Checksum(pkt, hl, nh)
	}
	return pkt
}

// fixL4Checksum recomputes a TCP or UDP checksum of a rebuilt transport-mode
// packet.
func fixL4Checksum(pkt []byte, hl int, proto uint8) {
	l4 := pkt[hl:]
	var field int
	switch {
	case proto == 6 && len(l4) >= 20:
		field = 16
	case proto == 17 && len(l4) >= 8:
		field = 6
		if hl == 20 && binary.BigEndian.Uint16(l4[6:]) == 0 {
			return // IPv4 UDP without a checksum stays so
		}
	default:
		return
	}
	var ph uint64
	if hl == 20 {
		ph = tun.PseudoHeaderSum(pkt[12:16], pkt[16:20], proto, len(l4))
	} else {
		ph = tun.PseudoHeaderSum(pkt[8:24], pkt[24:40], proto, len(l4))
	}
	l4[field], l4[field+1] = 0, 0
	c := tun.Checksum(l4, ph)
	if proto == 17 && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[field:], c)
}

// writeTUN is the last inbound stage.
func (b *Backend) writeTUN() {
	defer b.wg.Done()
	for {
		var bt *batch
		select {
		case bt = <-b.writeQ:
		case <-b.closing:
			return
		}
		if _, err := b.dev.Write(bt.out, headroom); err != nil {
			b.stats.tunErrors.Add(1)
			if errors.Is(err, tun.ErrClosed) {
				return
			}
		}
		b.inPool <- bt
	}
}

// checkLimits raises SoftExpire and HardExpire once each when p reaches its
// lifetimes: bytes and packets in either direction, and the sequence number
// space (RFC 4303 3.3.3: rekey before it cycles; stop when it is used up).
func (b *Backend) checkLimits(p *saPair) {
	sa := p.sa
	if p.hardSent.Load() {
		return
	}
	oc := p.out.Counters()
	ic := p.in.Counters()
	bytes := max(oc.Bytes, ic.Bytes)
	pkts := max(oc.Packets, ic.Packets)
	if (sa.HardBytes != 0 && bytes >= sa.HardBytes) || (sa.HardPackets != 0 && pkts >= sa.HardPackets) || oc.Exhausted != 0 {
		b.hardExpire(p)
		return
	}
	if p.softSent.Load() {
		return
	}
	if (sa.SoftBytes != 0 && bytes >= sa.SoftBytes) || (sa.SoftPackets != 0 && pkts >= sa.SoftPackets) || p.out.SeqSoftLimitReached() {
		if !p.softSent.Swap(true) {
			b.emit(dataplane.Event{Kind: dataplane.SoftExpire, InSPI: sa.InSPI, ReqID: sa.ReqID})
		}
	}
}

// hardExpire stops using p and tells the IKE side once.
func (b *Backend) hardExpire(p *saPair) {
	p.dead.Store(true)
	if !p.hardSent.Swap(true) {
		b.emit(dataplane.Event{Kind: dataplane.HardExpire, InSPI: p.sa.InSPI, ReqID: p.sa.ReqID})
	}
}

// acquire raises an Acquire for t, at most once per interval.
func (b *Backend) acquire(t *trap, f *flow) {
	now := b.now().UnixNano()
	last := t.lastAcquire.Load()
	if last != 0 && now-last < int64(b.acqIntv) {
		return
	}
	if !t.lastAcquire.CompareAndSwap(last, now) {
		return
	}
	sel := dataplane.Selector{Start: f.src, End: f.dst, Protocol: f.proto}
	if f.ports {
		sel.StartPort, sel.EndPort = f.sport, f.dport
	}
	b.emit(dataplane.Event{Kind: dataplane.Acquire, ReqID: t.reqid, Packet: sel})
}
