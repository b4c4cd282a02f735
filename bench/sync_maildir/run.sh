#!/usr/bin/env bash
# Benchmark 1 (and the window half of 3): `sync` from the simulator on
# loopback into a Maildir tree, against the floor of the same work without
# the tool: curl downloading every item's content (parallel, keep-alive, the
# same 16 transfers in flight as the tool), copying it to every further
# mailbox, then one `sync` so it is on disk. Both write to the same disk.
#
#   bench/sync_maildir/run.sh [ITEMS] [REPS] [LARGE_FRACTION]
#       defaults: 20000 items, 3 repetitions, 0.1% large (20 items of 10.5-12 MB)
#
# Runs are interleaved, the order alternating (baseline then tool, tool
# then baseline, ...), and the median of each is reported. Each run writes into a new directory; nothing is
# deleted (the next run of the suite does it; see lib.sh for why). Each tool run must write exactly the copies the
# baseline wrote, with no failure, or the benchmark fails.
#
# OLD_BIN, another build of the tool (bench/compare_builds), replaces curl
# as the baseline, syncing from the same simulator (ratio old / this).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

ITEMS=${1:-20000}
REPS=${2:-3}
LARGE=${3:-0.001}
WORK=$BENCH_WORK/sync
PARALLEL=16

fresh_dir "$WORK"
trap stop_sim EXIT

start_sim "items=$ITEMS,large=$LARGE,seed=2026"
echo "sync benchmark: listing $ITEMS items (the simulator hashes every content once)..." >&2
python3 "$BENCH_ROOT/bench/sync_maildir/plan.py" "$SIM_URL" "$SIM_USER" "$SIM_PASSWORD" \
    "$WINDOW_SINCE" "$WINDOW_UNTIL" "$WORK/curl-archive" "$WORK"
plan=$WORK/plan.json
COPIES=$(json_field "$plan" copies)
printf 'header = "Authorization: Bearer %s"\nheader = "Accept: message/rfc822"\n' \
    "$(json_field "$plan" token)" >"$WORK/auth.cfg"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p.pop("token"); print("corpus:", json.dumps(p))' "$plan" >&2

baseline() {
    curl --silent --show-error --fail --parallel --parallel-max "$PARALLEL" \
        --create-dirs -K "$WORK/auth.cfg" -K "$WORK/curl-$1.cfg" &&
        python3 "$BENCH_ROOT/bench/sync_maildir/copy.py" "$WORK/copies-$1.tsv" &&
        sync
}
export -f baseline
export WORK PARALLEL BENCH_ROOT

tool_secs=() tool_rss=() base_secs=() base_rss=()

run_baseline() {
    local rep=$1 secs kib files
    flush_disk
    timed "$WORK/base.time" bash -c "baseline $rep"
    read -r secs kib <"$WORK/base.time"
    files=$(find "$WORK/curl-archive-$rep" -type f | wc -l)
    [ "$files" = "$COPIES" ] || { echo "baseline wrote $files of $COPIES copies" >&2; exit 1; }
    base_secs+=("$secs") base_rss+=("$kib")
}

# run_tool REP [BINARY]: one sync by this build, or by BINARY as the baseline.
run_tool() {
    local rep=$1 bin=${2:-$BIN} name=tool secs kib
    [ -n "${2:-}" ] && name=old
    BIN=$bin new_connector "$WORK/home-$name-$rep" "$WORK/archive-$name-$rep"
    flush_disk
    BIN=$bin sync_window "$WORK/home-$name-$rep" "$WORK/$name.time"
    read -r secs kib <"$WORK/$name.time"
    assert_wrote_all "$WORK/$name.time.out" "$COPIES"
    if [ "$name" = tool ]; then
        tool_secs+=("$secs") tool_rss+=("$kib")
    else
        base_secs+=("$secs") base_rss+=("$kib")
    fi
}

for rep in $(seq "$REPS"); do
    # The plan names curl-archive/; each run gets its own copy of it.
    sed "s#/curl-archive/#/curl-archive-$rep/#" "$WORK/curl.cfg" >"$WORK/curl-$rep.cfg"
    sed "s#/curl-archive/#/curl-archive-$rep/#g" "$WORK/copies.tsv" >"$WORK/copies-$rep.tsv"
    # The order alternates: whichever runs first on the fresh scratch
    # directory has been seen to run faster.
    if [ $((rep % 2)) = 1 ]; then
        run_base "$rep"
        run_tool "$rep"
    else
        run_tool "$rep"
        run_base "$rep"
    fi
    echo "  run $rep: ${OLD_BIN:+old build instead of }curl floor ${base_secs[-1]} s, wechat-archiver ${tool_secs[-1]} s ($((tool_rss[-1] / 1024)) MiB)" >&2
done

t=$(median "${tool_secs[@]}")
b=$(median "${base_secs[@]}")
rss=$(printf '%s\n' "${tool_rss[@]}" | sort -n | tail -n 1)
brss=$(printf '%s\n' "${base_rss[@]}" | sort -n | tail -n 1)
if [ -n "${OLD_BIN:-}" ]; then
    row "sync $ITEMS items into Maildir, this build vs $OLD_BIN, s (median of $REPS)" "$t" "$b (old build)" \
        "$(calc "$b / $t") (old/this)" "~1.0" "-"
    row "peak RSS of that sync, MiB" "$((rss / 1024))" "$((brss / 1024)) (old build)" \
        "$(calc "$rss / $brss")" "~1.0" "-"
    exit 0
fi
rate=$(calc "$COPIES / $t")
brate=$(calc "$COPIES / $b")
row "1. sync $ITEMS items ($COPIES copies) into Maildir, s" "$t" "$b (curl)" "$(calc "$t / $b")" "<= 1.5" \
    "$(verdict "$t / $b <= 1.5")"
row "1. copies per second" "${rate%.*}" "${brate%.*} (curl)" "$(calc "$rate / $brate")" ">= 1500/s" \
    "$(verdict "$rate >= 1500")"
row "3. peak RSS, $ITEMS-item window, MiB" "$((rss / 1024))" "$((brss / 1024)) (curl)" \
    "$(calc "$rss / $brss")" "< 64 MiB" "$(verdict "$rss < 64 * 1024")"
