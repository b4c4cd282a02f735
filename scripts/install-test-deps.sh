#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, if missing:
# two real IMAP servers (Dovecot and Cyrus, with saslpasswd2 for Cyrus's
# users), a real Secret Service (gnome-keyring on a D-Bus session bus, with
# secret-tool to inspect it), a real MTA (Postfix, which the e-mail source
# tests run as a private instance in front of `receive`), Dovecot's own
# LMTP server (bench/lmtp compares `receive` against it), and the programs
# the tests run (openssl, kill, mount, script).
#
# Debian's cyrus-imapd and dovecot-imapd conflict (both provide
# imap-server), so cyrus-imapd is installed normally and dovecot-imapd's
# files are unpacked into $DOVECOT_IMAPD_DIR, matching the installed
# dovecot-core; the tests' Dovecot runs its imap services from there.
set -euo pipefail

DOVECOT_IMAPD_DIR=/var/cache/wechat-archiver-tests/dovecot-imapd

needed=()
command -v dovecot >/dev/null || needed+=(dovecot-core)
[[ -x /usr/lib/cyrus/bin/master ]] || needed+=(cyrus-imapd)
command -v saslpasswd2 >/dev/null || needed+=(sasl2-bin)
{ command -v dbus-run-session && command -v dbus-daemon; } >/dev/null || needed+=(dbus)
command -v gnome-keyring-daemon >/dev/null || needed+=(gnome-keyring)
command -v secret-tool >/dev/null || needed+=(libsecret-tools)
command -v openssl >/dev/null || needed+=(openssl)
# Postfix replaces any other MTA (it conflicts with mail-transport-agent);
# "No configuration" leaves the system instance unconfigured and stopped:
# the tests run their own instance with `postfix -c DIR`.
[[ -x /usr/sbin/postfix ]] || needed+=(postfix)
[[ -x /usr/lib/dovecot/lmtp ]] || needed+=(dovecot-lmtpd)
# Tools the tests run as programs: kill (a shell builtin too, hence the
# path), mount for the tmpfs and read-only mounts, script for a terminal.
[[ -x /bin/kill || -x /usr/bin/kill ]] || needed+=(procps)
{ command -v mount && command -v umount; } >/dev/null || needed+=(mount)
command -v script >/dev/null || needed+=(bsdutils)
# scripts/deb.sh checks `man -w wechat-archiver` after installing the .deb.
command -v man >/dev/null || needed+=(man-db)

# cargo-deb builds the .deb (scripts/deb.sh, run by scripts/test.sh).
# Pinned, and --locked to the dependency versions it was released with:
# 3.8.0 needs Rust 1.85 (its rust-version), this project 1.95. Installed
# only when missing; it needs no root.
CARGO_DEB_VERSION=3.8.0
if ! command -v cargo-deb >/dev/null; then
    echo "installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install --quiet cargo-deb --version "$CARGO_DEB_VERSION" --locked >&2
fi

# The dovecot-core version the unpacked dovecot-imapd must match, if any.
core_version() {
    dpkg-query -W -f '${Version}' dovecot-core 2>/dev/null || true
}
unpacked_current() {
    local version
    version=$(core_version)
    [[ -n $version && -x $DOVECOT_IMAPD_DIR/usr/lib/dovecot/imap ]] &&
        [[ $(cat "$DOVECOT_IMAPD_DIR/version" 2>/dev/null) == "$version" ]]
}

if [[ ${#needed[@]} -eq 0 ]] && unpacked_current; then
    exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        sudo="sudo"
    else
        echo "$0: need root to install: ${needed[*]} dovecot-imapd" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
echo "postfix postfix/main_mailer_type select No configuration" |
    $sudo debconf-set-selections
if [[ ${#needed[@]} -gt 0 ]]; then
    echo "installing test dependencies: ${needed[*]}" >&2
    $sudo apt-get install -y -qq --no-install-recommends "${needed[@]}" >&2
fi

if ! unpacked_current; then
    version=$(core_version)
    echo "unpacking dovecot-imapd $version into $DOVECOT_IMAPD_DIR" >&2
    download=$(mktemp -d)
    trap 'rm -rf "$download"' EXIT
    chmod 755 "$download"
    (cd "$download" && $sudo apt-get download -qq "dovecot-imapd=$version" >&2)
    $sudo rm -rf "$DOVECOT_IMAPD_DIR"
    $sudo mkdir -p "$DOVECOT_IMAPD_DIR"
    $sudo dpkg -x "$download"/dovecot-imapd_*.deb "$DOVECOT_IMAPD_DIR"
    echo "$version" | $sudo tee "$DOVECOT_IMAPD_DIR/version" >/dev/null
fi
