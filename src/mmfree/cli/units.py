"""``mmfree generate | lint | cosim-unit | synth UNIT``: one unit, from its spec."""

from __future__ import annotations

import argparse
import random
import re
import sys
import time

from ..spec import UNITS, UnitSpec
from .errors import BAD_INPUT, CHECK_FAILED, OK, UsageError
from .options import (
    add_sim_option,
    add_unit_subparsers,
    check_output_dir,
    check_output_file,
    simulators,
    unit_spec,
    write_output,
)

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``generate``, ``lint``, ``cosim-unit`` and ``synth``."""
    g = sub.add_parser("generate", help="write a unit's Verilog and port description",
                       description="Write UNIT's Verilog (deterministic: byte-identical across "
                                   "runs, no paths inside) plus NAME.md and NAME.json describing "
                                   "its ports, parameters and latency.")

    def generate_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
        p.add_argument("--name", help="top module name (default derived from the parameters)")
    add_unit_subparsers(g, "generate", generate_args)

    li = sub.add_parser("lint", help="verilator --lint-only -Wall with the documented waivers",
                        description="Lint a unit's generated Verilog with Verilator -Wall. "
                                    "Exit 1 on any warning not waived in docs/lint.md.")
    add_unit_subparsers(li, "lint")

    c = sub.add_parser("cosim-unit", help="co-simulate a unit against its golden model",
                       description="Build the unit's Verilog on a simulator, run its cocotb "
                                   "testbench (random, corner, stall and reset tests) and "
                                   "compare every output with the golden model.")

    def cosim_args(p: argparse.ArgumentParser) -> None:
        add_sim_option(p)
        p.add_argument("--seed", type=int, help="random seed (default: random, printed)")
        p.add_argument("--waves", action="store_true",
                       help="dump waveforms (waves.fst, on either simulator) into the run "
                            "folder, printed at the end")
    add_unit_subparsers(c, "cosim-unit", cosim_args)

    sy = sub.add_parser("synth", help="synthesise, place and route a unit; Fmax, resources",
                        description="Run Yosys (and nextpnr for ECP5/iCE40) on a unit's "
                                    "Verilog: resource counts, Fmax against --freq, the "
                                    "critical path, and whether it fits the part (needed vs "
                                    "available when it does not). ECP5 runs out of context; "
                                    "iCE40 inside a two-pin wrapper; Xilinx 7-series gives "
                                    "resource counts only. Results are cached by a hash of "
                                    "the Verilog and the arguments.")

    def synth_args(p: argparse.ArgumentParser) -> None:
        from ..flow.targets import TARGETS
        p.add_argument("--target", required=True, choices=sorted(TARGETS),
                       help="; ".join(f"{k}: {t.title}" for k, t in sorted(TARGETS.items())))
        p.add_argument("--freq", type=float, default=100.0, metavar="MHZ",
                       help="clock constraint in MHz, above 0 and below 2000 (default 100); "
                            "exit 1 if the placed design does not meet it")
        p.add_argument("--json", metavar="FILE",
                       help="also write the report as JSON to FILE ('-': standard output)")
        p.add_argument("--no-cache", action="store_true", help="ignore cached results")
        p.add_argument("--quiet", action="store_true", help="no progress indication")
        p.add_argument("--registered-ports", action="store_true",
                       help="ECP5: place the unit with a flip-flop on every port, so that "
                            "paths from its inputs and to its outputs are timed too")
        p.add_argument("--router", choices=("router1", "router2"), default="router1",
                       help="nextpnr's router (default router1); router2 routes a large "
                            "design such as the engine in a fraction of router1's time")
        p.add_argument("--no-route", action="store_true",
                       help="place only (ECP5, iCE40): Fmax is nextpnr's estimate after "
                            "placement, without a critical path; for designs whose routing "
                            "takes hours, such as the engine (default: place and route)")
        p.add_argument("--seed", type=int, metavar="N",
                       help="nextpnr's placement seed, 0..2**31-1 (default: nextpnr's own); "
                            "Fmax varies by seed: compare designs over a few")
    add_unit_subparsers(sy, "synth", synth_args)


def run(args: argparse.Namespace) -> int:
    """Run the unit command ``args.command`` names."""
    spec = unit_spec(UNITS[args.unit], args)
    return {"generate": generate, "lint": lint, "cosim-unit": cosim_unit,
            "synth": synth}[args.command](spec, args)


def generate(spec: UnitSpec, args: argparse.Namespace) -> int:
    from ..flow.generate import write_unit
    name = args.name or spec.top_name()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UsageError(f"--name {name!r} is not a plain Verilog identifier "
                         "(letters, digits and _, not starting with a digit)")
    out = check_output_dir("-o/--output", args.output)
    try:
        paths = write_unit(spec, out, name)
    except OSError as e:
        raise UsageError(f"-o/--output {args.output}: cannot write: {e.strerror}") from None
    for path in paths:
        print(path)
    return OK


def lint(spec: UnitSpec, args: argparse.Namespace) -> int:
    from ..flow.generate import to_verilog
    from ..flow.lint import lint as run_lint
    from ..hdl import build
    name = spec.top_name()
    result = run_lint(to_verilog(build(spec), name), name)
    print(f"{name}: {result.summary()}")
    return OK if result.ok else CHECK_FAILED


def cosim_unit(spec: UnitSpec, args: argparse.Namespace) -> int:
    from ..flow.toolchain import ToolMissing
    from ..sim import cosim
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    status = OK
    print(f"seed {seed} (replay with --seed {seed})")
    print(f"{'simulator':10} {'tests':>5} {'failed':>6} {'outputs':>8} {'mismatch':>8} "
          f"{'cycle checks':>12} {'wall s':>7}")
    for sim in simulators(args.sim):
        t0 = time.monotonic()
        try:
            res = cosim.run_unit(spec, sim, seed=seed, waves=args.waves, ticker=True)
        except ToolMissing as e:
            print(f"{sim:10} not available: {e}")
            status = BAD_INPUT
            continue
        except (RuntimeError, SystemExit, OSError) as e:
            # a failed build or a crashed simulator; its log tail has been printed
            print(f"{sim:10} FAILED to build or run: {e}")
            status = CHECK_FAILED
            continue
        r = res.report
        checks = f"{r.get('cycle_checks', 0) - r.get('cycle_mismatches', 0)}/" \
                 f"{r.get('cycle_checks', 0)} ok"
        print(f"{sim:10} {res.tests:5} {res.failed:6} {r.get('outputs', 0):8} "
              f"{r.get('mismatches', 0):8} {checks:>12} {time.monotonic() - t0:7.1f}")
        if res.failed or r.get("mismatches", 1) or r.get("cycle_mismatches", 1):
            status = CHECK_FAILED
        if args.waves or res.failed:
            print(f"  logs{' and waveforms' if args.waves else ''}: {res.run_dir}")
    return status


def synth(spec: UnitSpec, args: argparse.Namespace) -> int:
    from ..flow.synth import run_flow, xilinx_luts
    from ..hdl import build
    top = spec.top_name()
    check_output_file("--json", args.json)
    try:
        report = run_flow(lambda: build(spec), top, args.target, args.freq,
                          progress=not args.quiet, use_cache=not args.no_cache,
                          registered_ports=args.registered_ports, router=args.router,
                          place_only=args.no_route, seed=args.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"{top} on {args.target} (constraint {args.freq:g} MHz)"
          + (", every port registered" if report.registered_ports else "")
          + (f", seed {args.seed}" if args.seed is not None else "")
          + (" [cached]" if report.cached else f" [{report.seconds:.0f} s]"))
    print("  Yosys cells: " + ", ".join(f"{k} {v}" for k, v in sorted(report.cells.items())))
    if args.target == "xilinx-7":
        print(f"  LUTs (LUT1-LUT6 and INV, flattened): {xilinx_luts(report.cells)}")
    if report.utilization:
        print("  placed: " + ", ".join(f"{k} {u}/{a}" for k, (u, a) in
                                       sorted(report.utilization.items()) if u))
    if not report.fits:
        print(f"  {report.problem}")
    elif report.fmax_mhz is not None:
        verdict = "meets" if report.fmax_mhz >= args.freq else "FAILS"
        if report.routed and report.critical_path:
            print(f"  Fmax {report.fmax_mhz:.1f} MHz ({verdict} {args.freq:g} MHz); critical "
                  f"path {report.critical_path[0]} -> {report.critical_path[1]}")
        else:
            print(f"  Fmax {report.fmax_mhz:.1f} MHz estimated after placement, not routed "
                  f"({verdict} {args.freq:g} MHz); no critical path without routing")
        split = report.path_split()
        if split:
            print("  critical path: " + ", ".join(f"{k} {v:.2f} ns" for k, v in split.items()))
    else:
        print("  no open place-and-route for this target: resource counts only")
    if args.json:
        write_output("--json", args.json, report.to_json())
    sys.stdout.flush()
    met = report.fmax_mhz is None or report.fmax_mhz >= args.freq
    return OK if report.fits and met else CHECK_FAILED
