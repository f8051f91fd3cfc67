#!/usr/bin/env python3
"""mmfree's projection against the published figures of boards whose hardware is known.

For each published system the board (device, DRAM, clock) is one of the presets; what is not
published (the width of the accelerator's core) is the preset's design choice. The table
gives each published figure, mmfree's projection for the same scope (the whole card, or the
FPGA alone for a vendor tool's on-chip estimate) and their ratio; where a ratio is outside
0.5-2x the line below it explains the gap from the projection's breakdown, including the
core width that would reproduce the published throughput.

    .venv/bin/python bench/boards.py [--markdown]

Sources of the published figures: Zhu et al., arXiv 2406.02528 (D5005: 1.3B at 42 ms per
token, about 13 W; the paper calls these projections); TeLLMe v2, arXiv 2510.15926 (KV260:
up to 25 tokens/s of a ternary LLM under a 5 W power budget); issue 17 (an open
MMfreeLM-370M design measured at 17.7 tokens/s at 250 MHz on a KV260; a Vivado estimate of
0.49 W for an 8-lane ternary SoC on an Arty A7-class board; primary sources not located).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace

from mmfree.model.config import PRESETS, builtin_model
from mmfree.model.system import Projection, Workload, project


@dataclass(frozen=True)
class Published:
    system: str
    preset: str
    model: str
    tokens_per_s: float | None
    watts: float | None
    scope: str  #: "card" (the whole board) or "chip" (the FPGA alone)
    source: str


PUBLISHED = [
    Published("Intel FPGA PAC D5005 (paper)", "d5005", "1.3B", 1 / 0.042, 13.0, "card",
              "Zhu et al. 2406.02528: 42 ms/token, ~13 W (scope not stated; the card "
              "assumed)"),
    Published("KV260, open MMfreeLM-370M design", "kv260", "370M", 17.7, None, "card",
              "issue 17: 17.7 tokens/s at 250 MHz (measured)"),
    Published("KV260, TeLLMe v2 (ternary LLM)", "kv260", "370M", None, 5.0, "card",
              "TeLLMe v2, 2510.15926: 5 W power budget (board)"),
    Published("Arty A7-class, 8-lane ternary SoC", "arty-a7-35t", "370M", None, 0.49, "chip",
              "issue 17: 0.49 W Vivado on-chip estimate"),
]


def watts(p: Projection, scope: str) -> float:
    return sum(p.power_w.values()) if scope == "card" else p.chip_power_w


def lanes_for(tokens_per_s: float, pub: Published) -> int:
    """The lane count of one core whose projection comes closest to ``tokens_per_s``
    (1..1024; the analytical product model, which takes any lane count: the fetcher takes
    only lanes whose groups fit its port)."""
    hw, model = PRESETS[pub.preset], builtin_model(pub.model)
    best = min(range(1, 1025), key=lambda n: abs(
        project(model, replace(hw, lanes=n, ternary_cores=1, product_model="analytical"),
                Workload()).tokens_per_s - tokens_per_s))
    return best


def explain(pub: Published, p: Projection) -> str:
    d = p.power_detail_w
    parts = (f"static {d['device static']:.2f} W device + {d['DRAM background']:.2f} W DRAM "
             f"idle + {d['board']:.2f} W board; logic {p.power_w['logic']:.2f} W; DRAM "
             f"{p.power_w['DRAM']:.2f} W; on-chip memory {p.power_w['on-chip memory']:.3f} W")
    notes = []
    if pub.tokens_per_s is not None:
        r = p.tokens_per_s / pub.tokens_per_s
        if not 0.5 <= r <= 2:
            n = lanes_for(pub.tokens_per_s, pub)
            weights_per_cycle = (builtin_model(pub.model).linear_weights * pub.tokens_per_s
                                 / (p.hw.clock_mhz.value * 1e6))
            notes.append(
                f"tokens/s {r:.1f}x: the preset has {p.hw.ternary_cores * p.hw.lanes} lanes "
                f"and is {p.decode.binding}-bound; the published rate is "
                f"{weights_per_cycle:.0f} weights per cycle at {p.hw.clock_mhz.value:g} MHz, "
                f"which mmfree reproduces with one core of {n} lanes; its DRAM roof is "
                f"{p.workload.batch * p.hw.dram_bytes_per_s / float(p.decode.dram_bytes):.0f} "
                "tokens/s, so the published design is not limited by memory")
    if pub.watts is not None:
        r = watts(p, pub.scope) / pub.watts
        if not 0.5 <= r <= 2:
            notes.append(
                f"power {r:.2f}x: mmfree counts the accelerator's units on the FPGA "
                f"(static {d['device static']:.2f} W, logic {p.power_w['logic']:.3f} W); the "
                "SoC's processor, DDR3 controller and PHY, clocking and I/O are not modelled, "
                "and a vendor estimate at default toggle rates also counts their I/O power")
    return parts + ("\n      " + "\n      ".join(notes) if notes else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", action="store_true", help="a Markdown table for the docs")
    args = ap.parse_args()
    rows = []
    for pub in PUBLISHED:
        hw = PRESETS[pub.preset]
        p = project(builtin_model(pub.model), hw, Workload())
        w = watts(p, pub.scope)
        rows.append((pub, p, w))
    if args.markdown:
        print("| system | model | published | source | mmfree (preset) | ratio |")
        print("|---|---|---|---|---|---|")
    else:
        print(f"{'system':<36} {'model':<6} {'published':>18} {'mmfree':>18} {'ratio':>6}")
    for pub, p, w in rows:
        figures = []
        if pub.tokens_per_s is not None:
            figures.append((f"{pub.tokens_per_s:.1f} tok/s", f"{p.tokens_per_s:.1f} tok/s",
                            p.tokens_per_s / pub.tokens_per_s))
        if pub.watts is not None:
            figures.append((f"{pub.watts:g} W ({pub.scope})", f"{w:.2f} W ({pub.scope})",
                            w / pub.watts))
        for pubfig, ours, ratio in figures:
            if args.markdown:
                print(f"| {pub.system} | {pub.model} | {pubfig} | {pub.source} | {ours} "
                      f"(`{pub.preset}`) | {ratio:.2f} |")
            else:
                print(f"{pub.system:<36} {pub.model:<6} {pubfig:>18} {ours:>18} {ratio:>6.2f}")
        if not args.markdown:
            print(f"    {pub.preset}: {explain(pub, p)}")
    if args.markdown:
        print()
        for pub, p, _ in rows:
            print(f"- **{pub.system}** (`{pub.preset}`): {explain(pub, p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
