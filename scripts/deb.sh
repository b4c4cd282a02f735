#!/usr/bin/env bash
# Builds the .deb with cargo-deb (metadata in Cargo.toml, units in
# packaging/) and checks it like an admin would find it:
#
# - always: the package lists the binary, the gzipped man pages, the three
#   shell completions, the systemd units and the copyright, and the binary
#   in it runs and reports the crate's version;
# - in CI (CI=true) as root: `dpkg -i` installs it, then `wechat-archiver
#   --version`, `man -w wechat-archiver`, bash completion and the units are
#   checked on the installed system (the package stays installed).
#
# Prints the .deb's path on its last line. Needs cargo-deb
# (scripts/install-test-deps.sh installs it) and dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "$0: $*" >&2
    exit 1
}

command -v cargo-deb >/dev/null ||
    fail "cargo-deb not found; run scripts/install-test-deps.sh"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
# cargo deb builds the release binary (reusing target/release) and prints
# the .deb's path last.
deb=$(cargo deb --locked | tail -n 1)
[[ -f $deb ]] || fail "cargo deb did not print the path of a .deb (got: $deb)"
echo "built $deb" >&2

# What an admin's system gets, by path inside the package.
expected=(
    ./usr/bin/wechat-archiver
    ./usr/share/man/man1/wechat-archiver.1.gz
    ./usr/share/man/man1/wechat-archiver-sync.1.gz
    ./usr/share/bash-completion/completions/wechat-archiver
    ./usr/share/zsh/vendor-completions/_wechat-archiver
    ./usr/share/fish/vendor_completions.d/wechat-archiver.fish
    ./usr/lib/systemd/system/wechat-archiver@.service
    ./usr/lib/systemd/system/wechat-archiver@.timer
    ./usr/share/doc/wechat-archiver/copyright
    ./usr/share/doc/wechat-archiver/README.md
)
contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
for path in "${expected[@]}"; do
    grep -qxF "$path" <<<"$contents" || fail "$deb lacks $path; it has:
$contents"
done
man_pages=$(grep -c '^./usr/share/man/man1/.*\.1\.gz$' <<<"$contents" || true)
[[ $man_pages -eq $(ls man/*.1 | wc -l) ]] ||
    fail "$deb has $man_pages gzipped man pages, man/ has $(ls man/*.1 | wc -l)"
# Nothing may be enabled by the package: no unit linked into a .wants dir.
if grep -q '\.wants/' <<<"$contents"; then
    fail "$deb enables a unit: $(grep '\.wants/' <<<"$contents")"
fi

# The packaged binary runs and is this version.
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
dpkg-deb -x "$deb" "$unpacked"
reported=$("$unpacked/usr/bin/wechat-archiver" --version)
[[ $reported == "wechat-archiver $version" ]] ||
    fail "the packaged binary reports '$reported', expected 'wechat-archiver $version'"

if [[ ${CI:-} == true && $(id -u) -eq 0 ]]; then
    echo "installing $deb" >&2
    dpkg -i "$deb" >&2
    reported=$(wechat-archiver --version)
    [[ $reported == "wechat-archiver $version" ]] ||
        fail "installed wechat-archiver reports '$reported', expected 'wechat-archiver $version'"
    [[ $(command -v wechat-archiver) == /usr/bin/wechat-archiver ]] ||
        fail "wechat-archiver on PATH is $(command -v wechat-archiver), not /usr/bin/wechat-archiver"
    page=$(man -w wechat-archiver) || fail "man -w wechat-archiver finds no page after installing"
    [[ $page == /usr/share/man/man1/wechat-archiver.1.gz ]] ||
        fail "man -w wechat-archiver gives $page, not the packaged page"
    man -w wechat-archiver-sync >/dev/null || fail "man -w wechat-archiver-sync finds no page"
    completion=/usr/share/bash-completion/completions/wechat-archiver
    [[ -f $completion ]] || fail "$completion missing after installing"
    bash -c "source $completion && complete -p wechat-archiver" >/dev/null ||
        fail "$completion does not register a completion for wechat-archiver"
    getent passwd wechat-archiver >/dev/null || fail "the package did not create the wechat-archiver user"
    [[ -d /var/lib/wechat-archiver ]] || fail "the package did not create /var/lib/wechat-archiver"
    if command -v systemd-analyze >/dev/null; then
        # An instance of each template, as systemctl would load it.
        units=$(mktemp -d)
        cp /usr/lib/systemd/system/wechat-archiver@.service "$units/wechat-archiver@ci.service"
        cp /usr/lib/systemd/system/wechat-archiver@.timer "$units/wechat-archiver@ci.timer"
        # It exits 0 on a line it ignores, so any complaint fails the check.
        complaints=$(systemd-analyze verify "$units/wechat-archiver@ci.timer" \
            "$units/wechat-archiver@ci.service" 2>&1) ||
            fail "systemd-analyze rejects the packaged units: $complaints"
        [[ -z $complaints ]] || fail "systemd-analyze complains about the packaged units: $complaints"
        rm -rf "$units"
    fi
    echo "installed and checked $deb" >&2
fi

echo "$deb"
