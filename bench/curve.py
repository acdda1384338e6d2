#!/usr/bin/env python3
"""bench/curve.py: the scale curve, one row per fleet size, from apply.sh results.

Usage: curve.py RESULTS_DIR TAG N...   (reads RESULTS_DIR/apply<N>-<TAG>.json)

Prints a markdown table: for each size and mode, the mean wall time, the node
floor (what a node needs after its config is accepted), wall / floor, talstrap's
CPU per node and peak RSS, the simulator's CPU and peak RSS (a separate process
on the same cores), TLS handshakes per node as the simulated nodes counted them,
and every node ok. A size whose file is missing or "pending" says so.
"""

import json
import sys
from pathlib import Path


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def main() -> None:
    results, tag, sizes = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    print("| nodes | mode | runs | wall (s) | node floor (s) | wall / floor | talstrap CPU (s) | "
          "talstrap CPU per node (ms) | talstrap peak RSS (MiB) | simulator CPU (s) | "
          "simulator peak RSS (MiB) | TLS handshakes per node (mean / max) | apply phase (ms) | nodes ok |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        path = results / f"apply{n}-{tag}.json"
        if not path.exists():
            print(f"| {n} | | | not run | | | | | | | | | | |")
            continue
        data = json.loads(path.read_text())
        if data.get("talstrap") == "pending":
            print(f"| {n} | | | pending: {data.get('reason', '')} | | | | | | | | | | |")
            continue
        nodes = int(n)
        floor = data["ready_floor_ms"] / 1000
        modes = []
        for run in data["runs"]:
            if run["mode"] not in modes:
                modes.append(run["mode"])
        for mode in modes:
            runs = [r for r in data["runs"] if r["mode"] == mode]
            wall = mean([r["once"]["wall_s"] for r in runs])
            cpu = mean([r["once"]["user_s"] + r["once"]["sys_s"] for r in runs])
            rss = max(r["once"]["max_rss_kb"] for r in runs) / 1024
            sim_cpu = mean([r["sim"]["cpu_s"] for r in runs])
            sim_rss = max((r["sim"]["peak_rss_kb"] or 0) for r in runs) / 1024
            hs = mean([r["sim"].get("handshakes") for r in runs])
            hs_max = max((r["sim"].get("handshakes_max_per_node") or 0) for r in runs)
            phase = mean([r["timeline"]["apply_phase_ms"] for r in runs])
            print(f"| {nodes:,} | {mode} | {len(runs)} | {fmt(wall, '.2f')} | {floor:.2f} | "
                  f"{fmt(wall / floor if wall else None, '.2f')}x | {fmt(cpu, '.2f')} | "
                  f"{fmt(cpu * 1000 / nodes if cpu is not None else None, '.2f')} | {rss:.1f} | "
                  f"{fmt(sim_cpu, '.2f')} | {sim_rss:.1f} | "
                  f"{fmt(hs / nodes if hs is not None else None, '.2f')} / {hs_max} | "
                  f"{fmt(phase, '.0f')} | all {nodes:,} in every run |")


if __name__ == "__main__":
    main()
