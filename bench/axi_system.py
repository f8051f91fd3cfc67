#!/usr/bin/env python3
"""C ternary cores fed over AXI4: the cycle model against the RTL, one Markdown table.

For each configuration (cores, lanes, weight format, port width, burst, outstanding
requests, FIFO, and the emulated memory channel's latency and R bandwidth), co-simulates
:class:`mmfree.hdl.fetched_product.FetchedProduct` on Icarus against cocotbext-axi RAMs
(``sim/tb/fetched_product.py``: every row sum checked) for one M x K product, and prints:

* regime: memory-bound when a port's sustained beats (the model's
  ``WeightFetcherSpec.beat_rate``) bring fewer than one lane group per cycle, else
  compute-bound (the core's one group per cycle limits);
* measured cycles (command to last row sum) and the model's
  (``mmfree.model.cycles.fetched_product_cycles``), and the error;
* achieved / peak bandwidth: R beats per cycle per port over the product / the channel's
  limit (``n/d`` beats per cycle).

The channels: "ddr4" = latency 30 cycles at 7 beats in 10, "hbm" = latency 60 at 9 in 10:
emulation settings (assumed, not measured memories: the 0.7 matches the cycle model's assumed
DDR4 efficiency, ``mmfree.model.config``). About 5 minutes on two busy cores.

    .venv/bin/python bench/axi_system.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from mmfree.model.cycles import fetched_product_cycles, fetched_product_regime
from mmfree.sim import cosim
from mmfree.spec import FetchedProductSpec

# (label, FetchedProduct parameters, latency, rate n/d, M, K)
CONFIGS = [
    ("2x16 codes, 64-bit, ideal", {}, 8, (1, 1), 64, 128),
    ("2x16 codes, 64-bit, ddr4", {}, 30, (7, 10), 64, 128),
    ("4x16 codes, 64-bit, ideal", {"cores": 4}, 8, (1, 1), 128, 128),
    ("2x16 codes, 128-bit, 1/3", {"data_width": 128}, 30, (1, 3), 64, 128),
    ("2x20 packed, 128-bit, 1/2", {"lanes": 20, "packed": True, "data_width": 128,
                                   "max_dim": 160}, 40, (1, 2), 64, 160),
    ("2x16 codes, 32-bit, ddr4", {"data_width": 32}, 30, (7, 10), 64, 128),
    ("2x16 codes, 32-bit, hbm", {"data_width": 32}, 60, (9, 10), 64, 128),
    ("4x16 codes, 32-bit, 1/2", {"cores": 4, "data_width": 32}, 30, (1, 2), 128, 128),
    ("1x16 codes, 64-bit, 1 outstanding", {"cores": 1, "outstanding": 1}, 100, (1, 1), 64,
     128),
    ("2x16 codes, 64-bit, 2 x 8-beat", {"outstanding": 2, "max_burst": 8}, 60, (1, 1), 64,
     128),
    ("2x32 codes, 32-bit (2 beats/group)", {"lanes": 32, "data_width": 32}, 12, (1, 1), 64,
     256),
    ("3x20 packed, 32-bit, hbm", {"cores": 3, "lanes": 20, "packed": True, "data_width": 32,
                                  "max_dim": 160}, 60, (9, 10), 96, 160),
    ("2x16 codes, 64-bit, 16-beat FIFO", {"fifo_depth": 16}, 30, (1, 1), 64, 128),
    ("2x16 codes, 32-bit, 8 x 4-beat", {"data_width": 32, "max_burst": 4, "outstanding": 8,
                                        "fifo_depth": 32}, 60, (1, 1), 64, 128),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first 4 configurations only")
    ap.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    args = ap.parse_args()
    rows = []
    t0 = time.time()
    configs = CONFIGS[:4] if args.quick else CONFIGS
    for i, (label, params, lat, (rn, rd), m, k) in enumerate(configs):
        spec = FetchedProductSpec(**params).validate()
        print(f"[{i + 1}/{len(configs)}] {label} ...", file=sys.stderr, flush=True)
        res = cosim.run_unit(spec, "icarus", seed=args.seed, testcase="test_cycles",
                             extra={"mem_latency": lat, "mem_rate": [rn, rd],
                                    "shapes": [[m, k]]})
        if res.failed or res.report["mismatches"]:
            print(f"mmfree: {label}: the co-simulation failed (see its sim.log)",
                  file=sys.stderr)
            return 1
        _, _, measured, _, beats = res.report["cycle_table"][0]
        f = spec.fetcher()
        predicted = float(fetched_product_cycles(
            m, k, cores=spec.cores, lanes=spec.lanes, data_width=spec.data_width,
            mem_latency=lat, mem_rate=rn / rd, outstanding=spec.outstanding,
            max_burst=spec.max_burst, fifo_depth=spec.fifo_depth, packed=spec.packed,
            tree_levels_per_stage=spec.tree_levels_per_stage))
        bound, _ = fetched_product_regime(
            k, lanes=spec.lanes, data_width=spec.data_width, mem_latency=lat,
            mem_rate=rn / rd, outstanding=spec.outstanding, max_burst=f.max_burst,
            fifo_depth=f.fifo_depth, packed=spec.packed, rows=spec.rows_per_core(m))
        achieved = beats / spec.cores / measured / (rn / rd)
        rows.append((label, lat, f"{rn}/{rd}", f"{m}x{k}", "memory" if bound else "compute",
                     measured, predicted, (predicted - measured) / measured * 100, achieved))
    print(f"FetchedProduct on Icarus vs mmfree.model.cycles.fetched_product_cycles "
          f"({platform.node()}, {time.time() - t0:.0f} s)\n")
    print("| configuration | L | rate | M x K | regime | measured | predicted | error | "
          "achieved / peak bandwidth |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, lat, rate, shape, regime, meas, pred, err, ach in rows:
        print(f"| {label} | {lat} | {rate} | {shape} | {regime} | {meas} | {pred:.1f} | "
              f"{err:+.2f} % | {ach:.2f} |")
    worst = max(abs(r[7]) for r in rows)
    print(f"\nlargest error {worst:.2f} %")
    return 0 if worst <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
