#!/usr/bin/env bash
# IMAP benchmark (issue 7, item 2): the project's ImapWriter against mbsync
# (isync), both pushing the same messages into the same Dovecot on loopback.
#
#   bench/imap/run.sh [ITEMS] [USERS]        (defaults: 5000 items, 40 users)
#
# Environment: ROUNDS (3), PARALLEL mbsync processes (8), CONNECTIONS and
# IN_FLIGHT for the writer (64, 64), ONLY=writer|parallel to skip the
# slower baselines, BENCH_DIR (target/bench-imap).
#
# Needs: dovecot-imapd dovecot-core isync python3. Dovecot runs as `nobody`
# when this runs as root. Each contender starts from an empty mail store;
# every run is checked to have stored every copy. Prints a table and the
# ratios (mbsync time / writer time: above 1.0 means the writer is faster).
set -euo pipefail
# shellcheck source=bench/imap/dovecot-conf.sh
source "$(dirname "$0")/dovecot-conf.sh"

ITEMS=${1:-5000}
USERS=${2:-40}
export PARALLEL=${PARALLEL:-8}
export CONNECTIONS=${CONNECTIONS:-64}
export IN_FLIGHT=${IN_FLIGHT:-64}
ONLY=${ONLY:-all}
export ROUNDS=${ROUNDS:-3}
export USERS_N=$USERS
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${BENCH_DIR:-$ROOT/target/bench-imap}
FOLDER="WeChat Archiver"
ADMIN=archiver-admin
PASSWORD=bench-master-pw
export IMAP_BENCH_PASSWORD=$PASSWORD

for tool in dovecot mbsync python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y dovecot-imapd dovecot-core isync python3" >&2; exit 1; }
done

if [ "$(id -u)" = 0 ]; then RUN_UID=65534; RUN_GID=65534; else RUN_UID=$(id -u); RUN_GID=$(id -g); fi
RUN_USER=$(getent passwd "$RUN_UID" | cut -d: -f1)
RUN_GROUP=$(getent group "$RUN_GID" | cut -d: -f1)

CORPUS=$WORK/corpus-$ITEMS-$USERS
if [ ! -d "$CORPUS" ]; then
    mkdir -p "$WORK"
    python3 "$ROOT/bench/imap/make_corpus.py" "$CORPUS" --items "$ITEMS" --users "$USERS"
fi
COPIES=$(find "$CORPUS" -path '*/inbox/cur/*' -type f | wc -l)

echo "building the writer's driver (release)..." >&2
PUSH=$(cd "$ROOT" && cargo bench --bench imap --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="imap": print(m["executable"])')

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DV=$WORK/dovecot
DOVECOT_PID=

write_dovecot_config() {
    rm -rf "$DV"; mkdir -p "$DV"/{run,state,mail}
    echo "$ADMIN:{PLAIN}$PASSWORD" > "$DV/masters"
    : > "$DV/users"
    for user in $(ls "$CORPUS"); do
        echo "$user:{PLAIN}unused-$RANDOM$RANDOM:$RUN_UID:$RUN_GID::$DV/home/$user::" >> "$DV/users"
    done
    dovecot_conf "$DV" "$PORT" >"$DV/dovecot.conf"
    if [ "$(id -u)" = 0 ]; then chown -R "$RUN_UID:$RUN_GID" "$DV"; fi
}

start_dovecot() {
    write_dovecot_config
    # Under /usr/bin/time, which reports the CPU Dovecot and every process
    # it reaped (the IMAP sessions) used.
    local as_user=()
    if [ "$(id -u)" = 0 ]; then
        as_user=(setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups)
    fi
    setsid /usr/bin/time -f "%U %S" -o "$WORK/dovecot.cpu" "${as_user[@]}" dovecot -F -c "$DV/dovecot.conf" &
    DOVECOT_PID=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "Dovecot did not start:" >&2; cat "$DV/dovecot.log" >&2; exit 1
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
trap stop_dovecot EXIT

# Every copy must be in the archive folders, or the timing means nothing.
check_stored() {
    local stored
    stored=$(find "$DV/mail" -path "*/.$FOLDER/*" \( -path '*/cur/*' -o -path '*/new/*' \) -type f | wc -l)
    if [ "$stored" != "$COPIES" ]; then
        echo "$1 stored $stored of $COPIES copies" >&2; exit 1
    fi
}

write_mbsync_config() {
    local config=$WORK/mbsyncrc
    : > "$config"
    for user in $(ls "$CORPUS"); do
        cat >> "$config" <<EOF
IMAPAccount $user
Host 127.0.0.1
Port $PORT
User $user*$ADMIN
Pass $PASSWORD
SSLType None
AuthMechs PLAIN

IMAPStore $user-far
Account $user

MaildirStore $user-near
Path $CORPUS/$user/
Inbox $CORPUS/$user/inbox

Channel $user
Far :$user-far:"$FOLDER"
Near :$user-near:INBOX
Create Far
Sync Push New
Expunge None
CopyArrivalDate yes
SyncState $WORK/mbsync-state/$user/

EOF
    done
    echo "$config"
}

now() { date +%s.%N; }

fresh_mbsync_state() {
    rm -rf "$WORK/mbsync-state"
    for user in $(ls "$CORPUS"); do mkdir -p "$WORK/mbsync-state/$user"; done
}

# Runs one contender against a fresh Dovecot; prints "wall client-CPU
# server-CPU client-peak-RSS-KB" (seconds, seconds, seconds, KB).
time_it() {
    local name=$1; shift
    start_dovecot
    local t0 t1
    t0=$(now)
    /usr/bin/time -f "%U %S %M" -o "$WORK/$name.cpu" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" ||
        { echo "$name failed:" >&2; cat "$WORK/$name.err" >&2; exit 1; }
    t1=$(now)
    check_stored "$name"
    stop_dovecot
    python3 - "$t0" "$t1" "$(tail -1 "$WORK/$name.cpu")" "$(tail -1 "$WORK/dovecot.cpu")" <<'EOF'
import sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
cu, cs, rss = sys.argv[3].split()
su, ss = sys.argv[4].split()
print(f"{t1 - t0:.3f} {float(cu) + float(cs):.2f} {float(su) + float(ss):.2f} {rss}")
EOF
}

MBSYNCRC=$(write_mbsync_config)
BYTES=$(du -sb "$CORPUS" | cut -f1)
echo "corpus: $COPIES copies, $((BYTES / 1000000)) MB, $USERS mailboxes; parallelism $PARALLEL" >&2

# Contenders alternate, ROUNDS times, so load from elsewhere on the machine
# hits them alike; the table shows medians. CPU seconds (client, and
# Dovecot's) are less sensitive to that load than wall time.
W=(); P=(); S=()
for round in $(seq "$ROUNDS"); do
    W+=("$(time_it writer ${PUSH_PREFIX:-} "$PUSH" "$CORPUS" 127.0.0.1 "$PORT" "$ADMIN" "$FOLDER" "$CONNECTIONS" "$IN_FLIGHT")")
    echo "round $round: writer ${W[-1]}" >&2
    [ "$ONLY" = writer ] && continue
    fresh_mbsync_state
    P+=("$(time_it mbsync-par sh -c "ls '$CORPUS' | xargs -P $PARALLEL -I{} mbsync -q -c '$MBSYNCRC' {}")")
    echo "round $round: mbsync x$PARALLEL ${P[-1]}" >&2
    [ "$ONLY" = parallel ] && continue
    fresh_mbsync_state
    S+=("$(time_it mbsync-seq mbsync -q -c "$MBSYNCRC" -a)")
    echo "round $round: mbsync -a ${S[-1]}" >&2
done

python3 - "$COPIES" "$BYTES" "$(IFS=,; echo "${W[*]}")" "$(IFS=,; echo "${P[*]:-}")" "$(IFS=,; echo "${S[*]:-}")" <<'EOF'
import os, statistics, sys
copies, size = int(sys.argv[1]), int(sys.argv[2])
env = os.environ
def medians(runs):
    rows = [[float(x) for x in r.split()] for r in runs.split(",") if r.strip()]
    return [statistics.median(col) for col in zip(*rows)] if rows else None
writer, par, seq = (medians(a) for a in sys.argv[3:6])
print(f"{copies} copies, {size / 1e6:.0f} MB, {env['USERS_N']} mailboxes; medians of {env['ROUNDS']} rounds")
print("| contender | wall s | copies/s | client CPU s | Dovecot CPU s | client peak RSS | mbsync wall / writer wall |")
print("| --- | --- | --- | --- | --- | --- | --- |")
def row(name, m, ratio):
    wall, client, server, rss = m
    print(f"| {name} | {wall:.2f} | {copies / wall:.0f} | {client:.1f} | {server:.1f} | {rss / 1024:.0f} MB | {ratio} |")
row(f"wechat-archiver ImapWriter ({env['CONNECTIONS']} connections, {env['IN_FLIGHT']} copies in flight)", writer, "")
if par:
    row(f"mbsync, one process per mailbox, {env['PARALLEL']} at once", par, f"{par[0] / writer[0]:.2f}")
if seq:
    row("mbsync -a (one process, mailboxes in turn)", seq, f"{seq[0] / writer[0]:.2f}")
EOF
