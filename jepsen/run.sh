#!/usr/bin/env bash
# Yunhan Jepsen-style harness.
#   jepsen/run.sh --quick     checker self-tests + quick runs (make jepsen-quick)
#   jepsen/run.sh --full      full matrix, summary in docs/jepsen.md (make jepsen)
#   jepsen/run.sh --nemesis kill [--workload register] [--time 30] [--seed N]
#   jepsen/run.sh --replay jepsen/runs/<dir>
# Prints "ok - NAME" / "not ok - NAME (why)" lines; exits non-zero on failure.
# Needs root (network namespaces) and Debian's /usr/bin/python3 with
# python3-msgpack.
set -u
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if [ ! -x "$py" ] || ! "$py" -c 'import msgpack' 2>/dev/null; then
    echo "not ok - jepsen environment (need /usr/bin/python3 with python3-msgpack)"
    exit 1
fi
if [ "$(id -u)" != 0 ] && [[ " $* " != *" --list "* ]]; then
    echo "not ok - jepsen environment (not root: network namespaces need root)"
    exit 1
fi
export PYTHONDONTWRITEBYTECODE=1
exec "$py" "$here/yhjepsen/main.py" "$@"
