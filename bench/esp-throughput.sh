#!/usr/bin/env bash
# ESP throughput through tunnels between two network namespaces, as one table
# with the ratio to the strongSwan baseline (issue 5):
#
#   sudo bench/esp-throughput.sh [-t SECONDS] [-r RUNS] [-s SUITE] [-u] [-S] [-R ROWS] [-p DIR] [-o FILE]
#
#   -t  seconds per iperf3 run (default 10)
#   -r  runs per cell, rows interleaved; cells show median (min-max) (default 1)
#   -s  ESP proposal of every row, strongSwan syntax (default aes256gcm16)
#   -u  also iperf3 UDP at full rate (-b 0), left to right
#   -S  also the bench/esppeer rows that add the offloads one by one
#   -R  rows, comma-separated (default swan-swan,cygnet-swan,cygnet-cygnet;
#       more: esppeer-plain, esppeer-udpgso, esppeer-tso, esppeer-tso-udpgso)
#   -p  write CPU profiles of the esppeer ends into DIR
#   -o  also write the table to FILE
#
# Rows: strongSwan to strongSwan (two charons with kernel-libipsec: the
# baseline), Cygnet to strongSwan (`cygnet daemon`, dataplane userspace, to
# charon) and Cygnet to Cygnet (two `cygnet daemon`s, real IKE, ESP in UDP;
# bench/esppeer with fixed keys where the daemon has no userspace data plane).
# The harness is bench/tunnelbench's TestThroughput (internal/testbed:
# namespaces, charon, iperf3); see its package comment.
#
# The machine is shared: the table records the load average around each row.
# Measure when `uptime` shows a load well below the CPU count, and repeat.
#
# Needs root, ip, iperf3, a TUN device and Go; charon and swanctl for the
# strongSwan rows (skipped without them). Everything it creates is removed on exit.
set -euo pipefail

SECONDS_PER_RUN=10
RUNS=1
SUITE=aes256gcm16
ROWS=swan-swan,cygnet-swan,cygnet-cygnet
ARGS=()
while getopts "t:r:s:uSR:p:o:" opt; do
	case $opt in
	t) SECONDS_PER_RUN=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	s) SUITE=$OPTARG ;;
	u) ARGS+=(-udp) ;;
	S) ARGS+=(-steps) ;;
	R) ROWS=$OPTARG ;;
	p) ARGS+=(-profile "$(realpath -m "$OPTARG")") ;;
	o) ARGS+=(-out "$(realpath -m "$OPTARG")") ;;
	*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/cygnet-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

[ "$(id -u)" = 0 ] || { echo "esp-throughput: needs root (namespaces, TUN)" >&2; exit 1; }
for c in ip iperf3 go; do command -v $c >/dev/null || { echo "esp-throughput: needs $c" >&2; exit 1; }; done

echo "esp-throughput: building cygnet and bench/esppeer..." >&2
(cd "$ROOT" && go build -o "$WORK/cygnet" ./cmd/cygnet && go build -o "$WORK/esppeer" ./bench/esppeer)
echo "esp-throughput: $(uptime)" >&2

cmdline="bench/esp-throughput.sh $*"
(cd "$ROOT" && go test -count=1 -timeout 120m -run '^TestThroughput$' -v ./bench/tunnelbench -args \
	-tunnelbench -seconds "$SECONDS_PER_RUN" -repeat "$RUNS" -suite "$SUITE" -rows "$ROWS" \
	-cygnet "$WORK/cygnet" -esppeer "$WORK/esppeer" -command "$cmdline" ${ARGS[@]+"${ARGS[@]}"}) >"$WORK/out" 2>&1 || status=$?
# The table (and what went wrong, if anything).
if [ "${status:-0}" != 0 ]; then
	grep -E -- '--- (FAIL|SKIP)|throughput_test.go|testbed' "$WORK/out" >&2 || true
fi
sed -n '/^ESP throughput/,/^--- /p' "$WORK/out" | grep -v -- '^--- '
echo "esp-throughput: $(uptime)" >&2
exit "${status:-0}"
