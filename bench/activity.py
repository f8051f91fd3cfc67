#!/usr/bin/env python3
"""Measure the switching activity of the ternary core for the activity-based power estimate.

Streams random weights and int8 activations back to back through a 16-lane core on Icarus
with a VCD dump, counts the bit toggles of every net of the core per clock cycle
(:func:`mmfree.sim.activity.count_toggles`), synthesises the same core with Yosys for ECP5
(LUT4 and flip-flop counts), and writes ``src/mmfree/model/data/activity.json``, which
``mmfree project`` reads.

    .venv/bin/python bench/activity.py [--lanes 16] [--beats 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmfree.flow.generate import to_verilog
from mmfree.flow.synth import synth_stats
from mmfree.hdl import build
from mmfree.sim import cosim
from mmfree.sim.activity import count_toggles
from mmfree.spec import TernaryCoreSpec

OUT = Path(__file__).resolve().parent.parent / "src" / "mmfree" / "data" / "activity.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--beats", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    params = {"lanes": args.lanes, "act_width": 8, "acc_width": 32}
    top = f"activity_l{args.lanes}"
    res = cosim.run(build(TernaryCoreSpec(**params)), top, "icarus",
                    "mmfree.sim.tb.ternary_bench", config={**params, "beats": args.beats},
                    seed=args.seed, waves="vcd")
    if res.failed or res.report.get("mismatches"):
        print("simulation failed", file=sys.stderr)
        return 1
    t = count_toggles(res.run_dir / "waves.vcd", scope=top)
    cells = synth_stats(to_verilog(build(TernaryCoreSpec(**params)), top), top, "ecp5")
    luts = cells.get("LUT4", 0) + cells.get("CCU2C", 0) * 2  # a CCU2C holds two LUT4s
    ffs = cells.get("TRELLIS_FF", 0)
    data = {
        "unit": "TernaryCore", "lanes": args.lanes, "stimulus": "random ternary weights "
        "(0-90% zeros) and uniform int8 activations, back to back", "beats": args.beats,
        "cycles": t.cycles, "net_bits": t.bits, "toggles": t.toggles,
        "toggles_per_cycle": t.per_cycle, "alpha": t.alpha,
        "synthesis": {"tool": "Yosys synth_ecp5", "cells": cells, "lut4_equivalents": luts,
                      "flip_flops": ffs},
        "toggles_per_cycle_per_resource": t.per_cycle / max(luts + ffs, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{args.lanes}-lane core: {t.per_cycle:.1f} net-bit toggles per cycle over "
          f"{t.cycles} cycles (alpha {t.alpha:.3f} over {t.bits} net bits); "
          f"{luts} LUT4 + {ffs} FF -> {data['toggles_per_cycle_per_resource']:.3f} toggles "
          f"per cycle per resource; wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
