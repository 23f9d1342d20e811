package sa

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"io"
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// natHash is a NAT_DETECTION_*_IP notification's data (RFC 7296 2.23):
// SHA-1(SPIi | SPIr | IP | Port), with SPIr zero in the IKE_SA_INIT request.
func natHash(spii, spir uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], spii)
	binary.BigEndian.PutUint64(b[8:], spir)
	h.Write(b[:])
	h.Write(ap.Addr().Unmap().AsSlice())
	binary.BigEndian.PutUint16(b[:2], ap.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}

// natNotifies returns our NAT_DETECTION_SOURCE_IP and _DESTINATION_IP for a
// message from local to remote. With ForceEncap the source hash is random,
// so the peer believes we are behind a NAT and both sides float to the NAT-T
// port and encapsulate ESP (RFC 7296 2.23 allows this; strongSwan does it
// for encap=yes).
func (sa *IKESA) natNotifies(spir uint64) []wire.Payload {
	src := natHash(sa.spii, spir, sa.local)
	if sa.cfg != nil && sa.cfg.ForceEncap {
		if _, err := io.ReadFull(sa.rand, src); err != nil {
			src[0] ^= 0xff
		}
	}
	return []wire.Payload{
		&wire.Notify{NotifyType: wire.NAT_DETECTION_SOURCE_IP, Data: src},
		&wire.Notify{NotifyType: wire.NAT_DETECTION_DESTINATION_IP, Data: natHash(sa.spii, spir, sa.remote)},
	}
}

// checkNAT evaluates the peer's NAT detection notifies in a message from
// remote to local (RFC 7296 2.23): a source hash that matches none of the
// peer's means a NAT in front of the peer, a destination hash that does not
// match ours a NAT in front of us. A peer that sent none does not do NAT
// traversal, and nothing is detected.
func (sa *IKESA) checkNAT(spir uint64, notifies []*wire.Notify) (supported bool) {
	var srcs [][]byte
	var dst []byte
	for _, n := range notifies {
		switch n.NotifyType {
		case wire.NAT_DETECTION_SOURCE_IP:
			srcs = append(srcs, n.Data)
		case wire.NAT_DETECTION_DESTINATION_IP:
			dst = n.Data
		}
	}
	if len(srcs) == 0 || dst == nil {
		return false
	}
	want := natHash(sa.spii, spir, sa.remote)
	sa.natRemote = true
	for _, s := range srcs {
		if hmac.Equal(s, want) {
			sa.natRemote = false
		}
	}
	sa.natLocal = !hmac.Equal(dst, natHash(sa.spii, spir, sa.local))
	if sa.cfg != nil && sa.cfg.ForceEncap {
		sa.natLocal = true
	}
	return true
}

// behindNAT reports whether IKE and ESP use the NAT-T ports and UDP
// encapsulation.
func (sa *IKESA) behindNAT() bool { return sa.natLocal || sa.natRemote }

// floatPorts moves the initiator to the NAT-T ports (RFC 7296 2.23: once a
// NAT is detected, IKE_AUTH and everything after go to port 4500).
func (sa *IKESA) floatPorts() {
	if sa.local.Port() != sa.natPort() {
		sa.local = netip.AddrPortFrom(sa.local.Addr(), sa.natPort())
	}
	if sa.remote.Port() != sa.remoteNATPort() {
		sa.remote = netip.AddrPortFrom(sa.remote.Addr(), sa.remoteNATPort())
	}
}
