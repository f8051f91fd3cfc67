"""``mmfree explore | regress UNIT``: design-space exploration and random regressions on a
Dask cluster (:mod:`mmfree.flow.explore`, :mod:`mmfree.sim.regress`; docs/explore.md)."""

from __future__ import annotations

import argparse
import random
import shlex
import time
from pathlib import Path
from typing import Any

from ..spec import UNITS, UnitSpec
from .errors import CHECK_FAILED, OK, UsageError
from .options import add_sim_option, add_unit_subparsers, check_output_dir, simulators, unit_spec

__all__ = ["add_parser", "run"]

_CLUSTER_HELP = ("Runs on an in-process local cluster of --workers processes (default: one "
                 "per CPU core), or on a running Dask scheduler (--scheduler "
                 "tcp://HOST:PORT) whose workers have the same Python environment; see "
                 "docs/explore.md.")


def _cluster_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="local worker processes (default: one per CPU core)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="address of a running Dask scheduler (dask scheduler)")
    g.add_argument("--quiet", action="store_true", help="no progress")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``explore`` and ``regress``."""
    from ..flow.targets import TARGETS
    ex = sub.add_parser(
        "explore", help="synthesise, place and route a grid of a unit's parameters on a "
                        "cluster",
        description="Every point of --grid (a unit with those parameters; the others from "
                    "the unit options or their defaults) is one task: generate the Verilog, "
                    "synthesise, place and route on --target against --freq. Writes "
                    "DIR/results.csv (one row per point: the parameters, LUT4, LUT4_eq, FF, "
                    "CCU2C, DSP, BRAM, Fmax, met, critical path, seconds, cached) as points "
                    "finish, and DIR/plot-PARAM.png (Fmax and LUTs against each swept "
                    "parameter). Results are cached by a hash of the Verilog, target, clock "
                    "and tool versions: a rerun computes only what is missing. "
                    + _CLUSTER_HELP + " Exit 1 if a point failed or does not fit the part.")

    def explore_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--grid", required=True, metavar='"NAME=V1,V2 NAME=..."',
                       help="the parameters to sweep and their values, e.g. \"lanes=4,8,16 "
                            "tree_levels_per_stage=0,1\" (flags: 0,1); every combination is "
                            "a point; a swept parameter overrides its option")
        p.add_argument("--target", required=True, choices=sorted(TARGETS),
                       help="; ".join(f"{k}: {t.title}" for k, t in sorted(TARGETS.items())))
        p.add_argument("--freq", type=float, default=100.0,
                       help="clock constraint in MHz (default 100)")
        p.add_argument("--registered-ports", action="store_true",
                       help="ECP5: a flip-flop on every port, so paths into and out of the "
                            "unit are timed too")
        p.add_argument("-o", "--output", default="out/explore",
                       help="output folder (default out/explore)")
        p.add_argument("--no-cache", action="store_true",
                       help="recompute every point (the workers ignore their caches too)")
        p.add_argument("--no-plot", action="store_true", help="no figures")
        _cluster_args(p)
    add_unit_subparsers(ex, "explore", explore_args)

    rg = sub.add_parser(
        "regress", help="random co-simulation regression in seeded chunks on a cluster",
        description="Run UNIT's cocotb testbench (random, corner, stall and reset tests "
                    "against the golden model) --seeds times per simulator, with seeds "
                    "--seed, --seed+1, ..., each chunk one task building in its own folder; "
                    "print every chunk and, for each failure, its seed and the command that "
                    "replays it. " + _CLUSTER_HELP + " Exit 1 if any chunk failed.")

    def regress_args(p: argparse.ArgumentParser) -> None:
        add_sim_option(p)
        p.add_argument("--seeds", type=int, default=4,
                       help="chunks per simulator, one seed each (default 4)")
        p.add_argument("--seed", type=int,
                       help="first seed (default: random, printed)")
        p.add_argument("--transactions", type=int, metavar="N",
                       help="random products in all, divided over the chunks (ternary-core; "
                            "default: the testbench's own, 6 per random test and chunk)")
        p.add_argument("-o", "--output", default="sim_build/regress",
                       help="build folder; chunk S builds in OUTPUT/SIM/seed-S, kept only "
                            "when it fails (default sim_build/regress)")
        _cluster_args(p)
    add_unit_subparsers(rg, "regress", regress_args)


def run(args: argparse.Namespace) -> int:
    """Run ``explore`` or ``regress``."""
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    spec = unit_spec(UNITS[args.unit], args)
    return {"explore": explore, "regress": regress}[args.command](spec, args)


def _cluster_error() -> type[Exception]:
    from ..flow.cluster import ClusterError
    return ClusterError


def explore(spec: UnitSpec, args: argparse.Namespace) -> int:
    from ..flow import explore as ex
    try:
        axes = ex.parse_grid(args.unit, args.grid)
        pts = ex.points(args.unit, axes, args.target, args.freq, args.registered_ports,
                        fixed=spec.params())
    except ValueError as e:
        raise UsageError(str(e)) from None
    out = check_output_dir("-o/--output", args.output)
    from ..flow.cluster import default_workers
    where = args.scheduler or f"{args.workers or default_workers()} local workers"
    print(f"{len(pts)} point{'s' if len(pts) != 1 else ''} of {args.unit} on {args.target} "
          f"at {args.freq:g} MHz"
          + (", ports registered" if args.registered_ports else "") + f" ({where})",
          flush=True)
    t0 = time.monotonic()
    try:
        rows = ex.explore(pts, out, workers=args.workers, scheduler=args.scheduler,
                          progress=not args.quiet, use_cache=not args.no_cache)
    except _cluster_error() as e:
        raise UsageError(str(e)) from None
    wall = time.monotonic() - t0
    swept = list(axes)
    lut = "LUT6" if args.target == "xilinx-7" else "LUT4"
    print(" ".join(f"{n:>{max(len(n), 5)}}" for n in swept)
          + f" {lut:>6} {'FF':>6} {'CCU2C':>6} {'DSP':>4} {'Fmax':>7} {'met':>3} "
            f"{'seconds':>8}")
    failed = 0
    for row in rows:
        cells = " ".join(f"{row[n]:>{max(len(n), 5)}}" for n in swept)
        if row["fits"] != 1:
            failed += 1
            print(f"{cells} {row['problem']}")
            continue
        met = {1: "yes", 0: "NO", "": "-"}[row["met"]]
        secs = "cached" if row["cached"] == 1 else row["seconds"]
        print(f"{cells} {row[lut]:>6} {row['FF']:>6} {row['CCU2C']:>6} {row['DSP']:>4} "
              f"{row['fmax_mhz'] or '-':>7} {met:>3} {secs:>8}")
    done = sum(1 for r in rows if r["cached"] != 1 and r["fits"] == 1)
    print(f"{len(rows)} points in {wall:.0f} s ({done} computed, "
          f"{sum(1 for r in rows if r['cached'] == 1)} from the cache) -> {out}/results.csv")
    if not args.no_plot and rows and len(rows) > failed:
        multi = [n for n in swept if len(axes[n]) > 1]
        for path in ex.plot(rows, out, multi):
            print(f"wrote {path}")
    if failed:
        print(f"mmfree: {failed} of {len(rows)} points failed or do not fit (problem column "
              "of results.csv)")
        return CHECK_FAILED
    return OK


def _unit_flags(spec: UnitSpec) -> list[str]:
    """The command-line options that give ``spec`` (those that differ from the defaults)."""
    flags = []
    for name, default, p in spec.parameters():
        value = getattr(spec, name)
        if value == default:
            continue
        flag = p.flag or "--" + name.replace("_", "-")
        flags += [flag] if isinstance(default, bool) else [flag, str(value)]
    return flags


def regress(spec: UnitSpec, args: argparse.Namespace) -> int:
    from ..sim import regress as rg
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    if args.scheduler is None:  # a local cluster builds here; a remote one where it runs
        check_output_dir("-o/--output", args.output)
    try:
        jobs = rg.chunks(args.unit, spec.params(), simulators(args.sim), args.seeds, seed,
                         args.transactions, Path(args.output).resolve())
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.scheduler is None:  # a local cluster: its simulators are this machine's
        from ..flow.toolchain import find
        for sim in simulators(args.sim):
            find(sim)  # SimulatorMissing: a one-line error, exit 2
    per = jobs[0].random_products
    print(f"{len(jobs)} chunks of {spec.top_name()}: seeds {seed}..{seed + args.seeds - 1} "
          f"on {', '.join(simulators(args.sim))}"
          + (f", {per} random products per random test" if per else ""), flush=True)
    t0 = time.monotonic()
    try:
        results = rg.regress(jobs, workers=args.workers, scheduler=args.scheduler,
                             progress=not args.quiet)
    except _cluster_error() as e:
        raise UsageError(str(e)) from None
    wall = time.monotonic() - t0
    print(f"{'simulator':10} {'seed':>10} {'tests':>5} {'failed':>6} {'outputs':>8} "
          f"{'mismatch':>8} {'cycle checks':>12} {'seconds':>8}  host")
    for r in results:
        c = r.chunk
        if r.error:
            print(f"{c.simulator:10} {c.seed:>10} could not run: {r.error}")
            continue
        checks = f"{r.cycle_checks - r.cycle_mismatches}/{r.cycle_checks} ok"
        print(f"{c.simulator:10} {c.seed:>10} {r.tests:5} {r.failed:6} {r.outputs:8} "
              f"{r.mismatches:8} {checks:>12} {r.seconds:8.1f}  {r.host}")
    bad = [r for r in results if not r.ok]
    total = sum(r.outputs for r in results)
    print(f"{len(results)} chunks, {total} outputs compared, {len(bad)} failed, "
          f"{wall:.0f} s wall")
    for r in bad:
        c = r.chunk
        replay: list[Any] = ["mmfree", "regress", c.unit, *_unit_flags(spec), "--sim",
                             c.simulator, "--seed", c.seed, "--seeds", 1]
        if c.random_products is not None:
            replay += ["--transactions", c.random_products]
        what = r.error or (f"{r.failed} of {r.tests} tests failed, {r.mismatches} output "
                           f"mismatches, {r.cycle_mismatches} cycle-count mismatches")
        print(f"FAILED {c.simulator} seed {c.seed}: {what}")
        print(f"  replay: {shlex.join(str(a) for a in replay)}")
        if r.log_dir:
            print(f"  logs: {r.log_dir}")
    return CHECK_FAILED if bad else OK
