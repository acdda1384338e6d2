#!/usr/bin/env bash
# bench/apply.sh: apply + verify benchmarks against a simulated fleet (measurements 3 and 4).
#
#   apply.sh 6     3 control planes + 3 workers, simulated durations scaled by TIME_SCALE:
#                  `apply --wait` with every node in parallel vs `--serial`; the ratio
#   apply.sh 500   3 control planes + 497 workers on a /22: `--parallel 500` and the
#                  default `--parallel 16`; wall time vs the slowest node's own time,
#                  peak RSS (goal < 200 MB) and CPU time of talstrap and, apart from
#                  it, of the simulator; connections opened and held; with PERF=1 one
#                  extra run under `perf record` says where talstrap's CPU time goes
#
# apply changes a node for good (maintenance -> installed), so every run gets a fresh
# fleet; runs are timed one by one with /usr/bin/time -v rather than by hyperfine.
# When `talstrap sim` cannot run the fleet, the result files say "pending" with the
# simulator's own error, and no number is written.
#
# Besides the wall time, each run reads the JSON events: when each node's apply
# finished, and when verify saw it reach its goal. The simulator needs a fixed time
# after an accepted config before a node can be ready (its default stage durations
# times TIME_SCALE: the floor below), so "verify lag" = seen ready - (applied + floor)
# is the part of a node's time spent by talstrap noticing, not by the node.
#
# Knobs: RUNS (3), PORT (50000), TIME_SCALE (0.2), EXTRA_ARGS (added to every apply
# command, e.g. "--poll-interval 250ms"), TAG (suffix of the result files, for such
# variants), PERF (1: profile one extra run), TALSTRAP_BIN, SIM_BIN (binary for
# `talstrap sim`, default TALSTRAP_BIN), TALSTRAP_APPLY ({bin} {talconfig} {port}),
# PERF_RECORD_ARGS (added to both `perf record`s, e.g. "--call-graph fp" for a
# build with frame pointers), PERF_KEEP (a directory to copy both perf.data files to),
# KEEP_OUT (a file to copy each run's JSON event stream to).
set -euo pipefail
FLEET=sim
source "$(dirname "${BASH_SOURCE[0]}")/fleet.sh"

WHICH="${1:-}"
[[ "$WHICH" =~ ^[0-9]+$ ]] && [ "$WHICH" -ge 4 ] && [ "$WHICH" -le 16000 ] \
    || die "usage: apply.sh NODES (4..16000: 3 control planes, the rest workers; e.g. 6, 500, 1000, 5000)"
CPS=3 WORKERS=$(( WHICH - 3 ))
if [ -n "${MODES:-}" ]; then
    read -r -a MODES <<<"$MODES"
elif [ "$WHICH" -le 6 ]; then
    MODES=(parallel serial)
else
    MODES=(parallel default)
fi
for m in "${MODES[@]}"; do
    case "$m" in parallel|serial|default) ;; *) die "MODES: '$m' is none of parallel, serial, default" ;; esac
done
NODES=$(( CPS + WORKERS ))
RUNS="${RUNS:-3}"
PORT="${PORT:-50000}"
TIME_SCALE="${TIME_SCALE:-0.2}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
DEFAULT_APPLY='{bin} apply --talconfig {talconfig} --port {port} --wait -o json'
TALSTRAP_APPLY="${TALSTRAP_APPLY:-$DEFAULT_APPLY}"

# The simulator's default stage durations at time scale 1 (src/sim/scenario.rs,
# Timing::default, and the maintenance hand-over in src/sim/state.rs): after a config
# is accepted the maintenance listener stops after max(20 ms, 100 ms x scale), then
# install 3 s, reboot 2 s, boot 2 s. Only then can a node be ready for bootstrap.
FLOOR_MS=$(awk -v s="$TIME_SCALE" 'BEGIN { g = 100 * s; if (g < 20) g = 20; printf "%d", g + 7000 * s }')

need_root "apply.sh"
need_pkg nft nftables
need_pkg jq jq
need_pkg python3 python3
need_pkg ss iproute2
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time
mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/apply$WHICH${TAG:+-$TAG}"
NS="tsb-apply$WHICH-$$"
WORK=$(mktemp -d /tmp/tsb-apply.XXXXXX)

# The simulator puts nodes from .11 on and the cluster endpoint on the last
# address before broadcast: a fleet that does not fit a /24 gets the smallest
# random, aligned 127.x.y.0/P (P down to /18) that holds it, never 127.0.0.0/16.
PREFIX=24
while [ $(( (1 << (32 - PREFIX)) - 13 )) -lt "$NODES" ]; do PREFIX=$(( PREFIX - 1 )); done
[ "$PREFIX" -ge 18 ] || die "$NODES nodes need more than a /18"
if [ "$PREFIX" -eq 24 ]; then
    SUBNET=$(random_subnet24)
else
    BLOCK=$(( 1 << (24 - PREFIX) ))
    SUBNET="127.$(( RANDOM % 254 + 1 )).$(( (RANDOM % (256 / BLOCK)) * BLOCK )).0/$PREFIX"
fi

cleanup() {
    [ -z "${SAMPLER_PID:-}" ] || kill "$SAMPLER_PID" 2>/dev/null || true
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
        echo "### apply + verify, $NODES nodes${TAG:+ ($TAG)}"
        echo
        echo "Pending: $reason"
    } >"$OUT.md"
    cat "$OUT.md"
    exit 0
}

BIN=$(talstrap_bin) || write_pending "no talstrap release binary"
"$BENCH_DIR/testbed.sh" up "$NS" "$SUBNET"
in_ns() { "$BENCH_DIR/testbed.sh" exec "$NS" "$@"; }

# Connection counters on the node port: SYNs sent to nodes (connect attempts),
# SYN-ACKs back (connections accepted, each one then carries a TLS handshake) and
# RSTs from nodes (mostly refused connects while a node reboots).
in_ns nft -f - <<EOF
add table inet tsb_count
add counter inet tsb_count syn_to_nodes
add counter inet tsb_count synack_from_nodes
add counter inet tsb_count rst_from_nodes
add chain inet tsb_count input { type filter hook input priority -10; policy accept; }
add rule inet tsb_count input tcp dport $PORT tcp flags & (syn|ack) == syn counter name syn_to_nodes
add rule inet tsb_count input tcp sport $PORT tcp flags & (syn|ack) == syn|ack counter name synack_from_nodes
add rule inet tsb_count input tcp sport $PORT tcp flags & rst == rst counter name rst_from_nodes
EOF
counters() {
    in_ns nft -j list counters table inet tsb_count \
        | jq -c '[.nftables[] | select(.counter) | {(.counter.name): .counter.packets}] | add'
}

# sim_cpu_ticks PID: user+system clock ticks the process has used so far.
sim_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# apply_cmd MODE: the talstrap command line of one run.
apply_cmd() {
    local mode="$1" cmd
    cmd="${TALSTRAP_APPLY//\{bin\}/$BIN}"
    cmd="${cmd//\{talconfig\}/$FLEET_DIR/talconfig.yaml}"
    cmd="${cmd//\{port\}/$PORT}"
    case "$mode" in
        serial) cmd="$cmd --serial" ;;
        parallel) cmd="$cmd --parallel $NODES" ;;
        default) ;;
    esac
    [ -z "$EXTRA_ARGS" ] || cmd="$cmd $EXTRA_ARGS"
    echo "$cmd"
}

# one_run MODE [PERF_DATA]: fresh fleet, one timed apply --wait; appends a JSON line to
# $WORK/runs.jsonl (unless profiling), or fails with $REASON.
one_run() {
    local mode="$1" perf_data="${2:-}" cmd wrap=""
    FLEET_READY_TIMEOUT=120 fleet_start_sim "$NS" "$SUBNET" "$CPS" "$WORKERS" "$PORT" "$TIME_SCALE" \
        || { REASON="no $NODES-node simulated fleet: ${FLEET_ERROR:-unknown error}"; return 1; }
    cmd=$(apply_cmd "$mode")
    LAST_CMD="${cmd//$FLEET_DIR/D}"
    LAST_CMD="${LAST_CMD//$BIN/talstrap}"
    [ -z "$perf_data" ] || wrap="perf record -q -F 2999 ${PERF_RECORD_ARGS:-} -o '$perf_data' --"

    in_ns nft reset counters table inet tsb_count >/dev/null
    rm -f "$WORK/stop" "$WORK/peak"
    # Peak number of open connections to the node port, sampled every 0.2 s.
    in_ns bash -c "peak=0; while [ ! -e '$WORK/stop' ]; do
        n=\$(ss -Htn state established '( sport = :$PORT )' | wc -l); [ \$n -le \$peak ] || peak=\$n; sleep 0.2
        done; echo \$peak >'$WORK/peak'" &
    SAMPLER_PID=$!
    local sim_before; sim_before=$(sim_cpu_ticks "$FLEET_PID")
    # Profiling: the simulator too, apart (it shares the cores).
    local sim_perf=""
    if [ -n "$perf_data" ]; then
        perf record -q -F 999 ${PERF_RECORD_ARGS:-} -p "$FLEET_PID" -o "$perf_data.sim" >/dev/null 2>&1 &
        sim_perf=$!
    fi

    # shellcheck disable=SC2086
    in_ns bash -c "/usr/bin/time -v -o '$WORK/time.txt' $wrap $cmd >'$WORK/out.jsonl' 2>'$WORK/err.txt'; echo \$? >'$WORK/rc'"

    local sim_after sim_hwm conn
    if [ -n "$sim_perf" ]; then kill -INT "$sim_perf" 2>/dev/null || true; wait "$sim_perf" 2>/dev/null || true; fi
    sim_after=$(sim_cpu_ticks "$FLEET_PID")
    sim_hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$FLEET_PID/status")
    conn=$(counters)
    touch "$WORK/stop"; wait "$SAMPLER_PID" || true; SAMPLER_PID=""
    fleet_stop
    # "... completed H TLS handshakes (at most M on one node)"; null from a
    # simulator that does not say.
    local hs hs_max
    hs=$(sed -nE 's/.*completed ([0-9]+) TLS handshakes.*/\1/p' <<<"$FLEET_STOP_LINE")
    hs_max=$(sed -nE 's/.*at most ([0-9]+) on one node.*/\1/p' <<<"$FLEET_STOP_LINE")

    local report ok once
    [ -z "${KEEP_OUT:-}" ] || cp "$WORK/out.jsonl" "$KEEP_OUT"
    report=$(grep '"schema"' "$WORK/out.jsonl" | tail -1 || true)
    ok=$(echo "$report" | jq -r '.summary.ok // empty' 2>/dev/null || true)
    if [ -z "$report" ] || [ "$(cat "$WORK/rc")" != 0 ] || [ "$ok" != "$NODES" ]; then
        REASON="\`$mode\` run: exit $(cat "$WORK/rc"), ${ok:-no report}/$NODES nodes ok: $(tail -c 200 "$WORK/err.txt" | tr '\n' ' ')"
        return 1
    fi
    [ -z "$perf_data" ] || return 0
    once=$(awk -F': ' '/Maximum resident set size/ {r=$2} /User time/ {u=$2} /System time/ {s=$2}
                /Elapsed \(wall clock\)/ {n=split($NF,p,":"); w=0; for(i=1;i<=n;i++) w=w*60+p[i]}
                END {printf "{\"wall_s\":%s,\"user_s\":%s,\"sys_s\":%s,\"max_rss_kb\":%s}", w+0, u+0, s+0, r+0}' "$WORK/time.txt")
    # The event timeline: apply phase, last node seen ready, verify lag per node.
    local timeline
    timeline=$(jq -s -c --argjson floor "$FLOOR_MS" '
        [.[] | select(.type == "event")] as $ev
        | ($ev | map(select(.event == "step_finished" and .step == "apply")) | map({key: .node, value: .t_ms}) | from_entries) as $applied
        | ($ev | map(select(.event == "step_finished" and .step == "verify"))) as $verified
        | [$verified[] | select($applied[.node] != null) | .t_ms - ($applied[.node] + $floor)] | sort as $lag
        | {apply_phase_ms: ($ev | map(select(.event == "run_started" and (.command | test("wait")))) | .[0].t_ms),
           last_applied_ms: ([$applied[]] | max),
           ready_floor_ms: ([$applied[] + $floor] | max),
           last_seen_ready_ms: ([$verified[].t_ms] | max),
           lag_ms: {min: $lag[0], median: $lag[($lag | length) / 2 | floor], max: $lag[-1]},
           step_max_ms: ($ev | map(select(.event == "step_finished")) | group_by(.step)
                          | map({key: .[0].step, value: ([.[].duration_ms] | max)}) | from_entries)}' "$WORK/out.jsonl")
    echo "$report" | jq -c --arg mode "$mode" --argjson once "$once" --argjson timeline "$timeline" \
        --argjson conn "$conn" --argjson peak "$(cat "$WORK/peak" 2>/dev/null || echo null)" \
        --argjson sim_cpu "$(awk -v a="$sim_before" -v b="$sim_after" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')" \
        --argjson sim_rss_kb "${sim_hwm:-null}" \
        --argjson hs "${hs:-null}" --argjson hs_max "${hs_max:-null}" \
        '{mode: $mode, once: $once, report_ms: .duration_ms,
          slowest_node_ms: ([.nodes[].duration_ms] | max), timeline: $timeline,
          connections: ($conn + {peak_open: $peak}),
          sim: {cpu_s: $sim_cpu, peak_rss_kb: $sim_rss_kb, handshakes: $hs, handshakes_max_per_node: $hs_max}}' >>"$WORK/runs.jsonl"
}

REASON=""
: >"$WORK/runs.jsonl"
declare -A CMD_OF
for (( r = 1; r <= RUNS; r++ )); do
    for m in "${MODES[@]}"; do
        log "run $r/$RUNS: $m"
        one_run "$m" || write_pending "$REASON"
        CMD_OF[$m]="$LAST_CMD"
    done
done

PERF_NOTE=""
if [ "${PERF:-0}" = 1 ]; then
    if command -v perf >/dev/null 2>&1; then
        log "profiling one extra ${MODES[0]} run with perf"
        if one_run "${MODES[0]}" "$WORK/perf.data"; then
            perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,sym 2>/dev/null \
                | python3 "$BENCH_DIR/perf_summary.py" >"$OUT.perf.md"
            if [ -n "${PERF_KEEP:-}" ]; then cp "$WORK/perf.data" "$WORK/perf.data.sim" "$PERF_KEEP/" 2>/dev/null || true; fi
            if [ -s "$WORK/perf.data.sim" ]; then
                perf report -i "$WORK/perf.data.sim" --stdio --no-children --sort dso,sym 2>/dev/null \
                    | python3 "$BENCH_DIR/perf_summary.py" >"$OUT.sim-perf.md"
            fi
            PERF_NOTE="$OUT.perf.md"
        else
            log "perf run failed: $REASON"
        fi
    else
        log "PERF=1 but perf is not installed: no profile"
    fi
fi

jq -s --arg m "apply+verify $NODES nodes" --arg scale "$TIME_SCALE" --argjson floor "$FLOOR_MS" \
    --arg extra "$EXTRA_ARGS" \
    '{measurement: $m, time_scale: ($scale | tonumber), ready_floor_ms: $floor, extra_args: $extra, runs: .}' \
    "$WORK/runs.jsonl" >"$OUT.json"

mean_of() { # MODE JQ_EXPR_ON_RUN -> mean over runs of that mode
    jq -r --arg mode "$1" "[.runs[] | select(.mode == \$mode) | $2] | add / length" "$OUT.json"
}
max_of() {
    jq -r --arg mode "$1" "[.runs[] | select(.mode == \$mode) | $2] | max" "$OUT.json"
}
min_of() {
    jq -r --arg mode "$1" "[.runs[] | select(.mode == \$mode) | $2] | min" "$OUT.json"
}
f2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
f0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
{
    echo "### apply --wait, $NODES nodes ($CPS control planes, $WORKERS workers)${TAG:+, $TAG}"
    echo
    echo "Time scale $TIME_SCALE: a node needs at least $FLOOR_MS ms after its config is accepted before it can be ready" \
        "(install, reboot, boot). $RUNS run(s) per mode, a fresh fleet for each run.${EXTRA_ARGS:+ Extra arguments: \`$EXTRA_ARGS\`.}"
    echo
    echo "| mode | wall mean (s) | min–max (s) | wall / node floor | slowest node's own time (s) | wall − slowest (ms) | last node ready at the earliest (s) | verify lag median / max (ms) |"
    echo "|---|---|---|---|---|---|---|---|"
    for m in "${MODES[@]}"; do
        wall=$(mean_of "$m" .once.wall_s)
        slow=$(mean_of "$m" '.slowest_node_ms / 1000')
        echo "| $m | $(f2 "$wall") | $(f2 "$(min_of "$m" .once.wall_s)")–$(f2 "$(max_of "$m" .once.wall_s)") |" \
            "$(awk -v a="$wall" -v f="$FLOOR_MS" 'BEGIN { printf "%.2fx", a * 1000 / f }') | $(f2 "$slow") |" \
            "$(f0 "$(awk -v a="$wall" -v b="$slow" 'BEGIN { print (a - b) * 1000 }')") |" \
            "$(f2 "$(mean_of "$m" '.timeline.ready_floor_ms / 1000')") |" \
            "$(f0 "$(mean_of "$m" .timeline.lag_ms.median)") / $(f0 "$(max_of "$m" .timeline.lag_ms.max)") |"
    done
    if [ "$WHICH" = 6 ]; then
        echo
        echo "serial / parallel wall time: $(awk -v a="$(mean_of serial .once.wall_s)" -v b="$(mean_of parallel .once.wall_s)" 'BEGIN { printf "%.2fx", a / b }')"
    fi
    echo
    echo "| mode | talstrap peak RSS (MiB) | talstrap CPU user+sys (s) | talstrap CPU per node (ms) | simulator CPU during the run (s) | simulator peak RSS (MiB) | peak open connections | connections accepted per node | TLS handshakes per node (mean / max) | refused connects (RST) | apply phase (ms) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for m in "${MODES[@]}"; do
        hs_mean=$(jq -r --arg mode "$m" "[.runs[] | select(.mode == \$mode) | .sim.handshakes] | if any(. == null) then \"n/a\" else (add / length / $NODES * 100 | round / 100 | tostring) end" "$OUT.json")
        hs_max=$(jq -r --arg mode "$m" '[.runs[] | select(.mode == $mode) | .sim.handshakes_max_per_node] | if any(. == null) then "n/a" else (max | tostring) end' "$OUT.json")
        echo "| $m | $(f2 "$(max_of "$m" '.once.max_rss_kb / 1024')") | $(f2 "$(mean_of "$m" '.once.user_s + .once.sys_s')") |" \
            "$(f2 "$(mean_of "$m" "(.once.user_s + .once.sys_s) * 1000 / $NODES")") |" \
            "$(f2 "$(mean_of "$m" .sim.cpu_s)") | $(f2 "$(max_of "$m" '.sim.peak_rss_kb / 1024')") |" \
            "$(f0 "$(max_of "$m" .connections.peak_open)") | $(f2 "$(mean_of "$m" ".connections.synack_from_nodes / $NODES")") |" \
            "$hs_mean / $hs_max | $(f0 "$(mean_of "$m" .connections.rst_from_nodes)") | $(f0 "$(mean_of "$m" .timeline.apply_phase_ms)") |"
    done
    echo
    echo "Commands (inside the namespace, against \`talstrap sim --control-planes $CPS --workers $WORKERS --dir D --subnet $SUBNET --port $PORT --time-scale $TIME_SCALE\`${SIM_BIN:+, simulator binary \`$SIM_BIN\`}):"
    echo
    for m in "${MODES[@]}"; do echo "- $m: \`${CMD_OF[$m]}\`"; done
    if [ -n "$PERF_NOTE" ]; then
        echo
        echo "Where talstrap's CPU time goes (one extra \`${MODES[0]}\` run under \`perf record -F 2999\`, flat profile):"
        echo
        cat "$PERF_NOTE"
        if [ -f "$OUT.sim-perf.md" ]; then
            echo
            echo "Where the simulator's CPU time goes in that run (\`perf record -F 999 -p\` on \`talstrap sim\`, flat profile):"
            echo
            cat "$OUT.sim-perf.md"
        fi
    fi
} >"$OUT.md"
cat "$OUT.md"
