# shellcheck shell=bash
# bench/lib.sh: helpers shared by the talstrap benchmark scripts (sourced, not run).
#
# Everything here keeps traffic on loopback: addresses are validated to lie
# inside 127.0.0.0/8 before any script uses them.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# need_pkg COMMAND DEBIAN_PACKAGE: install the package when the command is missing,
# so that a fresh machine (CI, a later session) can run the scripts unattended.
need_pkg() {
    local cmd="$1" pkg="$2"
    command -v "$cmd" >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] || die "'$cmd' is missing and installing package '$pkg' needs root"
    log "installing $pkg (for $cmd)"
    if [ -z "${_BENCH_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
        _BENCH_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null \
        || die "apt-get install $pkg failed"
    command -v "$cmd" >/dev/null 2>&1 || die "package $pkg installed but '$cmd' still not found"
}

need_root() { [ "$(id -u)" -eq 0 ] || die "$1 needs root (network namespaces and nftables)"; }

# ip_to_int A.B.C.D -> integer on stdout; fails on a malformed address.
ip_to_int() {
    local ip="$1" a b c d
    [[ "$ip" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
    a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]} c=${BASH_REMATCH[3]} d=${BASH_REMATCH[4]}
    for o in "$a" "$b" "$c" "$d"; do
        [ "$((10#$o))" -le 255 ] || return 1
    done
    echo $(( (10#$a << 24) | (10#$b << 16) | (10#$c << 8) | 10#$d ))
}

int_to_ip() {
    local n="$1"
    echo "$(( (n >> 24) & 255 )).$(( (n >> 16) & 255 )).$(( (n >> 8) & 255 )).$(( n & 255 ))"
}

# loopback_cidr CIDR: print the normalised network (host bits cleared) when CIDR
# (or a bare address, taken as /32) lies wholly inside 127.0.0.0/8; otherwise
# print why not on stderr and fail. This is the network-safety gate.
loopback_cidr() {
    local arg="$1" ip len n mask
    if [[ "$arg" == */* ]]; then ip="${arg%/*}" len="${arg#*/}"; else ip="$arg" len=32; fi
    [[ "$len" =~ ^[0-9]{1,2}$ ]] && [ "$len" -le 32 ] \
        || { echo "'$arg': prefix length must be 0..32" >&2; return 1; }
    n=$(ip_to_int "$ip") || { echo "'$arg': not an IPv4 address" >&2; return 1; }
    if [ "$len" -lt 8 ] || [ $(( n >> 24 )) -ne 127 ]; then
        echo "'$arg' is not inside 127.0.0.0/8; the testbed only ever touches loopback" >&2
        return 1
    fi
    mask=$(( (0xFFFFFFFF << (32 - len)) & 0xFFFFFFFF ))
    echo "$(int_to_ip $(( n & mask )))/$len"
}

# random_subnet24: a random 127.x.y.0/24 with x,y in 1..=254, for parallel-safe runs.
random_subnet24() {
    echo "127.$(( RANDOM % 254 + 1 )).$(( RANDOM % 254 + 1 )).0/24"
}

# free_port: a TCP port nothing on the host listens on right now (the benches
# run in their own namespace, so this only avoids surprises when debugging).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# talstrap_bin: path of the release binary ($TALSTRAP_BIN if set), built or refreshed first.
talstrap_bin() {
    if [ -n "${TALSTRAP_BIN:-}" ]; then
        [ -x "$TALSTRAP_BIN" ] || { log "TALSTRAP_BIN=$TALSTRAP_BIN is not an executable"; return 1; }
        echo "$TALSTRAP_BIN"
        return 0
    fi
    # Always ask cargo: a no-op when fresh, and never a stale binary measured.
    (cd "$REPO_DIR" && cargo build --release --quiet) >&2 || { log "cargo build --release failed"; return 1; }
    echo "$REPO_DIR/target/release/talstrap"
}

# machine_info: one markdown paragraph describing the machine the numbers come from.
machine_info() {
    local model
    model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    printf -- '- CPU: %s, %s logical cores (nproc)\n' "${model:-unknown}" "$(nproc)"
    printf -- '- Kernel: %s\n' "$(uname -r)"
    printf -- '- Memory: %s\n' "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    printf -- '- Tools: %s; %s; %s\n' "$(hyperfine --version 2>/dev/null)" \
        "$(nmap --version 2>/dev/null | head -1 | sed 's/ (.*//')" "$(nft --version 2>/dev/null | sed 's/ (.*//')"
}

# measure_once CMD...: run CMD once under `/usr/bin/time -v` and print one JSON
# object: wall_s, user_s, sys_s, max_rss_kb, exit. CMD's output is discarded.
measure_once() {
    local tf rc=0
    tf=$(mktemp)
    /usr/bin/time -v -o "$tf" "$@" >/dev/null 2>&1 || rc=$?
    awk -F': ' -v rc="$rc" '
        /Maximum resident set size/ { rss = $2 }
        /User time \(seconds\)/ { user = $2 }
        /System time \(seconds\)/ { sys = $2 }
        /Elapsed \(wall clock\)/ {
            n = split($NF, p, ":"); wall = 0
            for (i = 1; i <= n; i++) wall = wall * 60 + p[i]
        }
        /Exit status/ { rc = $2 }
        END { printf "{\"wall_s\":%s,\"user_s\":%s,\"sys_s\":%s,\"max_rss_kb\":%s,\"exit\":%s}\n", wall+0, user+0, sys+0, rss+0, rc+0 }
    ' "$tf"
    rm -f "$tf"
}

# hyperfine_field FILE INDEX FIELD: a field (mean, stddev, min, max...) of result INDEX
# in a hyperfine JSON export.
hyperfine_field() {
    jq -r ".results[$2].$3" "$1"
}
