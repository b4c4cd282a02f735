#!/usr/bin/env bash
# The test command: installs the real servers the tests use (Dovecot, a
# Secret Service) if missing, then runs every test inside a private D-Bus
# session with an unlocked gnome-keyring. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
exec bash scripts/keyring-session.sh cargo test --locked "$@"
