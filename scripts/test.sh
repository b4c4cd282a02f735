#!/usr/bin/env bash
# The test command: installs the real servers the tests use (Dovecot, a
# Secret Service) and cargo-deb if missing, then runs every test inside a
# private D-Bus session with an unlocked gnome-keyring, then builds and
# checks the .deb (scripts/deb.sh; in CI as root it installs it too).
# Extra arguments go to cargo test, and then the .deb is skipped: a chosen
# subset of tests should not wait for a release build.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
bash scripts/keyring-session.sh cargo test --locked "$@"
if [[ $# -eq 0 ]]; then
    bash scripts/deb.sh
fi
