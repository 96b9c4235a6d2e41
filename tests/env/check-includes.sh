#!/usr/bin/env bash
# Dependencies point one way: fsm <- cluster <- api; executors use the api
# client and the fsm schema. fsm/ includes nothing of ours outside fsm/.
set -u
cd "$(dirname "$0")/../.."
bad=0
check() { # dir forbidden-pattern
    local hits
    hits=$(grep -rnE "#include \"($2)" "$1" --include='*.[ch]' 2>/dev/null)
    if [ -n "$hits" ]; then
        echo "include rule broken in $1:"
        echo "$hits"
        bad=1
    fi
}
check fsm 'cluster/|api/|executors/'
check cluster 'api/|executors/'
check api 'executors/'
[ $bad = 0 ] && echo "includes ok"
exit $bad
