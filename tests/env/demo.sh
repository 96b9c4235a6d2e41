#!/usr/bin/env bash
# make demo: a 3-node cluster on loopback in a temp dir and a narrated CLI
# session. Stops everything it started, also on Ctrl-C or failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
YH=$PWD/bin/yunhan
DIR=$(mktemp -d /tmp/yunhan-demo.XXXXXX)
BASE=${YH_DEMO_PORT:-17400}

cleanup() {
    "$YH" cluster down --dir "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
    printf '$ %s\n' "$*"
    "$@"
}
die() {
    echo "demo failed: $*" >&2
    for n in 1 2 3; do
        echo "--- n$n.log (tail)" >&2
        tail -5 "$DIR/n$n.log" >&2 2>/dev/null
    done
    exit 1
}

say "Starting a 3-node cluster in $DIR (API ports $((BASE + 1))-$((BASE + 3)))"
run "$YH" cluster up --dir "$DIR" --nodes 3 --base-port "$BASE" || die "cluster up"
# shellcheck disable=SC1091
. "$DIR/env"
echo "YUNHAN_ENDPOINT=$YUNHAN_ENDPOINT"

say "DescribeCluster: who leads, terms, indexes, the state digest"
run "$YH" DescribeCluster || die DescribeCluster

say "CreateUser: a tenant (the admin key from cluster up signs every call)"
echo '$ yunhan --json CreateUser UserEmail=alice@example.com PassWord=correct-horse Name=alice'
out=$("$YH" --json CreateUser UserEmail=alice@example.com PassWord=correct-horse Name=alice) || die CreateUser
echo "$out"
uid=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["UserID"])')

say "CreateAPIKey for alice"
run "$YH" CreateAPIKey UserID="$uid" || die CreateAPIKey

say "A write: ModifyNameAndRemark"
run "$YH" ModifyNameAndRemark ResourceID="$uid" Remark="written before failover" || die write

say "A linearizable read: DescribeUser"
run "$YH" DescribeUser UserIDs.0="$uid" || die read

leader=$("$YH" --json DescribeCluster | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["LeaderID"])')
say "kill -9 the leader (node $leader)"
run "$YH" cluster kill --dir "$DIR" --node "$leader" --signal KILL || die kill
sleep 0.5

say "The same read, served after failover by the surviving nodes"
for i in $(seq 1 40); do
    if "$YH" DescribeUser UserIDs.0="$uid" >/tmp/yh-demo-read.$$ 2>&1; then
        break
    fi
    sleep 0.25
done
cat /tmp/yh-demo-read.$$
rm -f /tmp/yh-demo-read.$$
grep -q "written before failover" <("$YH" DescribeUser UserIDs.0="$uid") || die "read after failover"

say "A write accepted by the new leader"
run "$YH" ModifyNameAndRemark ResourceID="$uid" Remark="written after failover" || die "write after failover"
run "$YH" DescribeCluster || die DescribeCluster

say "Restart the old leader: it catches up and reports the same digest"
run "$YH" cluster start --dir "$DIR" --node "$leader" || die restart
sleep 2
run "$YH" cluster status --dir "$DIR"

say "The operation log: who did what, when, from where"
run "$YH" DescribeOperationLog Limit=10

say "Stopping everything"
run "$YH" cluster down --dir "$DIR"
echo "demo finished"
