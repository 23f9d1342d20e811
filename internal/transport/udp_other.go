//go:build !linux

package transport

import (
	"errors"
	"net/netip"
)

// UDP is the socket transport. It needs Linux (recvmmsg, sendmmsg,
// pktinfo); elsewhere ListenUDP fails and the in-memory transport remains.
type UDP struct{}

var _ Endpoint = (*UDP)(nil)

var errUnsupported = errors.New("transport: UDP transport needs Linux")

// ListenUDP fails on this operating system.
func ListenUDP(cfg Config, h Handler) (*UDP, error) { return nil, errUnsupported }

func (u *UDP) SendIKE(p Packet) error                           { return errUnsupported }
func (u *UDP) SendESP(batch []Packet) error                     { return errUnsupported }
func (u *UDP) SendKeepalive(local, remote netip.AddrPort) error { return errUnsupported }
func (u *UDP) LocalAddrs() []netip.AddrPort                     { return nil }
func (u *UDP) Ports() (ike, nat uint16)                         { return 0, 0 }
func (u *UDP) Offload() (gso, gro bool)                         { return false, false }
func (u *UDP) Stats() Stats                                     { return Stats{} }
func (u *UDP) Close() error                                     { return nil }
