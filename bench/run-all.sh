#!/usr/bin/env bash
# bench/run-all.sh: every talstrap benchmark, one after the other, into bench/results/.
#
# Writes bench/results/<name>.json (raw numbers) and <name>.md (tables), testbed.txt
# (the testbed's own checks), then
# bench/results/summary.md with the machine description and all tables in order.
# Each benchmark runs in its own testbed namespace on loopback only. Installs what
# it needs (nftables, nmap, hyperfine, time, jq) on a fresh Debian machine. Needs root.
#
# Then the scale curve at time scale 1 (the simulator's real stage durations):
# 6, 500, 1,000 and 5,000 nodes through `apply --wait` with the default flags,
# into apply<N>-scale1.{json,md}, with a perf profile of talstrap and of the
# simulator at 5,000, and bench/results/curve.md (bench/curve.py); then 5,000 nodes
# again with `--parallel 256`, the flag the README gives for fleets of thousands.
#
# Knobs: RUNS (passed to each script), SKIP (space-separated names to leave out:
# testbed startup discover24 discover16 apply6 apply6-poll250 apply500 apply500-poll250
# curve6 curve500 curve1000 curve5000 curve5000-p256), CURVE_RUNS (runs per curve size; 3, and 1 at
# 5,000), FLEET, TALSTRAP_BIN, SIM_BIN (binary that runs `talstrap sim`; default
# TALSTRAP_BIN), TIME_SCALE (the apply benches before the curve; 0.2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root "run-all.sh"
need_pkg hyperfine hyperfine
need_pkg nmap nmap
need_pkg nft nftables
need_pkg jq jq
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time
mkdir -p "$RESULTS_DIR"
# Build (or refresh) the binary once; every script then measures that same file.
if [ -z "${TALSTRAP_BIN:-}" ] && bin=$(talstrap_bin); then export TALSTRAP_BIN="$bin"; fi

skipped() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
step() { # NAME CMD...
    local name="$1"; shift
    if skipped "$name"; then log "skipping $name"; return 0; fi
    log "=== $name: $*"
    "$@" || { log "$name failed"; FAILED+=("$name"); }
}

FAILED=()
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
step testbed bash -c 'set -o pipefail; bash "$0" | tee "$1"' "$BENCH_DIR/verify-testbed.sh" "$RESULTS_DIR/testbed.txt"
step startup bash "$BENCH_DIR/startup.sh"
step discover24 bash "$BENCH_DIR/discover.sh" 24
step discover16 bash "$BENCH_DIR/discover.sh" 16
step apply6 bash "$BENCH_DIR/apply.sh" 6
step apply6-poll250 env TAG=poll250 EXTRA_ARGS="--poll-interval 250ms" bash "$BENCH_DIR/apply.sh" 6
step apply500 env PERF=1 bash "$BENCH_DIR/apply.sh" 500
step apply500-poll250 env TAG=poll250 EXTRA_ARGS="--poll-interval 250ms" bash "$BENCH_DIR/apply.sh" 500
CURVE_SIZES=(6 500 1000 5000)
for n in "${CURVE_SIZES[@]}"; do
    runs="${CURVE_RUNS:-3}"; perf=0
    if [ "$n" -ge 5000 ]; then runs="${CURVE_RUNS:-1}"; perf=1; fi
    step "curve$n" env TIME_SCALE=1 TAG=scale1 MODES=default RUNS="$runs" PERF="$perf" \
        bash "$BENCH_DIR/apply.sh" "$n"
done
# The one documented flag for fleets of thousands: --parallel 256 (README, --help).
step curve5000-p256 env TIME_SCALE=1 TAG=scale1-p256 MODES=default RUNS="${CURVE_RUNS:-1}" PERF=1 \
    EXTRA_ARGS="--parallel 256" bash "$BENCH_DIR/apply.sh" 5000
python3 "$BENCH_DIR/curve.py" "$RESULTS_DIR" scale1 "${CURVE_SIZES[@]}" >"$RESULTS_DIR/curve.md" \
    || FAILED+=(curve)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "## Run of $STARTED"
    echo
    echo "Bench scripts at commit $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown);" \
        "binary: ${TALSTRAP_BIN:-target/release/talstrap} ($("$(talstrap_bin)" --version 2>/dev/null || echo unavailable))${SIM_BIN:+; simulator binary: $SIM_BIN}."
    echo
    machine_info
    echo "- Load average (1, 5, 15 min) at the start: $LOAD_BEFORE; at the end of the apply runs: $LOAD_AFTER"
    echo
    for n in startup discover24 discover16 apply6 apply6-poll250 apply500 apply500-poll250; do
        if [ -f "$RESULTS_DIR/$n.md" ] && ! skipped "$n"; then
            cat "$RESULTS_DIR/$n.md"
            echo
        fi
    done
    echo "### The curve: apply --wait at time scale 1, default flags"
    echo
    cat "$RESULTS_DIR/curve.md" 2>/dev/null || echo "(no curve)"
    echo
    for n in "${CURVE_SIZES[@]}"; do
        if [ -f "$RESULTS_DIR/apply$n-scale1.md" ] && ! skipped "curve$n"; then
            cat "$RESULTS_DIR/apply$n-scale1.md"
            echo
        fi
    done
    if [ -f "$RESULTS_DIR/apply5000-scale1-p256.md" ] && ! skipped curve5000-p256; then
        echo "### 5,000 nodes with the large-fleet flag \`--parallel 256\`"
        echo
        cat "$RESULTS_DIR/apply5000-scale1-p256.md"
        echo
    fi
    [ "${#FAILED[@]}" -eq 0 ] || echo "Failed steps: ${FAILED[*]}"
} >"$RESULTS_DIR/summary.md"
log "wrote $RESULTS_DIR/summary.md"
[ "${#FAILED[@]}" -eq 0 ] || die "failed: ${FAILED[*]}"
