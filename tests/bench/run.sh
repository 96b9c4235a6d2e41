#!/usr/bin/env bash
# make bench: the figures issue #2 sets, measured through the real API on a
# 3-node cluster on this machine. Prints a Markdown section to paste into
# docs/benchmarks.md (with the machine it ran on).
#
#   BENCH_SECONDS (20)  BENCH_RECORDS (1000000)  BENCH_PORT (31000)
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
YH=$PWD/bin/yunhan
SECS=${BENCH_SECONDS:-20}
RECORDS=${BENCH_RECORDS:-1000000}
PORT=${BENCH_PORT:-31000}
DIR=$(mktemp -d /tmp/yh-bench.XXXXXX)
trap '"$YH" cluster down --dir "$DIR" >/dev/null 2>&1; rm -rf "$DIR"' EXIT

"$YH" cluster up --dir "$DIR" --nodes 3 --base-port "$PORT" >/dev/null || exit 1
# shellcheck disable=SC1091
. "$DIR/env"
# cpu_bench ARGS...: run `yunhan bench ARGS`, then the CPU each node used per
# acked write (utime+stime from /proc/PID/stat) and the machine's idle time
# per write: where the two cores went.
cpu_bench() {
    local hz i0 i1 out acked
    local -a before
    hz=$(getconf CLK_TCK)
    for n in 1 2 3; do
        before[n]=$(awk '{print $14 + $15}' "/proc/$(cat "$DIR/n$n.pid")/stat")
    done
    i0=$(awk '/^cpu / {print $5 + $6}' /proc/stat)
    out=$("$YH" bench "$@")
    i1=$(awk '/^cpu / {print $5 + $6}' /proc/stat)
    echo "$out"
    acked=$(echo "$out" | awk '/^requests:/ {print $4}')
    [ -n "$acked" ] && [ "$acked" -gt 0 ] || return 0
    printf 'CPU per acked write:'
    for n in 1 2 3; do
        b=$(awk '{print $14 + $15}' "/proc/$(cat "$DIR/n$n.pid")/stat")
        awk -v n="$n" -v t="$((b - before[n]))" -v hz="$hz" -v a="$acked" \
            'BEGIN {printf " n%d %.1f us", n, t * 1e6 / hz / a}'
    done
    awk -v t="$((i1 - i0))" -v hz="$hz" -v a="$acked" -v c="$(nproc)" \
        'BEGIN {printf ", machine idle %.1f us (of %d cores)\n", t * 1e6 / hz / a, c}'
}
mem() {
    awk '/^(VmRSS|RssAnon|RssFile|VmHWM)/ {printf "%s %d MB  ", $1, int($2 / 1024)}' \
        "/proc/$(cat "$DIR/n$1.pid")/status"
}

echo "## $(date -u +%Y-%m-%d) on $(nproc) cores, $(awk '/MemTotal/ {print int($2/1048576)}' /proc/meminfo) GiB, $(uname -r)"
echo
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo '```'
echo "# 128 connections x 16 pipelined, 256-byte ModifyNameAndRemark, ${SECS}s"
cpu_bench --connections 128 --pipeline 16 --seconds "$SECS" --size 256
echo
echo "# the same, every connection on the leader (a leader-aware client)"
cpu_bench --connections 128 --pipeline 16 --seconds "$SECS" --size 256 --leader-only
echo
echo "# 1 connection, sequential, 256-byte writes, 10s"
"$YH" bench --connections 1 --pipeline 1 --seconds 10 --size 256
echo
echo "# linearizable reads, 64 connections x 8, 10s"
"$YH" bench --connections 64 --pipeline 8 --seconds 10 --read
echo
echo "# $RECORDS small records (64-byte writes, each one operation-log record)"
"$YH" bench --connections 64 --pipeline 16 --seconds 3600 --count "$RECORDS" --size 64
for n in 1 2 3; do echo "n$n right after $RECORDS records: $(mem $n)"; done
sleep 10 # a snapshot may be in flight: let it finish
for n in 1 2 3; do echo "n$n 10 s later: $(mem $n)"; done
du -sh "$DIR/n1/state" "$DIR/n1/raft" "$DIR/n1/archive" 2>/dev/null
"$YH" cluster status --dir "$DIR"
echo
echo "# snapshot + restore of that state (copy of a stopped follower's LMDB)"
L=$("$YH" --json DescribeCluster | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["LeaderID"])')
F=1
[ "$L" = 1 ] && F=2
"$YH" cluster kill --dir "$DIR" --node "$F" --signal TERM >/dev/null
sleep 1
cp -r "$DIR/n$F/state" "$DIR/state-copy"
du -sh "$DIR/state-copy"
"$BUILD/tests/bench_snapshot" "$DIR/state-copy"
echo '```'
