#!/usr/bin/env bash
# Runs every test suite and prints one closing line "N passed, N failed".
#
#   unit:        $BUILD/tests/test_*   (cmocka; its summary lines are counted)
#   corpus:      $BUILD/tests/replay_fuzz_* over tests/fuzz/corpus/<target>/
#   integration: tests/integration/*.sh and test_*.py (run with Debian's
#                /usr/bin/python3), each printing "ok - NAME" /
#                "not ok - NAME" lines (a script that exits non-zero having
#                printed no "not ok" counts one failure)
#   jepsen:      jepsen/run.sh --quick, same line protocol
#
# YH_ONLY=unit|corpus|integration|jepsen runs one class; YH_SKIP likewise
# skips one (comma-separated).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
export BUILD BIN
export YH_BIN=$PWD/$BIN
passed=0
failed=0
failures=()
logdir=$(mktemp -d /tmp/yh-test-logs.XXXXXX)

want() {
    local cls=$1
    if [ -n "${YH_ONLY:-}" ] && [[ ",$YH_ONLY," != *",$cls,"* ]]; then
        return 1
    fi
    if [[ ",${YH_SKIP:-}," == *",$cls,"* ]]; then
        return 1
    fi
    return 0
}

# count_lines LOG RC NAME: count ok / not ok lines of a line-protocol suite.
count_lines() {
    local log=$1 rc=$2 name=$3 p f
    p=$(grep -c '^ok - ' "$log" || true)
    f=$(grep -c '^not ok - ' "$log" || true)
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        f=1
        echo "not ok - $name exited $rc" >>"$log"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" != 0 ]; then
        failures+=("$name: $(grep '^not ok - ' "$log" | head -5 | tr '\n' ';')")
    fi
}

if want unit; then
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        log=$logdir/$name.log
        echo "== unit $name"
        "$t" >"$log" 2>&1
        rc=$?
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
            f=1
        fi
        passed=$((passed + p))
        failed=$((failed + f))
        echo "   $p passed, $f failed"
        if [ "$f" != 0 ]; then
            grep -E '^\[  (FAILED|ERROR) |ERROR|Sanitizer|runtime error' "$log" | head -20
            failures+=("$name")
        fi
    done
fi

if want corpus; then
    for t in "$BUILD"/tests/replay_fuzz_*; do
        [ -x "$t" ] || continue
        target=${t##*/replay_fuzz_}
        dir=tests/fuzz/corpus/$target
        [ -d "$dir" ] || continue
        echo "== corpus $target"
        if "$t" "$dir" >"$logdir/corpus_$target.log" 2>&1; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            failures+=("corpus $target")
            tail -20 "$logdir/corpus_$target.log"
        fi
    done
fi

if want integration; then
    for s in tests/integration/*.sh tests/integration/test_*.py; do
        [ -f "$s" ] || continue
        name=$(basename "$s")
        name=${name%.*}
        log=$logdir/int_$name.log
        echo "== integration $name"
        case "$s" in
        *.py) timeout -k 10 900 /usr/bin/python3 "$s" >"$log" 2>&1 ;;
        *) timeout -k 10 900 "$s" >"$log" 2>&1 ;;
        esac
        rc=$?
        count_lines "$log" "$rc" "$name"
        grep -E '^(ok|not ok) - ' "$log" | sed 's/^/   /'
        if grep -q '^not ok - ' "$log"; then
            tail -30 "$log" | sed 's/^/   | /'
        fi
    done
fi

if want jepsen && [ -x jepsen/run.sh ]; then
    log=$logdir/jepsen.log
    echo "== jepsen-quick"
    timeout -k 10 900 jepsen/run.sh --quick >"$log" 2>&1
    rc=$?
    count_lines "$log" "$rc" jepsen
    grep -E '^(ok|not ok) - ' "$log" | sed 's/^/   /'
fi

echo "logs in $logdir"
for f in "${failures[@]+"${failures[@]}"}"; do
    echo "FAILED: $f"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
