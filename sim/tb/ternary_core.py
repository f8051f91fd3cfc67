"""cocotb testbench: TernaryCore / PackedTernaryCore against the numpy golden model.

Configuration: the unit's parameters (:class:`mmfree.spec.TernaryCoreSpec`) from
``$MMFREE_TB_CONFIG``, plus ``listed`` for :func:`test_listed_products`; the summary goes to
``$MMFREE_TB_REPORT``. Every output is compared with :func:`mmfree.golden.ternary_matvec`
and every no-stall product's cycle count with :meth:`TernaryCoreSpec.cycles`; each test logs
its seed (cocotb derives it from ``COCOTB_RANDOM_SEED`` and the test name, so a run with the
same seed replays exactly).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from mmfree.golden.ternary import (
    encode_codes,
    max_exact_k,
    pack_trits,
    ternary_matvec,
    unpack_trits,
)
from mmfree.hdl.credit_queue import CreditQueue
from mmfree.sim.kit import Bench, Report
from mmfree.spec import TernaryCoreSpec

REPORT = Report(products=0)
SPEC: TernaryCoreSpec = REPORT.spec(TernaryCoreSpec)
N, AW, ACC = SPEC.lanes, SPEC.act_width, SPEC.acc_width
AMIN, AMAX = -(1 << (AW - 1)), (1 << (AW - 1)) - 1


class Core:
    """The bench, the ``w``/``x`` sources and the ``y`` sink of one core."""

    def __init__(self, dut, name: str, stall: tuple[float, float, float] = (0, 0, 0)):
        self.tb = Bench(dut, REPORT, SPEC)
        self.rng, self.np_rng = self.tb.rngs(name)
        self.w, self.x = self.tb.source("w", stall[0]), self.tb.source("x", stall[1])
        self.y = self.tb.sink("y", stall[2])

    def beats(self, w: np.ndarray, x: np.ndarray, raw_packed: list | None = None
              ) -> tuple[list, list]:
        """Weight and activation beats for ``W @ x``, row by row, lane group by lane group.

        Lanes past K get zero weights and *random* activations, which must not matter.
        ``raw_packed`` gives the packed bytes of every weight beat (invalid ones included).
        """
        m, k = w.shape
        groups = -(-k // N)
        w_beats, x_beats = [], []
        for r in range(m):
            for g in range(groups):
                lo, hi = g * N, min(k, (g + 1) * N)
                wg = np.zeros(N, dtype=np.int64)
                wg[: hi - lo] = w[r, lo:hi]
                xg = self.np_rng.integers(AMIN, AMAX + 1, N)
                xg[: hi - lo] = x[lo:hi]
                last = int(g == groups - 1)
                if SPEC.packed:
                    raw = raw_packed[r * groups + g] if raw_packed else pack_trits(wg)
                    w_beats.append({"packed": raw, "last": last})
                else:
                    w_beats.append({"codes": encode_codes(wg), "last": last})
                x_beats.append(xg)
        return w_beats, x_beats

    async def product(self, w: np.ndarray, x: np.ndarray, expect: np.ndarray | None = None,
                      check_cycles: bool = True, raw_packed: list | None = None,
                      label: str = "", hold_output: int = 0) -> int:
        """Stream one product through the DUT, compare every output; returns mismatches.

        With ``hold_output`` > 0, ``y.ready`` stays low for that many cycles after the
        inputs start; the number of lane groups accepted meanwhile is appended to
        ``REPORT["accepted_while_held"]``.
        """
        m, k = w.shape
        if expect is None:
            expect = ternary_matvec(w, x, AW, ACC)
        for s in (self.w, self.x):
            s.sent_cycles.clear()
        self.y.clear()
        wb, xb = self.beats(w, x, raw_packed)
        if hold_output:
            self.y.hold(0)
        self.w.send(wb)
        self.x.send(xb)
        if hold_output:
            await ClockCycles(self.tb.dut.clk, hold_output)
            # x transfers together with the core's (unpacked) weights, so it counts the
            # groups inside the core; a packed core's unpacker holds one more w beat
            REPORT.setdefault("accepted_while_held", []).append(len(self.x.sent_cycles))
            self.y.release()
        await self.tb.collect(self.y, m, 50 * (len(wb) + SPEC.latency) + 100,
                              drain=SPEC.latency + 2)
        label = f"{label} {m}x{k}"
        REPORT["products"] += 1
        bad = REPORT.compare(self.tb.log, label, self.y.values(), [int(e) for e in expect])
        if check_cycles and len(self.y):
            first = min(self.w.sent_cycles[0], self.x.sent_cycles[0])
            bad += REPORT.check_cycles(self.tb.log, label, self.y.cycles[-1] - first + 1,
                                       SPEC.cycles(m, k), record=[m, k])
        return bad


def random_ternary(np_rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """Ternary matrix with a random density of zeros (0 to 90 %)."""
    p0 = np_rng.uniform(0.0, 0.9)
    return np_rng.choice([-1, 0, 1], size=(m, k), p=[(1 - p0) / 2, p0, (1 - p0) / 2])


def shapes(np_rng: np.random.Generator) -> list[tuple[int, int]]:
    """Corner K values around the lane count plus random shapes (6, or the configuration's
    ``random_products``: ``mmfree regress --transactions``)."""
    ks = [1, N, N + 1, 3 * N + 2, max(1, N - 1)]
    out = [(int(np_rng.integers(1, 6)), k) for k in ks]
    count = int(REPORT["config"].get("random_products", 6))
    out += [(int(np_rng.integers(1, 9)), int(np_rng.integers(1, 6 * N + 2)))
            for _ in range(count)]
    return out


async def _random_products(dut, name: str, stall: tuple[float, float, float]) -> int:
    core = Core(dut, name, stall)
    await core.tb.start()
    bad = 0
    for m, k in shapes(core.np_rng):
        w = random_ternary(core.np_rng, m, k)
        x = core.np_rng.integers(AMIN, AMAX + 1, k)
        # cycle counts follow the formula only while the streams keep up
        bad += await core.product(w, x, check_cycles=not any(stall), label=name)
    REPORT.write()
    return bad + core.tb.reset_violations()


@cocotb.test()
async def test_random_shapes(dut):
    """Random W and x over many (M, K); exact outputs and exact cycle counts, no stalls."""
    bad = await _random_products(dut, "test_random_shapes", (0, 0, 0))
    assert bad == 0, f"{bad} mismatches (outputs or cycle counts)"


@cocotb.test()
async def test_stalls(dut):
    """Random bubbles on w and x and random back-pressure on y; exact outputs."""
    bad = await _random_products(dut, "test_stalls", (0.3, 0.4, 0.5))
    assert bad == 0, f"{bad} mismatches under stalls"


@cocotb.test()
async def test_output_held_fills_the_fifo(dut):
    """``y`` not ready for a long time while one-group rows stream in: the core accepts
    exactly as many groups as it has credits (its output FIFO's depth), then holds its inputs
    off; after ``y`` resumes every row comes out, exact and in order."""
    core = Core(dut, "test_output_held_fills_the_fifo")
    await core.tb.start()
    credits = CreditQueue.depth_for(SPEC.replace(packed=False).latency)  # the inner core's
    m = 3 * credits
    w = random_ternary(core.np_rng, m, N)
    x = core.np_rng.integers(AMIN, AMAX + 1, N)
    bad = await core.product(w, x, check_cycles=False, hold_output=4 * credits + 20,
                             label="output held")
    accepted = REPORT["accepted_while_held"][-1]
    if accepted != credits:
        dut._log.error("accepted %d groups while y was held, expected %d credits",
                       accepted, credits)
        bad += 1
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_corners(dut):
    """All-zero operands, extreme activations, the longest exact sum, and one past it (wrap)."""
    core = Core(dut, "test_corners")
    await core.tb.start()
    np_rng = core.np_rng
    bad = 0
    k = 3 * N + 1
    cases = [
        ("zero W", np.zeros((3, k), dtype=np.int64), np_rng.integers(AMIN, AMAX + 1, k)),
        ("zero x", random_ternary(np_rng, 3, k), np.zeros(k, dtype=np.int64)),
        ("+1 * max", np.ones((2, k), dtype=np.int64), np.full(k, AMAX)),
    ]
    kmax = max_exact_k(AW, ACC)
    # The accumulator's longest exact sum; for wide accumulators that is millions of
    # terms, so only the narrow configurations (acc_width <= 20) reach it here.
    reach = kmax <= 4096
    kx = kmax if reach else 2048
    cases += [
        (f"+1 * min, K={kx}", np.ones((1, kx), dtype=np.int64), np.full(kx, AMIN)),
        (f"-1 * min, K={kx}", -np.ones((1, kx), dtype=np.int64), np.full(kx, AMIN)),
    ]
    if reach:
        cases.append((f"-1 * min, K={kmax + 1} wraps", -np.ones((1, kmax + 1), dtype=np.int64),
                      np.full(kmax + 1, AMIN)))
    REPORT["max_exact_k"] = kmax
    REPORT["max_k_reached"] = reach
    for label, w, x in cases:
        expect = ternary_matvec(w, x, AW, ACC)
        if "wraps" in label:
            assert int(expect[0]) == -(1 << (ACC - 1)), "golden model does not wrap as documented"
        bad += await core.product(w, x, expect=expect, label=label)
    REPORT.write()
    assert bad == 0, f"{bad} mismatches in corner cases"


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset while a product streams with stalls, with both inputs offered in reset (they
    must not be accepted); afterwards ``y`` is not valid and nothing stale comes out."""
    stalls = (0.2, 0.2, 0.3)
    core = Core(dut, "test_reset_mid_stream", stalls)
    tb, rng, np_rng = core.tb, core.rng, core.np_rng
    await tb.start()
    bad = 0
    for trial in range(4):
        m, k = 6, 4 * N + 3
        wb, xb = core.beats(random_ternary(np_rng, m, k), np_rng.integers(AMIN, AMAX + 1, k))
        core.w.send(wb)
        core.x.send(xb)
        await ClockCycles(dut.clk, rng.randint(3, len(wb)))
        await tb.reset(1 + rng.randint(1, 3), offer=[core.w, core.x])
        tb.stall(0, 0, 0)
        w = random_ternary(np_rng, 3, 2 * N + 1)
        x = np_rng.integers(AMIN, AMAX + 1, 2 * N + 1)
        bad += await core.product(w, x, label=f"after reset {trial}")
        tb.stall(*stalls)
    bad += tb.reset_violations()
    REPORT.write()
    assert bad == 0, f"{bad} mismatches around reset"


@cocotb.test(skip=not SPEC.packed)
async def test_invalid_packed_bytes(dut):
    """Bytes above 242 decode to zero weights and set the sticky error flag until reset."""
    core = Core(dut, "test_invalid_packed_bytes")
    tb, rng, np_rng = core.tb, core.rng, core.np_rng
    await tb.start()
    bad = await tb.flag("error", 0, "reset")
    await RisingEdge(dut.clk)
    m, k = 4, 2 * N + 3
    groups = -(-k // N)
    w = random_ternary(np_rng, m, k)
    raw, eff = [], np.zeros((m, k), dtype=np.int64)
    for r in range(m):
        for g in range(groups):
            lo, hi = g * N, min(k, (g + 1) * N)
            wg = np.zeros(N, dtype=np.int64)
            wg[: hi - lo] = w[r, lo:hi]
            bytes_ = [int(b) for b in pack_trits(wg)]
            if r < 2 and (r + g) % 2 == 0:  # invalid bytes early, then valid rows only
                bytes_[rng.randrange(len(bytes_))] = rng.randint(243, 255)
            raw.append(bytes_)
            eff[r, lo:hi] = unpack_trits(np.array(bytes_), N)[0][: hi - lo]
    x = np_rng.integers(AMIN, AMAX + 1, k)
    bad += await core.product(w, x, expect=ternary_matvec(eff, x, AW, ACC), raw_packed=raw,
                              label="invalid bytes")
    bad += await tb.flag("error", 1, "valid beats that followed invalid ones (not sticky)")
    await RisingEdge(dut.clk)
    await tb.reset()
    bad += await tb.flag("error", 0, "reset")
    REPORT["error_flag_checked"] = True
    REPORT.write()
    assert bad == 0, f"{bad} problems with invalid packed bytes"


@cocotb.test(skip=not REPORT["config"].get("listed"))
async def test_listed_products(dut):
    """Products of the listed (M, K) shapes, back to back from an idle pipeline; the measured
    cycles of each are recorded (for the cycle model's unit-level check)."""
    core = Core(dut, "test_listed_products")
    await core.tb.start()
    bad = 0
    REPORT["listed"] = []
    for m, k in REPORT["config"]["listed"]:
        w = random_ternary(core.np_rng, m, k)
        x = core.np_rng.integers(AMIN, AMAX + 1, k)
        bad += await core.product(w, x, label="listed")
        REPORT["listed"].append([m, k, REPORT["cycles"][-1][2]])
    REPORT.write()
    assert bad == 0
