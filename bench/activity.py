#!/usr/bin/env python3
"""Measure switching activity and resources of the units the cycle model's power uses.

For each unit (the ternary core and the int8 tensor core) this streams random operands back
to back through it on Icarus with a VCD dump, counts the bit toggles of every net of the
unit per clock cycle (:func:`mmfree.sim.activity.count_toggles`), synthesises the same unit
with Yosys for ECP5 (LUT4, carry, flip-flop, LUT-RAM and multiplier cells) and writes
``src/mmfree/data/activity.json``, which ``mmfree project``, ``compare`` and ``sweep``
read for the logic power and the device-resource fit check (``docs/cycle-model.md`` §5).

    .venv/bin/python bench/activity.py [--lanes 16] [--beats 2000] [--seed 1]

Both measurements take about a minute each (simulation with waveforms, then synthesis).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mmfree.flow.generate import to_verilog
from mmfree.flow.synth import synth_stats
from mmfree.hdl import build
from mmfree.sim import cosim
from mmfree.sim.activity import count_toggles
from mmfree.spec import TensorCoreSpec, TernaryCoreSpec

OUT = Path(__file__).resolve().parent.parent / "src" / "mmfree" / "data" / "activity.json"


def _measure(name: str, component_fn, top: str, testbench: str, config: dict, seed: int,
             stimulus: str, per: dict) -> dict:
    t0 = time.monotonic()
    print(f"{name}: simulating {top} on Icarus with waveforms ...", flush=True)
    res = cosim.run(component_fn(), top, "icarus", testbench, config=config, seed=seed,
                    waves="vcd")
    if res.failed or res.report.get("mismatches"):
        raise SystemExit(f"{name}: simulation failed (see {res.run_dir}/sim.log)")
    t = count_toggles(res.run_dir / "waves.vcd", scope=top)
    print(f"{name}: synthesising with Yosys for ECP5 ...", flush=True)
    cells = synth_stats(to_verilog(component_fn(), top), top, "ecp5")
    luts = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)  # a CCU2C holds two LUT4s
    entry = {
        "top": top, "params": {k: v for k, v in config.items() if k != "beats"},
        "stimulus": stimulus, "beats": config["beats"], "seed": seed,
        "cycles": t.cycles, "net_bits": t.bits, "toggles": t.toggles,
        "toggles_per_cycle": t.per_cycle, "alpha": t.alpha,
        "synthesis": {"tool": "Yosys synth_ecp5", "cells": cells, "lut4_equivalents": luts,
                      "flip_flops": cells.get("TRELLIS_FF", 0),
                      "multipliers": cells.get("MULT18X18D", 0),
                      "lut_ram_cells": cells.get("TRELLIS_DPR16X4", 0)},
        **per,
    }
    print(f"{name}: alpha {t.alpha:.3f} over {t.bits} net bits and {t.cycles} cycles; "
          f"{luts} LUT4 + {entry['synthesis']['flip_flops']} FF + "
          f"{entry['synthesis']['multipliers']} MULT18X18D [{time.monotonic() - t0:.0f} s]",
          flush=True)
    return entry


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lanes", type=int, default=16, help="ternary-core lanes (default 16)")
    ap.add_argument("--beats", type=int, default=2000, help="input beats per unit (default 2000)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tparams = {"lanes": args.lanes, "act_width": 8, "acc_width": 32}
    units = {
        "ternary-core": _measure(
            "ternary-core", lambda: build(TernaryCoreSpec(**tparams)), f"activity_l{args.lanes}",
            "mmfree.sim.tb.ternary_bench", {**tparams, "beats": args.beats}, args.seed,
            "random ternary weights and uniform int8 activations, back to back",
            {"lanes": args.lanes}),
        "tensor-core": _measure(
            "tensor-core", lambda: build(TensorCoreSpec(width=8, accumulate=True)),
            "activity_tensor_s8",
            "mmfree.sim.tb.tensor_bench", {"width": 8, "acc_width": 32, "beats": args.beats},
            args.seed, "uniform int8 A and B tiles, random C, back to back (accumulate mode)",
            {"macs_per_cycle": 64}),
    }
    data = {"about": "switching activity (RTL simulation, Icarus) and resources (Yosys "
                     "synth_ecp5) of the units, written by bench/activity.py",
            "units": units}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
