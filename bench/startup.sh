#!/usr/bin/env bash
# bench/startup.sh: start-up cost of the release binary (measurement 5 of BENCHMARKS.md).
#
# Times `talstrap --version` and `talstrap --help` with hyperfine (no shell, 3 warm-up
# runs), and `true` as the floor of process creation on this machine. Goal: < 10 ms.
# Results: $RESULTS_DIR/startup.{json,md}. Knobs: RUNS (200), TALSTRAP_BIN.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-200}"
need_pkg hyperfine hyperfine
need_pkg jq jq
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time
mkdir -p "$RESULTS_DIR"
BIN=$(talstrap_bin) || die "no talstrap binary"
"$BIN" --version >/dev/null || die "$BIN --version failed"
"$BIN" --help >/dev/null || die "$BIN --help failed"
OUT="$RESULTS_DIR/startup"

TRUE_BIN=$(command -v true)
hyperfine -N --warmup 3 --runs "$RUNS" --style basic --export-json "$OUT.hyperfine.json" \
    -n "true (floor)" "$TRUE_BIN" \
    -n "talstrap --version" "$BIN --version" \
    -n "talstrap --help" "$BIN --help" >&2

VERSION_RSS=$(measure_once "$BIN" --version | jq .max_rss_kb)
HELP_RSS=$(measure_once "$BIN" --help | jq .max_rss_kb)
SIZE=$(stat -c %s "$BIN")

jq --arg bin "$BIN" --argjson size "$SIZE" --argjson vrss "$VERSION_RSS" --argjson hrss "$HELP_RSS" \
    '{measurement: "startup", binary: $bin, binary_bytes: $size,
      max_rss_kb: {version: $vrss, help: $hrss},
      hyperfine: [.results[] | {command, mean, stddev, min, max, median}]}' \
    "$OUT.hyperfine.json" >"$OUT.json"

shown_bin() { [ -n "${TALSTRAP_BIN:-}" ] && echo "$BIN" || echo "target/release/talstrap"; }
ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }
{
    echo "### start-up ($RUNS runs, 3 warm-up, no shell)"
    echo
    echo "| command | mean ± σ (ms) | median (ms) | min (ms) | max (ms) | peak RSS (MiB) | goal < 10 ms |"
    echo "|---|---|---|---|---|---|---|"
    for i in 0 1 2; do
        name=$(jq -r ".hyperfine[$i].command" "$OUT.json")
        mean=$(jq ".hyperfine[$i].mean" "$OUT.json")
        case $i in 1) rss=$VERSION_RSS ;; 2) rss=$HELP_RSS ;; *) rss="" ;; esac
        goal="-"
        [ "$i" -eq 0 ] || goal=$(awk -v m="$mean" 'BEGIN { print (m < 0.010) ? "met" : "missed" }')
        echo "| \`$name\` | $(ms "$mean") ± $(ms "$(jq ".hyperfine[$i].stddev" "$OUT.json")") | $(ms "$(jq ".hyperfine[$i].median" "$OUT.json")") | $(ms "$(jq ".hyperfine[$i].min" "$OUT.json")") | $(ms "$(jq ".hyperfine[$i].max" "$OUT.json")") | ${rss:+$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')} | $goal |"
    done
    echo
    echo "Binary: $(awk -v b="$SIZE" 'BEGIN { printf "%.1f MiB", b / 1048576 }') (release profile)."
    echo
    echo "Command: \`hyperfine -N --warmup 3 --runs $RUNS 'talstrap --version' 'talstrap --help'\` (talstrap = $(shown_bin))"
} >"$OUT.md"
cat "$OUT.md"
