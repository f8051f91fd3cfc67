"""Co-simulation of the BitLinear unit (front end with the norm weight + ternary core) on both
simulators."""

import pytest

from mmfree.spec import BitLinearUnitSpec

from . import cosim_report

SIMS = ["icarus", "verilator"]
# (lanes, max_dim, in_width, weight_width, mant_bits, acc_width, tree): the default widths on
# a small buffer with the default pipelined tree; narrow mantissas, the smallest P and a
# 12-bit accumulator that wraps on max-length sums, one-stage tree; a lane count that is no
# power of two. (One lane runs in tests/hdl/test_bitlinear_unit.py.)
# the shipped model's unit in the default run; two more formats under -m slow (time budget)
CONFIGS = [(8, 64, 16, 16, 17, 32, 2),
           pytest.param((4, 40, 6, 5, 9, 12, 0), marks=pytest.mark.slow),
           pytest.param((5, 50, 12, 10, 20, 24, 1), marks=pytest.mark.slow)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda v: "-".join(map(str, v)))
def test_bitlinear_unit_cosim(sim, cfg, seed):
    r = cosim_report(BitLinearUnitSpec(*cfg), sim, seed)
    assert r["mismatches"] == 0 and r["outputs"] > 100, r
    assert r["cycle_checks"] >= 15 and r["cycle_mismatches"] == 0, r
    assert set(r["tests"]) == {"products", "stalls", "reset", "error_flag"}, r["tests"]
