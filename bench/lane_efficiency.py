#!/usr/bin/env python3
"""Ternary-lane efficiency: GMAC/s per thousand combinational cells (ECP5) and MACs per cycle
per thousand LUTs (Xilinx 7-series), one Markdown table.

For 8, 16, 64 and 256 lanes (int8 activations, 32-bit accumulator, adder tree registered every
level), runs ``mmfree.flow.synth.run_flow`` (the engine of ``mmfree synth``):

* ECP5-85 speed 6, every port registered (``--registered-ports``): the placed
  ``TRELLIS_COMB`` cells (LUT4s, carry-chain halves, LUT RAM) and Fmax; GMAC/s = lanes x Fmax
  (one ternary multiply-accumulate per lane per cycle).
* Xilinx 7-series (``synth_xilinx``, flattened): every LUT (LUT1-LUT6 and INV) of the core,
  its output FIFO included. There is no open place-and-route for 7-series here, so this
  column is per cycle: GMAC/s per thousand LUTs is it times the clock in GHz.

Beside them, the figure of an open 8-wide pipelined ternary dot product for Artix-7, as its
authors report it (Vivado 2025.2 synthesis of ``xc7a35ticsg324-1L``). Results are cached like
``mmfree synth``'s (``$MMFREE_CACHE``); the first run takes about 10 minutes on two busy
cores, mostly the 256-lane place-and-route.

    .venv/bin/python bench/lane_efficiency.py
"""

from __future__ import annotations

import os
import platform
import sys
import time

from mmfree.flow.synth import run_flow, xilinx_luts
from mmfree.hdl import build
from mmfree.spec import TernaryCoreSpec

LANES = (8, 16, 64, 256)

#: Neumann-Labs/ternfpga, bench/results/utilization.md (commit 045ba12c): ``ternary_dot_pipe``
#: (K = 8, three stages, int8 activations, 32-bit dot product, no accumulator or FIFO):
#: 149 LUTs, 129 FF, 0 DSP, "Fmax ~280 MHz" (WNS +0.424 ns at 4 ns, synthesis estimate).
OPEN_ARTIX7 = {"lanes": 8, "luts": 149, "fmax_mhz": 280.0,
               "source": "Neumann-Labs/ternfpga `bench/results/utilization.md`, "
                         "`rtl/ternary_dot_pipe.sv` (Vivado 2025.2 synthesis, xc7a35t)"}


def spec(lanes: int) -> TernaryCoreSpec:
    return TernaryCoreSpec(lanes=lanes, act_width=8, acc_width=32, tree_levels_per_stage=1)


def main() -> int:
    t0 = time.monotonic()
    lines = [
        f"Ternary core, int8 activations, 32-bit accumulator, adder tree registered every level "
        f"(`--tree-levels-per-stage 1`); machine: {platform.machine()}, {os.cpu_count()} cores.",
        "",
        "| lanes | ECP5-85: placed TRELLIS_COMB | per lane | Fmax, ports registered (MHz) "
        "| GMAC/s | **GMAC/s per 1000 COMB** | Xilinx-7: LUTs | per lane "
        "| **MAC/cycle per 1000 LUTs** |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lanes in LANES:
        s = spec(lanes)
        top = s.top_name()
        print(f"{lanes} lanes ...", file=sys.stderr, flush=True)
        ecp5 = run_flow(lambda s=s: build(s), top, "ecp5-85k", 200.0, progress=True,
                        registered_ports=True)
        xil = run_flow(lambda s=s: build(s), top, "xilinx-7", 200.0, progress=True)
        comb = ecp5.utilization["TRELLIS_COMB"][0]
        gmacs = lanes * ecp5.fmax_mhz / 1000
        luts = xilinx_luts(xil.cells)
        lines.append(
            f"| {lanes} | {comb} | {comb / lanes:.1f} | {ecp5.fmax_mhz:.1f} | {gmacs:.1f} | "
            f"**{1000 * gmacs / comb:.1f}** | {luts} | {luts / lanes:.1f} | "
            f"**{1000 * lanes / luts:.0f}** |")
        print(lines[-1], file=sys.stderr, flush=True)
    o = OPEN_ARTIX7
    gmacs = o["lanes"] * o["fmax_mhz"] / 1000
    lines += [
        f"| open Artix-7 design, {o['lanes']} lanes | - | - | - | - | - | {o['luts']} | "
        f"{o['luts'] / o['lanes']:.1f} | **{1000 * o['lanes'] / o['luts']:.0f}** |",
        "",
        f"Open Artix-7 design: {o['source']}. A dot product without accumulator or output "
        f"FIFO; at its reported {o['fmax_mhz']:g} MHz (a synthesis estimate) it makes "
        f"{gmacs:.2f} GMAC/s, {1000 * gmacs / o['luts']:.1f} GMAC/s per 1000 LUTs.",
        f"({time.monotonic() - t0:.0f} s for this table)",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
