#!/usr/bin/python3
"""make bench-ab A=<build dir> B=<build dir> [PAIRS=n]: compares two
builds of apps/tcpecho through SLIRP, the way `make bench` measures one.

Each pair boots A, then B (alternating, so the host's drift hits both),
and runs support/bench.py's tcpbench on each: 64 MiB each way and 200
connections. For each way it prints the medians of MB/s, the guest's idle
share, the guest's work and SLIRP's (ms of host CPU per MB), and the
median over the pairs of each pair's own B/A ratio, which is steadier
than the ratio of medians on a shared host.

Judge a change to the guest by its work, not by the vCPU thread's time:
while traffic lasts the idle thread polls the receive ring on a CPU, so a
guest that works faster polls longer and its vCPU time per MB hardly
moves (docs/bench.md).
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

WAYS = ("receive", "send")


def load(build_dir):
    path = os.path.join(build_dir, "qemu.json")
    try:
        with open(path) as f:
            qemu = json.load(f)
    except OSError as e:
        sys.exit(f"bench-ab: {e.strerror}: {path} (build tcpecho there: make APP=tcpecho BUILD={build_dir})")
    if not qemu.get("kernel", "").endswith("/tcpecho.elf"):
        sys.exit(f"bench-ab: {build_dir} is not a build of tcpecho ({qemu.get('kernel')})")
    return qemu


def figures(run):
    """The per-way figures of one tcpbench run."""
    out = {}
    for way in WAYS:
        mb_s = run[f"{way}_mb_s"]
        out[f"{way}.mb_s"] = mb_s
        out[f"{way}.idle"] = run[f"{way}_idle_share"]
        out[f"{way}.guest_work_ms_per_mb"] = bench.guest_work_ms_per_mb(run, way)
        out[f"{way}.slirp_ms_per_mb"] = run[f"{way}_main_cpu_share"] / mb_s * 1000
    out["connections_per_s"] = run["connections_per_s"]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="build directory of tcpecho (the baseline)")
    p.add_argument("b", help="build directory of tcpecho (the change)")
    p.add_argument("--pairs", type=int, default=6)
    p.add_argument("--json", help="also write the per-pair figures here")
    args = p.parse_args()
    if args.pairs < 1:
        sys.exit("bench-ab: --pairs must be at least 1")
    qa, qb = load(args.a), load(args.b)
    runs_a, runs_b = [], []
    for i in range(args.pairs):
        runs_a.append(figures(bench.tcpbench(qa, bench.Slirp(), icount=False)))
        runs_b.append(figures(bench.tcpbench(qb, bench.Slirp(), icount=False)))
        print(f"pair {i + 1}/{args.pairs}: send guest work {runs_a[-1]['send.guest_work_ms_per_mb']:.2f} / "
              f"{runs_b[-1]['send.guest_work_ms_per_mb']:.2f} ms/MB", flush=True)
    print(f"\n{'figure':34} {'A':>9} {'B':>9} {'B/A':>7}  (medians; B/A: median of the pairs' ratios)")
    for key in runs_a[0]:
        a = statistics.median(r[key] for r in runs_a)
        b = statistics.median(r[key] for r in runs_b)
        ratios = [rb[key] / ra[key] for ra, rb in zip(runs_a, runs_b) if ra[key]]
        ratio = f"{statistics.median(ratios):7.3f}" if ratios else "      -"
        print(f"{key:34} {a:9.2f} {b:9.2f} {ratio}")
    for name, runs in (("A", runs_a), ("B", runs_b)):
        work = statistics.median(r["send.guest_work_ms_per_mb"] / r["send.slirp_ms_per_mb"] for r in runs)
        print(f"{name}: send guest work / SLIRP {work:.2f} (below 1: SLIRP costs more per MB sent)")
    clamped = sum(1 for r in runs_a + runs_b for way in WAYS if r[f"{way}.guest_work_ms_per_mb"] == 0)
    if clamped:
        print(f"warning: in {clamped} run(s) the vCPU thread's time was below the guest's idle time (guest work "
              "shown as 0): it spent the guest's idle time off a CPU, the host is too busy for this figure")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": args.a, "b": args.b, "runs_a": runs_a, "runs_b": runs_b}, f, indent=1)


if __name__ == "__main__":
    main()
