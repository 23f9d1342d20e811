#!/usr/bin/env bash
# ESP throughput through tunnels between two network namespaces, as a table
# with the ratio to the strongSwan baseline (issue 5).
#
#   sudo bench/esp-throughput.sh [-t SECONDS] [-s SUITE] [-o] [-u]
#
#   -t  seconds per iperf3 run (default 10)
#   -s  ESP suite for the Cygnet rows (default aes256gcm16)
#   -o  also a Cygnet row with TUN segmentation offload (TSO in, GRO out)
#   -g  also a Cygnet row with TUN offload and UDP GSO/GRO (userspace.GSOConn)
#   -u  also UDP (iperf3 -u -b 0) rows
#
# Rows: each is a function row_NAME that sets up both ends in $NS_L/$NS_R,
# runs measure, and tears its ends down. Today: Cygnet to Cygnet with
# bench/esppeer (fixed keys, real TUN, real UDP), and strongSwan to
# strongSwan. To add Cygnet to strongSwan once the daemon exists, write
# row_cygnet_swan the same way and list it in ROWS; the baseline row is the one named in
# BASELINE (strongSwan to strongSwan, run through internal/testbed's
# BenchmarkCharonIperf3). Where charon is missing, the ratio uses
# BASELINE_MBPS (default 340: 335-348 Mbit/s measured here by the testbed on
# a quiet machine), marked "ref".
#
# Needs root, ip, iperf3 and Go. Everything it creates is removed on exit.
set -euo pipefail

SECONDS_PER_RUN=10
SUITE=aes256gcm16
OFFLOAD=0
GSO=0
UDP=0
while getopts "t:s:ogu" opt; do
	case $opt in
	t) SECONDS_PER_RUN=$OPTARG ;;
	s) SUITE=$OPTARG ;;
	o) OFFLOAD=1 ;;
	g) GSO=1 ;;
	u) UDP=1 ;;
	*) sed -n '2,13p' "$0"; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/cygnet-bench.XXXXXX)
NS_L=cygbench-l-$$
NS_R=cygbench-r-$$
PIDS=()
BASELINE=swan_swan
BASELINE_MBPS=${BASELINE_MBPS:-340}

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$NS_L" 2>/dev/null || true
	ip netns del "$NS_R" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "esp-throughput: needs root (namespaces, TUN)" >&2; exit 1; }
for c in ip iperf3 go; do command -v $c >/dev/null || { echo "esp-throughput: needs $c" >&2; exit 1; }; done

echo "building bench/esppeer..." >&2
(cd "$ROOT" && go build -o "$WORK/esppeer" ./bench/esppeer)

# The two namespaces, joined by a veth pair: outer 192.0.2.1/.2, inner
# 10.1.0.1 (left) and 10.2.0.1 (right) on lo.
ip netns add "$NS_L"
ip netns add "$NS_R"
ip link add vl-$$ netns "$NS_L" type veth peer name vr-$$ netns "$NS_R"
ip -n "$NS_L" addr add 192.0.2.1/24 dev vl-$$
ip -n "$NS_R" addr add 192.0.2.2/24 dev vr-$$
for ns in "$NS_L" "$NS_R"; do
	ip -n "$ns" link set lo up
done
ip -n "$NS_L" link set vl-$$ up
ip -n "$NS_R" link set vr-$$ up
ip -n "$NS_L" addr add 10.1.0.1/32 dev lo
ip -n "$NS_R" addr add 10.2.0.1/32 dev lo

# iperf3 from the right namespace's client to a server at $1 in the left
# one (or the reverse with $2=rev); prints Mbit/s received.
iperf() {
	local addr=$1 dir=${2:-fwd} udp=${3:-} srvns=$NS_L clins=$NS_R
	if [ "$dir" = rev ]; then srvns=$NS_R clins=$NS_L; fi
	ip netns exec "$srvns" iperf3 --server --one-off --bind "$addr" --port 5301 >/dev/null 2>&1 &
	local srv=$!
	PIDS+=("$srv")
	sleep 0.5
	local args=(--client "$addr" --port 5301 --time "$SECONDS_PER_RUN" --json)
	[ -n "$udp" ] && args+=(--udp --bitrate 0)
	ip netns exec "$clins" iperf3 "${args[@]}" >"$WORK/iperf.json" || true
	wait "$srv" 2>/dev/null || true
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))' "$WORK/iperf.json" 2>/dev/null || echo 0
}

# esppeer_up SUITE OFFLOAD GSO: a Cygnet end in each namespace.
esppeer_up() {
	local suite=$1 offload=$2 gso=${3:-false}
	ip netns exec "$NS_L" "$WORK/esppeer" -side a -local 192.0.2.1 -remote 192.0.2.2 \
		-local-ts 10.1.0.0/16 -remote-ts 10.2.0.0/16 -suite "$suite" -offload="$offload" -gso="$gso" >"$WORK/left.log" 2>&1 &
	PEER_L=$!
	ip netns exec "$NS_R" "$WORK/esppeer" -side b -local 192.0.2.2 -remote 192.0.2.1 \
		-local-ts 10.2.0.0/16 -remote-ts 10.1.0.0/16 -suite "$suite" -offload="$offload" -gso="$gso" >"$WORK/right.log" 2>&1 &
	PEER_R=$!
	PIDS+=("$PEER_L" "$PEER_R")
	for _ in $(seq 50); do
		grep -q ready "$WORK/left.log" 2>/dev/null && grep -q ready "$WORK/right.log" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "esp-throughput: esppeer did not start" >&2
	cat "$WORK/left.log" "$WORK/right.log" >&2
	exit 1
}

esppeer_down() {
	kill "$PEER_L" "$PEER_R" 2>/dev/null || true
	wait "$PEER_L" "$PEER_R" 2>/dev/null || true
}

declare -A RESULT

# measure NAME: TCP both ways (and UDP with -u) through whatever is up.
measure() {
	local name=$1
	RESULT[$name.tcp_lr]=$(iperf 10.2.0.1 rev)
	RESULT[$name.tcp_rl]=$(iperf 10.1.0.1 fwd)
	if [ "$UDP" = 1 ]; then
		RESULT[$name.udp_lr]=$(iperf 10.2.0.1 rev udp)
	fi
}

row_cygnet_cygnet() {
	esppeer_up "$SUITE" false
	measure cygnet_cygnet
	esppeer_down
}

row_cygnet_cygnet_offload() {
	esppeer_up "$SUITE" true
	measure cygnet_cygnet_offload
	esppeer_down
}

row_cygnet_cygnet_gso() {
	esppeer_up "$SUITE" true true
	measure cygnet_cygnet_gso
	esppeer_down
}

# row_swan_swan: the baseline, strongSwan's charon with kernel-libipsec in
# two namespaces (AES-GCM-256, ESP in UDP), through the testbed's own
# benchmark (5 s of iperf3 TCP, one direction).
row_swan_swan() {
	if [ ! -x /usr/lib/ipsec/charon ]; then
		echo "esp-throughput: no charon; baseline from BASELINE_MBPS" >&2
		return
	fi
	local out
	out=$(cd "$ROOT" && go test -run '^$' -bench 'CharonIperf3/tunnel-tcp' -benchtime 1x ./internal/testbed 2>&1) || true
	RESULT[swan_swan.tcp_lr]=$(echo "$out" | awk '/tunnel-tcp/ { for (i = 1; i <= NF; i++) if ($(i+1) == "Mbit/s") printf "%.0f", $i }')
	RESULT[swan_swan.tcp_rl]="-"
	RESULT[swan_swan.udp_lr]="-"
}

# row_cygnet_swan: to come with the daemon (see above).

ROWS=(swan_swan cygnet_cygnet)
[ "$OFFLOAD" = 1 ] && ROWS+=(cygnet_cygnet_offload)
[ "$GSO" = 1 ] && ROWS+=(cygnet_cygnet_gso)
declare -A LABEL=(
	[cygnet_cygnet]="Cygnet -> Cygnet ($SUITE, UDP encap)"
	[cygnet_cygnet_offload]="Cygnet -> Cygnet ($SUITE, UDP encap, TUN TSO/GRO)"
	[cygnet_cygnet_gso]="Cygnet -> Cygnet ($SUITE, TUN TSO/GRO, UDP GSO/GRO)"
	[cygnet_swan]="Cygnet -> strongSwan"
	[swan_swan]="strongSwan -> strongSwan (kernel-libipsec)"
)

for r in "${ROWS[@]}"; do
	echo "running $r..." >&2
	"row_$r"
done

base=${RESULT[$BASELINE.tcp_lr]:-}
mark=""
if [ -z "$base" ] || [ "$base" = 0 ]; then
	base=$BASELINE_MBPS
	mark=" ref"
fi
printf '| %-58s | %14s | %14s |' "tunnel ($SECONDS_PER_RUN s per run, $(nproc) CPUs)" "TCP l->r Mbit/s" "TCP r->l Mbit/s"
[ "$UDP" = 1 ] && printf ' %14s |' "UDP l->r Mbit/s"
printf ' %16s |\n' "ratio to baseline"
printf '|%s|%s|%s|' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..16})"
[ "$UDP" = 1 ] && printf '%s|' "$(printf -- '-%.0s' {1..16})"
printf '%s|\n' "$(printf -- '-%.0s' {1..18})"
for r in "${ROWS[@]}"; do
	lr=${RESULT[$r.tcp_lr]:-} rl=${RESULT[$r.tcp_rl]:-}
	[ -z "$lr" ] && continue
	printf '| %-58s | %14s | %14s |' "${LABEL[$r]}" "$lr" "$rl"
	[ "$UDP" = 1 ] && printf ' %14s |' "${RESULT[$r.udp_lr]}"
	printf ' %16s |\n' "$(python3 -c "print('%.1fx' % ($lr/$base))")$mark"
done
