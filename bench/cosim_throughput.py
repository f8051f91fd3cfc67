#!/usr/bin/env python3
"""cocotb co-simulation throughput of the project's units on each simulator.

Streams one long back-to-back workload through the generated Verilog and prints simulated
cycles (and, for the tensor core, 4x4 tiles) per wall-clock second for each simulator and
configuration, next to the one-off build time. Every output is checked against the golden
model, and the cycle count against the unit's formula.

    .venv/bin/python bench/cosim_throughput.py [--unit ternary-core] [--beats N]
        [--lanes 16 64] [--sim icarus verilator]
    .venv/bin/python bench/cosim_throughput.py --unit tensor-core [--widths 8 4]

Figures depend on the machine; the table names it. Compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from mmfree.hdl import build
from mmfree.sim import cosim
from mmfree.spec import TensorCoreSpec, TernaryCoreSpec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beats", type=int, default=200_000, help="lane groups streamed")
    ap.add_argument("--unit", choices=["ternary-core", "tensor-core"], default="ternary-core")
    ap.add_argument("--lanes", type=int, nargs="+", default=[16, 64],
                    help="ternary-core lane counts")
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 4],
                    help="tensor-core operand widths (signed, 32-bit accumulator)")
    ap.add_argument("--sim", nargs="+", default=["icarus", "verilator"])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.platform()}, Python {platform.python_version()}")
    print(f"{'simulator':10} {'config':>8} {'cycles':>9} {'wall s':>8} {'cycles/s':>10} "
          f"{'tiles/s':>9} {'build+run s':>11} {'mismatch':>8} {'formula':>7}")
    if args.unit == "ternary-core":
        specs = [(f"l{lanes}", TernaryCoreSpec(lanes=lanes), f"bench_l{lanes}",
                  "mmfree.sim.tb.ternary_bench") for lanes in args.lanes]
    else:
        specs = [(f"int{w}", TensorCoreSpec(width=w, accumulate=True), f"bench_tensor_s{w}",
                  "mmfree.sim.tb.tensor_bench") for w in args.widths]
    runs = [(label, build(spec), top, tb, spec.params()) for label, spec, top, tb in specs]
    status = 0
    for label, component, top, tb, params in runs:
        for sim in args.sim:
            t0 = time.monotonic()
            res = cosim.run(component, top, sim, tb, config={**params, "beats": args.beats},
                            seed=args.seed)
            total = time.monotonic() - t0
            r = res.report
            formula_ok = r.get("cycles") == r.get("expected_cycles")
            if res.failed or r.get("mismatches", 1) or not formula_ok:
                status = 1
            tiles = f"{r['tiles_per_s']:9.0f}" if "tiles_per_s" in r else f"{'-':>9}"
            print(f"{sim:10} {label:>8} {r.get('cycles', 0):9} {r.get('wall_s', 0):8.2f} "
                  f"{r.get('cycles_per_s', 0):10.0f} {tiles} {total:11.1f} "
                  f"{r.get('mismatches', '?'):>8} {'ok' if formula_ok else 'WRONG':>7}")
            sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
