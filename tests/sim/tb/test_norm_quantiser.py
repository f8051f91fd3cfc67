"""Co-simulation of the BitLinear front end with the RMSNorm weight on both simulators."""

import pytest

from mmfree.spec import NormQuantiserSpec

from . import cosim_report

SIMS = ["icarus", "verilator"]
# (lanes, max_dim, in_width, weight_width, mant_bits): the default widths on a small buffer;
# narrow mantissas with the smallest P (left and right shifts at every K); a lane count that
# is no power of two with wide mantissas and P = 24 (products of 48 bits).
# the small formats in the default run (every branch of the shifts and roundings), the
# contract's format and the widest ones under -m slow (the default suite's time budget)
CONFIGS = [pytest.param((8, 64, 16, 16, 17), marks=pytest.mark.slow), (4, 22, 6, 5, 9),
           pytest.param((5, 40, 24, 24, 24), marks=pytest.mark.slow)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda v: "-".join(map(str, v)))
def test_norm_quantiser_cosim(sim, cfg, seed):
    r = cosim_report(NormQuantiserSpec(*cfg), sim, seed)
    assert r["mismatches"] == 0 and r["vectors"] >= 40 and r["outputs"] > 500, r
    assert r["cycle_checks"] >= 30 and r["cycle_mismatches"] == 0, r
    assert set(r["tests"]) == {"vectors", "stalls", "reset", "truncated"}, r["tests"]
