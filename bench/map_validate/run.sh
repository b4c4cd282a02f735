#!/usr/bin/env bash
# Benchmark (not a test): `wechat-archiver map validate` on a generated
# 1,000,000-row mapping CSV beside a Python baseline (csv module +
# phonenumbers) doing the same checks, measured in the same run.
# Prints wall time and peak RSS of both, the speed ratio, and checks that
# both found the same counts.
#
# Usage: bench/map_validate/run.sh [ROWS]      (default 1000000)
# Needs: cargo, python3 with venv, /usr/bin/time (GNU), PyPI access once.
set -euo pipefail

ROWS=${1:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
PHONENUMBERS_VERSION=9.0.43

echo "building the release binary..." >&2
(cd "$root" && cargo build --release --quiet --bin wechat-archiver)
bin="$root/target/release/wechat-archiver"

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "phonenumbers==$PHONENUMBERS_VERSION"
py="$venv/bin/python"

csv="$work/mapping.csv"
"$py" "$here/gen.py" "$ROWS" "$csv"
small="$work/mapping-quarter.csv"
"$py" "$here/gen.py" "$((ROWS / 4))" "$small"

# measure NAME CMD...: runs CMD, stdout to $work/NAME.out; prints
# "wall_secs peak_kib user_secs sys_secs".
measure() {
    local name=$1
    shift
    local status=0
    /usr/bin/time -f "%e %M %U %S" -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" || status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        echo "$name failed with status $status:" >&2
        cat "$work/$name.err" >&2
        exit 1
    fi
    tail -n 1 "$work/$name.time"
}

rust() {
    measure "$1" "$bin" --home "$work/home" map validate "$2" --default-region CN --json
}

RUNS=${RUNS:-5}
load_before=$(cut -d' ' -f1 /proc/loadavg)
best_secs=""
best_cpu=""
rss_kib=0
for run in $(seq "$RUNS"); do
    read -r secs kib user sys < <(rust rust "$csv")
    cpu=$(awk "BEGIN{printf \"%.2f\", $user + $sys}")
    echo "wechat-archiver run $run: ${secs} s wall, ${cpu} s CPU, ${kib} KiB" >&2
    if [ -z "$best_secs" ] || awk "BEGIN{exit !($secs < $best_secs)}"; then best_secs=$secs; fi
    if [ -z "$best_cpu" ] || awk "BEGIN{exit !($cpu < $best_cpu)}"; then best_cpu=$cpu; fi
    if [ "$kib" -gt "$rss_kib" ]; then rss_kib=$kib; fi
done
read -r _ small_kib _ _ < <(rust rust-quarter "$small")

echo "python baseline (one run, this takes a while)..." >&2
read -r py_secs py_kib py_user py_sys < <(measure python "$py" "$here/baseline.py" "$csv" CN)
py_cpu=$(awk "BEGIN{printf \"%.2f\", $py_user + $py_sys}")
load_after=$(cut -d' ' -f1 /proc/loadavg)

summary() {
    "$py" -c 'import json,sys
r = json.load(open(sys.argv[1]))
if "errors" in r and isinstance(r["errors"], list):
    r = {"rows": r["rows"], "valid": r["valid"], "mappings": r["mappings"],
         "errors": len(r["errors"]), "warnings": len(r["warnings"])}
print(json.dumps(r, sort_keys=True))' "$1"
}
rust_counts=$(summary "$work/rust.out")
py_counts=$(summary "$work/python.out")

size_mib=$(awk "BEGIN{printf \"%.1f\", $(stat -c %s "$csv") / 1048576}")
ratio=$(awk "BEGIN{printf \"%.1f\", $py_secs / $best_secs}")
cpu_ratio=$(awk "BEGIN{printf \"%.1f\", $py_cpu / $best_cpu}")
per_mapping=$(awk "BEGIN{printf \"%.0f\", ($rss_kib - $small_kib) * 1024 / ($ROWS * 0.75)}")

cat <<REPORT

map validate benchmark: $ROWS rows, $size_mib MiB, $(nproc) cores, load average $load_before -> $load_after
  wechat-archiver : ${best_secs} s wall (best of $RUNS), ${best_cpu} s CPU, peak RSS $((rss_kib / 1024)) MiB
  python baseline : ${py_secs} s wall, ${py_cpu} s CPU, peak RSS $((py_kib / 1024)) MiB
  speed ratio     : ${ratio}x wall, ${cpu_ratio}x CPU
  memory          : $((small_kib / 1024)) MiB at $((ROWS / 4)) rows, $((rss_kib / 1024)) MiB at $ROWS rows
                    (~${per_mapping} bytes per added distinct number: the duplicate index)
  counts (tool)   : $rust_counts
  counts (python) : $py_counts
REPORT

status=0
if [ "$rust_counts" != "$py_counts" ]; then
    echo "MISMATCH: the two implementations disagree on the counts" >&2
    status=1
fi
if awk "BEGIN{exit !($ratio < 10)}"; then
    echo "BELOW TARGET: less than 10x the baseline" >&2
    status=1
fi
if [ "$ROWS" -eq 1000000 ] && awk "BEGIN{exit !($best_secs >= 1.5)}"; then
    echo "BELOW TARGET: 1,000,000 rows took 1.5 s or more" >&2
    status=1
fi
exit $status
