#!/usr/bin/env bash
# libFuzzer runs of every tests/fuzz/fuzz_*.c target.
#
#   tests/fuzz/run.sh [FUZZ_TIME]     (seconds per target, default 30)
#
# Each target is built with clang -fsanitize=fuzzer,address,undefined into
# build-fuzz/ from only the sources it needs, then run for FUZZ_TIME seconds
# over a copy of tests/fuzz/corpus/<target>/ (the seeds stay untouched; new
# inputs land in build-fuzz/corpus/<target>/). A crash, leak, sanitizer
# report or timeout fails the run; the input is saved as
# build-fuzz/crash-<target>-* for adding to the seed corpus once fixed.
set -u
cd "$(dirname "$0")/../.."

FUZZ_TIME=${1:-${FUZZ_TIME:-30}}
OUT=build-fuzz
CC=${FUZZ_CC:-clang}
CFLAGS="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1 -D_GNU_SOURCE -I."
LIBS="-lmsgpackc -lcrypto -llmdb -lzstd -lxxhash -lpthread -lm"
# The wire layer and the base it sits on: all a wire target links.
WIRE_SRC="$(ls fsm/base/*.c fsm/*.c api/wire/*.c)"

if ! command -v "$CC" >/dev/null; then
    echo "fuzz: $CC not found (apt-get install clang)" >&2
    exit 1
fi
mkdir -p "$OUT"
failed=()
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    target=${name#fuzz_}
    bin=$OUT/$name
    echo "== fuzz $target: build"
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS "$src" $WIRE_SRC $LIBS -o "$bin"; then
        failed+=("$target (build)")
        continue
    fi
    work=$OUT/corpus/$target
    mkdir -p "$work"
    if [ -d "tests/fuzz/corpus/$target" ]; then
        cp -n tests/fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
    fi
    dict=()
    if [ -f "tests/fuzz/$target.dict" ]; then
        dict=(-dict="tests/fuzz/$target.dict")
    fi
    echo "== fuzz $target: ${FUZZ_TIME}s"
    if ! "$bin" "${dict[@]}" -max_total_time="$FUZZ_TIME" -timeout=10 \
        -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$OUT/crash-$target-" "$work" \
        >"$OUT/$target.log" 2>&1; then
        tail -40 "$OUT/$target.log"
        failed+=("$target")
        continue
    fi
    grep -E '^(stat::number_of_executed_units|stat::new_units_added)' \
        "$OUT/$target.log" | sed 's/^/   /'
    echo "   ok ($(ls "$work" | wc -l) inputs in $work)"
done
for f in "${failed[@]+"${failed[@]}"}"; do
    echo "FAILED: fuzz $f (log in $OUT/)"
done
[ "${#failed[@]}" = 0 ]
