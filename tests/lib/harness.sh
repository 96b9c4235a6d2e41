# Shell helpers for integration tests (source it).
#
#   . tests/lib/harness.sh
#   yh_tmpdir            -> $T, removed at exit (clusters in it are stopped)
#   yh_up [N] [args]     -> starts an N-node cluster in $T/c, sources its env
#   ok NAME / notok NAME [why]  print the line protocol tests/run.sh counts
#   check NAME CMD...    runs CMD, ok if it exits 0
#
# Ports: each test picks a base port from its own PID range so suites can
# run side by side; override with YH_BASE_PORT.
set -u
YH_BIN=${YH_BIN:-$PWD/bin}
YH=$YH_BIN/yunhan

ok() { echo "ok - $1"; }
notok() {
    echo "not ok - $1${2:+ ($2)}"
    YH_FAILED=1
}
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else notok "$name" "exit $?"; fi
}

yh_cleanup() {
    local d
    for d in "${YH_CLUSTERS[@]+"${YH_CLUSTERS[@]}"}"; do
        "$YH" cluster down --dir "$d" >/dev/null 2>&1 || true
    done
    if [ -n "${T:-}" ] && [ -d "$T" ] && [ -z "${YH_KEEP:-}" ]; then
        rm -rf "$T"
    fi
}

yh_tmpdir() {
    T=$(mktemp -d /tmp/yh-it.XXXXXX)
    YH_CLUSTERS=()
    trap yh_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Pick a free-looking base port: 20000 + (pid % 400) * 100.
yh_base_port() {
    echo "${YH_BASE_PORT:-$((20000 + ($$ % 400) * 100))}"
}

# yh_up N [extra cluster-up args...]; cluster dir is $T/c (or $YH_DIR).
yh_up() {
    local n=${1:-3}
    shift || true
    local dir=${YH_DIR:-$T/c}
    YH_CLUSTERS+=("$dir")
    "$YH" cluster up --dir "$dir" --nodes "$n" --base-port "$(yh_base_port)" "$@" ||
        return 1
    # shellcheck disable=SC1091
    . "$dir/env"
}
