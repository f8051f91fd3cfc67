"""The bulk harness (mmfree.sim.bulk) on Icarus and Verilator: regressions of the ternary
core, tensor core and BitLinear unit with random stalls and resets mid-stream, every output
and every stall-free cycle stamp checked. The ``slow`` ones stream >= 10^6 transactions per
unit per simulator (run deliberately: ``pytest -m slow tests/sim/tb/test_bulk.py``)."""

from __future__ import annotations

import pytest

from mmfree.sim import bulk
from mmfree.spec import BitLinearUnitSpec, TensorCoreSpec, TernaryCoreSpec, UnitSpec

from ...conftest import require_simulator

SIMS = ["icarus", "verilator"]
MILLION = 1_000_000

TERNARY = "mmfree.sim.tb.ternary_bulk"
TENSOR = "mmfree.sim.tb.tensor_bulk"
BITLINEAR = "mmfree.sim.tb.bitlinear_bulk"


def bulk_report(spec: UnitSpec, sim: str, tb: str, seed: int, transactions: int,
                depths: dict[str, int] | None = None, **extra: object) -> dict:
    """Run ``tb``'s regression on the bulk harness; assert it passed; return its report."""
    require_simulator(sim)
    print(f"seed {seed}: {sim} {spec} {transactions} transactions "
          f"(replay: MMFREE_SEED={seed})")
    res = bulk.run_unit(spec, sim, tb, seed=seed, depths=depths, testcase="test_regression",
                        extra={"transactions": transactions, **extra})
    r = res.report
    print({k: r.get(k) for k in ("transactions", "segments", "stalled_segments", "resets",
                                 "outputs", "mismatches", "cycle_checks", "cycle_mismatches",
                                 "violations", "cycles", "wall_s", "cycles_per_s")})
    assert res.failed == 0, f"seed {seed}: the bulk regression failed; logs in {res.run_dir}"
    return r


def _check(r: dict, transactions: int) -> None:
    assert r["transactions"] >= transactions, r
    assert r["mismatches"] == 0 and r["cycle_mismatches"] == 0 and r["violations"] == 0, r
    assert r["timeouts"] == 0 and r["cycle_checks"] > 0 and r["stalled_segments"] > 0, r


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
def test_ternary_bulk(sim, seed):
    r = bulk_report(TernaryCoreSpec(lanes=16), sim, TERNARY, seed, 20_000)
    _check(r, 20_000)


@pytest.mark.cosim
def test_ternary_bulk_packed_pipelined(seed):
    """Packed weights, a lane count that is no power of two, a pipelined adder tree."""
    spec = TernaryCoreSpec(lanes=7, acc_width=16, packed=True, tree_levels_per_stage=1)
    _check(bulk_report(spec, "icarus", TERNARY, seed, 8_000), 8_000)


@pytest.mark.cosim
def test_tensor_bulk_accumulate(seed):
    """Accumulate chains of 1 to 6 K-steps (Icarus: the tensor core is slow to simulate)."""
    spec = TensorCoreSpec(accumulate=True)
    _check(bulk_report(spec, "icarus", TENSOR, seed, 600, {"i": 256}), 600)


@pytest.mark.cosim
def test_bitlinear_bulk(seed):
    spec = BitLinearUnitSpec(lanes=16, max_dim=128)
    _check(bulk_report(spec, "icarus", BITLINEAR, seed, 1_000, {"x": 64, "w": 1024}), 1_000)


@pytest.mark.cosim
def test_bulk_checks_can_fail(seed, monkeypatch):
    """One corrupted expected row and one expected cycle stamp one cycle late: the
    regression fails and counts exactly those."""
    require_simulator("icarus")
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # the runner returns the failure, not raises
    res = bulk.run_unit(TernaryCoreSpec(lanes=16), "icarus", TERNARY, seed=seed,
                        testcase="test_regression", extra={"transactions": 500, "inject": 1})
    r = res.report
    assert res.failed == 1, r
    assert r["mismatches"] == 1, r
    assert r["cycle_mismatches"] == 1, r  # the late stamp; the segment's total is right


@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
def test_ternary_bulk_million(sim, seed):
    depths = {"w": 16384, "x": 16384}
    _check(bulk_report(TernaryCoreSpec(lanes=16), sim, TERNARY, seed, MILLION, depths),
           MILLION)


@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
def test_tensor_bulk_million(sim, seed):
    spec = TensorCoreSpec()
    _check(bulk_report(spec, sim, TENSOR, seed, MILLION, {"i": 8192}), MILLION)


@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
def test_bitlinear_bulk_million(sim, seed):
    spec = BitLinearUnitSpec(lanes=16, max_dim=256)
    _check(bulk_report(spec, sim, BITLINEAR, seed, MILLION, {"x": 512, "w": 8192}), MILLION)
