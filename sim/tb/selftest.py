"""cocotb testbench: the whole self-test (pattern generator -> ternary core -> checker).

Checks that the self-test passes after ``pass_after`` results in the expected number of
cycles, that holding ``inject`` fails it with a mismatch (not a timeout) whose recorded
expected value is the golden model's result of that row
(:func:`mmfree.golden.selftest.expected_results`), and that a reset starts it afresh.

Configuration (``$MMFREE_TB_CONFIG``): lanes, act_width, acc_width, groups, pass_after.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from mmfree.golden.selftest import expected_results
from mmfree.golden.ternary import wrap
from mmfree.sim.kit import PERIOD_NS, Report

REPORT = Report()
CFG = REPORT["config"]
N = int(CFG.get("lanes", 4))
AW = int(CFG.get("act_width", 8))
ACC = int(CFG.get("acc_width", 32))
GROUPS = int(CFG.get("groups", 3))
PASS_AFTER = int(CFG.get("pass_after", 30))
ROW_CYCLES = GROUPS * (N + 1)  #: the checker's pace


async def _reset(dut) -> None:
    dut.rst.value = 1
    dut.inject.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0


async def _until_passed(dut, limit: int) -> int | None:
    """Cycles until ``passed`` (None if it does not come within ``limit``)."""
    for cycle in range(limit):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if int(dut.failed.value):
            return None
        if int(dut.passed.value):
            return cycle + 1
    return None


@cocotb.test()
async def test_runs_to_pass(dut):
    """No injection: ``passed`` after exactly pass_after results, at the checker's pace."""
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await _reset(dut)
    limit = (PASS_AFTER + 2) * ROW_CYCLES + 50
    cycles = await _until_passed(dut, limit)
    results = int(dut.results.value)
    await ClockCycles(dut.clk, 5 * ROW_CYCLES)  # and it keeps passing
    await ReadOnly()
    later = (int(dut.passed.value), int(dut.failed.value), int(dut.results.value))
    REPORT["tests"]["test_runs_to_pass"] = {"cycles": cycles, "results": results,
                                            "later": later}
    REPORT.write()
    assert cycles is not None, f"no pass within {limit} cycles"
    assert results == PASS_AFTER
    assert later[:2] == (1, 0) and later[2] >= PASS_AFTER + 4, later


@cocotb.test()
async def test_injected_error_fails(dut):
    """``inject`` held over a few rows: ``failed`` (mismatch), with the golden pair."""
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await _reset(dut)
    await ClockCycles(dut.clk, 3 * ROW_CYCLES)
    dut.inject.value = 1
    first_bad = None  # the result count when failed rose: the bad result's number
    for _ in range(3 * ROW_CYCLES):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if first_bad is None and int(dut.failed.value):
            first_bad = int(dut.results.value)
    await RisingEdge(dut.clk)
    dut.inject.value = 0
    await ClockCycles(dut.clk, 2)
    await ReadOnly()
    failed, mismatch, timed_out = (int(dut.failed.value), int(dut.mismatch.value),
                                   int(dut.timed_out.value))
    got = int(wrap(int(dut.first_got.value), ACC))
    want = int(wrap(int(dut.first_expected.value), ACC))
    golden = expected_results(N, AW, ACC, GROUPS, PASS_AFTER + 20)
    REPORT["tests"]["test_injected_error_fails"] = {
        "failed": failed, "mismatch": mismatch, "timed_out": timed_out, "got": got,
        "expected": want, "first_bad": first_bad}
    REPORT.write()
    assert (failed, mismatch, timed_out) == (1, 1, 0)
    assert first_bad is not None and first_bad >= 3, first_bad
    # the recorded pair: the golden model's result of that row, and it with bit 0 inverted
    assert want == int(golden[first_bad - 1]), (want, first_bad)
    assert got == int(wrap(want ^ 1, ACC))
    await ClockCycles(dut.clk, (PASS_AFTER + 5) * ROW_CYCLES)
    await ReadOnly()
    assert int(dut.passed.value) == 0 and int(dut.failed.value) == 1


@cocotb.test()
async def test_reset_restarts(dut):
    """After a failure, reset clears the flags and the test passes again."""
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await _reset(dut)
    dut.inject.value = 1
    await ClockCycles(dut.clk, 3 * ROW_CYCLES)
    await ReadOnly()
    assert int(dut.failed.value) == 1
    await RisingEdge(dut.clk)
    await _reset(dut)
    await ReadOnly()
    assert int(dut.failed.value) == 0 and int(dut.results.value) == 0
    cycles = await _until_passed(dut, (PASS_AFTER + 2) * ROW_CYCLES + 50)
    REPORT["tests"]["test_reset_restarts"] = {"cycles": cycles}
    REPORT.write()
    assert cycles is not None
