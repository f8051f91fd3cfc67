"""Co-simulation of the generated ternary-core Verilog on Icarus and Verilator (cocotb)."""

import pytest

from mmfree.hdl.generate import ternary_core
from mmfree.sim import cosim

from .conftest import require_simulator

# (lanes, acc_width, packed): single lane, a lane count that is no power of two with packed
# weights (partial last byte), a mid size, and a wide core; the narrow accumulators let the
# corner test reach the longest exact sum (max_exact_k) and one term past it.
CONFIGS = [(1, 16, False), (7, 16, True), (16, 32, False), (64, 20, False)]
SIMS = ["icarus", "verilator"]


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("lanes,acc,packed", CONFIGS, ids=lambda v: str(v))
def test_ternary_core_cosim(sim, lanes, acc, packed, seed):
    require_simulator(sim)
    params = {"lanes": lanes, "act_width": 8, "acc_width": acc, "packed": packed}
    top = f"tc_l{lanes}_a{acc}{'_p' if packed else ''}"
    print(f"seed {seed}: {sim} {params}")
    res = cosim.run(ternary_core(**params), top, sim, "mmfree.sim.tb.ternary_core",
                    config=params, seed=seed)
    r = res.report
    assert res.failed == 0, f"seed {seed}: {res.failed} cocotb tests failed"
    assert r["mismatches"] == 0 and r["outputs"] > 50, r
    assert r["cycle_checks"] >= 15 and r["cycle_mismatches"] == 0, r
    assert r["max_k_reached"] == (acc <= 20)  # narrow accumulators reach max_exact_k
    assert r.get("error_flag_checked", False) == packed


@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("lanes,acc,packed", [(1024, 32, False), (256, 12, True)],
                         ids=lambda v: str(v))
def test_ternary_core_cosim_wide(sim, lanes, acc, packed, seed):
    """The widest core and a wide packed one with a tiny accumulator (max K = 15)."""
    test_ternary_core_cosim(sim, lanes, acc, packed, seed)
