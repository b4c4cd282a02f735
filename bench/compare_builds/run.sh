#!/usr/bin/env bash
# Did a change cost speed? This build against an older commit, on the same
# machine in the same hour, the two builds alternating. The README's table
# compares each benchmark with an outside baseline (curl, mbsync), and on
# this shared VM those ratios move by 20% or more from hour to hour with
# the disk and the CPU; this compares the code itself.
#
#   bench/compare_builds/run.sh OLD_REV [ROUNDS]      (ROUNDS: 5)
#
# PARTS (default writer,imap_sync,maildir) picks what runs.
#
# - IMAP writer alone (bench/imap, 5,000 items, 40 mailboxes): the two
#   builds' drivers alternate, ROUNDS rounds each, a fresh Dovecot each;
#   then each build once under valgrind (cachegrind): its instruction count
#   does not depend on the machine's load.
# - `sync` of 20,000 items into Dovecot (bench/imap_sync with OLD_BIN) and
#   into Maildir (bench/sync_maildir with OLD_BIN): the two builds
#   alternate, ROUNDS runs each, from the same simulator; then a sync of
#   2,000 items into Maildir by each build under cachegrind (`maildir`).
#
# The old commit is checked out (git worktree) and built under
# target/bench-old/OLD_REV. Prints one table; ratios are old / this build
# (above 1: this build is faster).
# Needs what bench/imap and bench/imap_sync need, and valgrind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

OLD_REV=${1:?usage: bench/compare_builds/run.sh OLD_REV [ROUNDS]}
ROUNDS=${2:-5}
command -v valgrind >/dev/null || { echo "missing valgrind: apt-get install -y valgrind" >&2; exit 1; }
old_sha=$(git -C "$BENCH_ROOT" rev-parse --short "$OLD_REV^{commit}")
OLD_TREE=$BENCH_ROOT/target/bench-old/$old_sha
OUT=$BENCH_ROOT/target/bench-compare
mkdir -p "$OUT"

if [ ! -d "$OLD_TREE" ]; then
    mkdir -p "$(dirname "$OLD_TREE")"
    git -C "$BENCH_ROOT" worktree add --detach "$OLD_TREE" "$old_sha" >&2
fi
# The writer's driver runs from the old tree's bench/imap, with this tree's
# Dovecot set-up (older trees do not know where the tests unpack Dovecot's
# IMAP server when Cyrus is installed).
cp "$BENCH_ROOT/bench/imap/dovecot-conf.sh" "$OLD_TREE/bench/imap/dovecot-conf.sh"
echo "building $old_sha and this tree..." >&2
(cd "$OLD_TREE" && cargo build --release --quiet --bin wechat-archiver)
build_release
OLD_BIN=$OLD_TREE/target/release/wechat-archiver

# writer TREE NAME ROUND [PREFIX]: one round of bench/imap's writer alone,
# the driver built from TREE; appends "wall client-cpu" to $OUT/NAME.runs.
writer() {
    local tree=$1 name=$2 round=$3 out=$OUT/$2-writer-$3
    PUSH_PREFIX=${4:-} ROUNDS=1 ONLY=writer BENCH_DIR=$OUT/imap \
        bash "$tree/bench/imap/run.sh" 5000 40 >"$out" 2>"$out.err" ||
        { cat "$out.err" >&2; exit 1; }
    awk -F'|' '/ImapWriter/ {gsub(/ /,"",$3); gsub(/ /,"",$5); print $3, $5}' "$out"
}

BENCH_RESULTS=$OUT/results.tsv
: >"$BENCH_RESULTS"
wanted() { [[ ",${PARTS:-writer,imap_sync,maildir}," == *",$1,"* ]]; }
CACHEGRIND="valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file"
summary() { sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$1"; }
# ir_row NAME OLD THIS: a row comparing two instruction counts.
ir_row() {
    row "$1" "$3" "$2" "$(awk "BEGIN{printf \"%.3f\", $2 / $3}")" "~1.0" "-"
}

writer_part() {
    : >"$OUT/old.runs"
    : >"$OUT/this.runs"
    local round order name tree
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then order="old this"; else order="this old"; fi
        for name in $order; do
            if [ "$name" = old ]; then tree=$OLD_TREE; else tree=$BENCH_ROOT; fi
            writer "$tree" "$name" "$round" | tee -a "$OUT/$name.runs" |
                sed "s/^/  round $round: $name build writer: wall s, client CPU s: /" >&2
        done
    done
    writer "$OLD_TREE" old cachegrind "$CACHEGRIND=$OUT/old.cachegrind" >/dev/null
    writer "$BENCH_ROOT" this cachegrind "$CACHEGRIND=$OUT/this.cachegrind" >/dev/null
    column_median() { median $(cut -d' ' -f"$2" "$OUT/$1.runs"); }
    local old_wall this_wall old_cpu this_cpu
    old_wall=$(column_median old 1) this_wall=$(column_median this 1)
    old_cpu=$(column_median old 2) this_cpu=$(column_median this 2)
    row "IMAP writer alone, 5000 items into Dovecot, wall s (median of $ROUNDS)" "$this_wall" "$old_wall" \
        "$(calc "$old_wall / $this_wall")" "~1.0" "-"
    row "IMAP writer alone, client CPU s (median of $ROUNDS)" "$this_cpu" "$old_cpu" \
        "$(calc "$old_cpu / $this_cpu")" "~1.0" "-"
    ir_row "IMAP writer alone, instructions (cachegrind)" \
        "$(summary "$OUT/old.cachegrind")" "$(summary "$OUT/this.cachegrind")"
}

# maildir_instructions NAME BINARY: instructions of one sync of the
# small simulator's window into a new Maildir.
maildir_instructions() {
    local home=$OUT/cg-home-$1 file=$OUT/$1-sync.cachegrind
    BIN=$2 new_connector "$home" "$OUT/cg-archive-$1"
    # shellcheck disable=SC2086 # CACHEGRIND is words
    WECHAT_ARCHIVER_PASSWORD=$SIM_PASSWORD $CACHEGRIND="$file" "$2" --home "$home" \
        sync --since "$WINDOW_SINCE" --until "$WINDOW_UNTIL" --json >"$file.out" 2>"$file.err" ||
        { tail -n 20 "$file.err" >&2; exit 1; }
    summary "$file"
}

maildir_part() {
    OLD_BIN=$OLD_BIN bash "$BENCH_ROOT/bench/sync_maildir/run.sh" 20000 "$ROUNDS"
    BENCH_WORK=$OUT/cachegrind-sim
    start_sim "items=2000,large=0.001,seed=2026"
    local old_ir this_ir
    old_ir=$(maildir_instructions old "$OLD_BIN")
    this_ir=$(maildir_instructions this "$BIN")
    stop_sim
    ir_row "sync 2000 items into Maildir, instructions of the sync (cachegrind)" "$old_ir" "$this_ir"
}

export BENCH_RESULTS
if wanted writer; then writer_part; fi
if wanted imap_sync; then OLD_BIN=$OLD_BIN bash "$BENCH_ROOT/bench/imap_sync/run.sh" 20000 "$ROUNDS"; fi
if wanted maildir; then maildir_part; fi

echo
echo "this build $(git -C "$BENCH_ROOT" describe --always --dirty) against $old_sha, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| benchmark | this build | old build | old / this | expected | |"
echo "| --- | --- | --- | --- | --- | --- |"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}' "$BENCH_RESULTS"
