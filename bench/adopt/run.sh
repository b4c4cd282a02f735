#!/usr/bin/env bash
# Adoption (issue 21): the first sync after losing the ledger of a Maildir
# archive, against a normal incremental sync of the same window with the
# ledger intact. Both list the same window and write nothing; the first
# also lists every archive folder once, reads the trace headers of every
# copy and records each in the ledger and the manifest.
#
#   bench/adopt/run.sh [ITEMS] [REPS]
#       defaults: 20000 items, 3 repetitions
#
# One archive is written first (not measured). Then, REPS times, the two
# runs alternate: the ledger deleted and the window synced (adopting every
# copy), then the window synced again with that ledger (a normal run,
# reading one mark per mailbox). Medians are reported; each adopting run
# must write nothing and adopt every copy, each normal run must adopt none,
# or the benchmark fails.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

ITEMS=${1:-20000}
REPS=${2:-3}
WORK=$BENCH_WORK/adopt

fresh_dir "$WORK"
trap stop_sim EXIT

start_sim "items=$ITEMS,large=0,seed=2026"
home=$WORK/home
new_connector "$home" "$WORK/archive"
echo "adopt benchmark: writing the $ITEMS-item archive once..." >&2
sync_window "$home" "$WORK/first.time"
COPIES=$(json_field "$WORK/first.time.out" written)

# check RESULT WRITTEN ADOPTED: the run's figures, or the benchmark stops.
check() {
    local written adopted failed
    written=$(json_field "$1" written)
    adopted=$(json_field "$1" adopted)
    failed=$(json_field "$1" failed)
    if [ "$written" != "$2" ] || [ "$adopted" != "$3" ] || [ "$failed" != 0 ]; then
        echo "expected $2 written and $3 adopted; got $written written, $adopted adopted, $failed failed" >&2
        exit 1
    fi
}

lost=() normal=()
for rep in $(seq "$REPS"); do
    rm -f "$home"/ledger.sqlite "$home"/ledger.sqlite-wal "$home"/ledger.sqlite-shm
    flush_disk
    sync_window "$home" "$WORK/lost.time"
    check "$WORK/lost.time.out" 0 "$COPIES"
    read -r secs _ <"$WORK/lost.time"
    lost+=("$secs")
    flush_disk
    sync_window "$home" "$WORK/normal.time"
    check "$WORK/normal.time.out" 0 0
    read -r secs _ <"$WORK/normal.time"
    normal+=("$secs")
    echo "  run $rep: ledger lost ${lost[-1]} s, normal ${normal[-1]} s" >&2
done

l=$(median "${lost[@]}")
n=$(median "${normal[@]}")
row "adopt: first sync after losing the ledger, $ITEMS items ($COPIES copies) in Maildir, s" \
    "$l" "$n (normal incremental sync, same window)" "$(calc "$l / $n")" "report" "-"
