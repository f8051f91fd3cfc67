# amaranth: UnusedElaboratable=no
"""cocotb testbench: the self-test's checker (SelfTestChecker) on its own.

The testbench plays both sides the checker watches: it streams random beats (codes,
activations, rows of random length) into ``beat`` and the rows' results into ``y``, both with
random stalls. Correct results must lead to ``passed`` exactly when the ``pass_after``-th
result has been compared; a corrupted result, to ``mismatch``/``failed`` one cycle after it
transfers, with the offending pair in ``first_got``/``first_expected``; no results at all, to
``timed_out`` after ``timeout`` cycles. Expected values come from
:func:`mmfree.golden.selftest.row_results`, never from the checker.

Configuration (``$MMFREE_TB_CONFIG``): lanes, act_width, acc_width, pass_after, timeout.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from mmfree.golden.selftest import Beats, row_results
from mmfree.golden.ternary import wrap
from mmfree.hdl.selftest import SelfTestChecker
from mmfree.sim.kit import Bench, Report

REPORT = Report()
CFG = REPORT["config"]
N = int(CFG.get("lanes", 4))
AW = int(CFG.get("act_width", 8))
ACC = int(CFG.get("acc_width", 32))
PASS_AFTER = int(CFG.get("pass_after", 20))
TIMEOUT = int(CFG.get("timeout", 200))
CHECKER = SelfTestChecker(N, AW, ACC, PASS_AFTER, TIMEOUT)  #: for the port layouts


def random_rows(np_rng: np.random.Generator, rows: int) -> Beats:
    """Random beats forming ``rows`` rows of 1..4 beats (all four codes, full-range x)."""
    lengths = np_rng.integers(1, 5, rows)
    n = int(lengths.sum())
    last = np.zeros(n, dtype=np.int64)
    last[np.cumsum(lengths) - 1] = 1
    codes = np_rng.integers(0, 4, (n, N))
    x = np_rng.integers(-(1 << (AW - 1)), 1 << (AW - 1), (n, N))
    return Beats(codes, x, last, 0)


def beat_values(beats: Beats) -> list[dict]:
    """The ``beat`` payloads: each beat's weight codes and ``last``, and its activations."""
    return [{"w": {"codes": beats.codes[i], "last": int(beats.last[i])}, "x": beats.x[i]}
            for i in range(len(beats.last))]


class Harness:
    """The bench, the beat source and the result source of one checker."""

    def __init__(self, dut, name: str, stall: float = 0.3) -> None:
        self.dut = dut
        self.tb = Bench(dut, REPORT, component=CHECKER)
        self.rng, self.np_rng = self.tb.rngs(name, f"lanes={N} act={AW} acc={ACC} "
                                                   f"pass_after={PASS_AFTER}")
        REPORT["tests"][name] = {"seed": REPORT["tests"][name]}
        self.report = REPORT["tests"][name]
        self.beat, self.y = self.tb.source("beat", stall), self.tb.source("y", stall)
        self.results = self.tb.monitor("y")  #: every result transfer, with its cycle

    def flags(self) -> tuple[int, int, int, int, int]:
        d = self.dut
        return (int(d.results.value), int(d.passed.value), int(d.failed.value),
                int(d.mismatch.value), int(d.timed_out.value))

    async def feed(self, rows: int, corrupt: dict[int, int] | None = None
                   ) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        """Send ``rows`` random rows and their results (result ``i`` XOR ``corrupt[i]``);
        return the expected results and the flags seen after every result transfer."""
        beats = random_rows(self.np_rng, rows)
        expect = row_results(beats, ACC)
        self.beat.send(beat_values(beats))
        self.y.send(int(wrap(int(e) ^ (corrupt or {}).get(i, 0), ACC))
                    for i, e in enumerate(expect))
        seen: list[tuple[int, ...]] = []
        for _ in range(60 * len(beats.last) * (N + 2) + 100):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            # the flags are registers: they show a result's transfer in the cycle after it
            if self.tb.cycle() - 1 in self.results.cycles[-2:]:
                seen.append(self.flags())
                if len(seen) == rows:
                    break
        return expect, seen


@cocotb.test()
async def test_pass_after_n(dut):
    """Correct results: ``passed`` rises exactly with the pass_after-th result; no failure."""
    h = Harness(dut, "test_pass_after_n")
    await h.tb.start()
    rows = PASS_AFTER + 5
    _, seen = await h.feed(rows)
    bad = 0
    if len(seen) != rows:
        dut._log.error("only %d of %d results transferred", len(seen), rows)
        bad += 1
    for i, (results, passed, failed, *_rest) in enumerate(seen):
        want_pass = int(i + 1 >= PASS_AFTER)
        if results != i + 1 or passed != want_pass or failed:
            dut._log.error("after result %d: results=%d passed=%d failed=%d", i + 1, results,
                           passed, failed)
            bad += 1
    h.report.update(results=len(seen), passed=seen[-1][1] if seen else 0)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_injected_mismatch(dut):
    """One corrupted result: ``failed`` rises right after it, never ``passed`` again."""
    h = Harness(dut, "test_injected_mismatch")
    await h.tb.start()
    rows = PASS_AFTER + 5
    k = h.rng.randrange(PASS_AFTER)
    flip = 1 << h.rng.randrange(ACC)
    expect, seen = await h.feed(rows, {k: flip})
    bad = 0
    for i, (results, passed, failed, mismatch, timed_out) in enumerate(seen):
        want_fail = int(i >= k)
        if results != i + 1 or passed or failed != want_fail or mismatch != want_fail \
                or timed_out:
            dut._log.error("after result %d (bad one: %d): results=%d passed=%d failed=%d",
                           i + 1, k + 1, results, passed, failed)
            bad += 1
    got = h.tb.codecs["first_got"].decode(int(dut.first_got.value))
    want = h.tb.codecs["first_expected"].decode(int(dut.first_expected.value))
    sent = int(wrap(int(expect[k]) ^ flip, ACC))
    if want != int(expect[k]) or got != sent:
        dut._log.error("first mismatch recorded as got %d expected %d; sent %d for %d",
                       got, want, sent, int(expect[k]))
        bad += 1
    h.report.update(results=len(seen), bad_result=k + 1, failed=seen[-1][2] if seen else 0,
                    passed=max((s[1] for s in seen), default=0))
    REPORT.write()
    assert bad == 0 and len(seen) == rows


@cocotb.test()
async def test_mismatch_after_pass(dut):
    """An error after the pass point still fails the run (and clears ``passed``)."""
    h = Harness(dut, "test_mismatch_after_pass", stall=0.0)
    await h.tb.start()
    rows = PASS_AFTER + 3
    _, seen = await h.feed(rows, {PASS_AFTER + 1: 1})
    flags = [(s[1], s[2]) for s in seen]
    want = [(int(i + 1 >= PASS_AFTER), 0) for i in range(PASS_AFTER + 1)] + [(0, 1)] * 2
    h.report.update(results=len(seen), failed=seen[-1][2] if seen else 0)
    REPORT.write()
    assert flags == want, flags


@cocotb.test()
async def test_timeout(dut):
    """Beats but no results: ``timed_out`` after exactly ``timeout`` idle cycles."""
    h = Harness(dut, "test_timeout", stall=0.0)
    await h.tb.start()
    h.beat.send(beat_values(random_rows(h.np_rng, 3)))
    rose = None
    for cycle in range(TIMEOUT + 20):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if rose is None and int(dut.timed_out.value):
            rose = cycle
    h.report.update(timed_out_after=rose, failed=int(dut.failed.value),
                    passed=int(dut.passed.value))
    REPORT.write()
    # idle counts from the first cycle out of reset, the flag is set on the next edge
    assert rose is not None and TIMEOUT <= rose <= TIMEOUT + 2, rose
    assert int(dut.failed.value) == 1 and int(dut.mismatch.value) == 0
