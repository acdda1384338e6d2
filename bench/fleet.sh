# shellcheck shell=bash
# bench/fleet.sh: start the "live" nodes of a benchmark inside a testbed namespace (sourced).
#
# Two kinds of fleet:
#   sim      `talstrap sim`: real simulated Talos nodes (what the benchmarks are for);
#   standin  bench/standin.py: plain TCP listeners, for when the simulator cannot run.
# FLEET=auto (default) tries sim and falls back to standin, saying so; the choice
# is recorded in $FLEET_KIND so result tables can state what was measured.
#
# After fleet_start: FLEET_KIND, FLEET_PID, FLEET_IPS (array), FLEET_DIR (sim only);
# after a failed sim start, FLEET_ERROR says why.
#
# SIM_BIN: the binary that runs `talstrap sim` (default: the talstrap binary being
# measured). Keeping it separate lets a run measure one build of talstrap against a
# simulator from another, e.g. one that accepts a bigger fleet.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLEET="${FLEET:-auto}"
FLEET_READY_TIMEOUT="${FLEET_READY_TIMEOUT:-60}"

# wait_connectable NS PORT IP...: succeed once every address accepts a TCP connect.
wait_connectable() {
    local ns="$1" port="$2"; shift 2
    "$BENCH_DIR/testbed.sh" exec "$ns" python3 - "$port" "$FLEET_READY_TIMEOUT" "$@" <<'EOF'
import socket, sys, time
port, limit, ips = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
deadline = time.monotonic() + limit
pending = list(ips)
while pending and time.monotonic() < deadline:
    still = []
    for ip in pending:
        try:
            socket.create_connection((ip, port), timeout=0.5).close()
        except OSError:
            still.append(ip)
    pending = still
    if pending:
        time.sleep(0.2)
if pending:
    sys.exit(f"not accepting connections after {limit:.0f} s: {', '.join(pending[:10])}")
EOF
}

# fleet_start_standin NS SUBNET24 COUNT PORT: COUNT listeners on .1, .2, ... of SUBNET24.
fleet_start_standin() {
    local ns="$1" subnet="$2" count="$3" port="$4" base i
    [ "$count" -ge 1 ] && [ "$count" -le 254 ] || die "standin fleet: 1..254 nodes per /24, not $count"
    base="${subnet%.0/24}"
    FLEET_IPS=()
    for (( i = 1; i <= count; i++ )); do FLEET_IPS+=("$base.$i"); done
    "$BENCH_DIR/testbed.sh" allow "$ns" "${FLEET_IPS[@]}"
    "$BENCH_DIR/testbed.sh" exec "$ns" python3 "$BENCH_DIR/standin.py" "$port" "${FLEET_IPS[@]}" \
        >/dev/null 2>&1 &
    FLEET_PID=$!
    FLEET_KIND=standin
    FLEET_DIR=""
    wait_connectable "$ns" "$port" "${FLEET_IPS[@]}" || die "stand-in listeners did not come up"
}

# fleet_start_sim NS SUBNET24 CONTROL_PLANES WORKERS PORT TIME_SCALE: a simulated
# fleet; its node addresses are read back from the talconfig.yaml it writes.
fleet_start_sim() {
    local ns="$1" subnet="$2" cps="$3" workers="$4" port="$5" scale="$6" bin
    if [ -n "${SIM_BIN:-}" ]; then
        [ -x "$SIM_BIN" ] || { FLEET_ERROR="SIM_BIN=$SIM_BIN is not an executable"; log "$FLEET_ERROR"; return 1; }
        bin="$SIM_BIN"
    else
        bin=$(talstrap_bin) || { FLEET_ERROR="no talstrap binary to run the simulator"; return 1; }
    fi
    FLEET_DIR=$(mktemp -d /tmp/tsb-fleet.XXXXXX)
    FLEET_LOG="$FLEET_DIR.log"
    "$BENCH_DIR/testbed.sh" exec "$ns" "$bin" sim --control-planes "$cps" --workers "$workers" \
        --dir "$FLEET_DIR" --subnet "$subnet" --port "$port" --time-scale "$scale" \
        >"$FLEET_LOG" 2>&1 &
    FLEET_PID=$!
    local waited=0
    while [ ! -s "$FLEET_DIR/talconfig.yaml" ]; do
        if ! kill -0 "$FLEET_PID" 2>/dev/null; then
            FLEET_ERROR="talstrap sim exited early: $(tail -c 300 "$FLEET_LOG" | tr '\n' ' ' | sed 's/ *$//')"
            log "$FLEET_ERROR"
            fleet_stop
            return 1
        fi
        if [ "$waited" -ge $(( FLEET_READY_TIMEOUT * 10 )) ]; then
            FLEET_ERROR="talstrap sim wrote no talconfig.yaml within ${FLEET_READY_TIMEOUT} s"
            log "$FLEET_ERROR"; fleet_stop; return 1
        fi
        sleep 0.1; waited=$((waited + 1))
    done
    # ipAddress may be a comma-separated list; every address of ours is in SUBNET24.
    mapfile -t FLEET_IPS < <(grep -E '^\s*ipAddress:' "$FLEET_DIR/talconfig.yaml" \
        | sed -E 's/.*ipAddress:\s*//; s/["'\'']//g' | tr ',' '\n' | sed 's/ //g' | grep -v '^$')
    if [ "${#FLEET_IPS[@]}" -ne $(( cps + workers )) ]; then
        FLEET_ERROR="talconfig.yaml lists ${#FLEET_IPS[@]} addresses, expected $(( cps + workers ))"
        log "$FLEET_ERROR"; fleet_stop; return 1
    fi
    "$BENCH_DIR/testbed.sh" allow "$ns" "${FLEET_IPS[@]}"
    FLEET_KIND=sim
    wait_connectable "$ns" "$port" "${FLEET_IPS[@]}" \
        || { FLEET_ERROR="simulated nodes did not accept connections"; fleet_stop; return 1; }
}

# fleet_start NS SUBNET24 CONTROL_PLANES WORKERS PORT [TIME_SCALE]
fleet_start() {
    local ns="$1" subnet="$2" cps="$3" workers="$4" port="$5" scale="${6:-0.01}"
    case "$FLEET" in
        sim) fleet_start_sim "$ns" "$subnet" "$cps" "$workers" "$port" "$scale" || die "sim fleet failed (FLEET=sim)" ;;
        standin) fleet_start_standin "$ns" "$subnet" $(( cps + workers )) "$port" ;;
        auto)
            if ! fleet_start_sim "$ns" "$subnet" "$cps" "$workers" "$port" "$scale"; then
                log "falling back to stand-in listeners (plain TCP, not Talos)"
                fleet_start_standin "$ns" "$subnet" $(( cps + workers )) "$port"
            fi ;;
        *) die "FLEET must be auto, sim or standin, not '$FLEET'" ;;
    esac
    log "fleet: ${#FLEET_IPS[@]} $FLEET_KIND node(s) on port $port (${FLEET_IPS[0]} ...)"
}

fleet_stop() {
    if [ -n "${FLEET_PID:-}" ] && kill -0 "$FLEET_PID" 2>/dev/null; then
        kill -INT "$FLEET_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$FLEET_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$FLEET_PID" 2>/dev/null || true
    fi
    FLEET_PID=""
    # The simulator's last words count the TLS handshakes its nodes completed.
    FLEET_STOP_LINE=""
    [ -z "${FLEET_DIR:-}" ] || FLEET_STOP_LINE=$(grep 'talstrap sim: stopped' "$FLEET_DIR.log" 2>/dev/null | tail -1 || true)
    [ -n "${FLEET_DIR:-}" ] && rm -rf "$FLEET_DIR" "$FLEET_DIR.log"
    FLEET_DIR=""
}
