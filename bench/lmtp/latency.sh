# shellcheck shell=bash
# Postfix-accept-to-copy latency for bench/lmtp/run.sh; sourced there.
#
# A private Postfix (its own config and queue under WORK, `postfix -c`,
# as tests/it/support/postfix.rs runs it) takes SMTP on loopback and relays
# contoso.com to `receive` over LMTP. LATENCY messages go in one at a time;
# each one's accept time is when its `250 queued` arrived, its copy time the
# ctime of the later of its two copies (set by the rename into cur/).

# write_postfix DIR SMTP_PORT LMTP_PORT: main.cf and master.cf in DIR/conf.
write_postfix() {
    local pf=$1
    mkdir -p "$pf"/{conf,queue,data}
    chmod 755 "$pf"
    chown postfix "$pf/data"
    cat >"$pf/conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
syslog_name = postfix-bench
maillog_file = /var/log/wechat-archiver-bench-postfix.log
myhostname = mx.bench.example
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relay_domains = contoso.com
relay_transport = lmtp:inet:127.0.0.1:$3
biff = no
CONF
    {
        echo "127.0.0.1:$2 inet n - n - - smtpd"
        # Every other service as Debian's master.cf has it, not chrooted.
        sed -n '/^pickup/,$p' /usr/share/postfix/master.cf.dist | grep -v '^#' |
            awk 'NF >= 8 && $1 !~ /^-/ {$5 = "n"; print}' |
            grep -E '^(pickup|cleanup|qmgr|rewrite|bounce|defer|trace|verify|flush|proxymap|smtp|relay|showq|error|retry|discard|lmtp|anvil|scache|postlog) '
    } >"$pf/conf/master.cf"
}

measure_latency() {
    local pf=$WORK/postfix smtp_port lmtp_port archive=$WORK/archive-latency want got
    smtp_port=$(free_port)
    lmtp_port=$(free_port)
    start_receive "$WORK/home-latency" "$archive" "$lmtp_port" "$WORK/latency.time"
    write_postfix "$pf" "$smtp_port" "$lmtp_port"
    POSTFIX_CONF=$pf/conf
    postfix -c "$POSTFIX_CONF" start >&2
    wait_port "$smtp_port" Postfix /var/log/wechat-archiver-bench-postfix.log
    python3 "$here/load.py" smtp "$smtp_port" "$LATENCY" "$USERS" "$WORK/accepted.txt"
    want=$((LATENCY * 2))
    for _ in $(seq 1200); do
        got=$(count_files "$archive"/*/".WeChat Archiver/cur")
        [ "$got" -ge "$want" ] && break
        sleep 0.1
    done
    postfix -c "$POSTFIX_CONF" stop >&2
    POSTFIX_CONF=
    stop_receive
    [ "$got" = "$want" ] || { echo "Postfix delivered $got of $want copies" >&2; exit 1; }
    local figures median p99
    figures=$(python3 - "$WORK/accepted.txt" "$archive" <<'PY'
import os, sys
accepted = dict(line.split() for line in open(sys.argv[1]))
landed = {}
for root, _, files in os.walk(sys.argv[2]):
    if not root.endswith("/cur"):
        continue
    for name in files:
        path = os.path.join(root, name)
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
        for line in head.split("\r\n"):
            if line.lower().startswith("x-wechat-archiver-item-id:"):
                item = line.split(":", 1)[1].strip()
                landed[item] = max(landed.get(item, 0), os.stat(path).st_ctime)
lat = sorted((landed[i] - float(t)) * 1000 for i, t in accepted.items())
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"{p(0.5):.1f} {p(0.99):.1f}")
PY
)
    read -r median p99 <<<"$figures"
    echo "Postfix accept to copy, $LATENCY messages one at a time: median $median ms, p99 $p99 ms" >&2
    row "9. Postfix accept to the copy in the Maildir, $LATENCY messages one at a time, ms" \
        "median $median, p99 $p99" "-" "-" "reported" "-"
}
