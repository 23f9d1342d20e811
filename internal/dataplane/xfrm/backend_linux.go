package xfrm

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
)

// Backend is the XFRM data plane of one network namespace. Its methods are
// safe for concurrent use; netlink requests go out one at a time.
type Backend struct {
	cfg     Config
	log     *slog.Logger
	nl      *conn
	mon     *monitor
	monDone chan struct{}
	handler atomic.Pointer[func(dataplane.Event)]

	mu       sync.Mutex
	closed   bool
	pairs    map[uint32]*pair       // by inbound SPI
	outbound map[stateKey]uint32    // outbound state -> inbound SPI of its pair
	larval   map[uint32]larvalState // allocated SPIs not yet installed
	policies map[policyKey]*policy  // what Cygnet holds in the SPD
	traps    map[uint32]*trap       // by SA.ReqID
	// lastAcquire rate-limits Acquire events per request ID: the kernel
	// sends one per flow, the runtime negotiates once.
	lastAcquire map[uint32]time.Time
	// retired sums the counters of removed pairs (Totals); stats is the
	// namespace's xfrm_stat and statsBase what it said at New.
	retired   dataplane.Totals
	stats     statFile
	statsBase map[string]uint64
	// outSeq orders the outbound states by when they were added: the
	// kernel sends on the newest of a request ID and address pair.
	outSeq uint64
	// routes of tunnels (routes_linux.go); nil with Config.NoRoutes.
	routes *routeSet
	// bypass are BypassPorts' policies.
	bypass []policyKey
}

// AcquireInterval is the least time between two Acquire events of one
// request ID.
const AcquireInterval = time.Second

// stateKey names a state as the kernel does: destination, SPI (ESP only).
type stateKey struct {
	dst netip.Addr
	spi uint32
}

// pair is an installed SA pair.
type pair struct {
	sa      *dataplane.SA
	algs    kernelAlgs
	ifID    uint32
	outDone bool   // the outbound state and out policies are installed
	outSeq  uint64 // Backend.outSeq when the outbound state was added
	inGone  bool   // the kernel deleted a state on hard expiry
	outGone bool
	// What Counters saw last: the kernel reports when a state was first
	// used, not last, so a rise in packets between two reads dates it.
	pktsIn, pktsOut uint64
	lastIn, lastOut time.Time
	softSent        bool
	hardSent        bool
	// The counters of a state the kernel deleted on a hard expiry.
	finalIn, finalOut stateCounts
	in, out           []policyKey // the pair's policies: in and fwd; out
	routes            []routeKey
}

type larvalState struct {
	dst     netip.Addr
	expires time.Time
}

// policyKey is what makes a policy unique in the kernel's SPD.
type policyKey struct {
	dir  uint8
	sel  selector
	ifID uint32
}

// policy is one SPD entry and who uses it: SA pairs (by inbound SPI) and a
// trap of the same request ID. It goes when the last user does.
type policy struct {
	reqid    uint32 // SA.ReqID
	tmpl     userTmpl
	priority uint32
	pairs    map[uint32]bool
	trapped  bool
}

// trap is an installed trap: policies without SAs, whose first packet makes
// the kernel send an ACQUIRE (RFC 4301 5.1).
type trap struct {
	t      Trap
	keys   []policyKey
	routes []routeKey
}

// Trap describes the policies of a child that is negotiated on demand
// (`start_action: trap`): the first outbound packet within its selectors
// raises an Acquire event with its ReqID.
type Trap = dataplane.Trap

// InstallOptions are Install's choices as separate arguments, for tests
// and callers that build them apart from the SA (Install takes them from
// dataplane.SA.IfID and DeferOutbound).
type InstallOptions struct {
	// IfID binds the SA's states and policies to the XFRM interface with
	// this if_id (route-based mode): then only traffic routed through that
	// interface uses them. 0: policy-based mode.
	IfID uint32
	// InboundOnly installs the inbound state and the in and fwd policies
	// only; ActivateOutbound adds the outbound state and the out policies
	// later. A rekey responder uses it, so that the peer has the new inbound
	// SA before traffic arrives on it (make-before-break on both ends).
	InboundOnly bool
}

// New opens the XFRM data plane of the namespace cfg.Netns. It first removes
// the states and policies that a previous Cygnet left there (those with a
// request ID in Cygnet's range), then starts listening for ACQUIRE and
// EXPIRE messages.
func New(cfg Config) (*Backend, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	b := &Backend{
		cfg:      cfg,
		log:      cfg.Logger,
		pairs:    make(map[uint32]*pair),
		outbound: make(map[stateKey]uint32),
		larval:   make(map[uint32]larvalState),
		policies: make(map[policyKey]*policy),
		traps:    make(map[uint32]*trap),
		monDone:  make(chan struct{}),

		lastAcquire: make(map[uint32]time.Time),
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if b.nl, err = openConn(cfg.Netns); err != nil {
		return nil, err
	}
	if n, err := b.removeStale(); err != nil {
		b.nl.close()
		return nil, err
	} else if n > 0 {
		b.log.Info("xfrm: removed states and policies of a previous run", "count", n)
	}
	if cfg.AcqExpires > 0 {
		if err := writeSysctl(cfg.Netns, "net/core/xfrm_acq_expires", strconv.Itoa(cfg.AcqExpires)); err != nil {
			b.log.Warn("xfrm: cannot set net.core.xfrm_acq_expires", "err", err)
		}
	}
	if !cfg.NoRoutes {
		if b.routes, err = openRoutes(&b.cfg, b.log); err != nil {
			b.nl.close()
			return nil, err
		}
	}
	if b.mon, err = openMonitor(cfg.Netns); err != nil {
		b.nl.close()
		if b.routes != nil {
			b.routes.close()
		}
		return nil, err
	}
	if b.stats, err = openStats(cfg.Netns); err == nil {
		b.statsBase, err = b.stats.read()
	}
	if err != nil {
		// A kernel without CONFIG_XFRM_STATISTICS: Totals lacks the drops
		// of packets without an SA.
		b.log.Debug("xfrm: no XFRM statistics", "err", err)
	}
	go b.events()
	return b, nil
}

// kreqid is the kernel's request ID for an SA.ReqID.
func (b *Backend) kreqid(reqid uint32) uint32 { return b.cfg.ReqIDBase + reqid }

// ours reports whether a kernel request ID is in Cygnet's range and returns
// the SA.ReqID.
func (b *Backend) ours(kreqid uint32) (uint32, bool) {
	r := kreqid - b.cfg.ReqIDBase
	return r, kreqid >= b.cfg.ReqIDBase && r < ReqIDSpan
}

// AllocSPI implements dataplane.Backend. The kernel picks the SPI
// (XFRM_MSG_ALLOCSPI) and keeps a larval state for it until Install
// completes it or net.core.xfrm_acq_expires passes. Without the local
// address the reservation is made at the unspecified address: unique among
// Cygnet's SPIs; AllocSPIFor reserves it at the address the SA will use.
func (b *Backend) AllocSPI() (uint32, error) {
	return b.AllocSPIFor(netip.IPv4Unspecified(), netip.IPv4Unspecified(), 0)
}

// AllocSPIFor allocates an inbound SPI for an SA from remote to local with
// request ID reqid: the kernel's larval state is then the one Install
// completes, and the SPI is unique among all states for local.
func (b *Backend) AllocSPIFor(local, remote netip.Addr, reqid uint32) (uint32, error) {
	if !local.IsValid() || !remote.IsValid() || local.Is4() != remote.Is4() {
		return 0, fmt.Errorf("%w: SPI for %v <- %v", dataplane.ErrInvalidSA, local, remote)
	}
	if reqid >= ReqIDSpan {
		return 0, fmt.Errorf("%w: request ID %d is not below %d", dataplane.ErrInvalidSA, reqid, ReqIDSpan)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, dataplane.ErrClosed
	}
	b.expireLarval(time.Now())
	for range 16 {
		m := newMessage(msgAllocSPI, unix.NLM_F_REQUEST|unix.NLM_F_ACK, sizeUserSPIInfo)
		info := usersaInfo{
			daddr:  addr16(local),
			saddr:  addr16(remote),
			proto:  protoESP,
			family: familyOf(local),
			reqid:  b.kreqid(reqid),
			mode:   modeTunnel,
		}
		info.sel.family = info.family
		f := m.fixed()
		info.put(f)
		// RFC 4303 2.1: SPIs 1-255 are reserved by IANA; 0 is never sent.
		ne.PutUint32(f[sizeUsersaInfo:], 0x100)
		ne.PutUint32(f[sizeUsersaInfo+4:], 0xffffffff)
		var spi uint32
		err := b.nl.do("ALLOCSPI", m, func(r nlmsg) error {
			if r.typ != msgNewSA {
				return fmt.Errorf("xfrm: ALLOCSPI answered with message type %d", r.typ)
			}
			s, err := parseState(r.data)
			if err != nil {
				return err
			}
			spi = s.spi
			return nil
		})
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return 0, fmt.Errorf("%w: %w", dataplane.ErrNoFreeSPI, err)
			}
			return 0, err
		}
		if spi < 0x100 {
			return 0, fmt.Errorf("xfrm: ALLOCSPI returned the reserved SPI %d", spi)
		}
		_, installed := b.pairs[spi]
		_, reserved := b.larval[spi]
		if installed || reserved {
			// Unique at this address, but Cygnet's SPIs are unique per backend.
			b.delState(local, spi)
			continue
		}
		b.larval[spi] = larvalState{dst: local, expires: time.Now().Add(dataplane.LarvalTimeout)}
		return spi, nil
	}
	return 0, dataplane.ErrNoFreeSPI
}

// expireLarval forgets reservations older than dataplane.LarvalTimeout; the
// kernel removes its larval states on its own (xfrm_acq_expires).
func (b *Backend) expireLarval(now time.Time) {
	for spi, l := range b.larval {
		if now.After(l.expires) {
			b.delState(l.dst, spi)
			delete(b.larval, spi)
		}
	}
}

// Install implements dataplane.Backend in policy-based mode. With
// sa.DeferOutbound the outbound state waits for ActivateOutbound (the
// kernel would prefer a new outbound state over the old one from the moment
// it exists).
func (b *Backend) Install(sa *dataplane.SA, replaces uint32) error {
	if sa == nil {
		return fmt.Errorf("%w: nil", dataplane.ErrInvalidSA)
	}
	return b.InstallWith(sa, replaces, InstallOptions{IfID: sa.IfID, InboundOnly: sa.DeferOutbound})
}

// InstallWith installs an SA pair with options Install does not take. The
// order is the one make-before-break needs: inbound state, in and fwd
// policies, then (unless opts.InboundOnly) the outbound state and the out
// policies. With replaces != 0, the SA with that inbound SPI must be of the
// same request ID; it stays installed until Remove.
func (b *Backend) InstallWith(sa *dataplane.SA, replaces uint32, opts InstallOptions) (err error) {
	algs, err := b.checkSA(sa)
	if err != nil {
		return err
	}
	p := &pair{sa: sa, algs: algs, ifID: opts.IfID}
	// The out policies carry traffic Local -> Remote; in and fwd the reverse.
	tmplOut, tmplIn := b.templates(sa.Mode, sa.Local.Addr(), sa.Remote.Addr(), sa.ReqID)
	outSels, err := selectorPairs(sa.LocalTS, sa.RemoteTS)
	if err != nil {
		return err
	}
	inSels, err := selectorPairs(sa.RemoteTS, sa.LocalTS)
	if err != nil {
		return err
	}
	if len(outSels) == 0 || len(inSels) == 0 {
		return fmt.Errorf("%w: no pair of traffic selectors of one family in %v and %v", dataplane.ErrInvalidSA, sa.LocalTS, sa.RemoteTS)
	}
	for _, s := range inSels {
		p.in = append(p.in, policyKey{dir: dirIn, sel: s, ifID: opts.IfID})
		if sa.Mode == dataplane.Tunnel {
			// Packets the gateway forwards are checked against fwd policies.
			p.in = append(p.in, policyKey{dir: dirFwd, sel: s, ifID: opts.IfID})
		}
	}
	for _, s := range outSels {
		p.out = append(p.out, policyKey{dir: dirOut, sel: s, ifID: opts.IfID})
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	if _, ok := b.pairs[sa.InSPI]; ok {
		return fmt.Errorf("%w: %08x", dataplane.ErrSPIInUse, sa.InSPI)
	}
	if replaces != 0 {
		old, ok := b.pairs[replaces]
		if !ok {
			return fmt.Errorf("%w: %08x (the SA to replace)", dataplane.ErrUnknownSPI, replaces)
		}
		if old.sa.ReqID != sa.ReqID {
			return fmt.Errorf("%w: replacing reqid %d with reqid %d", dataplane.ErrInvalidSA, old.sa.ReqID, sa.ReqID)
		}
	}
	if err := b.checkPolicies(sa.ReqID, append(append([]policyKey(nil), p.in...), p.out...)); err != nil {
		return err
	}

	// Inbound state: complete the larval state if AllocSPIFor made it here.
	if err := b.addInbound(p); err != nil {
		return err
	}
	b.pairs[sa.InSPI] = p
	defer func() {
		if err != nil {
			// The caller keeps the keys of a failed Install (dataplane.SA).
			b.removePair(sa.InSPI, p, false)
		}
	}()
	if err := b.addPolicies(sa.InSPI, p.in, tmplIn, b.cfg.PriorityBase); err != nil {
		return err
	}
	if !opts.InboundOnly {
		if err := b.activate(sa.InSPI, p, tmplOut); err != nil {
			return err
		}
		clear(sa.OutEncrKey)
		clear(sa.OutIntegKey)
	}
	p.routes = b.addRoutes(sa.Name, sa.Mode, opts.IfID, sa.LocalTS, sa.RemoteTS, sa.Remote.Addr())
	// The kernel has the keys; Cygnet's copies go (DESIGN.md invariants).
	clear(sa.InEncrKey)
	clear(sa.InIntegKey)
	return nil
}

// ActivateOutbound implements dataplane.Backend: it completes an SA pair
// installed with DeferOutbound (InboundOnly) by adding its outbound state,
// which the kernel prefers over the older ones of the same request ID from
// then on (it bumps their generation, so cached routes switch at once).
// For a pair whose outbound state is installed it does nothing.
func (b *Backend) ActivateOutbound(inSPI uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	p, ok := b.pairs[inSPI]
	if !ok {
		return fmt.Errorf("%w: %08x", dataplane.ErrUnknownSPI, inSPI)
	}
	if p.outDone {
		// The kernel always sends on the newest valid outbound state of a
		// request ID and address pair, so an older pair cannot take the
		// traffic back while a newer one is installed (its keys are gone
		// from here, too: only the kernel has them). Say so rather than
		// pretend; removing the newer pair hands the traffic back.
		if q := b.newerOutbound(p); q != nil {
			return fmt.Errorf("%w: the outbound traffic of reqid %d is on the newer SA %08x; the kernel cannot switch back to %08x (remove the newer one)",
				dataplane.ErrInvalidSA, p.sa.ReqID, q.sa.InSPI, inSPI)
		}
		return nil
	}
	tmplOut, _ := b.templates(p.sa.Mode, p.sa.Local.Addr(), p.sa.Remote.Addr(), p.sa.ReqID)
	if err := b.activate(inSPI, p, tmplOut); err != nil {
		return err
	}
	clear(p.sa.OutEncrKey)
	clear(p.sa.OutIntegKey)
	return nil
}

func (b *Backend) activate(inSPI uint32, p *pair, tmplOut userTmpl) error {
	sa := p.sa
	m, err := b.stateMessage(msgNewSA, p, false)
	if err != nil {
		return err
	}
	err = b.nl.do("add outbound state", m, nil)
	m.wipe()
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%w: outbound SPI %08x to %v exists: %w", dataplane.ErrInvalidSA, sa.OutSPI, sa.Remote.Addr(), err)
		}
		return err
	}
	b.outbound[stateKey{sa.Remote.Addr(), sa.OutSPI}] = inSPI
	p.outDone = true
	b.outSeq++
	p.outSeq = b.outSeq
	if err := b.addPolicies(inSPI, p.out, tmplOut, b.cfg.PriorityBase); err != nil {
		b.releasePolicies(inSPI, p.out)
		b.delState(sa.Remote.Addr(), sa.OutSPI)
		delete(b.outbound, stateKey{sa.Remote.Addr(), sa.OutSPI})
		p.outDone = false
		return err
	}
	return nil
}

// newerOutbound returns a pair of p's request ID and addresses whose
// outbound state is newer than p's, or nil.
func (b *Backend) newerOutbound(p *pair) *pair {
	for _, q := range b.pairs {
		if q != p && q.outDone && !q.outGone && q.outSeq > p.outSeq && q.sa.ReqID == p.sa.ReqID &&
			q.sa.Local.Addr() == p.sa.Local.Addr() && q.sa.Remote.Addr() == p.sa.Remote.Addr() {
			return q
		}
	}
	return nil
}

// addInbound adds the inbound state, completing a larval one where there is.
func (b *Backend) addInbound(p *pair) error {
	sa := p.sa
	l, larval := b.larval[sa.InSPI]
	typ := uint16(msgNewSA)
	if larval && l.dst == sa.Local.Addr() {
		typ = msgUpdSA
	}
	m, err := b.stateMessage(typ, p, true)
	if err != nil {
		return err
	}
	defer m.wipe()
	err = b.nl.do("add inbound state", m, nil)
	if err != nil && typ == msgUpdSA && errors.Is(err, unix.ESRCH) {
		// The larval state expired (net.core.xfrm_acq_expires): add anew.
		ne.PutUint16(m.b[4:], msgNewSA)
		err = b.nl.do("add inbound state", m, nil)
	}
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%w: %08x at %v: %w", dataplane.ErrSPIInUse, sa.InSPI, sa.Local.Addr(), err)
		}
		return err
	}
	if larval {
		if l.dst != sa.Local.Addr() {
			b.delState(l.dst, sa.InSPI) // the reservation at the unspecified address
		}
		delete(b.larval, sa.InSPI)
	}
	return nil
}

// stateMessage builds the NEWSA/UPDSA request of one direction of p.
func (b *Backend) stateMessage(typ uint16, p *pair, inbound bool) (*message, error) {
	sa := p.sa
	src, dst, spi := sa.Local, sa.Remote, sa.OutSPI
	encrKey, integKey := sa.OutEncrKey, sa.OutIntegKey
	if inbound {
		src, dst, spi = sa.Remote, sa.Local, sa.InSPI
		encrKey, integKey = sa.InEncrKey, sa.InIntegKey
	}
	m := newMessage(typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, sizeUsersaInfo)
	info := usersaInfo{
		daddr:  addr16(dst.Addr()),
		saddr:  addr16(src.Addr()),
		spi:    spi,
		proto:  protoESP,
		family: familyOf(dst.Addr()),
		reqid:  b.kreqid(sa.ReqID),
		mode:   modeTunnel,
		lft:    infinite(),
	}
	if sa.Mode == dataplane.Transport {
		info.mode = modeTransport
	}
	// RFC 4301 4.4.2: the lifetimes are the SA's; the kernel sends a soft
	// EXPIRE when one is reached and deletes the state at the hard one.
	if sa.SoftBytes > 0 {
		info.lft.softBytes = sa.SoftBytes
	}
	if sa.HardBytes > 0 {
		info.lft.hardBytes = sa.HardBytes
	}
	if sa.SoftPackets > 0 {
		info.lft.softPackets = sa.SoftPackets
	}
	if sa.HardPackets > 0 {
		info.lft.hardPackets = sa.HardPackets
	}
	// The state's own selector stays a wildcard (the policies do the
	// matching). In tunnel mode it must be one of no family, or the kernel
	// gives it the outer family and IPv6 inside IPv4 finds no state:
	// XFRM_STATE_AF_UNSPEC keeps it so, as strongSwan sets it.
	info.sel.family = 0
	if sa.Mode == dataplane.Tunnel {
		info.flags |= stateFlagAFUnspec
	}
	window := 0
	if inbound {
		window = sa.ReplayWindow
	}
	if sa.ESN {
		// RFC 4303 2.2.1 / Appendix A: the kernel needs a window to infer
		// the high-order bits, at least 1 even outbound.
		info.flags |= stateFlagESN
		window = max(window, 32)
	}
	info.put(m.fixed())
	if err := p.algs.put(m, encrKey, integKey); err != nil {
		m.wipe()
		return nil, err
	}
	if window > 0 || sa.ESN {
		// struct xfrm_replay_state_esn with an empty bitmap of the window's
		// size: needed for ESN and for windows over 32 packets, and fine for
		// any (usersa_info's replay_window must then be 0).
		words := (window + 31) / 32
		v := m.attr(attrReplayESNVal, 24+4*words)
		ne.PutUint32(v[0:], uint32(words))
		ne.PutUint32(v[20:], uint32(window))
	}
	if sa.Encap {
		// RFC 3948: ESP in UDP between the NAT-T ports.
		v := m.attr(attrEncap, sizeEncapTmpl)
		ne.PutUint16(v[0:], encapESPInUDP)
		putBE16(v[2:], src.Port())
		putBE16(v[4:], dst.Port())
	}
	if p.ifID != 0 {
		m.u32(attrIfID, p.ifID)
	}
	return m, nil
}

func putBE16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

// templates returns the policy templates of both directions: they name the
// request ID (so a rekeyed SA of the same ID is used without touching the
// policies) and, in tunnel mode, the outer addresses.
func (b *Backend) templates(mode dataplane.Mode, local, remote netip.Addr, reqid uint32) (out, in userTmpl) {
	// A transport-mode template has the policy's family: 0 lets the kernel
	// fill it in (validate_tmpl).
	out = userTmpl{proto: protoESP, reqid: b.kreqid(reqid), mode: modeTransport}
	in = out
	if mode == dataplane.Tunnel {
		out.family, in.family = familyOf(local), familyOf(local)
		out.mode, in.mode = modeTunnel, modeTunnel
		out.saddr, out.daddr = addr16(local), addr16(remote)
		in.saddr, in.daddr = addr16(remote), addr16(local)
	}
	return out, in
}

// selectorPairs expands every pair of source and destination selectors.
func selectorPairs(src, dst []dataplane.Selector) ([]selector, error) {
	var out []selector
	seen := make(map[selector]bool)
	for _, s := range src {
		for _, d := range dst {
			sels, err := selectorsFor(s, d)
			if err != nil {
				return nil, err
			}
			for _, x := range sels {
				if !seen[x] {
					seen[x] = true
					out = append(out, x)
				}
			}
		}
	}
	if len(out) > 4*maxSelectorsPerPair {
		return nil, fmt.Errorf("%w: %d kernel policies for one SA", dataplane.ErrInvalidSA, len(out))
	}
	return out, nil
}

// checkPolicies refuses an SA whose policies another request ID holds: the
// kernel has one SPD entry per selector and direction.
func (b *Backend) checkPolicies(reqid uint32, keys []policyKey) error {
	for _, k := range keys {
		if pol, ok := b.policies[k]; ok && pol.reqid != reqid {
			return fmt.Errorf("%w: policy %s (%s) is held by reqid %d", dataplane.ErrInvalidSA,
				k.sel, dirName(k.dir), pol.reqid)
		}
	}
	return nil
}

func dirName(d uint8) string {
	switch d {
	case dirIn:
		return "in"
	case dirOut:
		return "out"
	case dirFwd:
		return "fwd"
	}
	return fmt.Sprintf("dir %d", d)
}

// addPolicies makes inSPI a user of the policies keys, adding those the SPD
// does not have yet. A trap's policy that an SA takes over gets the SA's
// priority band.
func (b *Backend) addPolicies(inSPI uint32, keys []policyKey, tmpl userTmpl, band uint32) error {
	for _, k := range keys {
		prio := band + k.sel.specificity()
		pol, ok := b.policies[k]
		if !ok {
			if err := b.putPolicy(msgNewPolicy, k, tmpl, prio); err != nil {
				return err
			}
			pol = &policy{reqid: b.reqidOf(tmpl), tmpl: tmpl, priority: prio, pairs: make(map[uint32]bool)}
			b.policies[k] = pol
		} else if pol.priority != prio || pol.tmpl != tmpl {
			if err := b.putPolicy(msgUpdPolicy, k, tmpl, prio); err != nil {
				return err
			}
			pol.tmpl, pol.priority = tmpl, prio
		}
		if inSPI != 0 {
			pol.pairs[inSPI] = true
		} else {
			pol.trapped = true
		}
	}
	return nil
}

func (b *Backend) reqidOf(t userTmpl) uint32 { r, _ := b.ours(t.reqid); return r }

// putPolicy sends NEWPOLICY or UPDPOLICY for one SPD entry.
func (b *Backend) putPolicy(typ uint16, k policyKey, tmpl userTmpl, priority uint32) error {
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_CREATE)
	if typ == msgNewPolicy {
		flags |= unix.NLM_F_EXCL
	}
	m := newMessage(typ, flags, sizeUserpolicyInfo)
	info := userpolicyInfo{sel: k.sel, priority: priority, dir: k.dir, action: actionAllow}
	info.put(m.fixed())
	tmpl.put(m.attr(attrTmpl, sizeUserTmpl))
	if k.ifID != 0 {
		m.u32(attrIfID, k.ifID)
	}
	err := b.nl.do("add policy "+dirName(k.dir)+" "+k.sel.String(), m, nil)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%w: another program installed policy %s (%s): %w", dataplane.ErrInvalidSA, k.sel, dirName(k.dir), err)
	}
	return err
}

// delPolicy deletes one SPD entry; a missing one is not an error.
func (b *Backend) delPolicy(k policyKey) error {
	m := newMessage(msgDelPolicy, unix.NLM_F_REQUEST|unix.NLM_F_ACK, sizeUserpolicyID)
	f := m.fixed()
	k.sel.put(f[:sizeSelector])
	f[sizeSelector+4] = k.dir
	if k.ifID != 0 {
		m.u32(attrIfID, k.ifID)
	}
	err := b.nl.do("delete policy "+dirName(k.dir)+" "+k.sel.String(), m, nil)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// releasePolicies drops user inSPI (0: the trap) from the policies keys and
// deletes those nobody uses any more; a policy that only a trap still uses
// goes back to the trap's priority band.
func (b *Backend) releasePolicies(inSPI uint32, keys []policyKey) error {
	var errs []error
	for _, k := range keys {
		pol, ok := b.policies[k]
		if !ok {
			continue
		}
		if inSPI != 0 {
			delete(pol.pairs, inSPI)
		} else {
			pol.trapped = false
		}
		switch {
		case len(pol.pairs) == 0 && !pol.trapped:
			if err := b.delPolicy(k); err != nil {
				errs = append(errs, err)
			}
			delete(b.policies, k)
		case len(pol.pairs) == 0 && pol.trapped:
			prio := b.cfg.PriorityBase + trapBand + k.sel.specificity()
			if err := b.putPolicy(msgUpdPolicy, k, pol.tmpl, prio); err != nil {
				errs = append(errs, err)
			}
			pol.priority = prio
		}
	}
	return errors.Join(errs...)
}

// delState deletes one ESP state; a missing one is not an error.
func (b *Backend) delState(dst netip.Addr, spi uint32) error {
	m := newMessage(msgDelSA, unix.NLM_F_REQUEST|unix.NLM_F_ACK, sizeUsersaID)
	putUsersaID(m.fixed(), dst, spi)
	err := b.nl.do(fmt.Sprintf("delete state %08x to %v", spi, dst), m, nil)
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// Remove implements dataplane.Backend.
func (b *Backend) Remove(inSPI uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	if p, ok := b.pairs[inSPI]; ok {
		return b.removePair(inSPI, p, true)
	}
	if l, ok := b.larval[inSPI]; ok {
		delete(b.larval, inSPI)
		return b.delState(l.dst, inSPI)
	}
	return fmt.Errorf("%w: %08x", dataplane.ErrUnknownSPI, inSPI)
}

// removePair deletes p's policies (those no other SA or trap uses), then
// its outbound and inbound states, and zeroes its keys if zero is set (a
// removal, not an Install that failed: then its counters go to Totals).
func (b *Backend) removePair(inSPI uint32, p *pair, zero bool) error {
	sa := p.sa
	var errs []error
	if zero {
		b.retire(p)
	}
	if p.outDone {
		errs = append(errs, b.releasePolicies(inSPI, p.out))
		if !p.outGone {
			errs = append(errs, b.delState(sa.Remote.Addr(), sa.OutSPI))
		}
		delete(b.outbound, stateKey{sa.Remote.Addr(), sa.OutSPI})
	}
	errs = append(errs, b.releasePolicies(inSPI, p.in))
	if !p.inGone {
		errs = append(errs, b.delState(sa.Local.Addr(), sa.InSPI))
	}
	delete(b.pairs, inSPI)
	if b.routes != nil {
		errs = append(errs, b.routes.release(p.routes))
	}
	if zero {
		sa.Zero()
	}
	return errors.Join(errs...)
}

// addRoutes routes the remote selectors of a tunnel without an if_id
// towards peer (routes_linux.go). A route that cannot be added is a
// warning, as in strongSwan: the SA and its policies work wherever the
// host's routing already takes the traffic.
func (b *Backend) addRoutes(name string, mode dataplane.Mode, ifID uint32, local, remote []dataplane.Selector, peer netip.Addr) []routeKey {
	if b.routes == nil || mode != dataplane.Tunnel || ifID != 0 || !peer.IsValid() {
		return nil
	}
	keys, err := b.routes.add(local, remote, peer)
	if err != nil {
		b.log.Warn("xfrm: no routes for the tunnel's remote selectors", "name", name, "err", err)
	}
	return keys
}

// InstallTrap installs the policies of t without SAs: the kernel then sends
// an ACQUIRE for the first packet that matches them (RFC 4301 5.1), which
// reaches the event handler as an Acquire with t.ReqID. An SA installed
// later with the same ReqID and selectors takes the policies over; when it
// is removed, the trap is back.
func (b *Backend) InstallTrap(t Trap) error {
	if t.ReqID >= ReqIDSpan {
		return fmt.Errorf("%w: request ID %d is not below %d", dataplane.ErrInvalidSA, t.ReqID, ReqIDSpan)
	}
	if t.Mode == dataplane.Tunnel && (!t.Local.IsValid() || !t.Remote.IsValid() || t.Local.Is4() != t.Remote.Is4()) {
		return fmt.Errorf("%w: trap %q: outer addresses %v, %v", dataplane.ErrInvalidSA, t.Name, t.Local, t.Remote)
	}
	outSels, err := selectorPairs(t.LocalTS, t.RemoteTS)
	if err != nil {
		return err
	}
	if len(outSels) == 0 {
		return fmt.Errorf("%w: trap %q: no pair of traffic selectors of one family", dataplane.ErrInvalidSA, t.Name)
	}
	local, remote := t.Local, t.Remote
	if !local.IsValid() || !remote.IsValid() {
		local, remote = netip.IPv4Unspecified(), netip.IPv4Unspecified()
	}
	tmplOut, _ := b.templates(t.Mode, local, remote, t.ReqID)
	var keys []policyKey
	for _, s := range outSels {
		keys = append(keys, policyKey{dir: dirOut, sel: s, ifID: t.IfID})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	if _, ok := b.traps[t.ReqID]; ok {
		return fmt.Errorf("%w: a trap with reqid %d is installed", dataplane.ErrInvalidSA, t.ReqID)
	}
	if err := b.checkPolicies(t.ReqID, keys); err != nil {
		return err
	}
	band := b.cfg.PriorityBase + trapBand
	var added []policyKey
	for _, k := range keys {
		if pol, ok := b.policies[k]; ok && len(pol.pairs) > 0 {
			// An SA of this reqid holds it: the trap only joins.
			pol.trapped = true
			added = append(added, k)
			continue
		}
		if err := b.addPolicies(0, []policyKey{k}, tmplOut, band); err != nil {
			b.releasePolicies(0, added)
			return err
		}
		added = append(added, k)
	}
	b.traps[t.ReqID] = &trap{t: t, keys: keys, routes: b.addRoutes(t.Name, t.Mode, t.IfID, t.LocalTS, t.RemoteTS, t.Remote)}
	return nil
}

// RemoveTrap removes the trap with ReqID reqid; policies that an installed
// SA still uses stay.
func (b *Backend) RemoveTrap(reqid uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return dataplane.ErrClosed
	}
	return b.removeTrap(reqid)
}

func (b *Backend) removeTrap(reqid uint32) error {
	t, ok := b.traps[reqid]
	if !ok {
		return fmt.Errorf("%w: %d", dataplane.ErrUnknownTrap, reqid)
	}
	delete(b.traps, reqid)
	err := b.releasePolicies(0, t.keys)
	if b.routes != nil {
		err = errors.Join(err, b.routes.release(t.routes))
	}
	return err
}

// Trap implements dataplane.Backend with InstallTrap; trapping a reqid
// again replaces its trap. Without the outer addresses the template is a
// transport-mode one that names only the request ID (the kernel's ACQUIRE
// then carries the packet's addresses, and a tunnel's larval state stays
// until net.core.xfrm_acq_expires). An SA installed for the reqid with the
// same selectors takes the policies over, with its own template; another
// reqid's policies rank first anyway (lower priority values).
func (b *Backend) Trap(t dataplane.Trap) error {
	if len(t.LocalTS) == 0 || len(t.RemoteTS) == 0 {
		return fmt.Errorf("%w: trap without selectors", dataplane.ErrInvalidSA)
	}
	if !t.Local.IsValid() || !t.Remote.IsValid() {
		t.Mode, t.Local, t.Remote = dataplane.Transport, netip.Addr{}, netip.Addr{}
	}
	b.mu.Lock()
	if _, ok := b.traps[t.ReqID]; ok {
		if err := b.removeTrap(t.ReqID); err != nil {
			b.mu.Unlock()
			return err
		}
	}
	b.mu.Unlock()
	return b.InstallTrap(t)
}

// Untrap implements dataplane.Backend.
func (b *Backend) Untrap(reqid uint32) error { return b.RemoveTrap(reqid) }

// Counters implements dataplane.Backend with the kernel's per-state
// lifetime counters and statistics (XFRM_MSG_GETSA). Bytes are what the
// kernel counts for the state; replay and integrity failures count as drops.
func (b *Backend) Counters(inSPI uint32) (dataplane.Counters, bool) {
	var c dataplane.Counters
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pairs[inSPI]
	if !ok || b.closed {
		return c, false
	}
	sa := p.sa
	if in, err := b.getState(sa.Local.Addr(), sa.InSPI); err == nil {
		c.BytesIn, c.PacketsIn = in.curBytes, in.curPackets
		c.Drops[dataplane.DropReplay] = uint64(in.statsReplay)
		c.Drops[dataplane.DropIntegrity] = uint64(in.statsIntegF)
		c.LastIn = lastUse(in, &p.pktsIn, &p.lastIn)
	} else if !errors.Is(err, unix.ESRCH) {
		b.log.Warn("xfrm: reading counters", "spi", fmt.Sprintf("%08x", inSPI), "err", err)
	}
	if p.outDone {
		if out, err := b.getState(sa.Remote.Addr(), sa.OutSPI); err == nil {
			c.BytesOut, c.PacketsOut = out.curBytes, out.curPackets
			c.LastOut = lastUse(out, &p.pktsOut, &p.lastOut)
		} else if !errors.Is(err, unix.ESRCH) {
			b.log.Warn("xfrm: reading counters", "spi", fmt.Sprintf("%08x", sa.OutSPI), "err", err)
		}
	}
	return c, true
}

// lastUse dates a state's last packet: XFRMA_LASTUSED where the kernel
// reports it, else the time of the first Counters call that saw the packet
// count rise (so at most one polling interval late), else its first use.
func lastUse(s stateInfo, pkts *uint64, last *time.Time) time.Time {
	if s.lastUsed != 0 {
		return time.Unix(int64(s.lastUsed), 0)
	}
	if s.curPackets != *pkts {
		*pkts = s.curPackets
		*last = time.Now()
	}
	if last.IsZero() && s.useTime != 0 {
		return time.Unix(int64(s.useTime), 0)
	}
	return *last
}

// getState reads one state back (XFRM_MSG_GETSA).
func (b *Backend) getState(dst netip.Addr, spi uint32) (stateInfo, error) {
	var s stateInfo
	m := newMessage(msgGetSA, unix.NLM_F_REQUEST|unix.NLM_F_ACK, sizeUsersaID)
	putUsersaID(m.fixed(), dst, spi)
	found := false
	err := b.nl.do(fmt.Sprintf("get state %08x", spi), m, func(r nlmsg) error {
		if r.typ != msgNewSA {
			return nil
		}
		var err error
		s, err = parseState(r.data)
		found = err == nil
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("xfrm: GETSA %08x: no state in the answer", spi)
	}
	return s, err
}

// SetEventHandler implements dataplane.Backend.
func (b *Backend) SetEventHandler(h func(dataplane.Event)) {
	if h == nil {
		b.handler.Store(nil)
		return
	}
	b.handler.Store(&h)
}

func (b *Backend) emit(e dataplane.Event) {
	if h := b.handler.Load(); h != nil {
		(*h)(e)
	}
}

// events reads ACQUIRE and EXPIRE messages until Close.
func (b *Backend) events() {
	defer close(b.monDone)
	buf := make([]byte, 1<<16)
	for {
		n, from, err := b.mon.read(buf)
		if err != nil && b.isClosed() {
			return // Close closed the socket
		}
		switch {
		case errors.Is(err, os.ErrClosed):
			return
		case errors.Is(err, unix.ENOBUFS):
			b.log.Warn("xfrm: the kernel dropped ACQUIRE/EXPIRE messages (socket buffer full)")
			continue
		case err != nil:
			b.log.Error("xfrm: reading kernel events", "err", err)
			return
		case from != 0:
			continue // only the kernel speaks on these groups
		}
		msgs, err := parseNetlink(buf[:n])
		if err != nil {
			b.log.Warn("xfrm: undecodable kernel event", "err", err)
			continue
		}
		for _, m := range msgs {
			for _, e := range b.decodeEvent(m) {
				b.emit(e)
			}
		}
	}
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// decodeEvent turns a kernel message into events for the IKE side, and
// updates the books for states the kernel deleted.
func (b *Backend) decodeEvent(m nlmsg) []dataplane.Event {
	switch m.typ {
	case msgAcquire:
		a, err := parseAcquire(m.data)
		if err != nil {
			b.log.Warn("xfrm: undecodable ACQUIRE", "err", err)
			return nil
		}
		e, ok := b.acquireEvent(a)
		if !ok {
			return nil
		}
		now := time.Now()
		b.mu.Lock()
		last, seen := b.lastAcquire[e.ReqID]
		if !seen || now.Sub(last) >= AcquireInterval {
			b.lastAcquire[e.ReqID] = now
		} else {
			ok = false
		}
		b.mu.Unlock()
		if !ok {
			return nil
		}
		return []dataplane.Event{e}
	case msgExpire:
		x, err := parseExpire(m.data)
		if err != nil {
			b.log.Warn("xfrm: undecodable EXPIRE", "err", err)
			return nil
		}
		return b.expireEvent(x)
	}
	return nil
}

// acquireEvent: the kernel found no state for a packet that a policy with
// one of Cygnet's request IDs covers.
func (b *Backend) acquireEvent(a acquireMsg) (dataplane.Event, bool) {
	for _, t := range a.tmpls {
		reqid, ok := b.ours(t.reqid)
		if !ok {
			continue
		}
		s := a.sel
		pkt := dataplane.Selector{
			Start:     addrFrom16(s.saddr, s.family),
			End:       addrFrom16(s.daddr, s.family),
			Protocol:  s.proto,
			StartPort: s.sport,
			EndPort:   s.dport,
		}
		if s.proto == protoICMP || s.proto == protoICMPv6 {
			// The kernel carries type and code as the ports; IKE has them
			// in one field (RFC 4301 4.4.1.1).
			v := s.sport<<8 | s.dport&0xff
			pkt.StartPort, pkt.EndPort = v, v
		}
		return dataplane.Event{Kind: dataplane.Acquire, ReqID: reqid, Packet: pkt}, true
	}
	return dataplane.Event{}, false
}

// expireEvent: a state reached a soft or hard lifetime. One SoftExpire and
// one HardExpire per pair are reported, whichever direction hit it first; a
// larval state's expiry only frees its SPI.
func (b *Backend) expireEvent(x expireMsg) []dataplane.Event {
	if x.state.proto != protoESP {
		return nil
	}
	reqid, ok := b.ours(x.state.reqid)
	if !ok {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	dst, spi := x.state.dst(), x.state.spi
	inSPI, inbound := spi, true
	p, found := b.pairs[spi]
	if found && p.sa.Local.Addr() != dst {
		found = false
	}
	if !found {
		if in, ok := b.outbound[stateKey{dst, spi}]; ok {
			inSPI, inbound = in, false
			p, found = b.pairs[in]
		}
	}
	if !found {
		if l, ok := b.larval[spi]; ok && l.dst == dst && x.hard {
			delete(b.larval, spi)
		}
		return nil
	}
	kind := dataplane.SoftExpire
	if x.hard {
		// The kernel has deleted the state already; its counters are in
		// the message.
		if inbound {
			p.inGone = true
			p.finalIn = countsOf(&x.state.usersaInfo)
		} else {
			p.outGone = true
			p.finalOut = countsOf(&x.state.usersaInfo)
		}
		if p.hardSent {
			return nil
		}
		p.hardSent = true
		kind = dataplane.HardExpire
	} else {
		if p.softSent || p.hardSent {
			return nil
		}
		p.softSent = true
	}
	return []dataplane.Event{{Kind: kind, InSPI: inSPI, ReqID: reqid}}
}

// Close implements dataplane.Backend: it removes every SA, policy, trap and
// SPI reservation the backend made, then closes its sockets.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	var errs []error
	for spi, p := range b.pairs {
		errs = append(errs, b.removePair(spi, p, true))
	}
	for reqid := range b.traps {
		errs = append(errs, b.removeTrap(reqid))
	}
	for spi, l := range b.larval {
		errs = append(errs, b.delState(l.dst, spi))
		delete(b.larval, spi)
	}
	for _, k := range b.bypass {
		errs = append(errs, b.delPolicy(k))
	}
	b.bypass = nil
	b.closed = true
	b.mu.Unlock()
	errs = append(errs, b.mon.close())
	<-b.monDone
	errs = append(errs, b.nl.close(), b.stats.close())
	if b.routes != nil {
		errs = append(errs, b.routes.close())
	}
	return errors.Join(errs...)
}

// removeStale deletes the states and policies with a request ID in
// Cygnet's range: the leftovers of a run that did not Close (a crash). It
// returns how many it deleted.
func (b *Backend) removeStale() (int, error) {
	var states []stateInfo
	m := newMessage(msgGetSA, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 0)
	err := b.nl.do("dump states", m, func(r nlmsg) error {
		if r.typ != msgNewSA {
			return nil
		}
		s, err := parseState(r.data)
		if err != nil {
			return err
		}
		if _, ours := b.ours(s.reqid); ours && s.proto == protoESP {
			states = append(states, s)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var pols []policyInfo
	m = newMessage(msgGetPolicy, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 0)
	err = b.nl.do("dump policies", m, func(r nlmsg) error {
		if r.typ != msgNewPolicy {
			return nil
		}
		p, err := parsePolicy(r.data)
		if err != nil {
			return err
		}
		for _, t := range p.tmpls {
			if _, ours := b.ours(t.reqid); ours {
				pols = append(pols, p)
				break
			}
		}
		if b.isBypass(&p) {
			pols = append(pols, p)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, p := range pols {
		// By index and direction, with the mark and if_id that identify it.
		m := newMessage(msgDelPolicy, unix.NLM_F_REQUEST|unix.NLM_F_ACK, sizeUserpolicyID)
		f := m.fixed()
		ne.PutUint32(f[sizeSelector:], p.index)
		f[sizeSelector+4] = p.dir
		if p.mark != nil {
			v := m.attr(attrMark, sizeMark)
			ne.PutUint32(v[0:], p.mark[0])
			ne.PutUint32(v[4:], p.mark[1])
		}
		if p.ifID != 0 {
			m.u32(attrIfID, p.ifID)
		}
		if err := b.nl.do("delete stale policy", m, nil); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	for _, s := range states {
		m := newMessage(msgDelSA, unix.NLM_F_REQUEST|unix.NLM_F_ACK, sizeUsersaID)
		putUsersaID(m.fixed(), s.dst(), s.spi)
		if s.mark != nil {
			v := m.attr(attrMark, sizeMark)
			ne.PutUint32(v[0:], s.mark[0])
			ne.PutUint32(v[4:], s.mark[1])
		}
		if err := b.nl.do("delete stale state", m, nil); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// checkSA validates an SA for the kernel and maps its algorithms.
func (b *Backend) checkSA(sa *dataplane.SA) (kernelAlgs, error) {
	switch {
	case sa == nil:
		return kernelAlgs{}, fmt.Errorf("%w: nil", dataplane.ErrInvalidSA)
	case sa.InSPI < 256 || sa.OutSPI < 256:
		return kernelAlgs{}, fmt.Errorf("%w: SPI in %08x out %08x (RFC 4303 2.1: 0-255 are reserved)", dataplane.ErrInvalidSA, sa.InSPI, sa.OutSPI)
	case !sa.Local.Addr().IsValid() || !sa.Remote.Addr().IsValid():
		return kernelAlgs{}, fmt.Errorf("%w: outer addresses %v, %v", dataplane.ErrInvalidSA, sa.Local, sa.Remote)
	case sa.Local.Addr().Is4() != sa.Remote.Addr().Is4():
		return kernelAlgs{}, fmt.Errorf("%w: outer addresses of different families %v, %v", dataplane.ErrInvalidSA, sa.Local, sa.Remote)
	case sa.Local.Addr().Is4In6() || sa.Remote.Addr().Is4In6():
		return kernelAlgs{}, fmt.Errorf("%w: IPv4-mapped outer address %v, %v", dataplane.ErrInvalidSA, sa.Local, sa.Remote)
	case sa.Mode != dataplane.Tunnel && sa.Mode != dataplane.Transport:
		return kernelAlgs{}, fmt.Errorf("%w: mode %v", dataplane.ErrInvalidSA, sa.Mode)
	case sa.ReplayWindow < 0 || sa.ReplayWindow > maxReplayWindow:
		return kernelAlgs{}, fmt.Errorf("%w: replay window %d (the kernel takes 0-%d)", dataplane.ErrInvalidSA, sa.ReplayWindow, maxReplayWindow)
	case sa.ReqID >= ReqIDSpan:
		return kernelAlgs{}, fmt.Errorf("%w: request ID %d is not below %d", dataplane.ErrInvalidSA, sa.ReqID, ReqIDSpan)
	case sa.Encap && (sa.Local.Port() == 0 || sa.Remote.Port() == 0):
		return kernelAlgs{}, fmt.Errorf("%w: UDP encapsulation without ports %v, %v", dataplane.ErrInvalidSA, sa.Local, sa.Remote)
	}
	algs, err := algsFor(sa.Encr, sa.EncrKeyLen, sa.Integ)
	if err != nil {
		return algs, err
	}
	for _, k := range []struct {
		name string
		key  []byte
		want int
	}{
		{"inbound encryption", sa.InEncrKey, algs.encrKey},
		{"outbound encryption", sa.OutEncrKey, algs.encrKey},
		{"inbound integrity", sa.InIntegKey, algs.integKey},
		{"outbound integrity", sa.OutIntegKey, algs.integKey},
	} {
		if len(k.key) != k.want {
			return algs, fmt.Errorf("%w: %s key of %d bytes, want %d", dataplane.ErrInvalidSA, k.name, len(k.key), k.want)
		}
	}
	return algs, nil
}

var (
	_ dataplane.Backend = (*Backend)(nil)
	_ dataplane.Totaler = (*Backend)(nil)
)
