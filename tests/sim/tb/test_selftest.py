"""Co-simulation of the board self-test's checker, and of the whole self-test, on Icarus and
Verilator (cocotb): pass after N results, fail on an injected error or a stuck unit."""

import pytest

from mmfree.hdl.selftest.checker import SelfTestChecker
from mmfree.hdl.selftest.selftest import SelfTest
from mmfree.sim import cosim

from ...conftest import require_simulator

SIMS = ["icarus", "verilator"]


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("lanes,act,acc", [(4, 8, 32), (3, 4, 7)], ids=lambda v: str(v))
def test_checker_cosim(sim, lanes, act, acc, seed):
    """(3, 4, 7): an odd lane count and a 7-bit accumulator, so that row sums wrap."""
    require_simulator(sim)
    cfg = {"lanes": lanes, "act_width": act, "acc_width": acc, "pass_after": 24,
           "timeout": 300}
    top = f"stchk_l{lanes}_x{act}_a{acc}"
    print(f"seed {seed}: {sim} {cfg}")
    res = cosim.run(SelfTestChecker(lanes, act, acc, cfg["pass_after"], cfg["timeout"]), top,
                    sim, "mmfree.sim.tb.selftest_checker", config=cfg, seed=seed)
    t = res.report["tests"]
    assert res.failed == 0 and res.tests == 4, f"seed {seed}: {res.failed} cocotb tests failed"
    assert t["test_pass_after_n"]["passed"] == 1 and t["test_pass_after_n"]["results"] == 29
    assert t["test_injected_mismatch"]["failed"] == 1
    assert t["test_injected_mismatch"]["passed"] == 0
    assert t["test_mismatch_after_pass"]["failed"] == 1
    assert t["test_timeout"]["failed"] == 1 and t["test_timeout"]["passed"] == 0


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
def test_selftest_cosim(sim, seed):
    """The whole self-test: generator, core, FIFO, checker; pass, injected failure, reset."""
    require_simulator(sim)
    cfg = {"lanes": 4, "act_width": 8, "acc_width": 32, "groups": 3, "pass_after": 30}
    res = cosim.run(SelfTest(lanes=4, groups=3, pass_after=30), "selftest_l4_g3", sim,
                    "mmfree.sim.tb.selftest", config=cfg, seed=seed)
    t = res.report["tests"]
    assert res.failed == 0 and res.tests == 3
    assert t["test_runs_to_pass"]["results"] == 30
    assert t["test_injected_error_fails"]["failed"] == 1
    assert t["test_reset_restarts"]["cycles"] is not None
