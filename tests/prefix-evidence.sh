#!/usr/bin/env bash
# Run the defect tests of issues 11 and 12 against another talstrap build
# (a pre-fix one, e.g. commit cb3aad8) through the same harness: the tests
# start this tree's simulator and run the binary named by TALSTRAP_TEST_BIN.
# Prints one line per test (PASS/FAIL) and the totals. A test failing
# against the old build is the evidence that it catches the defect; read the
# failure: some fail only because the old build lacks a flag or a JSON field.
#
#   git worktree add /work/wt/old cb3aad8
#   (cd /work/wt/old && CARGO_TARGET_DIR=/work/wt/old/target cargo build --release --bin talstrap)
#   tests/prefix-evidence.sh /work/wt/old/target/release/talstrap
set -euo pipefail
bin=${1:?usage: $0 PATH-TO-TALSTRAP [NEXTEST-FILTER]}
filter=${2:-'binary(cli) & (test(bootstrap_races::) | test(bootstrap_files::) | test(bootstrap::) | test(inputs::) | test(inventory::) | test(real_cluster::) | test(watch::) | test(reliability::) | test(versions::by_id))'}
cd "$(dirname "$0")/.."
TALSTRAP_TEST_BIN="$bin" cargo nextest run --no-fail-fast --failure-output final \
    --success-output never -E "$filter" 2>&1 | tee "${TALSTRAP_EVIDENCE_LOG:-/dev/null}" |
    grep -E '^ +(PASS|FAIL|SIGSEGV|SIGABRT|TIMEOUT) |Summary' || true
