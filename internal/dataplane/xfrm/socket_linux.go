package xfrm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// BypassSocket gives the socket fd per-socket policies that let its
// traffic pass in both directions without IPsec, whatever the SPD says, as
// strongSwan does for its IKE sockets. The IKE sockets need them once a
// transport-mode SA (or a tunnel whose selectors cover the gateways) covers
// the peers' own addresses: without them IKE messages, and ESP-in-UDP that
// reaches a UDP_ENCAP socket, would be held to the SA's policy and dropped
// (XfrmInTmplMismatch). v6 selects IPV6_XFRM_POLICY for an AF_INET6 socket.
func BypassSocket(fd int, v6 bool) error {
	level, opt, family := unix.IPPROTO_IP, unix.IP_XFRM_POLICY, uint16(afInet)
	if v6 {
		level, opt, family = unix.IPPROTO_IPV6, unix.IPV6_XFRM_POLICY, afInet6
	}
	for _, dir := range []uint8{dirIn, dirOut} {
		b := make([]byte, sizeUserpolicyInfo)
		// A selector of the socket's family matching everything.
		p := userpolicyInfo{sel: selector{family: family}, dir: dir, action: actionAllow}
		p.put(b)
		if err := unix.SetsockoptString(fd, level, opt, string(b)); err != nil {
			return fmt.Errorf("xfrm: bypass policy (%s) on socket: %w", dirName(dir), err)
		}
	}
	return nil
}
