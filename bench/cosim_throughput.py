#!/usr/bin/env python3
"""cocotb co-simulation throughput of the ternary core on each simulator.

Streams one long back-to-back product (default 200,000 lane groups) through the generated
Verilog and prints simulated cycles per wall-clock second for each simulator and lane
count, next to the one-off build time. Every output is checked against the golden model.

    .venv/bin/python bench/cosim_throughput.py [--beats N] [--lanes 16 64] [--sim icarus verilator]

Figures depend on the machine; the table names it. Compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from mmfree.hdl.generate import ternary_core
from mmfree.sim import cosim


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beats", type=int, default=200_000, help="lane groups streamed")
    ap.add_argument("--lanes", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--sim", nargs="+", default=["icarus", "verilator"])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.platform()}, Python {platform.python_version()}")
    print(f"{'simulator':10} {'lanes':>5} {'cycles':>9} {'wall s':>8} {'cycles/s':>10} "
          f"{'build+run s':>11} {'mismatch':>8}")
    status = 0
    for lanes in args.lanes:
        for sim in args.sim:
            params = {"lanes": lanes, "act_width": 8, "acc_width": 32, "packed": False}
            t0 = time.monotonic()
            res = cosim.run(ternary_core(**params), f"bench_l{lanes}", sim,
                            "mmfree.sim.tb.ternary_bench",
                            config={**params, "beats": args.beats}, seed=args.seed)
            total = time.monotonic() - t0
            r = res.report
            if res.failed or r.get("mismatches", 1):
                status = 1
            print(f"{sim:10} {lanes:5} {r.get('cycles', 0):9} {r.get('wall_s', 0):8.2f} "
                  f"{r.get('cycles_per_s', 0):10.0f} {total:11.1f} {r.get('mismatches', '?'):>8}")
            sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
