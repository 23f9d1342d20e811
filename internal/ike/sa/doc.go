// Package sa is Cygnet's sans-IO IKEv2 SA state machine (RFC 7296): the
// IKE_SA_INIT and IKE_AUTH exchanges that create an IKE SA and its first
// CHILD_SA, CREATE_CHILD_SA for more CHILD_SAs and for rekeying CHILD_SAs
// and the IKE SA (1.3, 2.8, 2.18) with their collisions (2.8.1, 2.8.2,
// 2.25), lifetimes, INFORMATIONAL exchanges (delete, liveness), message IDs
// and retransmission (RFC 7296 2.1-2.4), cookies (2.6), NAT detection
// (2.23) and IKE fragmentation (RFC 7383).
//
// Nothing here touches a socket, a clock or a goroutine. A step takes a
// parsed message (or a timer tick, or a command) and the current time and
// returns an Output: datagrams to send and events for the runtime (install a
// CHILD_SA, the IKE SA is established or failed, ...). The Responder is the
// stateless front door for IKE_SA_INIT requests; every IKE SA is an *IKESA
// owned by one goroutine of the runtime. docs/engine.md describes the
// structure: tasks, exchanges, message IDs and where later features fit.
package sa
