"""cocotb testbench: TernaryCore / PackedTernaryCore against the numpy golden model.

Configuration comes from ``$MMFREE_TB_CONFIG`` (JSON: lanes, act_width, acc_width, packed);
a summary goes to ``$MMFREE_TB_REPORT``. Every output is compared with
:func:`mmfree.golden.ternary_matvec`; each test logs its seed (cocotb derives it from
``COCOTB_RANDOM_SEED`` and the test name, so a run with the same seed replays exactly).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from mmfree.golden.ternary import (
    encode_codes,
    max_exact_k,
    pack_trits,
    ternary_matvec,
    unpack_trits,
)
from mmfree.hdl.credit_queue import CreditQueue
from mmfree.hdl.trit_unpacker import packed_bytes
from mmfree.sim.stream import StreamSink, StreamSource, pack, to_signed
from mmfree.spec import ternary_latency

CFG = json.loads(os.environ.get("MMFREE_TB_CONFIG", "{}"))
N = int(CFG.get("lanes", 16))
AW = int(CFG.get("act_width", 8))
ACC = int(CFG.get("acc_width", 32))
PACKED = bool(CFG.get("packed", False))
PIPE = int(CFG.get("tree_levels_per_stage", 0))
LATENCY = ternary_latency(N, PIPE, PACKED)
PERIOD = 10
REPORT: dict = {"config": CFG, "products": 0, "outputs": 0, "mismatches": 0,
                "cycle_checks": 0, "cycle_mismatches": 0, "tests": {}}
AMIN, AMAX = -(1 << (AW - 1)), (1 << (AW - 1)) - 1


def expected_cycles(m: int, k: int) -> int:
    """The documented formula (the HDL class's :meth:`cycles`, plus the unpacker stage)."""
    return m * -(-k // N) + LATENCY


def _write_report() -> None:
    path = os.environ.get("MMFREE_TB_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(REPORT, f, indent=1)


class Harness:
    """Clock, reset, the two input sources and the output sink of one DUT."""

    def __init__(self, dut, rng: random.Random, stall: tuple[float, float, float] = (0, 0, 0)):
        self.dut, self.rng = dut, rng
        dut.rst.value = 1
        self.w = StreamSource(dut, "w", dut.clk, PERIOD, rng, stall[0])
        self.x = StreamSource(dut, "x", dut.clk, PERIOD, rng, stall[1])
        self.y = StreamSink(dut, "y", dut.clk, PERIOD, rng, stall[2])
        self.log = dut._log

    async def start(self) -> None:
        Clock(self.dut.clk, PERIOD, unit="ns").start()
        await self.reset()
        for d in (self.w, self.x, self.y):
            d.start()

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0

    def beats(self, w: np.ndarray, x: np.ndarray, np_rng: np.random.Generator,
              w_raw_packed: list[list[int]] | None = None) -> tuple[list[int], list[int]]:
        """Weight and activation beats for ``W @ x``, row by row, lane group by lane group.

        Lanes past K get zero weights and *random* activations, which must not matter.
        """
        m, k = w.shape
        groups = -(-k // N)
        w_beats, x_beats = [], []
        for r in range(m):
            for g in range(groups):
                lo, hi = g * N, min(k, (g + 1) * N)
                wg = np.zeros(N, dtype=np.int64)
                wg[: hi - lo] = w[r, lo:hi]
                xg = np_rng.integers(AMIN, AMAX + 1, N)
                xg[: hi - lo] = x[lo:hi]
                last = int(g == groups - 1)
                if PACKED:
                    raw = (w_raw_packed[r * groups + g] if w_raw_packed is not None
                           else list(pack_trits(wg)))
                    w_beats.append(pack(raw, 8) | last << (8 * packed_bytes(N)))
                else:
                    w_beats.append(pack(encode_codes(wg), 2) | last << (2 * N))
                x_beats.append(pack(xg, AW))
        return w_beats, x_beats

    async def product(self, w: np.ndarray, x: np.ndarray, np_rng: np.random.Generator,
                      expect: np.ndarray | None = None, check_cycles: bool = True,
                      w_raw_packed: list[list[int]] | None = None, label: str = "",
                      hold_output: int = 0) -> int:
        """Stream one product through the DUT, compare every output; returns mismatches.

        With ``hold_output`` > 0, ``y.ready`` stays low for that many cycles after the
        inputs start; the number of lane groups accepted meanwhile is appended to
        ``REPORT["accepted_while_held"]``.
        """
        m, k = w.shape
        if expect is None:
            expect = ternary_matvec(w, x, AW, ACC)
        for d in (self.w, self.x):
            d.sent_cycles.clear()
        self.y.received.clear()
        self.y.cycles.clear()
        wb, xb = self.beats(w, x, np_rng, w_raw_packed)
        if hold_output:
            self.y.stop()
        self.w.send(wb)
        self.x.send(xb)
        if hold_output:
            await ClockCycles(self.dut.clk, hold_output)
            # x transfers together with the core's (unpacked) weights, so it counts the
            # groups inside the core; a packed core's unpacker holds one more w beat
            REPORT.setdefault("accepted_while_held", []).append(len(self.x.sent_cycles))
            self.y.start()
        budget = 50 * (len(wb) + LATENCY) + 100
        for _ in range(budget):
            await RisingEdge(self.dut.clk)
            if len(self.y.received) >= m:
                break
        # Drain: anything arriving after the expected rows is an error too.
        await ClockCycles(self.dut.clk, LATENCY + 2)
        got = [to_signed(v, ACC) for v in self.y.received]
        mismatches = 0
        if len(got) != m:
            self.log.error("%s: expected %d outputs, got %d", label, m, len(got))
            mismatches += abs(m - len(got))
        for i, (g, e) in enumerate(zip(got, expect, strict=False)):
            if g != int(e):
                mismatches += 1
                if mismatches <= 5:
                    self.log.error("%s: row %d of %dx%d: got %d, expected %d",
                                   label, i, m, k, g, int(e))
        REPORT["products"] += 1
        REPORT["outputs"] += len(got)
        REPORT["mismatches"] += mismatches
        if check_cycles and got:
            first = min(self.w.sent_cycles[0], self.x.sent_cycles[0])
            measured = self.y.cycles[-1] - first + 1
            want = expected_cycles(m, k)
            REPORT["cycle_checks"] += 1
            REPORT.setdefault("cycles", []).append([m, k, measured, want])
            if measured != want:
                REPORT["cycle_mismatches"] += 1
                self.log.error("%s: %dx%d took %d cycles, formula says %d",
                               label, m, k, measured, want)
                mismatches += 1
        return mismatches


def _rngs(dut, name: str) -> tuple[random.Random, np.random.Generator]:
    seed = cocotb.RANDOM_SEED
    dut._log.info("%s: seed %d (lanes=%d act=%d acc=%d packed=%s)", name, seed, N, AW, ACC,
                  PACKED)
    REPORT["tests"][name] = seed
    return random.Random(seed), np.random.default_rng(seed)


def random_ternary(np_rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """Ternary matrix with a random density of zeros (0 to 90 %)."""
    p0 = np_rng.uniform(0.0, 0.9)
    return np_rng.choice([-1, 0, 1], size=(m, k), p=[(1 - p0) / 2, p0, (1 - p0) / 2])


def shapes(np_rng: np.random.Generator) -> list[tuple[int, int]]:
    """Corner K values around the lane count plus random shapes."""
    ks = [1, N, N + 1, 3 * N + 2, max(1, N - 1)]
    out = [(int(np_rng.integers(1, 6)), k) for k in ks]
    out += [(int(np_rng.integers(1, 9)), int(np_rng.integers(1, 6 * N + 2))) for _ in range(6)]
    return out


async def _random_products(dut, name: str, stall: tuple[float, float, float]) -> int:
    rng, np_rng = _rngs(dut, name)
    h = Harness(dut, rng, stall)
    await h.start()
    bad = 0
    for m, k in shapes(np_rng):
        w = random_ternary(np_rng, m, k)
        x = np_rng.integers(AMIN, AMAX + 1, k)
        # cycle counts follow the formula only while the streams keep up
        bad += await h.product(w, x, np_rng, check_cycles=not any(stall),
                               label=f"{name} {m}x{k}")
    _write_report()
    return bad


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
    rng, np_rng = _rngs(dut, "test_output_held_fills_the_fifo")
    h = Harness(dut, rng)
    await h.start()
    credits = CreditQueue.depth_for(ternary_latency(N, PIPE))
    m = 3 * credits
    w = random_ternary(np_rng, m, N)
    x = np_rng.integers(AMIN, AMAX + 1, N)
    bad = await h.product(w, x, np_rng, check_cycles=False, hold_output=4 * credits + 20,
                          label="output held")
    accepted = REPORT["accepted_while_held"][-1]
    if accepted != credits:
        dut._log.error("accepted %d groups while y was held, expected %d credits",
                       accepted, credits)
        bad += 1
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_corners(dut):
    """All-zero operands, extreme activations, the longest exact sum, and one past it (wrap)."""
    rng, np_rng = _rngs(dut, "test_corners")
    h = Harness(dut, rng)
    await h.start()
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
        bad += await h.product(w, x, np_rng, expect=expect, label=label)
    _write_report()
    assert bad == 0, f"{bad} mismatches in corner cases"


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset while a product streams with stalls; afterwards nothing stale comes out."""
    rng, np_rng = _rngs(dut, "test_reset_mid_stream")
    h = Harness(dut, rng, stall=(0.2, 0.2, 0.3))
    await h.start()
    bad = 0
    for trial in range(4):
        m, k = 6, 4 * N + 3
        wb, xb = h.beats(random_ternary(np_rng, m, k), np_rng.integers(AMIN, AMAX + 1, k),
                         np_rng)
        h.w.send(wb)
        h.x.send(xb)
        await ClockCycles(dut.clk, rng.randint(3, len(wb)))
        for d in (h.w, h.x, h.y):
            d.stop()
        # inputs offered during reset must not be accepted
        dut.w__valid.value = dut.x__valid.value = 1
        dut.rst.value = 1
        await ReadOnly()
        if int(dut.w__ready.value) or int(dut.x__ready.value):
            dut._log.error("trial %d: inputs ready while reset is asserted", trial)
            bad += 1
        await RisingEdge(dut.clk)
        dut.w__valid.value = dut.x__valid.value = 0
        await h.reset(rng.randint(1, 3))
        await ReadOnly()
        if int(dut.y__valid.value) != 0:
            dut._log.error("trial %d: y valid right after reset", trial)
            bad += 1
        await RisingEdge(dut.clk)
        for d in (h.w, h.x, h.y):
            d.start()
        for d in (h.w, h.x):
            d.stall = 0.0
        h.y.stall = 0.0
        w = random_ternary(np_rng, 3, 2 * N + 1)
        x = np_rng.integers(AMIN, AMAX + 1, 2 * N + 1)
        bad += await h.product(w, x, np_rng, label=f"after reset {trial}")
        for d in (h.w, h.x):
            d.stall = 0.2
        h.y.stall = 0.3
    _write_report()
    assert bad == 0, f"{bad} mismatches around reset"


@cocotb.test(skip=not PACKED)
async def test_invalid_packed_bytes(dut):
    """Bytes above 242 decode to zero weights and set the sticky error flag until reset."""
    rng, np_rng = _rngs(dut, "test_invalid_packed_bytes")
    h = Harness(dut, rng)
    await h.start()
    bad = 0
    if int(dut.error.value) != 0:
        dut._log.error("error flag set after reset")
        bad += 1
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
    bad += await h.product(w, x, np_rng, expect=ternary_matvec(eff, x, AW, ACC),
                           w_raw_packed=raw, label="invalid bytes")
    if int(dut.error.value) != 1:
        dut._log.error("error flag not sticky: low after valid beats followed invalid ones")
        bad += 1
    await h.reset()
    await ReadOnly()
    if int(dut.error.value) != 0:
        dut._log.error("error flag not cleared by reset")
        bad += 1
    REPORT["error_flag_checked"] = True
    _write_report()
    assert bad == 0, f"{bad} problems with invalid packed bytes"


@cocotb.test(skip=not CFG.get("listed"))
async def test_listed_products(dut):
    """Products of the listed (M, K) shapes, back to back from an idle pipeline; the measured
    cycles of each are recorded (for the cycle model's unit-level check)."""
    rng, np_rng = _rngs(dut, "test_listed_products")
    h = Harness(dut, rng)
    await h.start()
    bad = 0
    REPORT["listed"] = []
    for m, k in CFG["listed"]:
        w = random_ternary(np_rng, m, k)
        x = np_rng.integers(AMIN, AMAX + 1, k)
        bad += await h.product(w, x, np_rng, label=f"listed {m}x{k}")
        REPORT["listed"].append([m, k, REPORT["cycles"][-1][2]])
    _write_report()
    assert bad == 0
