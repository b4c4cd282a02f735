#!/usr/bin/env bash
# IMAP benchmark (issue 7, item 2): the project's ImapWriter against mbsync
# (isync), both pushing the same messages into the same Dovecot on loopback.
#
#   bench/imap/run.sh [ITEMS] [USERS]        (defaults: 5000 items, 40 users)
#
# Environment: ROUNDS (3), PARALLEL mbsync processes (8), CONNECTIONS and
# IN_FLIGHT for the writer (32, 64), ONLY=writer|parallel to skip the
# slower baselines, BENCH_DIR (target/bench-imap).
#
# Needs: dovecot-imapd dovecot-core isync python3. Dovecot runs as `nobody`
# when this runs as root. Each contender starts from an empty mail store;
# every run is checked to have stored every copy. Prints a table and the
# ratios (mbsync time / writer time: above 1.0 means the writer is faster).
set -euo pipefail

ITEMS=${1:-5000}
USERS=${2:-40}
export PARALLEL=${PARALLEL:-8}
export CONNECTIONS=${CONNECTIONS:-32}
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
    cat > "$DV/dovecot.conf" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
default_internal_user = $RUN_USER
default_internal_group = $RUN_GROUP
default_login_user = $RUN_USER
first_valid_uid = $RUN_UID
first_valid_gid = $RUN_GID
mail_location = maildir:$DV/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DV/masters
  master = yes
  pass = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DV/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DV/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service pop3-login {
  chroot =
}
service anvil {
  chroot =
}
EOF
    if [ "$(id -u)" = 0 ]; then chown -R "$RUN_UID:$RUN_GID" "$DV"; fi
}

start_dovecot() {
    write_dovecot_config
    if [ "$(id -u)" = 0 ]; then
        setsid setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups dovecot -F -c "$DV/dovecot.conf" &
    else
        setsid dovecot -F -c "$DV/dovecot.conf" &
    fi
    DOVECOT_PID=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "Dovecot did not start:" >&2; cat "$DV/dovecot.log" >&2; exit 1
}

stop_dovecot() {
    [ -n "$DOVECOT_PID" ] || return 0
    kill -TERM -- "-$DOVECOT_PID" 2>/dev/null || true
    wait "$DOVECOT_PID" 2>/dev/null || true
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

run_mbsync_sequential() {
    rm -rf "$WORK/mbsync-state"; mkdir -p "$WORK/mbsync-state"
    for user in $(ls "$CORPUS"); do mkdir -p "$WORK/mbsync-state/$user"; done
    mbsync -q -c "$1" -a
}

run_mbsync_parallel() {
    rm -rf "$WORK/mbsync-state"; mkdir -p "$WORK/mbsync-state"
    for user in $(ls "$CORPUS"); do mkdir -p "$WORK/mbsync-state/$user"; done
    ls "$CORPUS" | xargs -P "$PARALLEL" -I{} mbsync -q -c "$1" {}
}

time_it() {
    local name=$1; shift
    start_dovecot
    local t0 t1
    t0=$(now)
    "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || { echo "$name failed:" >&2; cat "$WORK/$name.err" >&2; exit 1; }
    t1=$(now)
    check_stored "$name"
    stop_dovecot
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}

MBSYNCRC=$(write_mbsync_config)
BYTES=$(du -sb "$CORPUS" | cut -f1)
echo "corpus: $COPIES copies, $((BYTES / 1000000)) MB, $USERS mailboxes; parallelism $PARALLEL" >&2

# Contenders alternate, ROUNDS times, so load from elsewhere on the machine
# hits them alike; the table shows medians.
W_TIMES=(); P_TIMES=(); S_TIMES=(); W_RSS=()
for round in $(seq "$ROUNDS"); do
    W_TIMES+=("$(time_it writer /usr/bin/time -f "client: %U s user, %S s sys, max RSS %M KB" "$PUSH" "$CORPUS" 127.0.0.1 "$PORT" "$ADMIN" "$FOLDER" "$CONNECTIONS" "$IN_FLIGHT")")
    W_RSS+=("$(grep -o 'max RSS [0-9]*' "$WORK/writer.err" | grep -o '[0-9]*')")
    echo "round $round: writer ${W_TIMES[-1]} s, $(tail -1 "$WORK/writer.err")" >&2
    [ "$ONLY" = writer ] && continue
    P_TIMES+=("$(time_it mbsync-par run_mbsync_parallel "$MBSYNCRC")")
    echo "round $round: mbsync x$PARALLEL ${P_TIMES[-1]} s" >&2
    [ "$ONLY" = parallel ] && continue
    S_TIMES+=("$(time_it mbsync-seq run_mbsync_sequential "$MBSYNCRC")")
    echo "round $round: mbsync -a ${S_TIMES[-1]} s" >&2
done

python3 - "$COPIES" "$BYTES" "${W_TIMES[*]}" "${P_TIMES[*]:-}" "${S_TIMES[*]:-}" "${W_RSS[*]}" <<'EOF'
import os, statistics, sys
copies, size = int(sys.argv[1]), int(sys.argv[2])
def median(s):
    v = [float(x) for x in s.split()]
    return statistics.median(v) if v else None
writer, par, seq = (median(a) for a in sys.argv[3:6])
rss = max(int(x) for x in sys.argv[6].split())
env = os.environ
print(f"{copies} copies, {size / 1e6:.0f} MB, {env['USERS_N']} mailboxes; medians of {env['ROUNDS']} rounds")
print("| contender | seconds | copies/s | mbsync time / writer time |")
print("| --- | --- | --- | --- |")
print(f"| wechat-archiver ImapWriter ({env['CONNECTIONS']} connections, {env['IN_FLIGHT']} copies in flight; peak RSS {rss / 1024:.0f} MB) | {writer:.2f} | {copies / writer:.0f} | |")
if par:
    print(f"| mbsync, one process per mailbox, {env['PARALLEL']} at once | {par:.2f} | {copies / par:.0f} | {par / writer:.2f} |")
if seq:
    print(f"| mbsync -a (one process, mailboxes in turn) | {seq:.2f} | {copies / seq:.0f} | {seq / writer:.2f} |")
EOF
