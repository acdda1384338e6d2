#!/usr/bin/env bash
# bench/testbed.sh: a network namespace where chosen loopback subnets are silent.
#
# Real networks have hosts that never answer: a connect to them times out.
# Plain loopback answers every closed port with a RST at once, which would make
# any scanner look fast. This testbed gives benchmarks the realistic case:
#
#   testbed.sh up NAME CIDR...      create netns NAME, bring lo up, drop (not reject)
#                                   every packet to the given 127.x CIDRs
#   testbed.sh allow NAME IP...     make these addresses answer again (live nodes)
#   testbed.sh exec NAME CMD...     run CMD inside the namespace
#   testbed.sh status NAME          print the namespace's nftables ruleset
#   testbed.sh down NAME            stop what runs inside and delete the namespace
#
# Only addresses inside 127.0.0.0/8 are accepted; nothing here routes anywhere
# else. Every subcommand is idempotent. Needs root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TABLE="talstrap_bench"

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_name() {
    [[ "${1:-}" =~ ^[A-Za-z0-9_.-]{1,32}$ ]] || die "namespace name '${1:-}' must be 1-32 of [A-Za-z0-9_.-]"
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$1"; }

require_ns() {
    ns_exists "$1" || die "namespace '$1' does not exist (run: testbed.sh up $1 CIDR...)"
}

# The ruleset. Drops happen on the input hook: the SYN leaves the socket
# normally and vanishes before the "remote" stack sees it, so the connecting side
# gets no RST and no local error, only retransmissions and finally its own
# timeout, exactly like a host that is down. (Dropping on the output hook would
# hand some senders an immediate EPERM instead, which is not what a LAN does.)
#
# Replies are told apart by their source address: anything sent *from* a live
# node passes, whatever the client address is. That needs no conntrack, so a
# /16 sweep cannot fill a conntrack table and turn live nodes silent too.
load_rules() {
    local ns="$1"
    ip netns exec "$ns" nft -f - <<EOF
add table inet $TABLE
add set inet $TABLE live4 { type ipv4_addr; }
add set inet $TABLE silent4 { type ipv4_addr; flags interval; auto-merge; }
add chain inet $TABLE input { type filter hook input priority filter; policy accept; }
flush chain inet $TABLE input
add rule inet $TABLE input ip daddr @live4 accept
add rule inet $TABLE input ip saddr @live4 accept
add rule inet $TABLE input ip daddr @silent4 counter drop
EOF
}

cmd_up() {
    local ns="${1:-}"; shift || true
    check_name "$ns"
    [ "$#" -ge 1 ] || die "up: give at least one silent CIDR inside 127.0.0.0/8"
    local cidrs=() c norm
    for c in "$@"; do
        norm=$(loopback_cidr "$c") || die "up: refusing $c"
        # 127.0.0.1 is the default source address of loopback connects; keep it usable.
        local net="${norm%/*}" len="${norm#*/}" n1
        n1=$(ip_to_int 127.0.0.1)
        local nn mask; nn=$(ip_to_int "$net"); mask=$(( (0xFFFFFFFF << (32 - len)) & 0xFFFFFFFF ))
        [ $(( n1 & mask )) -ne "$nn" ] || die "up: $c covers 127.0.0.1, which local tools need; pick 127.x.y.0/24 with x >= 1"
        cidrs+=("$norm")
    done
    need_pkg nft nftables
    if ! ns_exists "$ns"; then
        ip netns add "$ns" || die "up: ip netns add $ns failed"
    fi
    ip -n "$ns" link set lo up
    load_rules "$ns"
    # `up` states the whole silent set: replace whatever an earlier `up` said.
    ip netns exec "$ns" nft flush set inet "$TABLE" silent4
    local elems; elems=$(IFS=,; echo "${cidrs[*]}")
    ip netns exec "$ns" nft add element inet "$TABLE" silent4 "{ $elems }"
    log "namespace $ns: silent ${cidrs[*]}"
}

cmd_allow() {
    local ns="${1:-}"; shift || true
    check_name "$ns"; require_ns "$ns"
    [ "$#" -ge 1 ] || die "allow: give at least one address"
    local ips=() a norm
    for a in "$@"; do
        norm=$(loopback_cidr "$a") || die "allow: refusing $a"
        [ "${norm#*/}" = 32 ] || die "allow: '$a' must be a single address, not a range"
        ips+=("${norm%/*}")
    done
    # Batches keep a 500-node fleet to a few nft calls.
    local i
    for (( i = 0; i < ${#ips[@]}; i += 256 )); do
        local chunk; chunk=$(IFS=,; echo "${ips[*]:i:256}")
        ip netns exec "$ns" nft add element inet "$TABLE" live4 "{ $chunk }" \
            || die "allow: nft rejected the addresses (did you run 'up' first?)"
    done
    log "namespace $ns: ${#ips[@]} live address(es) allowed"
}

cmd_exec() {
    local ns="${1:-}"; shift || true
    check_name "$ns"; require_ns "$ns"
    [ "$#" -ge 1 ] || die "exec: give a command"
    exec ip netns exec "$ns" "$@"
}

cmd_status() {
    local ns="${1:-}"
    check_name "$ns"; require_ns "$ns"
    ip netns exec "$ns" nft list table inet "$TABLE"
}

cmd_down() {
    local ns="${1:-}"
    check_name "$ns"
    if ! ns_exists "$ns"; then
        log "namespace $ns: already gone"
        return 0
    fi
    # Every process in this namespace was started by the bench scripts: stop them by id.
    local pids
    pids=$(ip netns pids "$ns" || true)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for _ in $(seq 1 20); do
            pids=$(ip netns pids "$ns" || true)
            [ -z "$pids" ] && break
            sleep 0.1
        done
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns"
    log "namespace $ns: removed"
}

main() {
    need_root "testbed.sh"
    local sub="${1:-}"; shift || true
    case "$sub" in
        up) cmd_up "$@" ;;
        allow) cmd_allow "$@" ;;
        exec) cmd_exec "$@" ;;
        status) cmd_status "$@" ;;
        down) cmd_down "$@" ;;
        ""|-h|--help|help) usage ;;
        *) echo "unknown subcommand '$sub'" >&2; usage ;;
    esac
}

main "$@"
