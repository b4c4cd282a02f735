# shellcheck shell=bash
# A Dovecot for the IMAP benchmarks (bench/imap, bench/imap_sync); sourced.

# dovecot_conf DIR PORT: the dovecot.conf of a Dovecot living in DIR: plain
# IMAP on 127.0.0.1:PORT, master users in DIR/masters (separator `*`),
# users in DIR/users, Maildir++ stores under DIR/mail/USER. Runs as
# RUN_USER/RUN_GROUP (RUN_UID/RUN_GID).
dovecot_conf() {
    local dv=$1 port=$2
    cat <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
default_internal_user = $RUN_USER
default_internal_group = $RUN_GROUP
default_login_user = $RUN_USER
first_valid_uid = $RUN_UID
first_valid_gid = $RUN_GID
mail_location = maildir:$dv/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dv/masters
  master = yes
  pass = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dv/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dv/users
}
service imap-login {
$(imapd_executable imap-login)
  inet_listener imap {
    address = 127.0.0.1
    port = $port
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
    imap_services
}

# Debian's dovecot-imapd and cyrus-imapd conflict: with Cyrus installed,
# scripts/install-test-deps.sh unpacks Dovecot's IMAP processes under
# /var/cache (the tests use them the same way), so the services point there.
UNPACKED_IMAPD=/var/cache/wechat-archiver-tests/dovecot-imapd/usr/lib/dovecot
imap_services() {
    [ -x /usr/lib/dovecot/imap ] && return 0
    if [ ! -x "$UNPACKED_IMAPD/imap" ]; then
        echo "Dovecot's IMAP server is missing: run scripts/install-test-deps.sh" >&2
        return 1
    fi
    local name
    for name in imap imap-hibernate imap-urlauth imap-urlauth-login imap-urlauth-worker; do
        printf 'service %s {\n%s\n}\n' "$name" "$(imapd_executable "$name")"
    done
}

# imapd_executable NAME: the `executable` line for an unpacked IMAP process.
imapd_executable() {
    [ -x /usr/lib/dovecot/imap ] || printf '  executable = %s/%s' "$UNPACKED_IMAPD" "$1"
}
