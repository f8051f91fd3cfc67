#!/usr/bin/env python3
"""cocotb co-simulation throughput: the bulk harness beside the per-beat drivers.

Streams one long back-to-back workload (the same stream, from the same seed, for every
harness) through the generated Verilog and prints simulated cycles per wall-clock second
for each harness, simulator and configuration, next to the one-off build time. Every output
is checked against the golden model and the cycle count against the unit's formula.

* ``per-beat``: :mod:`mmfree.sim.tb.ternary_bench`, one cocotb coroutine driving and
  sampling the ports on every clock edge (wall time of its streaming loop only).
* ``bulk``: :mod:`mmfree.sim.tb.ternary_bulk` ``test_bench`` on the bulk harness
  (:mod:`mmfree.sim.bulk`): wall time from the clock's start to the last comparison, so it
  includes preparing the stimulus in numpy, writing the beat memories, reading the captures
  and checking every output and cycle stamp.

    .venv/bin/python bench/cosim_throughput.py --harness bulk per-beat \\
        --sim icarus verilator --lanes 16 64 256 --beats 100000 --json rows.json
    .venv/bin/python bench/cosim_throughput.py --unit tensor-core [--widths 8 4]  (per-beat)

Figures depend on the machine (and its load); the table names the machine. Compare the
ratios of rows from the same run, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from mmfree.hdl import build
from mmfree.sim import bulk, cosim
from mmfree.spec import TensorCoreSpec, TernaryCoreSpec

HARNESSES = ("bulk", "per-beat")


def _depth(beats: int) -> int:
    """Beat memory depth of a bulk run: the stream in at most a few segments."""
    d = 1024
    while d < min(beats, 16384):
        d *= 2
    return d


def _write_json(path: str, rows: list[dict], args: argparse.Namespace) -> int:
    """Write the rows so far (after every row: a long run interrupted keeps its rows)."""
    meta = {"machine": platform.machine(), "cores": os.cpu_count(),
            "load": round(os.getloadavg()[0], 1), "beats": args.beats, "seed": args.seed}
    try:
        with open(path, "w") as f:
            json.dump([{**row, **meta} for row in rows], f, indent=1)
    except OSError as e:
        print(f"cosim_throughput: cannot write --json {path}: {e.strerror}", file=sys.stderr)
        return 2
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beats", type=int, default=100_000,
                    help="lane groups streamed (default 100000)")
    ap.add_argument("--unit", choices=["ternary-core", "tensor-core"], default="ternary-core",
                    help="unit (default ternary-core; tensor-core runs per-beat only)")
    ap.add_argument("--harness", nargs="+", choices=HARNESSES, default=list(HARNESSES),
                    help="harnesses to run side by side (default: bulk per-beat)")
    ap.add_argument("--lanes", type=int, nargs="+", default=[16, 64],
                    help="ternary-core lane counts (default 16 64)")
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 4],
                    help="tensor-core operand widths (signed, 32-bit accumulator)")
    ap.add_argument("--sim", nargs="+", default=["icarus", "verilator"],
                    help="simulators (default icarus verilator)")
    ap.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    ap.add_argument("--json", metavar="FILE",
                    help="also write the rows {harness, sim, lanes, cycles, wall_s, "
                         "cycles_per_s, mismatches} as JSON")
    args = ap.parse_args()
    if args.beats < 1:
        print("cosim_throughput: --beats must be at least 1", file=sys.stderr)
        return 2

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.platform()}, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'harness':9} {'simulator':10} {'config':>8} {'cycles':>9} {'wall s':>8} "
          f"{'cycles/s':>10} {'tiles/s':>9} {'build+run s':>11} {'mismatch':>8} {'formula':>7}")
    rows: list[dict] = []
    status = 0
    if args.unit == "ternary-core":
        runs = [(h, lanes) for lanes in args.lanes for h in args.harness]
    else:
        runs = [("per-beat", w) for w in args.widths]
    for harness, param in runs:
        for sim in args.sim:
            t0 = time.monotonic()
            if args.unit == "tensor-core":
                spec = TensorCoreSpec(width=param, accumulate=True)
                res = cosim.run(build(spec), f"bench_tensor_s{param}", sim,
                                "mmfree.sim.tb.tensor_bench",
                                config={**spec.params(), "beats": args.beats}, seed=args.seed)
                label = f"int{param}"
            elif harness == "per-beat":
                spec = TernaryCoreSpec(lanes=param)
                res = cosim.run(build(spec), f"bench_l{param}", sim,
                                "mmfree.sim.tb.ternary_bench",
                                config={**spec.params(), "beats": args.beats}, seed=args.seed)
                label = f"l{param}"
            else:
                spec = TernaryCoreSpec(lanes=param)
                depth = _depth(args.beats)
                res = bulk.run_unit(spec, sim, "mmfree.sim.tb.ternary_bulk", seed=args.seed,
                                    depths={"w": depth, "x": depth},
                                    extra={"beats": args.beats}, testcase="test_bench")
                label = f"l{param}"
            total = time.monotonic() - t0
            r = res.report
            if harness == "bulk":
                formula_ok = r.get("cycle_checks", 0) > 0 and r.get("cycle_mismatches") == 0
            else:
                formula_ok = r.get("cycles") == r.get("expected_cycles")
            mismatches = r.get("mismatches", 1)
            if res.failed or mismatches or not formula_ok:
                status = 1
            tiles = f"{r['tiles_per_s']:9.0f}" if "tiles_per_s" in r else f"{'-':>9}"
            print(f"{harness:9} {sim:10} {label:>8} {r.get('cycles', 0):9} "
                  f"{r.get('wall_s', 0):8.2f} {r.get('cycles_per_s', 0):10.0f} {tiles} "
                  f"{total:11.1f} {mismatches:>8} {'ok' if formula_ok else 'WRONG':>7}")
            sys.stdout.flush()
            rows.append({"harness": harness, "sim": sim, "unit": args.unit,
                         "lanes" if args.unit == "ternary-core" else "width": param,
                         "cycles": r.get("cycles", 0), "wall_s": r.get("wall_s", 0.0),
                         "cycles_per_s": r.get("cycles_per_s", 0.0),
                         "mismatches": mismatches, "formula_ok": formula_ok,
                         "build_and_run_s": total})
            if args.json and _write_json(args.json, rows, args) != 0:
                return 2
    if len(args.harness) == 2 and args.unit == "ternary-core":
        print("\nbulk / per-beat cycles/s:")
        for sim in args.sim:
            for lanes in args.lanes:
                b = [r for r in rows if r["harness"] == "bulk" and r["sim"] == sim
                     and r["lanes"] == lanes]
                p = [r for r in rows if r["harness"] == "per-beat" and r["sim"] == sim
                     and r["lanes"] == lanes]
                if b and p and p[0]["cycles_per_s"]:
                    ratio = b[0]["cycles_per_s"] / p[0]["cycles_per_s"]
                    print(f"  {sim:10} l{lanes:<5} {ratio:6.1f}x")
    return status


if __name__ == "__main__":
    sys.exit(main())
