#!/usr/bin/env bash
# bench/apply.sh: apply + verify benchmarks against a simulated fleet (measurements 3 and 4).
#
#   apply.sh 6     3 control planes + 3 workers with realistic durations scaled by
#                  TIME_SCALE: `apply --wait` in parallel vs `--serial`; reports the ratio
#   apply.sh 500   3 control planes + 497 workers, all in parallel: wall time vs the
#                  slowest node's own time, peak RSS (goal < 200 MB) and CPU time
#
# apply changes a node for good (maintenance -> installed), so every run gets a fresh
# fleet; runs are timed one by one with /usr/bin/time -v rather than by hyperfine.
# Needs `talstrap sim` and `talstrap apply`: when they cannot run, the result files say
# "pending" with the reason, and no number is written.
#
# Knobs: RUNS (3), PORT (50000), TIME_SCALE (0.1), PARALLEL (node count, for 500),
# TALSTRAP_BIN, TALSTRAP_APPLY ({bin} {talconfig} {port} are substituted).
set -euo pipefail
FLEET=sim
source "$(dirname "${BASH_SOURCE[0]}")/fleet.sh"

WHICH="${1:-}"
case "$WHICH" in
    6) CPS=3 WORKERS=3 ;;
    500) CPS=3 WORKERS=497 ;;
    *) die "usage: apply.sh 6|500" ;;
esac
NODES=$(( CPS + WORKERS ))
RUNS="${RUNS:-3}"
PORT="${PORT:-50000}"
TIME_SCALE="${TIME_SCALE:-0.1}"
DEFAULT_APPLY='{bin} apply --talconfig {talconfig} --port {port} --wait -o json'
TALSTRAP_APPLY="${TALSTRAP_APPLY:-$DEFAULT_APPLY}"

need_root "apply.sh"
need_pkg nft nftables
need_pkg jq jq
need_pkg python3 python3
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time
mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/apply$WHICH"
NS="tsb-apply$WHICH-$$"
WORK=$(mktemp -d /tmp/tsb-apply.XXXXXX)

# 500 nodes do not fit a /24: the scale fleet gets a random 127.x.y.0/22.
if [ "$NODES" -le 254 ]; then
    SUBNET=$(random_subnet24)
else
    SUBNET="127.$(( RANDOM % 254 + 1 )).$(( (RANDOM % 63) * 4 + 4 )).0/22"
fi

cleanup() {
    fleet_stop
    "$BENCH_DIR/testbed.sh" down "$NS" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_pending() {
    local reason="$1"
    jq -n --arg m "apply+verify $NODES nodes" --arg r "$reason" '{measurement: $m, talstrap: "pending", reason: $r}' >"$OUT.json"
    {
        echo "### apply + verify, $NODES nodes"
        echo
        echo "Pending: $reason"
    } >"$OUT.md"
    cat "$OUT.md"
    exit 0
}

BIN=$(talstrap_bin) || write_pending "no talstrap release binary"
"$BENCH_DIR/testbed.sh" up "$NS" "$SUBNET"
in_ns() { "$BENCH_DIR/testbed.sh" exec "$NS" "$@"; }

# one_run MODE(parallel|serial) -> appends a JSON line to $WORK/runs.jsonl, or fails with a reason.
one_run() {
    local mode="$1" cmd
    FLEET_READY_TIMEOUT=120 fleet_start_sim "$NS" "$SUBNET" "$CPS" "$WORKERS" "$PORT" "$TIME_SCALE" \
        || { REASON="no $NODES-node simulated fleet: ${FLEET_ERROR:-unknown error}"; return 1; }
    cmd="${TALSTRAP_APPLY//\{bin\}/$BIN}"
    cmd="${cmd//\{talconfig\}/$FLEET_DIR/talconfig.yaml}"
    cmd="${cmd//\{port\}/$PORT}"
    case "$mode" in
        serial) cmd="$cmd --serial" ;;
        parallel) cmd="$cmd --parallel ${PARALLEL:-$NODES}" ;;
    esac
    LAST_CMD="${cmd//$FLEET_DIR/D}"
    LAST_CMD="${LAST_CMD//$BIN/talstrap}"
    local once
    # shellcheck disable=SC2086
    once=$(in_ns bash -c "source '$BENCH_DIR/lib.sh'; /usr/bin/time -v -o '$WORK/time.txt' $cmd >'$WORK/out.jsonl' 2>'$WORK/err.txt'; echo \$? >'$WORK/rc'" ; \
        awk -F': ' '/Maximum resident set size/ {r=$2} /User time/ {u=$2} /System time/ {s=$2}
                    /Elapsed \(wall clock\)/ {n=split($NF,p,":"); w=0; for(i=1;i<=n;i++) w=w*60+p[i]}
                    END {printf "{\"wall_s\":%s,\"user_s\":%s,\"sys_s\":%s,\"max_rss_kb\":%s}", w+0, u+0, s+0, r+0}' "$WORK/time.txt")
    fleet_stop
    local report ok
    report=$(grep '"schema"' "$WORK/out.jsonl" | tail -1 || true)
    ok=$(echo "$report" | jq -r '.summary.ok // empty' 2>/dev/null || true)
    if [ -z "$report" ] || [ "$(cat "$WORK/rc")" != 0 ] || [ "$ok" != "$NODES" ]; then
        REASON="\`$mode\` run: exit $(cat "$WORK/rc"), ${ok:-no report}/$NODES nodes ok: $(tail -c 200 "$WORK/err.txt" | tr '\n' ' ')"
        return 1
    fi
    echo "$report" | jq -c --arg mode "$mode" --argjson once "$once" \
        '{mode: $mode, once: $once, report_ms: .duration_ms,
          slowest_node_ms: ([.nodes[].duration_ms] | max)}' >>"$WORK/runs.jsonl"
}

REASON=""
MODES=(parallel)
[ "$WHICH" = 6 ] && MODES=(parallel serial)
: >"$WORK/runs.jsonl"
declare -A CMD_OF
for (( r = 1; r <= RUNS; r++ )); do
    for m in "${MODES[@]}"; do
        log "run $r/$RUNS: $m"
        one_run "$m" || write_pending "$REASON"
        CMD_OF[$m]="$LAST_CMD"
    done
done

jq -s --arg m "apply+verify $NODES nodes" --arg scale "$TIME_SCALE" \
    '{measurement: $m, time_scale: ($scale | tonumber), runs: .}' "$WORK/runs.jsonl" >"$OUT.json"

stat_of() { # MODE JQ_EXPR_ON_RUN -> mean over runs of that mode
    jq -r --arg mode "$1" "[.runs[] | select(.mode == \$mode) | $2] | add / length" "$OUT.json"
}
f2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
{
    echo "### apply --wait, $NODES nodes ($CPS control planes, $WORKERS workers), time scale $TIME_SCALE, $RUNS runs, fresh fleet each"
    echo
    echo "| mode | wall mean (s) | slowest node's own time (s) | wall / slowest | peak RSS (MiB) | CPU user+sys (s) |"
    echo "|---|---|---|---|---|---|"
    for m in "${MODES[@]}"; do
        wall=$(stat_of "$m" .once.wall_s)
        slow=$(stat_of "$m" '.slowest_node_ms / 1000')
        rss=$(jq -r --arg mode "$m" '[.runs[] | select(.mode == $mode) | .once.max_rss_kb] | max / 1024' "$OUT.json")
        cpu=$(stat_of "$m" '.once.user_s + .once.sys_s')
        echo "| $m | $(f2 "$wall") | $(f2 "$slow") | $(awk -v a="$wall" -v b="$slow" 'BEGIN { printf "%.2fx", a / b }') | $(f2 "$rss") | $(f2 "$cpu") |"
    done
    if [ "$WHICH" = 6 ]; then
        echo
        echo "serial / parallel wall time: $(awk -v a="$(stat_of serial .once.wall_s)" -v b="$(stat_of parallel .once.wall_s)" 'BEGIN { printf "%.2fx", a / b }')"
    fi
    echo
    echo "Commands (inside the namespace, against \`talstrap sim --control-planes $CPS --workers $WORKERS --dir D --subnet $SUBNET --port $PORT --time-scale $TIME_SCALE\`):"
    echo
    for m in "${MODES[@]}"; do echo "- $m: \`${CMD_OF[$m]}\`"; done
} >"$OUT.md"
cat "$OUT.md"
