#!/usr/bin/env bash
# bench/verify-testbed.sh: prove the testbed's semantics before trusting numbers from it.
#
# Inside a fresh namespace with a silent random 127.x.y.0/24 and one live address:
#   1. a connect to a silent address hangs until our own timeout (no RST);
#   2. a connect to the live listener succeeds;
#   3. a connect to a closed port on the live address is refused at once;
#   4. an address outside the silent set still refuses at once (drops are scoped);
#   5. the testbed refuses CIDRs outside 127.0.0.0/8.
# Prints one line per check and exits non-zero if any fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root "verify-testbed.sh"

TB="$BENCH_DIR/testbed.sh"
NS="tsb-verify-$$"
SUBNET=$(random_subnet24)
BASE="${SUBNET%.0/24}"
LIVE="$BASE.7"
SILENT="$BASE.9"
PORT=50000
fails=0

cleanup() { "$TB" down "$NS" >/dev/null 2>&1 || true; }
trap cleanup EXIT

check() { # NAME EXPECTED(ok|timeout|refused) HOST PORT
    local name="$1" want="$2" host="$3" port="$4" got rc
    set +e
    # 3 s hang guard; a silent host must still be pending when it fires.
    "$TB" exec "$NS" timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/tmp/tsb-verify-err.$$
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then got=ok
    elif [ "$rc" -eq 124 ]; then got=timeout
    elif grep -qi 'refused' /tmp/tsb-verify-err.$$; then got=refused
    else got="error($(tr '\n' ' ' </tmp/tsb-verify-err.$$))"
    fi
    rm -f /tmp/tsb-verify-err.$$
    if [ "$got" = "$want" ]; then
        printf 'PASS  %-48s %s\n' "$name" "$got"
    else
        printf 'FAIL  %-48s want %s, got %s\n' "$name" "$want" "$got"
        fails=$((fails + 1))
    fi
}

"$TB" up "$NS" "$SUBNET"
"$TB" allow "$NS" "$LIVE"
"$TB" up "$NS" "$SUBNET"   # idempotent: a second `up` keeps the live set
"$TB" exec "$NS" python3 "$BENCH_DIR/standin.py" "$PORT" "$LIVE" >/tmp/tsb-standin.$$ &
for _ in $(seq 1 50); do grep -q ready /tmp/tsb-standin.$$ 2>/dev/null && break; sleep 0.1; done
rm -f /tmp/tsb-standin.$$

check "silent $SILENT:$PORT times out" timeout "$SILENT" "$PORT"
check "live $LIVE:$PORT connects" ok "$LIVE" "$PORT"
check "closed port $LIVE:$((PORT + 1)) is refused" refused "$LIVE" "$((PORT + 1))"
check "outside the silent set 127.0.0.1:$((PORT + 1)) refused" refused 127.0.0.1 "$((PORT + 1))"

# Negative fixtures: testbed.sh must refuse every range outside 127.0.0.0/8 (and
# one covering 127.0.0.1) before it creates anything. Nothing is ever sent to
# these addresses: the refusal happens in argument validation.
for bad in 10.0.0.0/24 192.168.1.0/24 0.0.0.0/0 127.0.0.0/8 1.2.3.4; do
    if "$TB" up "$NS" "$bad" >/dev/null 2>&1; then
        printf 'FAIL  %-48s accepted\n' "refuses $bad"; fails=$((fails + 1))
    else
        printf 'PASS  %-48s refused\n' "refuses $bad"
    fi
done
if "$TB" allow "$NS" 192.168.1.10 >/dev/null 2>&1; then
    printf 'FAIL  %-48s accepted\n' "allow refuses 192.168.1.10"; fails=$((fails + 1))
else
    printf 'PASS  %-48s refused\n' "allow refuses 192.168.1.10"
fi

"$TB" down "$NS"
"$TB" down "$NS"   # idempotent
if ip netns list | grep -q "^$NS\b"; then
    echo "FAIL  namespace still present after down"; fails=$((fails + 1))
else
    echo "PASS  namespace removed by down"
fi
trap - EXIT
[ "$fails" -eq 0 ] && echo "testbed verified" || { echo "$fails check(s) failed"; exit 1; }
