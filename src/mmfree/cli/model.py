"""``mmfree project | compare | sweep``: the cycle model (:mod:`mmfree.model`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import CHECK_FAILED, OK, UsageError
from .options import add_renamed, check_output_dir, check_output_file, int_list, write_output

__all__ = ["add_parser", "run"]

_NO_FILE = object()  #: ``--json``/``--csv`` given without a file: the old flag spelling


def _model_args(p: argparse.ArgumentParser, command: str, workload: bool = True) -> None:
    from ..model.config import PRESETS, WORKLOAD_LIMITS
    p.add_argument("--hw", metavar="PRESET|FILE.toml",
                   help=f"hardware: a preset ({', '.join(PRESETS)}) or a TOML file with "
                        "only a [hardware] section (default: the --config file's)")
    p.add_argument("--config", metavar="FILE.toml",
                   help="TOML file with [model], [hardware] and [workload] sections (options "
                        "given on the command line win)")
    if workload:
        p.add_argument("--model", help="built-in model: 370M, 1.3B, 2.7B (MatMul-free "
                                       "LM), transformer-SIZE, bitnet-SIZE (default 1.3B)")
        (lo, hi), (plo, phi), (glo, ghi) = WORKLOAD_LIMITS.values()
        p.add_argument("--batch", type=int, metavar="N",
                       help=f"sequences decoded together, {lo}..{hi} (default 1)")
        p.add_argument("--prompt-tokens", type=int, metavar="N",
                       help=f"prompt length in tokens, {plo}..{phi} (default 128)")
        p.add_argument("--tokens", type=int, metavar="N",
                       help=f"tokens generated per sequence, {glo}..{ghi} (default 128)")
        add_renamed(p, command, "--prompt", "--prompt-tokens N (--prompt is text in "
                                            "cosim and demo)")
        add_renamed(p, command, "--generate", "--tokens N")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``project``, ``compare`` and ``sweep``."""
    pr = sub.add_parser("project", help="tokens/s, latency and power of a model on hardware",
                        description="Project decode tokens/s, TPOT, TTFT, per-operation "
                                    "cycles, memory traffic, the binding resource, the "
                                    "roofline position and energy/power of a model on an "
                                    "accelerator built from this project's units. Prints "
                                    "the hardware values used and every coefficient with "
                                    "its provenance (measured, cited or assumed), and which "
                                    "parts are validated against the RTL (the presets' "
                                    "ternary products and element-wise work) and which "
                                    "remain analytical. See docs/cycle-model.md.")
    _model_args(pr, "project")
    fmt = pr.add_mutually_exclusive_group()
    fmt.add_argument("--json", metavar="FILE", nargs="?", const=_NO_FILE,
                     help="write the report as JSON to FILE ('-': standard output, instead "
                          "of the text report)")
    fmt.add_argument("--csv", metavar="FILE", nargs="?", const=_NO_FILE,
                     help="write the report as CSV to FILE ('-': standard output, instead "
                          "of the text report)")
    pr.add_argument("--plot", metavar="DIR", help="write roofline and breakdown figures "
                                                  "into folder DIR (created if missing)")
    pr.add_argument("--plot-format", choices=["png", "svg"], default="png",
                    help="figure format")

    cp = sub.add_parser("compare", help="MatMul-free vs Transformer++ (dense, 2:4) crossovers",
                        description="For one hardware budget (--hw), compare the MatMul-free "
                                    "LM on ternary cores with Transformer++ on dense and 2:4 "
                                    "sparse tensor cores across batch sizes and context "
                                    "lengths, and report where the fastest changes.")
    _model_args(cp, "compare", workload=False)
    cp.add_argument("--model", default="1.3B", choices=["370M", "1.3B", "2.7B"],
                    help="model size, the same for every contender")
    add_renamed(cp, "compare", "--size", "--model SIZE")
    cp.add_argument("--batches", metavar="N,N,...",
                    help="comma-separated batch sizes, each in 1..65536 (default 1,4,16,64)")
    cp.add_argument("--contexts", metavar="N,N,...",
                    help="comma-separated context lengths in tokens, each in 1..1048576 "
                         "(default 256,1024,4096,16384)")
    cp.add_argument("--presets", action="store_true",
                    help="also print the 370M/1.3B/2.7B table for every preset")

    sw = sub.add_parser("sweep", help="design-space sweep with Pareto fronts",
                        description="Evaluate every combination of lanes x cores x clock x "
                                    "DRAM bandwidth x batch for a MatMul-free model and write "
                                    "points.csv (with a fits column: the design fits the "
                                    "device's resources and the board's DRAM) plus the Pareto "
                                    "fronts of the fitting points, tokens/s vs power and vs "
                                    "LUTs (from measured synthesis counts). Each list is "
                                    "comma-separated. Exit 1 if no point fits.")
    _model_args(sw, "sweep")
    sw.add_argument("--lanes", metavar="N,N,...",
                    help="ternary lanes per core (whole numbers up to the core's limit; "
                         "default 16,32,64,128,256,512,1024, with --explore the measured "
                         "lane counts)")
    sw.add_argument("--explore", metavar="RESULTS.csv",
                    help="an 'mmfree explore ternary-core' results file: the cores' LUTs and "
                         "clock limit from those measured designs (at each point the "
                         "cheapest design of its lanes that reaches its clock; a clock none "
                         "reaches does not fit) instead of the per-lane coefficient")
    sw.add_argument("--cores", default="1,2,4,8,16", metavar="N,N,...",
                    help="ternary cores")
    sw.add_argument("--clock", default="60,100,150,200,250,300", metavar="MHZ,...",
                    help="clock frequencies in MHz")
    sw.add_argument("--bandwidth", default="1.6,6.4,12.8,25.6,51.2,76.8,153.6,460",
                    metavar="GBPS,...",
                    help="DRAM GB/s (one channel of this peak bandwidth; the DRAM technology, "
                         "and its energy per bit, follows it: the board's own, then DDR3, "
                         "DDR4, HBM2, HBM2e)")
    sw.add_argument("--batch-sizes", default="1,2,4,8,16,32,64,128", metavar="N,N,...",
                    help="sequences decoded together")
    sw.add_argument("-o", "--output", default="out/sweep",
                    help="output folder (created if missing)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the model command ``args.command`` names."""
    return {"project": project, "compare": compare, "sweep": sweep}[args.command](args)


def _model_inputs(args: argparse.Namespace):  # -> (model, hardware, workload)
    from ..model.config import (
        PRESETS,
        WORKLOAD_LIMITS,
        ConfigError,
        Workload,
        builtin_model,
        load_toml,
        preset,
    )
    model = hw = workload = None
    if args.config:
        model, hw, workload = load_toml(args.config)
    if getattr(args, "model", None):
        try:
            model = builtin_model(args.model)
        except (KeyError, ValueError) as e:
            raise UsageError(f"--model: {e}") from None
    if args.hw:
        if args.hw.endswith(".toml") or "/" in args.hw or Path(args.hw).exists():
            file_model, hw, file_workload = load_toml(args.hw)
            extra = [f"[{k}]" for k, v in (("model", file_model), ("workload", file_workload))
                     if v is not None]
            if extra:
                raise ConfigError(f"--hw {args.hw}: --hw reads only [hardware], and the file "
                                  f"also has {' and '.join(extra)}: pass it as --config "
                                  f"{args.hw}")
            if hw is None:
                raise ConfigError(f"--hw {args.hw}: no [hardware] section")
        else:
            hw = preset(args.hw, "--hw")
    over = {k: v for k, v in (("batch", getattr(args, "batch", None)),
                              ("prompt", getattr(args, "prompt_tokens", None)),
                              ("generate", getattr(args, "tokens", None)))
            if v is not None}
    flags = {"batch": "--batch", "prompt": "--prompt-tokens", "generate": "--tokens"}
    for key, value in over.items():
        lo, hi = WORKLOAD_LIMITS[key]
        if not lo <= value <= hi:
            raise UsageError(f"{flags[key]} must be in {lo}..{hi}, got {value}")
    workload = Workload(**{**(workload.__dict__ if workload else {}), **over})
    if model is None:
        model = builtin_model("1.3B")
    if hw is None:
        raise ConfigError(f"give --hw PRESET|FILE (presets: {', '.join(PRESETS)}) or a "
                          "--config file with a [hardware] section")
    return model, hw, workload


def project(args: argparse.Namespace) -> int:
    from ..model import report
    from ..model.system import project as run_projection
    for option in ("json", "csv"):
        if getattr(args, option) is _NO_FILE:
            raise UsageError(f"--{option} takes a file now: --{option} FILE, or --{option} - "
                             "for standard output")
        check_output_file(f"--{option}", getattr(args, option))
    model, hw, workload = _model_inputs(args)
    plot_dir = check_output_dir("--plot", args.plot) if args.plot else None
    try:
        p = run_projection(model, hw, workload)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json != "-" and args.csv != "-":
        print(report.text(p))
    if args.json:
        write_output("--json", args.json, report.to_json(p))
    if args.csv:
        write_output("--csv", args.csv, report.to_csv(p))
    if plot_dir is not None:
        try:
            paths = report.plot(p, plot_dir, args.plot_format)
        except OSError as e:
            raise UsageError(f"--plot {args.plot}: cannot write: {e.strerror}") from None
        for path in paths:
            print(f"wrote {path}", file=sys.stderr)
    return OK


def compare(args: argparse.Namespace) -> int:
    from ..model import report
    from ..model.config import WORKLOAD_LIMITS
    batches = int_list("--batches", args.batches, *WORKLOAD_LIMITS["batch"])
    contexts = int_list("--contexts", args.contexts, 1, WORKLOAD_LIMITS["prompt"][1])
    _, hw, _ = _model_inputs(args)
    try:
        c = report.compare(hw, args.model, batches, contexts)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(c.text())
    if args.presets:
        print()
        print(report.preset_table())
    return OK


def _floats(option: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0 or not np.all(np.isfinite(values)):
        raise UsageError(f"{option}: every value must be a positive number, got {text!r}")
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
    import io
    import time

    from ..model.config import WORKLOAD_LIMITS
    from ..model.sweep import grid, progress_bar
    from ..model.sweep import sweep as run_sweep
    from ..spec import TernaryCoreSpec
    model, hw, workload = _model_inputs(args)
    measured = _measured_cores(args.explore) if args.explore else None
    lanes = _floats("--lanes", args.lanes or (
        "16,32,64,128,256,512,1024" if measured is None else
        ",".join(f"{v:g}" for v in sorted(set(measured.lanes)))))
    max_lanes = TernaryCoreSpec.limits("lanes")[1]
    if max(lanes) > max_lanes or any(v != int(v) for v in lanes):
        raise UsageError(f"--lanes takes whole numbers up to {max_lanes} (the core's limit)")
    lo, hi = WORKLOAD_LIMITS["batch"]
    batch = _floats("--batch-sizes", args.batch_sizes)
    if max(batch) > hi or any(v != int(v) for v in batch):
        raise UsageError(f"--batch-sizes takes whole numbers in {lo}..{hi}")
    pts = grid(lanes=lanes, cores=_floats("--cores", args.cores),
               clock_mhz=_floats("--clock", args.clock),
               dram_gbps=_floats("--bandwidth", args.bandwidth), batch=batch)
    out = check_output_dir("-o/--output", args.output)
    t0 = time.perf_counter()
    try:
        res = run_sweep(model, hw, pts, workload,
                        progress=None if args.quiet else progress_bar, measured=measured)
    except ValueError as e:
        raise UsageError(str(e)) from None
    dt = time.perf_counter() - t0
    fronts = {"pareto_power.csv": res.pareto(res.power_w),
              "pareto_luts.csv": res.pareto(res.luts)}
    fields = list(res.rows([0])[0])
    for fname, idx in {"points.csv": np.arange(len(res.tokens_per_s)), **fronts}.items():
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(res.rows(idx))
        write_output("-o/--output", str(out / fname), buf.getvalue())
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
