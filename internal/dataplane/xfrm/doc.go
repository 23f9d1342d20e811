// Package xfrm is Cygnet's Linux kernel data plane (`daemon.dataplane:
// xfrm`): it implements dataplane.Backend by programming the kernel's IPsec
// SAD and SPD (the XFRM framework, RFC 4301 4.4) over NETLINK_XFRM, and
// leaves ESP (RFC 4303) to the kernel.
//
// An SA pair becomes two XFRM states (inbound: Remote to Local with InSPI;
// outbound: Local to Remote with OutSPI) and policies in the directions in,
// out and, in tunnel mode, fwd, whose templates name the pair's request ID.
// Inbound SPIs come from the kernel (XFRM_MSG_ALLOCSPI creates a larval
// state; Install completes it with XFRM_MSG_UPDSA). Rekeying is
// make-before-break: the new inbound state is added first, then the new
// outbound state, which the kernel prefers over the old one from the moment
// it exists (it bumps the old state's generation, so cached routes switch);
// the old states go only on Remove.
//
// Everything Cygnet installs carries a kernel request ID in its own range
// (Config.ReqIDBase + SA.ReqID) and policies a priority in its own band, so a
// restarted Cygnet finds and removes what a crashed one left behind (New
// does that) and leaves other daemons' objects alone.
//
// Tunnels get routes for their remote selectors in a table of the backend's
// own (routes_linux.go), as strongSwan's kernel-netlink does, so that their
// traffic (and a trap's first packet) reaches the policies; BypassPorts
// exempts the IKE ports from IPsec with global policies.
//
// Beyond dataplane.Backend, the package offers what the interface does not
// carry yet: trap policies that raise ACQUIRE events (InstallTrap), route-based
// mode with XFRM interfaces (InstallOptions.IfID), and the two halves of
// make-before-break as separate steps (InstallOptions.InboundOnly and
// ActivateOutbound), which a responder needs (RFC 7296 2.8).
//
// The kernel must have ESP (modules esp4, esp6, xfrm_user and the AEAD and
// cipher modules); tests of the package run in a QEMU VM (vm/README.md) and
// skip on a kernel without it.
package xfrm
