#!/usr/bin/env bash
# make bench-scale: the scale figures of issues #4 and #5. Prints Markdown
# to paste into docs/benchmarks.md (with the machine and the load average
# it ran under).
#
#  1. CreateVMInstance through the API on a 3-node cluster (`yunhan cluster
#     up`, loopback): `yunhan bench --action CreateVMInstance` (its setup
#     makes the zone, hosts, image, prices, tenant, balance, quotas), then
#     each node's RSS.
#  2. In-process (tests/bench/bench_scale.c, the fsm API on a real LMDB in
#     a temp dir): 100,000 tenants and 1,000,000 VMs (RSS, LMDB size,
#     snapshot, leader tick, DescribeVMInstance paging), IPAM at 65,000
#     addresses, a security group of 10,000 rules.
#
#   SCALE_ONLY (api|state|ipam|sg; default: all; rss only when named)   SCALE_SECONDS (20)
#   SCALE_HOSTS (32)   SCALE_VMS (1000000)   SCALE_TENANTS (100000)
#   SCALE_PORT (31200)
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
YH=$PWD/bin/yunhan
ONLY=${SCALE_ONLY:-}
SECS=${SCALE_SECONDS:-20}
HOSTS=${SCALE_HOSTS:-32}
VMS=${SCALE_VMS:-1000000}
TENANTS=${SCALE_TENANTS:-100000}
PORT=${SCALE_PORT:-31200}
DIR=

cleanup() {
    if [ -n "$DIR" ]; then
        "$YH" cluster down --dir "$DIR" >/dev/null 2>&1
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "## $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores" \
    "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
    "$(awk '/MemTotal/ {print int($2/1048576)}' /proc/meminfo) GiB," \
    "Linux $(uname -r))"
echo

if [ -z "$ONLY" ] || [ "$ONLY" = api ]; then
    DIR=$(mktemp -d /tmp/yh-scale.XXXXXX)
    "$YH" cluster up --dir "$DIR" --nodes 3 --base-port "$PORT" >/dev/null ||
        exit 1
    # shellcheck disable=SC1091
    . "$DIR/env"
    rss() {
        awk '/VmRSS/ {r=$2} /RssAnon/ {a=$2} /RssFile/ {f=$2}
             END {printf "%d MB (anon %d, file %d)", r/1024, a/1024, f/1024}' \
            "/proc/$(cat "$DIR/n$1.pid")/status"
    }
    # CPU seconds a node has used so far (utime + stime)
    cpu() {
        awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' \
            "/proc/$(cat "$DIR/n$1.pid")/stat"
    }
    declare -A CPU0
    for n in 1 2 3; do CPU0[$n]=$(cpu $n); done
    echo '### CreateVMInstance through the API, 3 nodes'
    echo
    echo '```'
    echo "# load average before: $(load)"
    echo "# yunhan bench --action CreateVMInstance --connections 128" \
        "--pipeline 16 --seconds $SECS --hosts $HOSTS --timeline"
    "$YH" bench --action CreateVMInstance --connections 128 --pipeline 16 \
        --seconds "$SECS" --hosts "$HOSTS" --timeline 2>&1 |
        tee "$DIR/bench.out"
    echo "# load average after: $(load)"
    ACKED=$(awk '/^requests:/ {print $4}' "$DIR/bench.out")
    for n in 1 2 3; do
        used=$(awk -v a="$(cpu $n)" -v b="${CPU0[$n]}" 'BEGIN {print a - b}')
        echo "n$n RSS: $(rss $n); CPU during setup + run: ${used} s" \
            "($(awk -v u="$used" -v n="${ACKED:-0}" \
                'BEGIN {if (n > 0) printf "%.0f", u * 1e6 / n; else print "?"}') us" \
            "per acked create)"
    done
    "$YH" cluster status --dir "$DIR"
    echo '```'
    echo
    cleanup
    DIR=
fi

# rss: the issue's memory target measured on real nodes: SCALE_TENANTS
# tenants (CreateUser) and SCALE_VMS machines (CreateVMInstance, one tenant,
# SCALE_HOSTS hosts) created through the API, then each node's RSS once the
# last snapshot is done. Not part of the default run (it takes minutes):
# SCALE_ONLY=rss.
if [ "$ONLY" = rss ]; then
    DIR=$(mktemp -d /tmp/yh-scale.XXXXXX)
    "$YH" cluster up --dir "$DIR" --nodes 3 --base-port "$PORT" >/dev/null ||
        exit 1
    # shellcheck disable=SC1091
    . "$DIR/env"
    rss() {
        awk '/VmRSS/ {r=$2} /RssAnon/ {a=$2} /RssFile/ {f=$2} /VmHWM/ {h=$2}
             END {printf "RSS %d MB (anon %d, file %d), peak %d MB", r/1024,
                  a/1024, f/1024, h/1024}' "/proc/$(cat "$DIR/n$1.pid")/status"
    }
    echo "### $TENANTS tenants and $VMS machines through the API, 3 nodes"
    echo
    echo '```'
    echo "# load average before: $(load)"
    "$YH" bench --action CreateUser --connections 64 --pipeline 16 \
        --seconds 36000 --count "$TENANTS" --leader-only 2>&1 |
        grep -E '^(requests|throughput|errors)'
    "$YH" bench --action CreateVMInstance --connections 64 --pipeline 16 \
        --seconds 36000 --count "$VMS" --hosts "$HOSTS" --leader-only 2>&1 |
        grep -E '^(requests|throughput|tenant|errors)'
    for n in 1 2 3; do echo "n$n right after: $(rss $n)"; done
    sleep 30 # a snapshot may be in flight
    for n in 1 2 3; do echo "n$n 30 s later: $(rss $n)"; done
    du -sh "$DIR"/n1/state "$DIR"/n1/raft "$DIR"/n1/archive 2>/dev/null
    "$YH" cluster status --dir "$DIR"
    echo "# load average after: $(load)"
    echo '```'
    echo
    cleanup
    DIR=
fi

for part in state ipam sg; do
    if [ -z "$ONLY" ] || [ "$ONLY" = "$part" ]; then
        echo '```'
        echo "# $BUILD/tests/bench_scale --only $part --vms $VMS" \
            "--tenants $TENANTS"
        "$BUILD/tests/bench_scale" --only "$part" --vms "$VMS" \
            --tenants "$TENANTS" 2>/dev/null
        echo "# load average after: $(load)"
        echo '```'
        echo
    fi
done
