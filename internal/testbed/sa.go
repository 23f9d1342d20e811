package testbed

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SA is one IKE_SA as charon lists it (VICI list-sa event).
type SA struct {
	Name     string // connection name
	UniqueID uint32
	Version  int
	State    string // CREATED, CONNECTING, ESTABLISHED, REKEYING, DELETING, ...

	LocalHost  netip.Addr
	LocalPort  uint16
	LocalID    string
	RemoteHost netip.Addr
	RemotePort uint16
	RemoteID   string

	Initiator bool
	SPIi      uint64 // initiator's IKE SPI
	SPIr      uint64 // responder's IKE SPI
	NATLocal  bool
	NATRemote bool
	NATFake   bool // charon faked a NAT (kernel-libipsec forces UDP encapsulation so)
	NATAny    bool

	EncrAlg      string // e.g. "AES_GCM_16"
	EncrKeysize  int
	IntegAlg     string
	IntegKeysize int
	PRFAlg       string
	DHGroup      string // e.g. "CURVE_25519"

	Children []ChildSA
	Raw      *ViciMessage // everything charon sent, for fields not parsed here
}

// ChildSA is one CHILD_SA of an IKE_SA.
type ChildSA struct {
	Name     string // CHILD_SA configuration name
	UniqueID uint32
	ReqID    uint32
	State    string // INSTALLED, REKEYING, DELETING, ...
	Mode     string // TUNNEL, TRANSPORT, BEET
	Protocol string // ESP, AH
	Encap    bool   // UDP encapsulation (RFC 3948)

	SPIIn, SPIOut uint32

	EncrAlg      string
	EncrKeysize  int
	IntegAlg     string
	IntegKeysize int
	DHGroup      string
	ESN          bool

	BytesIn, PacketsIn   uint64
	BytesOut, PacketsOut uint64

	LocalTS  []string // as charon prints them: "10.1.0.1/32", "10.0.0.0/8[udp/4500]"
	RemoteTS []string
	Raw      *ViciMessage
}

// Child returns the first CHILD_SA of sa with configuration name name.
func (sa SA) Child(name string) (ChildSA, bool) {
	for _, c := range sa.Children {
		if c.Name == name {
			return c, true
		}
	}
	return ChildSA{}, false
}

// FindSA returns the first SA of connection name.
func FindSA(sas []SA, name string) (SA, bool) {
	for _, sa := range sas {
		if sa.Name == name {
			return sa, true
		}
	}
	return SA{}, false
}

// Established returns a WaitSA predicate: connection ike has an ESTABLISHED
// IKE_SA whose CHILD_SAs named children are all INSTALLED.
func Established(ike string, children ...string) func([]SA) bool {
	return func(sas []SA) bool {
	next:
		for _, sa := range sas {
			if sa.Name != ike || sa.State != "ESTABLISHED" {
				continue
			}
			for _, name := range children {
				c, ok := sa.Child(name)
				if !ok || c.State != "INSTALLED" {
					continue next
				}
			}
			return true
		}
		return false
	}
}

// Gone returns a WaitSA predicate: connection ike has no IKE_SA left.
func Gone(ike string) func([]SA) bool {
	return func(sas []SA) bool {
		_, ok := FindSA(sas, ike)
		return !ok
	}
}

// FormatSAs renders SAs one line each (and one per CHILD_SA), for messages.
func FormatSAs(sas []SA) string {
	if len(sas) == 0 {
		return "  (no SAs)\n"
	}
	var b strings.Builder
	for _, sa := range sas {
		fmt.Fprintf(&b, "  %s #%d %s %s[%d] %s <-> %s[%d] %s spi %016x_i %016x_r %s/%d %s %s\n",
			sa.Name, sa.UniqueID, sa.State, sa.LocalHost, sa.LocalPort, sa.LocalID,
			sa.RemoteHost, sa.RemotePort, sa.RemoteID, sa.SPIi, sa.SPIr,
			sa.EncrAlg, sa.EncrKeysize, sa.PRFAlg, sa.DHGroup)
		for _, c := range sa.Children {
			fmt.Fprintf(&b, "    %s #%d %s %s encap=%v spi in %08x out %08x %s/%d in %d B/%d p out %d B/%d p %v === %v\n",
				c.Name, c.UniqueID, c.State, c.Mode, c.Encap, c.SPIIn, c.SPIOut, c.EncrAlg, c.EncrKeysize,
				c.BytesIn, c.PacketsIn, c.BytesOut, c.PacketsOut, c.LocalTS, c.RemoteTS)
		}
	}
	return b.String()
}

// saFields collects conversion errors so parseSA can report the first one.
type saFields struct {
	m   *ViciMessage
	err error
}

func (f *saFields) fail(key, val string, err error) {
	if f.err == nil {
		f.err = fmt.Errorf("testbed: list-sa: %s = %q: %v", key, val, err)
	}
}

func (f *saFields) str(key string) string { return f.m.Get(key) }

func (f *saFields) yes(key string) bool { return f.m.Get(key) == "yes" || f.m.Get(key) == "1" }

func (f *saFields) uint(key string, bits int) uint64 {
	v := f.m.Get(key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		f.fail(key, v, err)
	}
	return n
}

func (f *saFields) hex(key string, bits int) uint64 {
	v := f.m.Get(key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 16, bits)
	if err != nil {
		f.fail(key, v, err)
	}
	return n
}

func (f *saFields) addr(key string) netip.Addr {
	v := f.m.Get(key)
	if v == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		f.fail(key, v, err)
	}
	return a
}

// parseSA converts one IKE_SA section of a list-sa event.
func parseSA(name string, m *ViciMessage) (SA, error) {
	f := &saFields{m: m}
	sa := SA{
		Name:         name,
		UniqueID:     uint32(f.uint("uniqueid", 32)),
		Version:      int(f.uint("version", 8)),
		State:        f.str("state"),
		LocalHost:    f.addr("local-host"),
		LocalPort:    uint16(f.uint("local-port", 16)),
		LocalID:      f.str("local-id"),
		RemoteHost:   f.addr("remote-host"),
		RemotePort:   uint16(f.uint("remote-port", 16)),
		RemoteID:     f.str("remote-id"),
		Initiator:    f.yes("initiator"),
		SPIi:         f.hex("initiator-spi", 64),
		SPIr:         f.hex("responder-spi", 64),
		NATLocal:     f.yes("nat-local"),
		NATRemote:    f.yes("nat-remote"),
		NATFake:      f.yes("nat-fake"),
		NATAny:       f.yes("nat-any"),
		EncrAlg:      f.str("encr-alg"),
		EncrKeysize:  int(f.uint("encr-keysize", 16)),
		IntegAlg:     f.str("integ-alg"),
		IntegKeysize: int(f.uint("integ-keysize", 16)),
		PRFAlg:       f.str("prf-alg"),
		DHGroup:      f.str("dh-group"),
		Raw:          m,
	}
	if f.err != nil {
		return sa, f.err
	}
	if children := m.GetSection("child-sas"); children != nil {
		for _, e := range children.Elems {
			if e.Kind != ViciSection {
				continue
			}
			c, err := parseChildSA(e.Section)
			if err != nil {
				return sa, err
			}
			sa.Children = append(sa.Children, c)
		}
	}
	return sa, nil
}

func parseChildSA(m *ViciMessage) (ChildSA, error) {
	f := &saFields{m: m}
	c := ChildSA{
		Name:         f.str("name"),
		UniqueID:     uint32(f.uint("uniqueid", 32)),
		ReqID:        uint32(f.uint("reqid", 32)),
		State:        f.str("state"),
		Mode:         f.str("mode"),
		Protocol:     f.str("protocol"),
		Encap:        f.yes("encap"),
		SPIIn:        uint32(f.hex("spi-in", 32)),
		SPIOut:       uint32(f.hex("spi-out", 32)),
		EncrAlg:      f.str("encr-alg"),
		EncrKeysize:  int(f.uint("encr-keysize", 16)),
		IntegAlg:     f.str("integ-alg"),
		IntegKeysize: int(f.uint("integ-keysize", 16)),
		DHGroup:      f.str("dh-group"),
		ESN:          f.yes("esn"),
		BytesIn:      f.uint("bytes-in", 64),
		PacketsIn:    f.uint("packets-in", 64),
		BytesOut:     f.uint("bytes-out", 64),
		PacketsOut:   f.uint("packets-out", 64),
		LocalTS:      m.GetList("local-ts"),
		RemoteTS:     m.GetList("remote-ts"),
		Raw:          m,
	}
	return c, f.err
}
