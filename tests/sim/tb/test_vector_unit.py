"""Co-simulation of the engine's vector unit on Icarus and Verilator (cocotb)."""

import pytest

from mmfree.spec import VectorUnitSpec

from . import cosim_report

SIMS = ["icarus", "verilator"]
# (lanes, width, max_dim): a lane count that is no power of two with narrow elements and a
# partial last group (default run); one lane (no reduction tree); the default width on a
# wider group (under -m slow, the default suite's time budget)
CONFIGS = [(3, 6, 10), pytest.param((1, 8, 5), marks=pytest.mark.slow),
           pytest.param((8, 16, 40), marks=pytest.mark.slow)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda v: "-".join(map(str, v)))
def test_vector_unit_cosim(sim, cfg, seed):
    r = cosim_report(VectorUnitSpec(*cfg), sim, seed)
    assert r["mismatches"] == 0 and r["commands"] >= 80 and r["outputs"] > 200, r
    assert r["cycle_checks"] >= 60 and r["cycle_mismatches"] == 0, r
    assert set(r["tests"]) == {"ops", "back_to_back", "stalls", "reset"}, r["tests"]
