#!/usr/bin/env bash
# Runs a command with a real, unlocked Secret Service: a private D-Bus
# session bus (dbus-run-session) and gnome-keyring-daemon's secrets
# component, unlocked with a throwaway password. The keyring's files live in
# a temporary XDG_DATA_HOME so the caller's own keyrings are never touched.
#
#   scripts/keyring-session.sh cargo test --test it keyring
#
# Needs (Debian): dbus, gnome-keyring, libsecret-tools (for secret-tool).
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

if [[ "${WECHAT_ARCHIVER_IN_KEYRING_SESSION:-}" != 1 ]]; then
    for tool in dbus-run-session gnome-keyring-daemon; do
        if ! command -v "$tool" >/dev/null; then
            echo "$0: $tool not found; install: apt-get install -y dbus gnome-keyring libsecret-tools" >&2
            exit 1
        fi
    done
    export WECHAT_ARCHIVER_IN_KEYRING_SESSION=1
    exec dbus-run-session -- "$0" "$@"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export XDG_DATA_HOME="$scratch/data"
export XDG_RUNTIME_DIR="$scratch/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

# Creates (first time) and unlocks the "login" keyring, which becomes the
# default collection; prints GNOME_KEYRING_CONTROL=... for the session.
eval "$(printf 'x' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL

unset WECHAT_ARCHIVER_IN_KEYRING_SESSION
"$@"
