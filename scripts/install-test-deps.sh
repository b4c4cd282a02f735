#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, if missing:
# a real Dovecot IMAP server, a real Secret Service (gnome-keyring on a
# D-Bus session bus, with secret-tool to inspect it), and the programs the
# tests run (openssl, kill, mount, script).
set -euo pipefail

needed=()
command -v dovecot >/dev/null || needed+=(dovecot-core dovecot-imapd)
{ command -v dbus-run-session && command -v dbus-daemon; } >/dev/null || needed+=(dbus)
command -v gnome-keyring-daemon >/dev/null || needed+=(gnome-keyring)
command -v secret-tool >/dev/null || needed+=(libsecret-tools)
command -v openssl >/dev/null || needed+=(openssl)
# Tools the tests run as programs: kill (a shell builtin too, hence the
# path), mount for the tmpfs and read-only mounts, script for a terminal.
[[ -x /bin/kill || -x /usr/bin/kill ]] || needed+=(procps)
{ command -v mount && command -v umount; } >/dev/null || needed+=(mount)
command -v script >/dev/null || needed+=(bsdutils)

if [[ ${#needed[@]} -eq 0 ]]; then
    exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        sudo="sudo"
    else
        echo "$0: need root to install: ${needed[*]}" >&2
        exit 1
    fi
fi

echo "installing test dependencies: ${needed[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${needed[@]}" >&2
