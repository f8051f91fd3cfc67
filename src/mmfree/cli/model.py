"""``mmfree project | compare | sweep``: the cycle model (:mod:`mmfree.model`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import CHECK_FAILED, OK, UsageError

__all__ = ["add_parser", "run"]


def _model_args(p: argparse.ArgumentParser, workload: bool = True) -> None:
    from ..model.config import PRESETS
    p.add_argument("--hw", help=f"hardware: a preset ({', '.join(PRESETS)}) or a TOML "
                                "file with a [hardware] section")
    p.add_argument("--config", help="TOML file with [model], [hardware], [workload]")
    if workload:
        p.add_argument("--model", help="built-in model: 370M, 1.3B, 2.7B (MatMul-free "
                                       "LM), transformer-SIZE, bitnet-SIZE (default 1.3B)")
        p.add_argument("--batch", type=int, help="sequences decoded together (default 1)")
        p.add_argument("--prompt", type=int, help="prompt tokens (default 128)")
        p.add_argument("--generate", type=int, help="tokens generated (default 128)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``project``, ``compare`` and ``sweep``."""
    pr = sub.add_parser("project", help="tokens/s, latency and power of a model on hardware",
                        description="Project decode tokens/s, TPOT, TTFT, per-operation "
                                    "cycles, memory traffic, the binding resource, the "
                                    "roofline position and energy/power of a model on an "
                                    "accelerator built from this project's units. Every "
                                    "coefficient is printed with its provenance (measured, "
                                    "cited or assumed). See docs/cycle-model.md.")
    _model_args(pr)
    fmt = pr.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable JSON")
    fmt.add_argument("--csv", action="store_true", help="machine-readable CSV")
    pr.add_argument("--plot", metavar="DIR", help="write roofline and breakdown figures")
    pr.add_argument("--plot-format", choices=["png", "svg"], default="png")

    cp = sub.add_parser("compare", help="MatMul-free vs Transformer++ (dense, 2:4) crossovers",
                        description="For one hardware budget (--hw), compare the MatMul-free "
                                    "LM on ternary cores with Transformer++ on dense and 2:4 "
                                    "sparse tensor cores across batch sizes and context "
                                    "lengths, and report where the fastest changes.")
    _model_args(cp, workload=False)
    cp.add_argument("--size", default="1.3B", choices=["370M", "1.3B", "2.7B"])
    cp.add_argument("--batches", help="comma-separated batch sizes (default 1,4,16,64)")
    cp.add_argument("--contexts", help="comma-separated contexts (default 256,1024,4096,16384)")
    cp.add_argument("--presets", action="store_true",
                    help="also print the 370M/1.3B/2.7B table for every preset")

    sw = sub.add_parser("sweep", help="design-space sweep with Pareto fronts",
                        description="Evaluate every combination of lanes x cores x clock x "
                                    "DRAM bandwidth x batch for a MatMul-free model and write "
                                    "points.csv (with a fits column: the design fits the "
                                    "device's resources and the board's DRAM) plus the Pareto "
                                    "fronts of the fitting points, tokens/s vs power and vs "
                                    "LUTs (from measured synthesis counts). Exit 1 if no "
                                    "point fits.")
    _model_args(sw)
    sw.add_argument("--lanes", help="lanes per ternary core (default 16,32,64,128,256,512,"
                                    "1024; with --explore the measured lane counts)")
    sw.add_argument("--explore", metavar="RESULTS.csv",
                    help="an 'mmfree explore ternary-core' results file: the cores' LUTs and "
                         "clock limit from those measured designs (at each point the "
                         "cheapest design of its lanes that reaches its clock; a clock none "
                         "reaches does not fit) instead of the per-lane coefficient")
    sw.add_argument("--cores", default="1,2,4,8,16")
    sw.add_argument("--clock", default="60,100,150,200,250,300", help="MHz")
    sw.add_argument("--bandwidth", default="1.6,6.4,12.8,25.6,51.2,76.8,153.6,460",
                    help="DRAM GB/s (one channel of this peak bandwidth; the DRAM technology, "
                         "and its energy per bit, follows it: the board's own, then DDR3, "
                         "DDR4, HBM2, HBM2e)")
    sw.add_argument("--batch-sizes", default="1,2,4,8,16,32,64,128")
    sw.add_argument("-o", "--output", default="out/sweep", help="output folder")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the model command ``args.command`` names."""
    return {"project": project, "compare": compare, "sweep": sweep}[args.command](args)


def _model_inputs(args: argparse.Namespace):  # -> (model, hardware, workload)
    from ..model.config import PRESETS, ConfigError, Workload, builtin_model, load_toml
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


def project(args: argparse.Namespace) -> int:
    from ..model import report
    from ..model.system import project as run_projection
    model, hw, workload = _model_inputs(args)
    try:
        p = run_projection(model, hw, workload)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(report.to_json(p))
    elif args.csv:
        print(report.to_csv(p), end="")
    else:
        print(report.text(p))
    if args.plot:
        for path in report.plot(p, Path(args.plot), args.plot_format):
            print(f"wrote {path}", file=sys.stderr)
    return OK


def compare(args: argparse.Namespace) -> int:
    from ..model import report
    _, hw, _ = _model_inputs(args)
    try:
        c = report.compare(hw, args.size, _ints(args.batches), _ints(args.contexts))
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(c.text())
    if args.presets:
        print()
        print(report.preset_table())
    return OK


def _ints(text: str | None) -> list[int] | None:
    return None if text is None else [int(v) for v in text.split(",")]


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise UsageError(f"sweep values must be positive, got {text!r}")
    return values


def _measured_cores(path: str):  # -> mmfree.model.sweep.MeasuredCores
    """The ternary-core designs of an ``mmfree explore`` results file that were placed and
    routed (a one-line error if it is not such a file)."""
    from ..flow.explore import read_results
    from ..model.sweep import MeasuredCores
    from ..spec import TernaryCoreSpec
    try:
        rows = read_results(Path(path))
    except ValueError as e:
        raise UsageError(f"--explore: {e}") from None
    units = {r.get("unit", "") for r in rows}
    if units != {"ternary-core"}:
        raise UsageError(f"--explore {path}: the sweep needs ternary-core results, the file "
                         f"has {', '.join(sorted(units))}")
    done = [r for r in rows if r["fits"] == "1" and r["fmax_mhz"] and r["LUT4_eq"]]
    if not done:
        raise UsageError(f"--explore {path}: no row has a placed design with Fmax and "
                         "LUT4_eq (an ECP5 or iCE40 target)")
    params = [n for n, _, _ in TernaryCoreSpec.parameters() if n != "lanes"]
    swept = [k for k in params if k in rows[0] and len({r[k] for r in done}) > 1]
    return MeasuredCores(
        lanes=np.array([float(r["lanes"]) for r in done]),
        luts=np.array([float(r["LUT4_eq"]) for r in done]),
        fmax_mhz=np.array([float(r["fmax_mhz"]) for r in done]),
        design=np.array([" ".join([f"lanes={r['lanes']}", *(f"{k}={r[k]}" for k in swept)])
                         for r in done], dtype=object),
        source=f"{path}, {', '.join(sorted({r['target'] for r in done}))}"
               + (", ports registered" if any(r["registered_ports"] == "1" for r in done)
                  else ""))


def sweep(args: argparse.Namespace) -> int:
    import csv
    import time

    from ..model.sweep import grid, progress_bar
    from ..model.sweep import sweep as run_sweep
    from ..spec import TernaryCoreSpec
    model, hw, workload = _model_inputs(args)
    measured = _measured_cores(args.explore) if args.explore else None
    lanes = _floats(args.lanes or ("16,32,64,128,256,512,1024" if measured is None else
                                   ",".join(f"{v:g}" for v in sorted(set(measured.lanes)))))
    max_lanes = TernaryCoreSpec.limits("lanes")[1]
    if max(lanes) > max_lanes or any(v != int(v) for v in lanes):
        raise UsageError(f"--lanes takes whole numbers up to {max_lanes} (the core's limit)")
    pts = grid(lanes=lanes, cores=_floats(args.cores), clock_mhz=_floats(args.clock),
               dram_gbps=_floats(args.bandwidth), batch=_floats(args.batch_sizes))
    t0 = time.perf_counter()
    try:
        res = run_sweep(model, hw, pts, workload,
                        progress=None if args.quiet else progress_bar, measured=measured)
    except ValueError as e:
        raise UsageError(str(e)) from None
    dt = time.perf_counter() - t0
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    fronts = {"pareto_power.csv": res.pareto(res.power_w),
              "pareto_luts.csv": res.pareto(res.luts)}
    fields = list(res.rows([0])[0])
    for fname, idx in {"points.csv": np.arange(len(res.tokens_per_s)), **fronts}.items():
        with open(out / fname, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(res.rows(idx))
    n_fit = int(res.fits.sum())
    if measured is not None:
        print(f"ternary cores: LUTs and Fmax of {len(measured.lanes)} measured designs "
              f"({measured.source})")
    print(f"{len(res.tokens_per_s)} design points of {model.name} on {hw.name} in "
          f"{dt:.3f} s, {n_fit} fit {hw.dev.part} and its DRAM; Pareto fronts of the fitting "
          "points: " + ", ".join(f"{k} ({len(v)} points)" for k, v in fronts.items())
          + f" -> {out}/")
    if not n_fit:
        print("mmfree: no design point fits the device and the board's DRAM (see the fits "
              "column of points.csv)", file=sys.stderr)
        return CHECK_FAILED
    best = res.rows(fronts["pareto_power.csv"][-1:])[0]
    print(f"fastest on the power front: {best['tokens_per_s']:.1f} tokens/s at "
          f"{best['power_w']:.2f} W (lanes {best['lanes']:.0f}, cores {best['cores']:.0f}, "
          f"{best['clock_mhz']:.0f} MHz, {best['dram_gbps']:.1f} GB/s {best['dram_tech']}, "
          f"batch {best['batch']:.0f})")
    return OK
