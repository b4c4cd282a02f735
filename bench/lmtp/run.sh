#!/usr/bin/env bash
# LMTP ingest (issue 15): `wechat-archiver receive` taking MESSAGES forwarded
# messages over LMTP into a Maildir, against Dovecot's own LMTP server
# (dovecot-lmtpd) delivering the same messages into its Maildir, on the same
# machine and disk.
#
#   bench/lmtp/run.sh [MESSAGES] [REPS] [LATENCY]
#       defaults: 20000 messages, 3 repetitions, 200 messages through Postfix
#
# - Messages: bench/lmtp/load.py makes them (seeded, the same bytes for both
#   contenders): TeleMessage's forwarding format, one user of USERS (50)
#   writing to another, 1 to 3 KB; the envelope names both users, so each
#   server writes the same two copies per message. The client sends them over
#   CONC (4) connections at once and times from the first connect to the last
#   reply; every recipient must get 250 and every copy must be on disk.
# - Baseline: a fresh Dovecot (lmtp only, passwd-file users, Maildir, fsync
#   as shipped), delivering to each recipient's INBOX.
# - Tool: a fresh `--source email` connector into a Maildir, `receive
#   --listen`; each 250 is sent once the copies are durable and in the ledger.
#   Its peak RSS comes from GNU time over the whole `receive` process.
# - Latency: LATENCY messages sent one at a time over SMTP to a private
#   Postfix (bench-only config under WORK, `postfix -c`) that relays to
#   `receive` over LMTP; per message, from Postfix's `250 queued` to the
#   later of its two copies appearing in the Maildir (the copy's ctime, set
#   by its rename into cur/): median and p99. Skipped with LATENCY=0.
#
# The contenders alternate, the order alternating each repetition; medians
# are reported (ratio: tool throughput / Dovecot's; target >= 0.8).
# Needs: dovecot-core, dovecot-lmtpd, postfix (for the latency), python3, GNU
# time (scripts/install-test-deps.sh installs them). Dovecot runs as `nobody`
# when this runs as root; the Postfix part needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"

MESSAGES=${1:-20000}
REPS=${2:-3}
LATENCY=${3:-200}
USERS=${USERS:-50}
CONC=${CONC:-4}
WORK=$BENCH_WORK/lmtp
COPIES=$((MESSAGES * 2))

for tool in dovecot python3 /usr/bin/time /usr/lib/dovecot/lmtp; do
    command -v "$tool" >/dev/null ||
        { echo "missing $tool: apt-get install -y dovecot-core dovecot-lmtpd python3 time" >&2; exit 1; }
done
if [ "$LATENCY" != 0 ] && [ ! -x /usr/sbin/postfix ]; then
    echo "missing postfix (for the latency; LATENCY=0 skips it): apt-get install -y postfix" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then RUN_UID=65534 RUN_GID=65534; else RUN_UID=$(id -u) RUN_GID=$(id -g); fi
RUN_USER=$(getent passwd "$RUN_UID" | cut -d: -f1)
RUN_GROUP=$(getent group "$RUN_GID" | cut -d: -f1)

build_release
fresh_dir "$WORK"
DOVECOT_PID= RECEIVE_PID= POSTFIX_CONF=
cleanup() {
    stop_dovecot
    stop_receive
    [ -z "$POSTFIX_CONF" ] || postfix -c "$POSTFIX_CONF" stop 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT WHAT LOG: until something listens on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$2 did not start listening:" >&2
    tail -n 20 "$3" >&2
    exit 1
}

# count_files DIR...: regular files below the directories.
count_files() {
    { find "$@" -type f 2>/dev/null || true; } | wc -l
}

# --- Dovecot's LMTP ------------------------------------------------------------

write_dovecot() {
    local dv=$1 port=$2 n
    mkdir -p "$dv"/{run,state,mail,home}
    for n in $(seq "$USERS"); do
        printf 'u%04d@contoso.com:{PLAIN}unused:%s:%s::%s/home/u%04d::\n' "$n" "$RUN_UID" "$RUN_GID" "$dv" "$n"
    done >"$dv/users"
    cat >"$dv/dovecot.conf" <<CONF
protocols = lmtp
listen = 127.0.0.1
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
ssl = no
default_internal_user = $RUN_USER
default_internal_group = $RUN_GROUP
default_login_user = $RUN_USER
first_valid_uid = $RUN_UID
first_valid_gid = $RUN_GID
mail_location = maildir:$dv/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dv/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dv/users
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $port
  }
}
service anvil {
  chroot =
}
CONF
    if [ "$(id -u)" = 0 ]; then chown -R "$RUN_UID:$RUN_GID" "$dv"; fi
}

stop_dovecot() {
    [ -n "$DOVECOT_PID" ] || return 0
    kill -TERM "$DOVECOT_PID" 2>/dev/null || true
    wait "$DOVECOT_PID" 2>/dev/null || true
    DOVECOT_PID=
}

base_secs=() tool_secs=() tool_rss=()

run_dovecot() {
    local rep=$1 dv=$WORK/dovecot-$1 port secs got
    port=$(free_port)
    write_dovecot "$dv" "$port"
    local as_user=()
    [ "$(id -u)" = 0 ] && as_user=(setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups)
    "${as_user[@]}" dovecot -F -c "$dv/dovecot.conf" &
    DOVECOT_PID=$!
    wait_port "$port" Dovecot "$dv/dovecot.log"
    flush_disk
    python3 "$here/load.py" lmtp "$port" "$MESSAGES" "$USERS" "$CONC" >"$WORK/dovecot-$rep.out"
    stop_dovecot
    got=$(count_files "$dv"/mail/*/cur "$dv"/mail/*/new)
    [ "$got" = "$COPIES" ] || { echo "Dovecot stored $got of $COPIES copies" >&2; exit 1; }
    read -r secs _ <"$WORK/dovecot-$rep.out"
    base_secs+=("$secs")
    echo "  run $rep: Dovecot LMTP $secs s ($(calc "$MESSAGES / $secs") messages/s)" >&2
}

# --- wechat-archiver receive ---------------------------------------------------

# start_receive HOME ARCHIVE PORT TIMEFILE: a fresh connector, `receive`
# under GNU time.
start_receive() {
    rm -rf "$1"
    "$BIN" --home "$1" create bench --source email --target "maildir:$2" \
        --domain contoso.com --accept-terms >/dev/null
    /usr/bin/time -f "%e %M" -o "$4" "$BIN" --home "$1" receive --listen "127.0.0.1:$3" \
        2>"$4.err" &
    RECEIVE_PID=$!
    wait_port "$3" "wechat-archiver receive" "$4.err"
}

# stop_receive: SIGTERM to `receive` (GNU time's child), then waits.
stop_receive() {
    [ -n "$RECEIVE_PID" ] || return 0
    local child
    child=$(ps -o pid= --ppid "$RECEIVE_PID" | tr -d ' ')
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
    wait "$RECEIVE_PID" 2>/dev/null || true
    RECEIVE_PID=
}

run_tool() {
    local rep=$1 archive=$WORK/archive-$1 port secs kib got
    port=$(free_port)
    start_receive "$WORK/home-$rep" "$archive" "$port" "$WORK/tool-$rep.time"
    flush_disk
    python3 "$here/load.py" lmtp "$port" "$MESSAGES" "$USERS" "$CONC" >"$WORK/tool-$rep.out"
    stop_receive
    got=$(count_files "$archive"/*/".WeChat Archiver/cur")
    [ "$got" = "$COPIES" ] || { echo "receive stored $got of $COPIES copies" >&2; exit 1; }
    read -r secs _ <"$WORK/tool-$rep.out"
    read -r _ kib <"$WORK/tool-$rep.time"
    tool_secs+=("$secs") tool_rss+=("$kib")
    echo "  run $rep: wechat-archiver receive $secs s ($(calc "$MESSAGES / $secs") messages/s)," \
        "peak RSS $((kib / 1024)) MiB" >&2
}

echo "lmtp benchmark: $MESSAGES messages ($COPIES copies), $USERS users, $CONC connections" >&2
for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then
        run_dovecot "$rep"
        run_tool "$rep"
    else
        run_tool "$rep"
        run_dovecot "$rep"
    fi
done

t=$(median "${tool_secs[@]}")
b=$(median "${base_secs[@]}")
rss=$(printf '%s\n' "${tool_rss[@]}" | sort -n | tail -n 1)
rss_mib=$((rss / 1024))
tool_rate=$(calc "$MESSAGES / $t")
base_rate=$(calc "$MESSAGES / $b")
echo "medians: wechat-archiver $t s ($tool_rate messages/s, peak RSS $rss_mib MiB)," \
    "Dovecot LMTP $b s ($base_rate messages/s)" >&2
row "9. LMTP ingest, $MESSAGES messages ($COPIES copies) into Maildir, messages/s (peak RSS $rss_mib MiB)" \
    "$tool_rate" "$base_rate (Dovecot LMTP)" "$(calc "$b / $t")" ">= 0.8, < 64 MiB" \
    "$(verdict "$b / $t >= 0.8 && $rss_mib < 64")"

[ "$LATENCY" != 0 ] || exit 0
# shellcheck source=bench/lmtp/latency.sh
source "$here/latency.sh"
measure_latency
