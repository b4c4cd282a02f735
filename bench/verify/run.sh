#!/usr/bin/env bash
# Benchmark: `verify` of a Maildir archive (the manifest chain, the ledger
# against the manifests, the last day listed again from the simulator, and
# every copy read back and hashed) against the floor of its main work
# without the tool: `sha256sum` over the same copy files on the same disk.
# Both start from a cold cache: every copy file, the ledger and the
# manifests are evicted from the page cache first (posix_fadvise
# DONTNEED, no root needed; see lib.sh).
#
#   bench/verify/run.sh [ITEMS] [REPS] [LARGE_FRACTION]
#       defaults: 20000 items, 3 repetitions, 0.1% large (10.5-12 MB)
#
# One sync builds the archive; then the runs alternate (sha256sum then
# verify, verify then sha256sum, ...) and the median of each is reported.
# Each verify must exit 0 and read back every copy the sync wrote.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

ITEMS=${1:-20000}
REPS=${2:-3}
LARGE=${3:-0.001}
WORK=$BENCH_WORK/verify

fresh_dir "$WORK"
trap stop_sim EXIT

start_sim "items=$ITEMS,large=$LARGE,seed=2026"
echo "verify benchmark: syncing $ITEMS items into a Maildir archive..." >&2
HOME_DIR=$WORK/home ARCHIVE=$WORK/archive
new_connector "$HOME_DIR" "$ARCHIVE"
sync_window "$HOME_DIR" "$WORK/sync.time"
COPIES=$(json_field "$WORK/sync.time.out" written)
# Copies of one item in several mailboxes are hard links to one file; both
# contenders read every path (the second read of a link comes from cache).
find "$ARCHIVE" -type f -path '*/cur/*' -print0 >"$WORK/files"
FILES=$(tr -cd '\0' <"$WORK/files" | wc -c)
[ "$FILES" = "$COPIES" ] || { echo "the archive holds $FILES files, the sync wrote $COPIES" >&2; exit 1; }
BYTES=$(xargs -0 du -cb --apparent-size -l <"$WORK/files" | awk '$2 == "total" {n += $1} END {print n}')
echo "corpus: $COPIES copies, $BYTES bytes" >&2

cold() {
    flush_disk
    xargs -0 python3 -c '
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
' <"$WORK/files"
    evict_from_cache "$HOME_DIR/ledger.sqlite" "$HOME_DIR/ledger.sqlite-wal" "$HOME_DIR"/manifests/bench/*
}

tool_secs=() base_secs=() tool_rss=()

run_baseline() {
    local secs kib
    cold
    timed "$WORK/base.time" xargs -0 sha256sum -- <"$WORK/files"
    read -r secs kib <"$WORK/base.time"
    base_secs+=("$secs")
}

# verify exits 3 on findings: the simulator's data has recalls whose
# original is unmapped, which it rightly reports; every copy must be intact.
run_tool() {
    local secs kib checked status=0
    cold
    WECHAT_ARCHIVER_PASSWORD=$SIM_PASSWORD /usr/bin/time -f "%e %M" -o "$WORK/tool.time" \
        "$BIN" --home "$HOME_DIR" verify --json >"$WORK/tool.time.out" 2>"$WORK/tool.time.err" || status=$?
    if [ "$status" != 0 ] && [ "$status" != 3 ]; then
        echo "verify failed ($status)" >&2
        tail -n 20 "$WORK/tool.time.err" >&2
        exit 1
    fi
    # GNU time puts "Command exited with non-zero status 3" first.
    read -r secs kib < <(tail -n 1 "$WORK/tool.time")
    checked=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["integrity"]["intact"])' "$WORK/tool.time.out")
    [ "$checked" = "$COPIES" ] || { echo "verify found $checked of $COPIES copies intact" >&2; exit 1; }
    tool_secs+=("$secs") tool_rss+=("$kib")
}

for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then
        run_baseline
        run_tool
    else
        run_tool
        run_baseline
    fi
    echo "run $rep: verify ${tool_secs[-1]} s, sha256sum ${base_secs[-1]} s" >&2
done

tool=$(median "${tool_secs[@]}")
base=$(median "${base_secs[@]}")
rss=$(($(median "${tool_rss[@]}" | cut -d. -f1) / 1024))
ratio=$(calc "$tool / $base")
echo "verify    : $tool s (runs: ${tool_secs[*]}), peak RSS $rss MiB"
echo "sha256sum : $base s (runs: ${base_secs[*]})"
echo "ratio     : $ratio"
row "verify of a $ITEMS-item Maildir archive ($COPIES copies), cold cache, s (peak RSS $rss MiB)" \
    "$tool" "$base (sha256sum of the same files)" "$ratio" "<= 1.2" "$(verdict "$ratio <= 1.2")"
