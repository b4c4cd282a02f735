#!/usr/bin/env bash
# Benchmark 3 (large items): peak RSS of `sync` on items far larger than
# the memory target, so a body held whole in memory would show at once.
# The baseline is curl downloading the same items (16 in flight). One
# mailbox per item and curl writing to /dev/null keep the disk needed to
# the archive itself (3 GB at full size) plus the tool's spool files.
#
#   bench/memory/run.sh [ITEMS] [SIZE]      defaults: 20 items of 150MB
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

ITEMS=${1:-20}
SIZE=${2:-150MB}
WORK=$BENCH_WORK/memory

fresh_dir "$WORK"
# A few dozen large files: deleting them does not disturb what runs next.
trap 'stop_sim; rm -rf "$WORK"' EXIT

start_sim "items=$ITEMS,large=1,large-size=$SIZE,mapped-per-item=1,unmapped=0,seed=150"
echo "memory benchmark: $ITEMS items of $SIZE (the simulator hashes them first)..." >&2
python3 "$BENCH_ROOT/bench/sync_maildir/plan.py" "$SIM_URL" "$SIM_USER" "$SIM_PASSWORD" \
    "$WINDOW_SINCE" "$WINDOW_UNTIL" "$WORK/curl-archive" "$WORK"
plan=$WORK/plan.json
COPIES=$(json_field "$plan" copies)
printf 'header = "Authorization: Bearer %s"\n' "$(json_field "$plan" token)" >"$WORK/auth.cfg"
sed -i 's#^output = .*#output = "/dev/null"#' "$WORK/curl.cfg"

flush_disk
timed "$WORK/base.time" curl --silent --show-error --fail --parallel --parallel-max 16 \
    -K "$WORK/auth.cfg" -K "$WORK/curl.cfg"
read -r bsecs bkib <"$WORK/base.time"

new_connector "$WORK/home" "$WORK/archive"
flush_disk
sync_window "$WORK/home" "$WORK/tool.time"
read -r secs kib <"$WORK/tool.time"
assert_wrote_all "$WORK/tool.time.out" "$COPIES"
echo "  curl ${bsecs} s $((bkib / 1024)) MiB; wechat-archiver ${secs} s $((kib / 1024)) MiB" >&2

row "3. peak RSS, $ITEMS items of $SIZE ($COPIES copies), MiB" "$((kib / 1024))" "$((bkib / 1024)) (curl)" \
    "$(calc "$kib / $bkib")" "< 64 MiB" "$(verdict "$kib < 64 * 1024")"
