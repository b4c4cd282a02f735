#!/usr/bin/env bash
# The benchmark suite (issue 7): every benchmark, each against a baseline
# measured in the same run, printed as one table (Markdown, as the README
# carries it).
#
#   bench/run.sh            full sizes (about 50 minutes, plus a one-time
#                           build of a 10,000,000-copy ledger, and a wait
#                           if benchmark files were deleted minutes before)
#   bench/run.sh --smoke    small sizes, a couple of minutes: checks that
#                           every benchmark still runs (what CI may run)
#   bench/run.sh --only sync,memory,ledger,map,imap,graph,adopt,verify,lmtp   a subset
#
# Ratios: for times, wechat-archiver / baseline (below 1 is faster); for
# memory, RSS / baseline RSS; for IMAP, mbsync time / wechat-archiver time
# (above 1 is faster), as those benchmarks print it. `imap` runs both the
# end-to-end sync into Dovecot (bench/imap_sync) and the writer alone
# (bench/imap). `lmtp` is `receive`'s LMTP ingest against Dovecot's own
# LMTP delivery (ratio: tool throughput / Dovecot's), plus the latency
# from Postfix's accept to the copy; one repetition at full size, which
# takes about 25 minutes at the 2026-12-03 throughput (docs/performance.md).
#
# Needs: cargo, python3, curl, GNU time; for `map`, PyPI access once (the
# phonenumbers package, in a venv); for `imap`, dovecot and isync (mbsync);
# for `lmtp`, dovecot-lmtpd and postfix (scripts/install-test-deps.sh).
# Scratch files go to target/bench-work/ on the project's disk and stay
# there until the next run (about 11 GB at full size at the peak: the sync
# runs, the memory benchmark's archive and spool, the 3 GB ledger).
# Exit status: 0 when every benchmark ran (a missed target is shown in the
# table, not as a failure), 1 when one of them broke.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

SMOKE=0
ONLY=sync,memory,ledger,map,imap,graph,adopt,verify,lmtp
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) SMOKE=1 ;;
    --only) ONLY=$2; shift ;;
    -h | --help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
wanted() { [[ ",$ONLY," == *",$1,"* ]]; }

[ "$SMOKE" = 1 ] && export BENCH_NO_WAIT=1
export BENCH_RESULTS=$BENCH_ROOT/target/bench-results.tsv
: >"$BENCH_RESULTS"
build_release
# The previous run's files (tens of thousands at full size) go first; the
# benchmarks then wait out ext4's inode reuse delay once (see lib.sh).
for old in "$BENCH_WORK"/*; do
    [ -e "$old" ] && [ "$old" != "$BENCH_WORK/ledger-cache" ] && delete_bench_files "$old"
done
mkdir -p "$BENCH_WORK"
broken=0

# run_bench NAME CMD...: runs one benchmark; a crash is reported, not fatal.
run_bench() {
    local name=$1
    shift
    echo "== $name" >&2
    if ! "$@"; then
        echo "!! the $name benchmark failed" >&2
        row "$name" "-" "-" "-" "-" "FAILED TO RUN"
        broken=1
    fi
}

# Benchmarks other work streams own: run when present, parse their report.
map_bench() {
    local rows=$1 out=$BENCH_WORK/map.out
    bash "$here/map_validate/run.sh" "$rows" >"$out" 2>"$out.err" || true
    local tool py ratio rss
    tool=$(sed -n 's/^ *wechat-archiver *: *\([0-9.]*\) s.*/\1/p' "$out")
    py=$(sed -n 's/^ *python baseline *: *\([0-9.]*\) s.*/\1/p' "$out")
    rss=$(sed -n 's/^ *wechat-archiver *:.*peak RSS \([0-9]*\) MiB.*/\1/p' "$out")
    [ -n "$tool" ] && [ -n "$py" ] || { cat "$out.err" >&2; return 1; }
    ratio=$(calc "$tool / $py")
    row "5. map validate, $rows rows, s (peak RSS $rss MiB)" "$tool" "$py (Python csv+phonenumbers)" "$ratio" \
        "<= 0.1, < 1.5 s" "$(verdict "$ratio <= 0.1 && ($rows < 1000000 || $tool < 1.5)")"
}
imap_bench() {
    local items=$1 users=$2 out=$BENCH_WORK/imap.out
    ROUNDS=${IMAP_ROUNDS:-3} bash "$here/imap/run.sh" "$items" "$users" >"$out" 2>"$out.err" || { cat "$out.err" >&2; return 1; }
    local writer seq par
    writer=$(awk -F'|' '/ImapWriter/ {gsub(/ /,"",$3); print $3}' "$out")
    seq=$(awk -F'|' '/mbsync -a/ {gsub(/ /,"",$3); print $3}' "$out")
    par=$(awk -F'|' '/one process per mailbox/ {gsub(/ /,"",$3); print $3}' "$out")
    [ -n "$writer" ] && [ -n "$seq" ] || { cat "$out" "$out.err" >&2; return 1; }
    row "2. IMAP: $items items into Dovecot, s" "$writer" "$seq (mbsync -a)" "$(calc "$seq / $writer") (mbsync/tool)" \
        ">= 1.0" "$(verdict "$seq / $writer >= 1.0")"
    if [ -n "$par" ]; then
        row "2. IMAP, mbsync one process per mailbox, s" "$writer" "$par (mbsync xN)" \
            "$(calc "$par / $writer") (mbsync/tool)" ">= 1.0" "$(verdict "$par / $writer >= 1.0")"
    fi
}

# Order matters on this disk: the benchmarks that create many files run
# before any large deletion (see lib.sh); the sync benchmark's files are
# deleted before the memory one, which creates only a few dozen files.
if wanted ledger; then
    if [ "$SMOKE" = 1 ]; then
        run_bench ledger bash "$here/ledger/run.sh" 100000 1000 200 1
    else
        run_bench ledger bash "$here/ledger/run.sh" 10000000 10000 1000 5
    fi
fi
if wanted imap; then
    if [ -f "$here/imap/run.sh" ]; then
        if [ "$SMOKE" = 1 ]; then IMAP_ROUNDS=1 run_bench imap imap_bench 200 4; else run_bench imap imap_bench 5000 40; fi
    else
        row "2. IMAP vs mbsync" "-" "-" "-" ">= 1.0" "not in this tree (bench/imap/ comes with the IMAP work)"
    fi
fi
if wanted imap; then
    if [ "$SMOKE" = 1 ]; then
        run_bench imap-sync bash "$here/imap_sync/run.sh" 300 1
    else
        run_bench imap-sync bash "$here/imap_sync/run.sh" 20000 3
    fi
fi
if wanted graph; then
    if [ "$SMOKE" = 1 ]; then
        run_bench graph bash "$here/graph/run.sh" 200 8
    else
        run_bench graph bash "$here/graph/run.sh" 1500 40
    fi
fi
# `verify` reads an archive its own sync builds (untimed), before the sync
# benchmark's deletion so no inode-reuse wait falls between them.
if wanted verify; then
    if [ "$SMOKE" = 1 ]; then
        run_bench verify bash "$here/verify/run.sh" 1000 1 0.002
    else
        run_bench verify bash "$here/verify/run.sh" 20000 3 0.001
    fi
fi
if wanted lmtp; then
    if [ "$SMOKE" = 1 ]; then
        run_bench lmtp bash "$here/lmtp/run.sh" 300 1 20
    else
        run_bench lmtp bash "$here/lmtp/run.sh" 20000 1 200
    fi
fi
if wanted sync; then
    if [ "$SMOKE" = 1 ]; then
        run_bench sync bash "$here/sync_maildir/run.sh" 1000 1 0.002
    else
        run_bench sync bash "$here/sync_maildir/run.sh" 20000 3 0.001
    fi
    delete_bench_files "$BENCH_WORK/sync"
fi
if wanted adopt; then
    if [ "$SMOKE" = 1 ]; then
        run_bench adopt bash "$here/adopt/run.sh" 1000 1
    else
        run_bench adopt bash "$here/adopt/run.sh" 20000 3
    fi
    delete_bench_files "$BENCH_WORK/adopt"
fi
if wanted memory; then
    if [ "$SMOKE" = 1 ]; then
        run_bench memory bash "$here/memory/run.sh" 4 40MB
    else
        run_bench memory bash "$here/memory/run.sh" 20 150MB
    fi
fi
if wanted map; then
    if [ -f "$here/map_validate/run.sh" ]; then
        if [ "$SMOKE" = 1 ]; then run_bench map map_bench 20000; else run_bench map map_bench 1000000; fi
    else
        row "5. map validate" "-" "-" "-" "<= 0.1" "not in this tree (bench/map_validate/ comes with the mapping work)"
    fi
fi

echo
echo "wechat-archiver $(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo '?'), $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)$([ "$SMOKE" = 1 ] && echo ', SMOKE sizes')"
echo
echo "| benchmark | wechat-archiver | baseline | ratio | target | verdict |"
echo "| --- | --- | --- | --- | --- | --- |"
sort -s -t$'\t' -k1,1 "$BENCH_RESULTS" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}'
exit $broken
