#!/usr/bin/env bash
# bench/discover.sh: discovery benchmarks (measurements 1 and 2 of BENCHMARKS.md).
#
#   discover.sh 24   a /24 with 5 live nodes and 249 silent hosts, 1 s connect timeout:
#                    talstrap discover vs `nmap -sT -Pn -n -p PORT` vs the single-phase
#                    design (50 in flight, 2 s each, TLS + gRPC per address), one hyperfine run
#   discover.sh 16   a /16 where everything is silent except the live nodes: talstrap's
#                    wall time, peak RSS and CPU time against the (hosts/window) x timeout bound
#
# Everything runs inside a fresh testbed namespace (bench/testbed.sh) on a random
# 127.x.y.0/24, so absent hosts are silent rather than refusing. Results go to
# $RESULTS_DIR/discover24.{json,md} or discover16.{json,md}.
#
# Knobs (environment): RUNS (3), PORT (50000), NODES (5), CONNECT_TIMEOUT (1s),
# FLEET (auto|sim|standin), NMAP16 (1: also time nmap on the /16; slow), TALSTRAP_BIN, and the talstrap command template
# TALSTRAP_DISCOVER ({bin} {cidr} {port} {timeout} are substituted).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fleet.sh"

WHICH="${1:-}"
[ "$WHICH" = 24 ] || [ "$WHICH" = 16 ] || die "usage: discover.sh 24|16"
RUNS="${RUNS:-3}"
PORT="${PORT:-50000}"
NODES="${NODES:-5}"
CONNECT_TIMEOUT="${CONNECT_TIMEOUT:-1s}"
DEFAULT_DISCOVER='{bin} discover {cidr} --port {port} --connect-timeout {timeout} -o json'
TALSTRAP_DISCOVER="${TALSTRAP_DISCOVER:-$DEFAULT_DISCOVER}"

need_root "discover.sh"
need_pkg nft nftables
need_pkg hyperfine hyperfine
need_pkg nmap nmap
need_pkg jq jq
need_pkg python3 python3
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time
mkdir -p "$RESULTS_DIR"

NS="tsb-disc$WHICH-$$"
SUBNET=$(random_subnet24)              # where the live nodes are
BASE="${SUBNET%.0/24}"
if [ "$WHICH" = 24 ]; then
    SCAN_CIDR="$SUBNET"
    SILENT="$SUBNET"
else
    SCAN_CIDR="$(echo "$BASE" | cut -d. -f1-2).0.0/16"
    SILENT="$SCAN_CIDR"
fi
OUT="$RESULTS_DIR/discover$WHICH"
WORK=$(mktemp -d /tmp/tsb-disc.XXXXXX)

cleanup() {
    fleet_stop
    "$BENCH_DIR/testbed.sh" down "$NS" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BENCH_DIR/testbed.sh" up "$NS" "$SILENT"
# Nodes come up as 3 control planes + the rest workers when the simulator runs them.
CPS=$(( NODES >= 3 ? 3 : NODES ))
fleet_start "$NS" "$SUBNET" "$CPS" $(( NODES - CPS )) "$PORT"
in_ns() { "$BENCH_DIR/testbed.sh" exec "$NS" "$@"; }

# ---- the commands being compared -------------------------------------------------
# nmap and the peer baseline get the same host list talstrap scans (network and
# broadcast addresses excluded), so every tool sees exactly the same targets.
if [ "$WHICH" = 24 ]; then NMAP_TARGET="$BASE.1-254"; else NMAP_TARGET="$SCAN_CIDR"; fi
NMAP_CMD="nmap -sT -Pn -n -p $PORT $NMAP_TARGET"
PEER_CMD="python3 $BENCH_DIR/peer_single_phase.py $SCAN_CIDR $PORT --inflight 50 --timeout 2"
TALSTRAP_CMD=""
TALSTRAP_STATE="pending"
if bin=$(talstrap_bin 2>/dev/null); then
    TALSTRAP_CMD="$TALSTRAP_DISCOVER"
    TALSTRAP_CMD="${TALSTRAP_CMD//\{bin\}/$bin}"
    TALSTRAP_CMD="${TALSTRAP_CMD//\{cidr\}/$SCAN_CIDR}"
    TALSTRAP_CMD="${TALSTRAP_CMD//\{port\}/$PORT}"
    TALSTRAP_CMD="${TALSTRAP_CMD//\{timeout\}/$CONNECT_TIMEOUT}"
fi

# ---- validate before timing: every tool must find exactly the live nodes ----------
WANT="${#FLEET_IPS[@]}"
declare -A REASON
validate_nmap() {
    # shellcheck disable=SC2086
    in_ns $NMAP_CMD -oG "$WORK/nmap.gnmap" >/dev/null
    local got; got=$(grep -c "Ports: $PORT/open/" "$WORK/nmap.gnmap" || true)
    [ "$got" = "$WANT" ] || { REASON[nmap]="found $got open, expected $WANT"; return 1; }
}
validate_peer() {
    # shellcheck disable=SC2086
    in_ns $PEER_CMD >"$WORK/peer.json"
    local got; got=$(jq '.tcp_open | length' "$WORK/peer.json")
    [ "$got" = "$WANT" ] || { REASON[peer]="found $got open, expected $WANT"; return 1; }
    # Against simulated nodes the baseline must get through TLS and gRPC, as the design does.
    if [ "$FLEET_KIND" = sim ]; then
        got=$(jq '.answered_grpc | length' "$WORK/peer.json")
        [ "$got" = "$WANT" ] || { REASON[peer]="$got of $WANT answered gRPC"; return 1; }
    fi
}
validate_talstrap() {
    [ -n "$TALSTRAP_CMD" ] || { REASON[talstrap]="no release binary"; return 1; }
    local rc=0
    # shellcheck disable=SC2086
    in_ns $TALSTRAP_CMD >"$WORK/talstrap.jsonl" 2>"$WORK/talstrap.err" || rc=$?
    local got
    got=$(grep '"schema"' "$WORK/talstrap.jsonl" | tail -1 | jq -r '.details.scan.open // empty' 2>/dev/null || true)
    if [ "$got" != "$WANT" ]; then
        REASON[talstrap]="exit $rc, found '${got:-no report}' open, expected $WANT: $(tail -c 200 "$WORK/talstrap.err" | tr '\n' ' ')"
        return 1
    fi
    # Against simulated nodes talstrap must also identify each one (TLS, gRPC, COSI reads).
    if [ "$FLEET_KIND" = sim ]; then
        got=$(grep '"schema"' "$WORK/talstrap.jsonl" | tail -1 \
            | jq '[.nodes[] | select(.facts.mode == "maintenance" and .facts.version != null)] | length')
        [ "$got" = "$WANT" ] || { REASON[talstrap]="identified $got of $WANT nodes as maintenance mode"; return 1; }
    fi
    TALSTRAP_EXIT=$rc
    grep '"schema"' "$WORK/talstrap.jsonl" | tail -1 | jq -c '.details.scan' >"$WORK/talstrap.scan.json"
}

NAMES=() CMDS=()
if [ "$WHICH" = 24 ] || [ "${NMAP16:-0}" = 1 ]; then
    if validate_nmap; then NAMES+=(nmap); CMDS+=("$NMAP_CMD"); else log "nmap: ${REASON[nmap]}"; fi
fi
if [ "$WHICH" = 24 ]; then
    if validate_peer; then NAMES+=(single-phase); CMDS+=("$PEER_CMD"); else log "single-phase: ${REASON[peer]}"; fi
fi
TALSTRAP_EXIT=0
if validate_talstrap; then
    TALSTRAP_STATE="measured"; NAMES+=(talstrap); CMDS+=("$TALSTRAP_CMD")
else
    log "talstrap: ${REASON[talstrap]}"
fi
if [ "${#NAMES[@]}" -eq 0 ]; then
    jq -n --arg m "discover /$WHICH" --arg r "${REASON[talstrap]:-no tool passed validation}" \
        '{measurement: $m, talstrap: "pending", reason: $r}' >"$OUT.json"
    printf '### discover /%s\n\nPending: talstrap: %s\n' "$WHICH" "${REASON[talstrap]:-}" | tee "$OUT.md"
    exit 0
fi

# ---- time them in one hyperfine run, then one pass each for RSS and CPU ----------
HF_ARGS=(-N --runs "$RUNS" --export-json "$OUT.hyperfine.json" --style basic)
# discover exits non-zero when it finds hosts that are not Talos (stand-ins): that was
# checked above, so only then are failures tolerated during timing.
[ "$TALSTRAP_EXIT" -eq 0 ] || HF_ARGS+=(-i)
for i in "${!NAMES[@]}"; do HF_ARGS+=(-n "${NAMES[$i]}" "${CMDS[$i]}"); done
in_ns hyperfine "${HF_ARGS[@]}" >&2

declare -A ONCE
for i in "${!NAMES[@]}"; do
    # shellcheck disable=SC2086
    ONCE[${NAMES[$i]}]=$(in_ns bash -c "source '$BENCH_DIR/lib.sh'; measure_once ${CMDS[$i]}")
done

# ---- report --------------------------------------------------------------------
{
    echo "{"
    echo "  \"measurement\": \"discover /$WHICH\","
    echo "  \"fleet\": \"$FLEET_KIND\", \"live\": $WANT, \"scan_cidr\": \"$SCAN_CIDR\", \"port\": $PORT,"
    echo "  \"connect_timeout\": \"$CONNECT_TIMEOUT\", \"runs\": $RUNS, \"talstrap\": \"$TALSTRAP_STATE\","
    [ -s "$WORK/talstrap.scan.json" ] && echo "  \"talstrap_scan\": $(cat "$WORK/talstrap.scan.json"),"
    echo "  \"once\": {"
    first=1
    for n in "${NAMES[@]}"; do
        [ $first -eq 1 ] || echo ","
        printf '    "%s": %s' "$n" "${ONCE[$n]}"; first=0
    done
    echo; echo "  },"
    echo "  \"hyperfine\": $(jq -c '[.results[] | {command, mean, stddev, min, max, times}]' "$OUT.hyperfine.json")"
    echo "}"
} >"$OUT.json"
jq . "$OUT.json" >/dev/null || die "wrote malformed $OUT.json"

# Commands as a reader would type them: repo-relative paths, the binary as `talstrap`.
shown() { local c="${1//$REPO_DIR\//}"; [ -z "${bin:-}" ] || c="${c//$bin/talstrap}"; echo "$c"; }
fmt_s() { if [ "$1" = null ] || [ -z "$1" ]; then printf -- '-'; else printf '%.3f' "$1"; fi; }
{
    echo "### discover /$WHICH ($( [ "$WHICH" = 24 ] && echo "$WANT live, $(( 254 - WANT )) silent" || echo "$WANT live, the rest of 65,534 silent"))"
    echo
    checked=""
    if [ "$FLEET_KIND" = sim ]; then
        checked=" (maintenance mode; before timing, talstrap identified all $WANT"
        [ "$WHICH" != 24 ] || checked="$checked and the single-phase baseline got a gRPC answer over TLS from all $WANT"
        checked="$checked)"
    fi
    echo "Fleet: $FLEET_KIND nodes$checked. Range $SCAN_CIDR (testbed namespace, silent hosts drop packets). $RUNS run(s) each, one hyperfine invocation."
    echo
    echo "| tool | mean ± σ (s) | min (s) | max (s) | vs nmap | peak RSS (MiB) | CPU user+sys (s) |"
    echo "|---|---|---|---|---|---|---|"
    nmap_mean=""
    for i in "${!NAMES[@]}"; do
        n="${NAMES[$i]}"
        mean=$(hyperfine_field "$OUT.hyperfine.json" "$i" mean)
        [ "$n" = nmap ] && nmap_mean="$mean"
        ratio="-"
        [ -n "$nmap_mean" ] && ratio=$(awk -v a="$mean" -v b="$nmap_mean" 'BEGIN { printf "%.2fx", a / b }')
        rss=$(echo "${ONCE[$n]}" | jq '.max_rss_kb / 1024' | xargs printf '%.1f')
        cpu=$(echo "${ONCE[$n]}" | jq '.user_s + .sys_s' | xargs printf '%.2f')
        echo "| $n | $(fmt_s "$mean") ± $(fmt_s "$(hyperfine_field "$OUT.hyperfine.json" "$i" stddev)") | $(fmt_s "$(hyperfine_field "$OUT.hyperfine.json" "$i" min)") | $(fmt_s "$(hyperfine_field "$OUT.hyperfine.json" "$i" max)") | $ratio | $rss | $cpu |"
    done
    [ "$TALSTRAP_STATE" = measured ] || echo "| talstrap | pending: ${REASON[talstrap]} | | | | | |"
    echo
    if [ -s "$WORK/talstrap.scan.json" ]; then
        w=$(jq .window "$WORK/talstrap.scan.json"); t=$(jq .connect_timeout_ms "$WORK/talstrap.scan.json")
        hosts=$(jq -r .scanned "$WORK/talstrap.scan.json")
        mean=$(jq -r '.hyperfine[] | select(.command == "talstrap") | .mean' "$OUT.json")
        echo "talstrap: mean wall time $(fmt_s "$mean") s = $(awk -v m="$mean" -v t="$t" 'BEGIN { printf "%.2f", m * 1000 / t }') x the connect timeout."
        echo
        echo "talstrap: window $w, connect timeout ${t} ms, $hosts addresses: bound ceil(hosts/window) x timeout = $(awk -v h="$hosts" -v w="$w" -v t="$t" 'BEGIN { n = int((h + w - 1) / w); printf "%d x %.1f s = %.1f s", n, t / 1000, n * t / 1000 }')."
        echo
    fi
    echo "Commands (inside the namespace):"
    echo
    for i in "${!NAMES[@]}"; do echo "- ${NAMES[$i]}: \`$(shown "${CMDS[$i]}")\`"; done
} >"$OUT.md"
cat "$OUT.md"
