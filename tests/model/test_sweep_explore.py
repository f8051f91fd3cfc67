"""mmfree sweep --explore: the ternary cores' LUTs and clock limit from measured designs (an
explore results file) instead of the per-lane coefficient."""

from __future__ import annotations

import csv

import numpy as np

from mmfree.cli import main
from mmfree.model import activity
from mmfree.model.config import PRESETS, Workload, builtin_model
from mmfree.model.sweep import MeasuredCores, grid, sweep

# an explore results file's rows as the sweep reads them (the figures are inputs here, not
# expected values: the test checks which design the sweep picks for each clock)
DESIGNS = [  # lanes, tree_levels_per_stage, LUT4_eq, fmax_mhz
    (16, 0, 400, 120.0),
    (16, 1, 520, 230.0),
    (64, 0, 1500, 105.0),
]


def _write(path):
    fields = ["unit", "lanes", "act_width", "acc_width", "packed", "tree_levels_per_stage",
              "target", "freq_mhz", "registered_ports", "LUT4_eq", "fmax_mhz", "fits", "key"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for lanes, tree, luts, fmax in DESIGNS:
            w.writerow({"unit": "ternary-core", "lanes": lanes, "act_width": 8,
                        "acc_width": 32, "packed": 0, "tree_levels_per_stage": tree,
                        "target": "ecp5-85k", "freq_mhz": 200, "registered_ports": 1,
                        "LUT4_eq": luts, "fmax_mhz": fmax, "fits": 1, "key": "k"})


def test_each_point_uses_the_cheapest_measured_core_that_reaches_its_clock():
    measured = MeasuredCores(lanes=np.array([d[0] for d in DESIGNS], dtype=float),
                             luts=np.array([d[2] for d in DESIGNS], dtype=float),
                             fmax_mhz=np.array([d[3] for d in DESIGNS]),
                             design=np.array([f"lanes={d[0]} t={d[1]}" for d in DESIGNS]))
    pts = grid(lanes=[16, 64], cores=[1, 4], clock_mhz=[100, 200], dram_gbps=[12.8],
               batch=[1])
    model, hw = builtin_model("370M"), PRESETS["ecp5-85k"]
    base = sweep(model, hw, pts, Workload(1, 64, 64))
    res = sweep(model, hw, pts, Workload(1, 64, 64), measured=measured)
    for i in range(len(pts["lanes"])):
        lanes, cores, clock = (pts[a][i] for a in ("lanes", "cores", "clock_mhz"))
        options = [d for d in DESIGNS if d[0] == lanes and d[3] >= clock]
        if options:
            best = min(options, key=lambda d: d[2])
            assert res.core_design[i] == f"lanes={best[0]} t={best[1]}"
            # the ternary cores' share is replaced: cores x measured design
            per_lane = activity.unit("ternary-core").luts.value
            assert np.isclose(res.luts[i] - base.luts[i],
                              cores * (best[2] - lanes * per_lane))
        else:  # no measured design reaches the clock
            assert not res.fits[i]
    assert res.fits.any()
    assert np.array_equal(res.tokens_per_s, base.tokens_per_s)


def test_sweep_cli_reads_an_explore_file(tmp_path, capsys):
    path = tmp_path / "results.csv"
    _write(path)
    assert main(["sweep", "--hw", "ecp5-85k", "--model", "370M", "--explore", str(path),
                 "--cores", "1,2", "--clock", "100,200", "--bandwidth", "12.8",
                 "--batch-sizes", "1", "--quiet", "-o", str(tmp_path / "out")]) == 0
    assert "3 measured designs" in capsys.readouterr().out
    with open(tmp_path / "out" / "points.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {float(r["lanes"]) for r in rows} == {16.0, 64.0}  # the measured lane counts
    at_200 = [r for r in rows if float(r["clock_mhz"]) == 200 and float(r["lanes"]) == 16]
    assert {r["core_design"] for r in at_200} == {"lanes=16 tree_levels_per_stage=1"}
    assert not any(r["fits"] == "True" for r in rows
                   if float(r["lanes"]) == 64 and float(r["clock_mhz"]) == 200)
    # lanes that were not measured, and files that are not explore results: one-line errors
    assert main(["sweep", "--hw", "ecp5-85k", "--model", "370M", "--explore", str(path),
                 "--lanes", "32", "--quiet", "-o", str(tmp_path / "out")]) == 2
    assert "lanes 32 not measured" in capsys.readouterr().err
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert main(["sweep", "--hw", "ecp5-85k", "--model", "370M", "--explore",
                 str(tmp_path / "other.csv"), "--quiet", "-o", str(tmp_path / "out")]) == 2
    assert "not an explore results.csv" in capsys.readouterr().err
