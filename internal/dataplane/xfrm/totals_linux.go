package xfrm

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

// Totals: what the runtime exports as metrics (dataplane.Totaler). The
// kernel keeps per-state counters, which go with the state; the backend
// reads a pair's states once more before it deletes them (and takes the
// final counters of a state the kernel deleted on a hard expiry from the
// EXPIRE message), so that the sum only grows. Packets that belonged to no
// SA are counted by the namespace's XFRM statistics (/proc/net/xfrm_stat,
// CONFIG_XFRM_STATISTICS), which the backend reads relative to what they
// were when it started.

// stateCounts is what one state counted.
type stateCounts struct {
	bytes, packets    uint64
	replay, integrity uint64
}

func countsOf(s *usersaInfo) stateCounts {
	return stateCounts{s.curBytes, s.curPackets, uint64(s.statsReplay), uint64(s.statsIntegF)}
}

// addIn and addOut add a state's counters to t as inbound or outbound.
func (c stateCounts) addIn(t *dataplane.Totals) {
	t.BytesIn += c.bytes
	t.PacketsIn += c.packets
	t.Drops[dataplane.DropReplay] += c.replay
	t.Drops[dataplane.DropIntegrity] += c.integrity
}

func (c stateCounts) addOut(t *dataplane.Totals) {
	t.BytesOut += c.bytes
	t.PacketsOut += c.packets
}

// retire adds the final counters of p's live states to b.retired before
// they are deleted. Called with b.mu held.
func (b *Backend) retire(p *pair) {
	sa := p.sa
	if p.inGone {
		p.finalIn.addIn(&b.retired)
	} else if s, err := b.getState(sa.Local.Addr(), sa.InSPI); err == nil {
		countsOf(&s.usersaInfo).addIn(&b.retired)
	}
	if !p.outDone {
		return
	}
	if p.outGone {
		p.finalOut.addOut(&b.retired)
	} else if s, err := b.getState(sa.Remote.Addr(), sa.OutSPI); err == nil {
		countsOf(&s.usersaInfo).addOut(&b.retired)
	}
}

// Totals implements dataplane.Totaler: the counters of every SA pair the
// backend has held (one dump of the SAD for the live ones), and the
// namespace's XFRM statistics since New for packets that had no SA:
// inbound ESP with an unknown SPI (DropNoSA), inbound packets that a policy
// wanted protected otherwise (DropPolicy), outbound packets held for an
// ACQUIRE (DropTrap) or blocked by a policy (DropNoPolicy), and transform
// errors (DropMalformed, DropExpired, DropError). Those statistics are the
// namespace's: they include other daemons' SAs in the same namespace.
func (b *Backend) Totals() dataplane.Totals {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.retired
	if b.closed {
		return t
	}
	m := newMessage(msgGetSA, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 0)
	err := b.nl.do("dump states", m, func(r nlmsg) error {
		if r.typ != msgNewSA {
			return nil
		}
		s, err := parseState(r.data)
		if err != nil || s.proto != protoESP {
			return err
		}
		if _, ours := b.ours(s.reqid); !ours {
			return nil
		}
		dst := s.dst()
		if p, ok := b.pairs[s.spi]; ok && p.sa.Local.Addr() == dst {
			countsOf(&s.usersaInfo).addIn(&t)
		} else if _, ok := b.outbound[stateKey{dst, s.spi}]; ok {
			countsOf(&s.usersaInfo).addOut(&t)
		}
		return nil
	})
	if err != nil {
		b.log.Warn("xfrm: reading counters for totals", "err", err)
	}
	for _, p := range b.pairs {
		// States the kernel deleted on a hard expiry are not in the dump.
		if p.inGone {
			p.finalIn.addIn(&t)
		}
		if p.outGone {
			p.finalOut.addOut(&t)
		}
	}
	if stats, err := b.stats.read(); err == nil {
		for name, reason := range statDrops {
			if v, base := stats[name], b.statsBase[name]; v > base {
				t.Drops[reason] += v - base
			}
		}
	}
	return t
}

// statDrops maps the counters of /proc/net/xfrm_stat (the kernel's
// Documentation/networking/xfrm_proc.rst) that concern packets without a
// state of their own to drop reasons. The per-state ones (sequence and
// integrity errors) come from the states.
var statDrops = map[string]dataplane.DropReason{
	"XfrmInError":           dataplane.DropMalformed,
	"XfrmInBufferError":     dataplane.DropError,
	"XfrmInHdrError":        dataplane.DropMalformed,
	"XfrmInNoStates":        dataplane.DropNoSA,
	"XfrmInStateMismatch":   dataplane.DropPolicy,
	"XfrmInStateExpired":    dataplane.DropExpired,
	"XfrmInNoPols":          dataplane.DropPolicy,
	"XfrmInPolBlock":        dataplane.DropPolicy,
	"XfrmInTmplMismatch":    dataplane.DropPolicy,
	"XfrmOutError":          dataplane.DropError,
	"XfrmOutBundleGenError": dataplane.DropError,
	"XfrmOutNoStates":       dataplane.DropTrap,
	"XfrmOutStateExpired":   dataplane.DropExpired,
	"XfrmOutPolBlock":       dataplane.DropNoPolicy,
	"XfrmOutPolError":       dataplane.DropError,
}

// statFile is the namespace's /proc/net/xfrm_stat, opened inside it (the
// open file keeps reading that namespace's counters).
type statFile struct{ f *os.File }

func openStats(netns string) (statFile, error) {
	var s statFile
	err := inNetns(netns, func() error {
		f, err := os.Open("/proc/thread-self/net/xfrm_stat")
		s.f = f
		return err
	})
	return s, err
}

func (s statFile) read() (map[string]uint64, error) {
	if s.f == nil {
		return nil, os.ErrNotExist
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(s.f)
	if err != nil {
		return nil, err
	}
	return parseXfrmStat(b)
}

func (s statFile) close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// parseXfrmStat reads lines of "Name<spaces>value".
func parseXfrmStat(b []byte) (map[string]uint64, error) {
	m := make(map[string]uint64)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) != 2 {
			continue
		}
		var v uint64
		ok := len(f[1]) > 0 && len(f[1]) <= 20
		for _, c := range f[1] {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			v = v*10 + uint64(c-'0')
		}
		if ok {
			m[string(f[0])] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errors.New("xfrm: xfrm_stat: no counters")
	}
	return m, nil
}
