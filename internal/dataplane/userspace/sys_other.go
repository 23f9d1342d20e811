//go:build !linux

package userspace

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/dataplane"
	"github.com/cygnet-ipsec/cygnet/internal/transport"
	"github.com/cygnet-ipsec/cygnet/internal/tun"
)

// Elsewhere than on Linux the backend runs only over a Device it is given
// (tun.Mem: the rootless demo, tests) with UDP-encapsulated ESP.

var errNotLinux = errors.New("userspace: TUN devices, routes and plain ESP need Linux")

func openTUN(string, int, bool, int) (tun.Device, error) { return nil, errNotLinux }

type routeTable struct{}

func newRouteTable(tun.Device, int, int, *slog.Logger) (*routeTable, error) {
	return nil, errNotLinux
}

func (*routeTable) add(_, _ []dataplane.Selector) ([]netip.Prefix, error) { return nil, nil }
func (*routeTable) remove([]netip.Prefix)                                 {}
func (*routeTable) bypass([]uint16) error                                 { return nil }
func (*routeTable) close() error                                          { return nil }

type rawESP struct{}

func (b *Backend) openRaw() error                { return errNotLinux }
func (*rawESP) send(pkts []transport.Packet) int { return len(pkts) }
func (*rawESP) close() error                     { return nil }
