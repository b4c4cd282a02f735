#!/usr/bin/env bash
# Benchmark 2, end to end (issue 7, item 2): `wechat-archiver sync` from the
# simulator on loopback into a real Dovecot on loopback over IMAP, against
# mbsync (isync) pushing the same messages from a Maildir into the same
# Dovecot.
#
#   bench/imap_sync/run.sh [ITEMS] [REPS]      defaults: 20000 items, 3 repetitions
#
# The messages: one untimed `sync` of the simulator's window (0.1% large
# items, seed 2026, as bench/sync_maildir) into a Maildir target writes
# every copy into DIR/<mailbox>/.WeChat Archiver/cur/; the Dovecot users are
# those mailboxes.
#
# - Baseline: mbsync pushes each mailbox's archive folder into the folder of
#   the same name of that user (master-user login, `Sync Push New`,
#   `CopyArrivalDate yes`, as bench/imap), one process per mailbox, PARALLEL
#   (8) at a time: the fastest way bench/imap found to run it. Each run pushes
#   from a fresh hard-linked copy of the Maildir (mbsync renames the files it
#   has seen, adding their UIDs), made before its clock starts.
# - Tool: a connector whose target is that Dovecot (`imap://127.0.0.1:PORT`
#   with `--target-user` the master user; secrets in
#   WECHAT_ARCHIVER_PASSWORD_FILE), then one `sync` of the same window. Its
#   time includes fetching every item from the simulator, on the same cores.
#
# Every run gets a fresh, empty Dovecot (a new directory; nothing is deleted
# while clocks run, see lib.sh) and must leave every expected copy in every
# user's folder, or the benchmark fails. The contenders alternate, the order
# alternating each repetition; medians are reported (ratio mbsync / tool:
# above 1 means the tool is faster). Each run's wall time, peak RSS and CPU
# seconds (client, Dovecot with all its processes, the simulator during the
# tool's run) go to stderr.
#
# Environment: PARALLEL (8) mbsync processes; SYNC_PREFIX, a command put in
# front of the tool's `sync` (e.g. "perf record -g -o FILE"); OLD_BIN, another
# build of the tool (bench/compare_builds): it replaces mbsync as the
# baseline, syncing from the same simulator (ratio old / this build).
# Needs: dovecot-imapd dovecot-core isync, GNU time, python3. Dovecot runs as
# `nobody` when this runs as root.
set -euo pipefail
# shellcheck source=bench/imap/dovecot-conf.sh
source "$(dirname "$0")/../imap/dovecot-conf.sh"
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"

ITEMS=${1:-20000}
REPS=${2:-3}
LARGE=0.001
PARALLEL=${PARALLEL:-8}
FOLDER="WeChat Archiver"
ADMIN=archiver-admin
ADMIN_PASSWORD=bench-master-pw
WORK=$BENCH_WORK/imap_sync
# lib.sh's start_sim keeps its files in BENCH_WORK: ours, not the suite's.
BENCH_WORK=$WORK

for tool in dovecot mbsync python3 /usr/bin/time; do
    command -v "$tool" >/dev/null ||
        { echo "missing $tool: apt-get install -y dovecot-imapd dovecot-core isync python3 time" >&2; exit 1; }
done

if [ "$(id -u)" = 0 ]; then RUN_UID=65534 RUN_GID=65534; else RUN_UID=$(id -u) RUN_GID=$(id -g); fi
RUN_USER=$(getent passwd "$RUN_UID" | cut -d: -f1)
RUN_GROUP=$(getent group "$RUN_GID" | cut -d: -f1)

build_release
fresh_dir "$WORK"
DOVECOT_PID=
cleanup() {
    stop_dovecot
    stop_sim
}
trap cleanup EXIT

# --- Dovecot ---------------------------------------------------------------

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# write_dovecot_config DIR: a Dovecot in DIR with the users in $WORK/users.list,
# the master user, Maildir++ stores under DIR/mail/USER, plain IMAP on PORT.
write_dovecot_config() {
    local dv=$1 user
    mkdir -p "$dv"/{run,state,mail,home}
    echo "$ADMIN:{PLAIN}$ADMIN_PASSWORD" >"$dv/masters"
    while read -r user; do
        echo "$user:{PLAIN}unused-$RANDOM$RANDOM:$RUN_UID:$RUN_GID::$dv/home/$user::"
    done <"$WORK/users.list" >"$dv/users"
    dovecot_conf "$dv" "$PORT" >"$dv/dovecot.conf"
    if [ "$(id -u)" = 0 ]; then chown -R "$RUN_UID:$RUN_GID" "$dv"; fi
}

# start_dovecot DIR: a fresh, empty Dovecot in DIR, under GNU time, which
# reports the CPU of Dovecot and of every process it reaped (the IMAP
# sessions) into DIR.cpu when it stops.
start_dovecot() {
    DV=$1
    write_dovecot_config "$DV"
    local as_user=()
    if [ "$(id -u)" = 0 ]; then
        as_user=(setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups)
    fi
    setsid /usr/bin/time -f "%U %S" -o "$DV.cpu" "${as_user[@]}" dovecot -F -c "$DV/dovecot.conf" &
    DOVECOT_PID=$!
    for _ in $(seq 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "Dovecot did not start:" >&2
    cat "$DV/dovecot.log" >&2
    exit 1
}

stop_dovecot() {
    [ -n "$DOVECOT_PID" ] || return 0
    local master
    master=$(ps -o pid= --ppid "$DOVECOT_PID" | tr -d ' ')
    [ -n "$master" ] && kill -TERM "$master" 2>/dev/null
    wait "$DOVECOT_PID" 2>/dev/null || true
    kill -TERM -- "-$DOVECOT_PID" 2>/dev/null || true
    DOVECOT_PID=
}

# check_stored NAME: every user's archive folder in the running Dovecot
# holds exactly the copies the Maildir sync wrote for that user.
check_stored() {
    local user want got bad=0 total=0
    while read -r user want; do
        got=$({ find "$DV/mail/$user/.$FOLDER/cur" "$DV/mail/$user/.$FOLDER/new" -type f 2>/dev/null || true; } | wc -l)
        total=$((total + got))
        if [ "$got" != "$want" ]; then
            echo "$1: $user has $got of $want copies in '$FOLDER'" >&2
            bad=1
        fi
    done <"$WORK/expected.tsv"
    if [ "$bad" = 1 ] || [ "$total" != "$COPIES" ]; then
        echo "$1 stored $total of $COPIES copies; Dovecot's log: $DV/dovecot.log" >&2
        exit 1
    fi
}

# --- the messages ------------------------------------------------------------

start_sim "items=$ITEMS,large=$LARGE,seed=2026"
echo "imap_sync benchmark: writing the $ITEMS-item window into a Maildir for mbsync..." >&2
new_connector "$WORK/home-maildir" "$WORK/corpus"
sync_window "$WORK/home-maildir" "$WORK/corpus.time"
COPIES=$(json_field "$WORK/corpus.time.out" written)
failed=$(json_field "$WORK/corpus.time.out" failed)
[ "$failed" = 0 ] || { echo "the Maildir sync failed $failed copies" >&2; exit 1; }
for dir in "$WORK/corpus"/*/; do
    user=$(basename "$dir")
    echo "$user $(find "$dir.$FOLDER/cur" "$dir.$FOLDER/new" -type f | wc -l)"
done >"$WORK/expected.tsv"
cut -d' ' -f1 "$WORK/expected.tsv" >"$WORK/users.list"
USERS=$(wc -l <"$WORK/users.list")
files=$(awk '{n += $2} END {print n}' "$WORK/expected.tsv")
[ "$files" = "$COPIES" ] || { echo "the Maildir holds $files files, the sync wrote $COPIES" >&2; exit 1; }
BYTES=$(du -sb "$WORK/corpus" | cut -f1)
echo "corpus: $COPIES copies, $((BYTES / 1000000)) MB, $USERS mailboxes (Maildir sync $(cut -d' ' -f1 "$WORK/corpus.time") s)" >&2

printf '%s\n%s\n' "$SIM_PASSWORD" "$ADMIN_PASSWORD" >"$WORK/secrets"
chmod 600 "$WORK/secrets"

# write_mbsync_config SOURCE CONFIG STATE: one channel per user, pushing
# SOURCE/USER/.WeChat Archiver into that user's folder of the same name.
write_mbsync_config() {
    local source=$1 config=$2 state=$3 user n=0
    : >"$config"
    : >"$config.channels"
    while read -r user; do
        n=$((n + 1))
        mkdir -p "$state/c$n"
        cat >>"$config" <<EOF
IMAPAccount c$n
Host 127.0.0.1
Port $PORT
User "$user*$ADMIN"
Pass $ADMIN_PASSWORD
SSLType None
AuthMechs PLAIN

IMAPStore c$n-far
Account c$n

MaildirStore c$n-near
Path "$source/$user/"
Inbox "$source/$user/.$FOLDER"

Channel c$n
Far :c$n-far:"$FOLDER"
Near :c$n-near:INBOX
Create Far
Sync Push New
Expunge None
CopyArrivalDate yes
SyncState "$state/c$n/"

EOF
        echo "c$n" >>"$config.channels"
    done <"$WORK/users.list"
}

# --- the contenders ----------------------------------------------------------

# timed_cpu FILE CMD...: as lib.sh's timed, FILE getting "seconds
# max_rss_kib user_seconds system_seconds".
timed_cpu() {
    local file=$1 status=0
    shift
    /usr/bin/time -f "%e %M %U %S" -o "$file" "$@" >"$file.out" 2>"$file.err" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "failed ($status): $*" >&2
        tail -n 20 "$file.err" >&2
        exit 1
    fi
}

# sim_ticks: the CPU clock ticks the simulator has used so far.
sim_ticks() {
    awk '{print $14 + $15}' "/proc/$SIM_PID/stat"
}

tool_secs=() tool_rss=() base_secs=() base_rss=()

# report NAME REP RESULT [SIM_SECONDS]: one run's figures on stderr.
report() {
    local secs kib user sys server
    read -r secs kib user sys <"$3"
    server=$(awk '{printf "%.1f", $1 + $2}' "$DV.cpu")
    echo "  run $2: $1 $secs s, peak RSS $((kib / 1024)) MiB, CPU $(calc "$user + $sys") s," \
        "Dovecot CPU $server s${4:+, simulator CPU $4 s}" >&2
}

run_baseline() {
    local rep=$1 dir=$WORK/mbsync-$1 secs kib
    # A fresh copy (hard links) of the messages, made before the clock starts.
    cp -al "$WORK/corpus" "$dir"
    write_mbsync_config "$dir" "$WORK/mbsyncrc-$rep" "$WORK/mbsync-state-$rep"
    start_dovecot "$WORK/dovecot-mbsync-$rep"
    flush_disk
    timed_cpu "$WORK/base-$rep.time" xargs -a "$WORK/mbsyncrc-$rep.channels" -P "$PARALLEL" -n 1 \
        mbsync -q -c "$WORK/mbsyncrc-$rep"
    check_stored "mbsync (run $rep)"
    stop_dovecot
    read -r secs kib _ <"$WORK/base-$rep.time"
    base_secs+=("$secs") base_rss+=("$kib")
    report "mbsync x$PARALLEL" "$rep" "$WORK/base-$rep.time"
}

# run_tool REP [BINARY]: one sync by this build, or by BINARY as the baseline.
run_tool() {
    local rep=$1 bin=${2:-$BIN} name=wechat-archiver
    [ -n "${2:-}" ] && name=old-build
    local home=$WORK/home-imap-$name-$rep secs kib ticks
    start_dovecot "$WORK/dovecot-$name-$rep"
    "$bin" --home "$home" create bench --endpoint "$SIM_URL" --username "$SIM_USER" \
        --target "imap://127.0.0.1:$PORT" --target-user "$ADMIN" --accept-terms >/dev/null
    flush_disk
    ticks=$(sim_ticks)
    # shellcheck disable=SC2086 # SYNC_PREFIX is words
    WECHAT_ARCHIVER_PASSWORD_FILE=$WORK/secrets timed_cpu "$WORK/$name-$rep.time" ${SYNC_PREFIX:-} \
        "$bin" --home "$home" sync --since "$WINDOW_SINCE" --until "$WINDOW_UNTIL" --json
    ticks=$(($(sim_ticks) - ticks))
    assert_wrote_all "$WORK/$name-$rep.time.out" "$COPIES"
    check_stored "$name (run $rep)"
    stop_dovecot
    read -r secs kib _ <"$WORK/$name-$rep.time"
    if [ "$name" = wechat-archiver ]; then
        tool_secs+=("$secs") tool_rss+=("$kib")
    else
        base_secs+=("$secs") base_rss+=("$kib")
    fi
    report "$name" "$rep" "$WORK/$name-$rep.time" "$(calc "$ticks / $(getconf CLK_TCK)")"
}

for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then
        run_base "$rep"
        run_tool "$rep"
    else
        run_tool "$rep"
        run_base "$rep"
    fi
done

t=$(median "${tool_secs[@]}")
b=$(median "${base_secs[@]}")
if [ -n "${OLD_BIN:-}" ]; then
    echo "medians: this build $t s, old build $b s: old / this $(calc "$b / $t")" >&2
    row "sync $ITEMS items into Dovecot over IMAP, this build vs $OLD_BIN, s" "$t" "$b (old build)" \
        "$(calc "$b / $t") (old/this)" "~1.0" "-"
    exit 0
fi
rss=$(printf '%s\n' "${tool_rss[@]}" | sort -n | tail -n 1)
echo "medians: wechat-archiver $t s ($(calc "$COPIES / $t") copies/s, peak RSS $((rss / 1024)) MiB)," \
    "mbsync x$PARALLEL $b s ($(calc "$COPIES / $b") copies/s)" >&2
row "2. sync $ITEMS items ($COPIES copies) into Dovecot over IMAP, s" "$t" "$b (mbsync)" \
    "$(calc "$b / $t")" ">= 1.0" "$(verdict "$b / $t >= 1.0")"
