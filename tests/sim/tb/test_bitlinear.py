"""Co-simulation of the BitLinear unit (fused quantiser + ternary core) on both simulators."""

import pytest

from mmfree.spec import BitLinearUnitSpec

from . import cosim_report

SIMS = ["icarus", "verilator"]
# (lanes, max_dim, in_width, recip_frac, rsqrt_frac, acc_width, tree): the defaults on a
# small buffer; narrow mantissas and short fractions (R and r at few bits, a 12-bit
# accumulator that wraps on max-length sums); a lane count that is no power of two with a
# pipelined tree. (One lane runs in tests/test_hdl_bitlinear_amaranth.py.)
CONFIGS = [(8, 64, 16, 24, 32, 32, 0), (4, 40, 6, 5, 7, 12, 0), (5, 50, 12, 16, 20, 24, 1)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda v: "-".join(map(str, v)))
def test_bitlinear_unit_cosim(sim, cfg, seed):
    r = cosim_report(BitLinearUnitSpec(*cfg), sim, seed)
    assert r["mismatches"] == 0 and r["outputs"] > 100, r
    assert r["cycle_checks"] >= 15 and r["cycle_mismatches"] == 0, r
    assert set(r["tests"]) == {"products", "stalls", "reset", "error_flag"}, r["tests"]
