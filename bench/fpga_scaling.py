#!/usr/bin/env python3
"""Scaling table on ECP5-85 (speed 6): resources and Fmax of the cores, one Markdown table.

A thin wrapper over ``mmfree explore`` (:func:`mmfree.flow.explore.explore`): the table's
configurations are grid points run on a Dask cluster (a local one of ``--workers``
processes, or ``--scheduler tcp://HOST:PORT``); the ternary core at 16, 64 and 256 lanes
(the default adder tree and the tree registered every level), the tensor core at int4, int8
and int16 and the int8 sparse tensor core (each with and without ``dsp_pipeline``), each out
of context and with every port registered (``--registered-ports``: the paths into and out of
the unit timed as in a design that registers them). Prints a Markdown table: Yosys cell
counts, Fmax, the critical paths, and the time synthesis plus place-and-route took. Results
are cached like ``mmfree synth``'s (``$MMFREE_CACHE``); a cached row shows the time it took
when it was measured, marked "cached". The explore results (``results.csv``) go to
``--output``.

    .venv/bin/python bench/fpga_scaling.py [--only ternary|tensor] [--no-registered]
        [--workers N | --scheduler tcp://HOST:PORT] [-o DIR]

The first run takes about 40 minutes on two busy cores with one worker; repeats are instant.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mmfree.flow.explore import Point, explore
from mmfree.flow.synth import FlowReport, cached_report
from mmfree.spec import SparseTensorCoreSpec, TensorCoreSpec, TernaryCoreSpec, UnitSpec


@dataclass(frozen=True)
class Row:
    """One configuration: the unit's spec, a label and the clock goal."""

    spec: UnitSpec
    label: str
    goal_mhz: float


def rows(only: str | None) -> list[Row]:
    """The table's configurations, ternary cores first."""
    out = []
    if only in (None, "ternary"):
        for pipe in (0, 1):
            for lanes in (16, 64, 256):
                tree = "tree in one stage" if pipe == 0 else "`--tree-levels-per-stage 1`"
                out.append(Row(TernaryCoreSpec(lanes=lanes, tree_levels_per_stage=pipe),
                               f"ternary, {lanes} lanes, {tree}", 200.0))
    if only in (None, "tensor"):
        for dsp in (False, True):
            extra = ", `--dsp-pipeline`" if dsp else ""
            for width in (4, 8, 16):
                out.append(Row(TensorCoreSpec(width=width, dsp_pipeline=dsp),
                               f"tensor core int{width}{extra}", 150.0))
            out.append(Row(SparseTensorCoreSpec(dsp_pipeline=dsp),
                           f"sparse tensor core int8 (2:4){extra}", 150.0))
    return out


_CELL_SUFFIX = re.compile(r"(_TRELLIS_|_LUT4|_CCU2C|_DI_|_PFUMX|_L6MUX|_DPR16X4|\$CCU2|\$DPRAM).*$")


def short_cell(name: str) -> str:
    """A placed cell's name without the suffixes Yosys and nextpnr add (``p_22_1``, ...)."""
    name = name.replace("\\", "").removeprefix("unit.")  # RegisteredPorts' instance name
    if "MULT18X18D" in name:
        return "multiplier (DSP)"
    return re.sub(r"(\.\d+)+$", "", _CELL_SUFFIX.sub("", name)).lstrip("$") or name


def point(row: Row, registered: bool) -> Point:
    """The explore point of one table row, out of context or with its ports registered."""
    return Point(row.spec.name, tuple(row.spec.params().items()), "ecp5-85k", row.goal_mhz,
                 registered)


def _fmax(r: FlowReport | None, goal: float) -> str:
    if r is None:
        return "-"
    if not r.fits or r.fmax_mhz is None:
        return r.problem or "no timing"
    return f"**{r.fmax_mhz:.1f}**" if r.fmax_mhz >= goal else f"{r.fmax_mhz:.1f}"


def _comb(r: FlowReport) -> str:
    used = r.utilization.get("TRELLIS_COMB")
    return str(used[0]) if used else "-"


def _seconds(reports: list[FlowReport]) -> str:
    total = sum(r.seconds for r in reports)
    cached = all(r.cached for r in reports)
    return f"{total:.0f} s" + (" (cached)" if cached else "")


def _path(r: FlowReport) -> str:
    if not r.critical_path:
        return "-"
    split = r.path_split()
    return (f"{short_cell(r.critical_path[0])} -> {short_cell(r.critical_path[1])} "
            f"({split.get('logic', 0):.1f} ns logic, {split.get('routing', 0):.1f} ns routing)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["ternary", "tensor"], help="only these rows")
    ap.add_argument("--no-registered", action="store_true",
                    help="skip the runs with registered ports (half the time)")
    ap.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    ap.add_argument("--scheduler", help="a running Dask scheduler, tcp://HOST:PORT")
    ap.add_argument("-o", "--output", default="out/fpga_scaling",
                    help="folder of the explore results (default out/fpga_scaling)")
    args = ap.parse_args()

    t0 = time.monotonic()
    table = rows(args.only)
    modes = (False,) if args.no_registered else (False, True)
    pts = [point(row, registered) for row in table for registered in modes]
    results = explore(pts, Path(args.output), workers=args.workers, scheduler=args.scheduler)
    reports: dict[tuple[int, bool], FlowReport | None] = {}
    for i, res in enumerate(results):
        # explore keeps every report in the client's cache; "cached" says where it came from
        report = cached_report(res["key"]) if res["key"] else None
        if report is None:
            print(f"{table[i // len(modes)].label}: {res['problem']}", file=sys.stderr)
        else:
            report.cached = res["cached"] == 1
        reports[i // len(modes), modes[i % len(modes)]] = report
    lines = [
        f"ECP5-85 (LFE5U-85F), speed grade 6, nextpnr out of context; machine: "
        f"{platform.machine()}, {os.cpu_count()} cores. Fmax in MHz, bold where it meets the "
        "goal; cells are Yosys's counts for the unit alone (LUT4 excludes the PFUMX/L6MUX21 "
        "wide-function muxes; LUT RAM = TRELLIS_DPR16X4, 16x4 bits each), before the flow "
        "folds LUT4s into carry chains (`pack_ecp5_carries`); COMB is nextpnr's count of "
        "placed combinational cells (LUT4s, carry halves, LUT RAM) of the unit and its port "
        "registers, after that packing.",
        "",
        "| configuration | latency | LUT4 | FF | CCU2C | DSP | LUT RAM | COMB | goal | Fmax | "
        "critical path | Fmax, ports registered | critical path, ports registered | "
        "synth + PnR (both runs) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(table):
        plain = reports[i, False]
        boxed = reports.get((i, True))
        if plain is None:
            lines.append(f"| {row.label} | {row.spec.latency} | failed: see "
                         f"{args.output}/results.csv |" + " |" * 11)
            continue
        c = plain.cells
        lines.append(
            f"| {row.label} | {row.spec.latency} | {c.get('LUT4', 0)} | {c.get('TRELLIS_FF', 0)} "
            f"| {c.get('CCU2C', 0)} | {c.get('MULT18X18D', 0)} | "
            f"{c.get('TRELLIS_DPR16X4', 0)} | {_comb(boxed or plain)} | {row.goal_mhz:g} | "
            f"{_fmax(plain, row.goal_mhz)} "
            f"| {_path(plain)} | {_fmax(boxed, row.goal_mhz)} | "
            f"{_path(boxed) if boxed is not None else '-'} | "
            f"{_seconds([r for r in (plain, boxed) if r is not None])} |")
    lines += ["", f"({time.monotonic() - t0:.0f} s for this table, "
                  f"{args.scheduler or f'{args.workers or os.cpu_count()} local workers'})"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
