#!/usr/bin/env bash
# Benchmark 4: an incremental sync of NEW new items against a ledger that
# already holds BIG copies, against the same sync on a ledger of SMALL
# copies. The ratio must stay near 1: every query the sync makes is an
# index lookup or insert, never a scan that grows with the ledger. Also
# times `status` after each sync: it reads running totals, not the rows.
#
#   bench/ledger/run.sh [BIG] [SMALL] [NEW] [REPS]
#       defaults: 10,000,000 and 10,000 copies, 1,000 new items, 3 repetitions
#
# Each repetition serves a fresh simulator seed (new item ids) and syncs it
# into both ledgers, small first in odd repetitions and big first in even
# ones (the second sync of a pair tends to be a little faster); the median
# of each is reported. Each sync starts with its ledger out of the OS page
# cache, as the next day's cron run finds it; otherwise the figure depends
# on how much of a 3-5 GB file the machine happened to keep. The ledgers
# are filled once (a 10M ledger takes a few minutes) and kept in
# target/bench-work/ledger-cache/; delete that directory to rebuild them.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

BIG=${1:-10000000}
SMALL=${2:-10000}
NEW=${3:-1000}
REPS=${4:-3}
WORK=$BENCH_WORK/ledger
CACHE=$BENCH_WORK/ledger-cache
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SIM_URL=http://127.0.0.1:$PORT

fresh_dir "$WORK"
mkdir -p "$CACHE"
trap stop_sim EXIT

# Marks a cached ledger filled by this version of fill.py; a cache without
# it is rebuilt. The tool upgrades older tables.
FILLED=filled-v5

# Items archived long before today. Every run retries the unmapped items
# archived in the last week; with the simulator's recent window, the kept
# big ledger gathered each run's unmapped items and retried them all in
# every later run, which the small one, copied afresh, never did. Older
# unmapped items (fill.py gives each ledger one in a hundred) wait for a
# change of configuration, which ledger_home makes and then retries.
WINDOW_SINCE=2025-06-01T00:00:00Z
WINDOW_UNTIL=2025-06-03T00:00:00Z

# fill_ledger HOME COPIES: a home whose ledger holds COPIES copies.
fill_ledger() {
    echo "building a ledger of $2 copies..." >&2
    new_connector "$1" "$WORK/unused-archive"
    "$BIN" --home "$1" status >/dev/null
    python3 "$BENCH_ROOT/bench/ledger/fill.py" "$1/ledger.sqlite" bench "$2" >/dev/null
    touch "$1/$FILLED"
}

# ledger_home NAME COPIES [in-place]: $WORK/NAME-home, a home with connector
# `bench` on this run's simulator and a ledger of COPIES copies, copied from
# the cache; with in-place, the cached home itself (a 10M-copy ledger is
# 3.1 GB: one copy on disk is enough; each run adds its few copies to it).
ledger_home() {
    local cached=$CACHE/home-$2 home=$WORK/$1-home
    [ -f "$cached/$FILLED" ] || fill_ledger "$cached" "$2"
    # Opening the ledger upgrades one a previous version of the tool left,
    # once, here rather than inside a timed sync.
    "$BIN" --home "$cached" status >/dev/null
    new_connector "$home" "$WORK/$1-archive"
    if [ "${3:-}" = in-place ]; then
        cp "$home/config.toml" "$cached/config.toml"
        rm -rf "$home"
        ln -s "$cached" "$home"
    else
        cp "$cached/ledger.sqlite" "$home/ledger.sqlite"
    fi
    retry_all_unmapped "$home"
}

# retry_all_unmapped HOME: the retry of every unmapped item that a new
# connector configuration makes due (as a changed mapping would), done
# here on an empty window rather than by the first timed sync.
# Says how long it took: the cost of the weekly retry.
retry_all_unmapped() {
    local start=$EPOCHREALTIME
    WECHAT_ARCHIVER_PASSWORD=$SIM_PASSWORD "$BIN" --home "$1" sync --retry-unmapped \
        --since 2025-05-01T00:00:00Z --until 2025-05-01T01:00:00Z --json >"$1.retry.json"
    echo "  $(basename "$1"): retried $(json_field "$1.retry.json" unmapped) unmapped items" \
        "in $(calc "$EPOCHREALTIME - $start") s" >&2
}

# status_ms HOME: milliseconds `status --json` takes on HOME (GNU time
# counts in hundredths of a second; this answers in a few milliseconds).
status_ms() {
    local start=$EPOCHREALTIME
    "$BIN" --home "$1" status --json >/dev/null
    calc "($EPOCHREALTIME - $start) * 1000"
}

# start_sim_at SPEC: the simulator on the fixed port the connectors use.
start_sim_at() {
    setsid "$BIN" simulate --listen "127.0.0.1:$PORT" --set "$1" >"$WORK/sim.out" 2>&1 &
    SIM_PID=$!
    for _ in $(seq 300); do
        grep -q "listening" "$WORK/sim.out" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the simulator did not start" >&2
    cat "$WORK/sim.out" >&2
    exit 1
}

small_secs=() big_secs=() small_status=() big_status=()
for rep in $(seq "$REPS"); do
    # A seed never used before: new item ids, even for the kept big ledger.
    start_sim_at "items=$NEW,window-start=$WINDOW_SINCE,window-end=$WINDOW_UNTIL,seed=$(($(date +%s) * 10 + rep))"
    if [ "$rep" = 1 ]; then
        ledger_home small "$SMALL"
        ledger_home big "$BIG" in-place
        echo "ledger benchmark: $(du -h "$WORK/big-home/ledger.sqlite" | cut -f1) ledger of $BIG copies" >&2
    fi
    # Lists once so the simulator has hashed every content before a clock runs.
    python3 "$BENCH_ROOT/bench/sync_maildir/plan.py" "$SIM_URL" "$SIM_USER" "$SIM_PASSWORD" \
        "$WINDOW_SINCE" "$WINDOW_UNTIL" "$WORK/unused" "$WORK"
    copies=$(json_field "$WORK/plan.json" copies)
    order="small big"
    [ $((rep % 2)) = 0 ] && order="big small"
    for which in $order; do
        flush_disk
        evict_from_cache "$WORK/$which-home/ledger.sqlite" "$WORK/$which-home/ledger.sqlite-wal"
        sync_window "$WORK/$which-home" "$WORK/$which.time"
        read -r secs _ <"$WORK/$which.time"
        written=$(json_field "$WORK/$which.time.out" written)
        [ "$written" = "$copies" ] || { echo "$which: wrote $written of $copies copies" >&2; exit 1; }
        ms=$(status_ms "$WORK/$which-home")
        if [ "$which" = small ]; then
            small_secs+=("$secs") small_status+=("$ms")
        else
            big_secs+=("$secs") big_status+=("$ms")
        fi
    done
    stop_sim
    echo "  run $rep: $NEW items ($copies copies): ${small_secs[-1]} s on $SMALL copies, ${big_secs[-1]} s on $BIG" >&2
done

s=$(median "${small_secs[@]}")
b=$(median "${big_secs[@]}")
row "4. sync $NEW new items, ledger of $BIG vs $SMALL copies, s" "$b" "$s" "$(calc "$b / $s")" "~1.0 (<= 1.2)" \
    "$(verdict "$b / $s <= 1.2")"
s=$(median "${small_status[@]}")
b=$(median "${big_status[@]}")
row "4b. status after that sync, ledger of $BIG vs $SMALL copies, ms" "$b" "$s" "$(calc "$b / $s")" \
    "~1.0 (<= 1.5)" "$(verdict "$b / $s <= 1.5")"
