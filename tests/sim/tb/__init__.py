"""Co-simulation of every testbench in sim/tb/ (cocotb, both simulators)."""

from __future__ import annotations

from mmfree.sim import cosim
from mmfree.spec import UnitSpec

from ...conftest import require_simulator


def cosim_report(spec: UnitSpec, sim: str, seed: int, **kw: object) -> dict:
    """Co-simulate ``spec``'s unit on ``sim`` (skipped loudly if it is missing, failed under
    CI); assert that no cocotb test failed; return the testbench's report."""
    require_simulator(sim)
    print(f"seed {seed}: {sim} {spec}")
    res = cosim.run_unit(spec, sim, seed=seed, **kw)
    assert res.failed == 0, f"seed {seed}: {res.failed} cocotb tests failed"
    return res.report
