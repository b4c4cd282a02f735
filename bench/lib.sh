# Shared helpers for the benchmarks; sourced, not run.
#
# Every benchmark appends its rows to $BENCH_RESULTS (one line each,
# tab-separated: benchmark, project figure, baseline figure, ratio, target,
# verdict) so bench/run.sh can print one table.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The release profile strips the binary; a run with `perf` in SYNC_PREFIX
# uses the `profiling` profile (same optimisation, symbols and debug info
# kept) unless BENCH_PROFILE says otherwise.
if [[ "${SYNC_PREFIX:-}" == *perf* ]]; then
    BENCH_PROFILE=${BENCH_PROFILE:-profiling}
fi
BENCH_PROFILE=${BENCH_PROFILE:-release}
BIN=${BIN:-${CARGO_TARGET_DIR:-$BENCH_ROOT/target}/$BENCH_PROFILE/wechat-archiver}
# Scratch space on the same disk as the project (not tmpfs), kept between
# runs only to be deleted at the start of the next.
BENCH_WORK=${BENCH_WORK:-$BENCH_ROOT/target/bench-work}
SIM_USER=admin@contoso.com
SIM_PASSWORD=simulator-password
# The simulator's default window (SimConfig::default).
WINDOW_SINCE=2026-11-21T00:00:00Z
WINDOW_UNTIL=2026-11-23T00:00:00Z
SIM_PID=

build_release() {
    echo "building the $BENCH_PROFILE binary..." >&2
    (cd "$BENCH_ROOT" && cargo build --profile "$BENCH_PROFILE" --quiet --bin wechat-archiver)
}

# start_sim SPEC: serves the simulator with `--set SPEC` on a free loopback
# port; sets SIM_URL and SIM_PID.
start_sim() {
    local out=$BENCH_WORK/sim.out
    mkdir -p "$BENCH_WORK"
    : >"$out"
    setsid "$BIN" simulate --listen 127.0.0.1:0 --set "$1" >"$out" 2>"$BENCH_WORK/sim.err" &
    SIM_PID=$!
    for _ in $(seq 600); do
        SIM_URL=$(sed -n 's/^simulator listening on //p' "$out")
        [ -n "$SIM_URL" ] && return 0
        kill -0 "$SIM_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "the simulator did not start:" >&2
    cat "$BENCH_WORK/sim.err" >&2
    exit 1
}

stop_sim() {
    [ -n "$SIM_PID" ] || return 0
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
    SIM_PID=
}

# new_connector HOME ARCHIVE: a connector `bench` on $SIM_URL writing into
# the Maildir tree ARCHIVE, automatic e-mail mapping, no mapping file.
new_connector() {
    rm -rf "$1" "$2"
    "$BIN" --home "$1" create bench --endpoint "$SIM_URL" --username "$SIM_USER" \
        --target "maildir:$2" --accept-terms >/dev/null
}

# run_base REP: the benchmark's baseline (its run_baseline), or, with OLD_BIN
# set (bench/compare_builds), that other build of the tool run as the tool
# is (its run_tool REP BINARY).
run_base() {
    if [ -n "${OLD_BIN:-}" ]; then run_tool "$1" "$OLD_BIN"; else run_baseline "$1"; fi
}

# timed FILE CMD...: runs CMD with GNU time; FILE gets "seconds max_rss_kib".
# CMD's stdout goes to FILE.out, its stderr to FILE.err.
timed() {
    local file=$1
    shift
    local status=0
    /usr/bin/time -f "%e %M" -o "$file" "$@" >"$file.out" 2>"$file.err" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "failed ($status): $*" >&2
        tail -n 20 "$file.err" >&2
        exit 1
    fi
}

# sync_window HOME RESULT: one full sync of the simulator's window.
sync_window() {
    WECHAT_ARCHIVER_PASSWORD=$SIM_PASSWORD timed "$2" \
        "$BIN" --home "$1" sync --since "$WINDOW_SINCE" --until "$WINDOW_UNTIL" --json
}

# assert_wrote_all RESULT COPIES: the sync whose --json output is RESULT
# wrote COPIES copies and failed none, or the benchmark stops.
assert_wrote_all() {
    local written failed
    written=$(json_field "$1" written)
    failed=$(json_field "$1" failed)
    if [ "$written" != "$2" ] || [ "$failed" != 0 ]; then
        echo "the sync wrote $written of $2 copies, $failed failed" >&2
        exit 1
    fi
}

# json_field FILE KEY: a top-level number of a JSON object.
json_field() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# median X...: the median of numbers.
median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}

# calc EXPR: floating-point arithmetic, 2 decimals.
calc() {
    awk "BEGIN{printf \"%.2f\", $1}"
}

# row NAME PROJECT BASELINE RATIO TARGET VERDICT: one line of the table.
row() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"${BENCH_RESULTS:-/dev/stdout}"
}

# verdict CONDITION: "ok" when the awk condition holds, else "MISSED".
verdict() {
    if awk "BEGIN{exit !($1)}"; then echo ok; else echo MISSED; fi
}

# flush_disk: writes back what earlier steps left dirty, so it is not
# charged to the next measurement.
flush_disk() {
    sync
}

# evict_from_cache FILE...: drops the files' pages from the OS page cache
# (after flush_disk: only clean pages go), as a day between cron runs
# would. Needs no privileges, unlike /proc/sys/vm/drop_caches.
evict_from_cache() {
    python3 - "$@" <<'PY'
import os, sys
for path in sys.argv[1:]:
    if os.path.exists(path):
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}

# Deleting many files on this ext4 (no journal) makes the kernel skip
# their inodes when it allocates new ones in the same block group: for 60 s
# after the deletion, and for 6 minutes while the inode table block is
# dirty, which creating files next to them keeps it. Creating files then
# costs a scan past all of them (`recently_deleted` in a profile), which
# would be charged to whatever benchmark runs next. So benchmarks delete
# nothing while the clocks run, the suite deletes at the end, and a run
# that starts within 6 minutes of a deletion waits it out.
BENCH_DELETED_AT=$BENCH_ROOT/target/bench-deleted-at

# delete_bench_files DIR...: deletes, and notes when.
delete_bench_files() {
    rm -rf "$@"
    sync
    mkdir -p "$(dirname "$BENCH_DELETED_AT")"
    touch "$BENCH_DELETED_AT"
}

# wait_for_inode_reuse: sleeps until 6.5 minutes after the last deletion
# (skipped with BENCH_NO_WAIT=1, as --smoke does: its few files do not matter).
wait_for_inode_reuse() {
    [ "${BENCH_NO_WAIT:-0}" = 1 ] && return 0
    [ -f "$BENCH_DELETED_AT" ] || return 0
    local age left
    age=$(($(date +%s) - $(stat -c %Y "$BENCH_DELETED_AT")))
    left=$((390 - age))
    if [ "$left" -gt 0 ]; then
        echo "waiting ${left} s: benchmark files were deleted ${age} s ago (ext4 inode reuse, see lib.sh)" >&2
        sleep "$left"
    fi
}

# fresh_dir DIR: an empty DIR, with any deletion waited out.
fresh_dir() {
    if [ -e "$1" ]; then
        delete_bench_files "$1"
    fi
    mkdir -p "$1"
    wait_for_inode_reuse
}
