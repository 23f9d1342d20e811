package xfrm

import (
	"fmt"
	"log/slog"
)

const (
	// DefaultReqIDBase starts Cygnet's range of kernel request IDs: an SA
	// with ReqID r is installed with reqid DefaultReqIDBase+r. strongSwan
	// counts its request IDs up from 1, so the two never meet.
	DefaultReqIDBase = 0xc7000000
	// ReqIDSpan is the size of the range: SA.ReqID must be below it.
	ReqIDSpan = 1 << 24

	// DefaultPriorityBase starts Cygnet's band of policy priorities (the
	// kernel prefers lower values): SA policies take PriorityBase plus their
	// specificity (below 0x8000), trap policies 0x8000 more, so that an SA's
	// policy wins over another child's broader trap.
	DefaultPriorityBase = 0x00c70000
	trapBand            = 0x8000

	// DefaultRouteTable is the table of the tunnels' routes; the userspace
	// data plane uses the same number (a daemon has one data plane).
	DefaultRouteTable = 221
	// DefaultRulePriority is the priority of the rule that consults it.
	DefaultRulePriority = 221
)

// Config configures a Backend.
type Config struct {
	// Netns is the path of the network namespace to program, such as
	// /run/netns/NAME or /proc/PID/ns/net; "" is the caller's.
	Netns string
	// ReqIDBase is the first kernel request ID of Cygnet's range (0:
	// DefaultReqIDBase). Everything in [ReqIDBase, ReqIDBase+ReqIDSpan) is
	// Cygnet's: New deletes what it finds there. Two Cygnet daemons in one
	// namespace need different bases.
	ReqIDBase uint32
	// PriorityBase is the start of Cygnet's band of policy priorities (0:
	// DefaultPriorityBase).
	PriorityBase uint32
	// AcqExpires, if positive, sets net.core.xfrm_acq_expires in the
	// namespace: how many seconds the kernel keeps the larval state of an
	// allocated SPI and the state of a pending ACQUIRE (kernel default 30).
	// strongSwan sets 165, to outlast a slow IKE_AUTH.
	AcqExpires int
	// NoRoutes leaves routing to the caller. By default the backend routes
	// the remote selectors of tunnel-mode SAs and traps without an if_id
	// towards the peer, in table RouteTable, which a rule with priority
	// RulePriority consults before the main table (routes_linux.go; 0:
	// DefaultRouteTable, DefaultRulePriority), as strongSwan does with its
	// table 220.
	NoRoutes                 bool
	RouteTable, RulePriority int
	// Logger receives warnings (nil: discard). No key ever reaches it.
	Logger *slog.Logger
}

func (c *Config) check() error {
	if c.ReqIDBase == 0 {
		c.ReqIDBase = DefaultReqIDBase
	}
	if c.PriorityBase == 0 {
		c.PriorityBase = DefaultPriorityBase
	}
	if c.RouteTable == 0 {
		c.RouteTable = DefaultRouteTable
	}
	if c.RulePriority == 0 {
		c.RulePriority = DefaultRulePriority
	}
	if uint64(c.ReqIDBase)+ReqIDSpan > 1<<32 {
		return fmt.Errorf("xfrm: ReqIDBase %#x leaves no room for %d request IDs", c.ReqIDBase, ReqIDSpan)
	}
	if uint64(c.PriorityBase)+2*trapBand > 1<<32 {
		return fmt.Errorf("xfrm: PriorityBase %#x too large", c.PriorityBase)
	}
	return nil
}
