// Package tunnelbench measures ESP tunnel throughput between two network
// namespaces, as one table (issue 5): iperf3 TCP (and UDP) through Cygnet to
// Cygnet, Cygnet to strongSwan and strongSwan to strongSwan, the last being
// the baseline every row is compared with. It has no library code: the
// harness is TestThroughput, which bench/esp-throughput.sh runs:
//
//	sudo bench/esp-throughput.sh -t 10 -r 3 -u
//
// or directly:
//
//	sudo go test ./bench/tunnelbench -run TestThroughput -v -timeout 60m -args -tunnelbench -seconds 10 -repeat 3
//
// Every row gets fresh namespaces joined by a veth pair (192.0.2.1 left,
// 192.0.2.2 right; 10.1.0.1 and 10.2.0.1 inside the tunnel) and its own
// tunnel ends:
//
//   - swan-swan: two charons with kernel-libipsec (strongSwan's userspace
//     ESP over a TUN device, always UDP-encapsulated), PSK, IKE from left.
//   - cygnet-swan: `cygnet daemon` (dataplane: userspace) left, charon
//     right; Cygnet initiates.
//   - cygnet-cygnet: two `cygnet daemon`s with real IKE, ESP in UDP
//     (encap: true, as kernel-libipsec always does); where the daemon has no
//     userspace data plane, bench/esppeer with fixed keys instead.
//   - esppeer-*: bench/esppeer pairs (fixed keys, no IKE) with the offloads
//     switched one by one, to show what each bought (-steps).
//
// Each row is measured -repeat times, rows interleaved, and a cell shows
// the median with the range; the load average before and after each row is
// recorded, because the machine is shared and a busy one halves the figures.
package tunnelbench
