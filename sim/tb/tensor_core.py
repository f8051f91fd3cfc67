"""cocotb testbench: TensorCore against :mod:`mmfree.golden.tensor_core`.

Configuration: the unit's parameters (:class:`mmfree.spec.TensorCoreSpec`) from
``$MMFREE_TB_CONFIG``, plus ``listed`` for :func:`test_listed_gemms`; summary to
``$MMFREE_TB_REPORT``. Every element of every result tile is compared with the golden
model, and every no-stall run's cycle count with the spec's formula; each test logs its seed
(replay with the same ``COCOTB_RANDOM_SEED``).
"""

from __future__ import annotations

import cocotb
import numpy as np

from mmfree.golden.sparse import prune_2_4
from mmfree.golden.tensor_core import gemm_schedule, mac_tile, operand_range, tiled_gemm
from mmfree.hdl.credit_queue import CreditQueue
from mmfree.sim.kit import Bench, Report
from mmfree.spec import TensorCoreSpec

REPORT = Report(tiles=0, gemms=0)
SPEC: TensorCoreSpec = REPORT.spec(TensorCoreSpec)
W, SIGNED, ACC, ACCUM = SPEC.width, SPEC.is_signed, SPEC.acc_width, SPEC.accumulate
LO, HI = operand_range(W, SIGNED)
CLO, CHI = -(1 << (ACC - 1)), (1 << (ACC - 1)) - 1


def beat(a: np.ndarray, b: np.ndarray, c: np.ndarray, first: bool = True,
         last: bool = True) -> dict:
    """One input beat: the a, b, c tiles (row-major), and first/last in accumulate mode."""
    value = {"a": a.ravel(), "b": b.ravel(), "c": c.ravel()}
    return {**value, "first": int(first), "last": int(last)} if ACCUM else value


class Core:
    """The bench, the input source and the output sink of one array, with its tile and
    GEMM drivers."""

    def __init__(self, dut, name: str, stall: tuple[float, float] = (0, 0)):
        self.tb = Bench(dut, REPORT, SPEC)
        self.rng, self.np_rng = self.tb.rngs(name)
        self.i, self.d = self.tb.source("i", stall[0]), self.tb.sink("d", stall[1])

    async def run(self, beats: list[dict], expect: list[np.ndarray], label: str,
                  check_cycles: bool) -> int:
        want = SPEC.cycles(len(beats)) if check_cycles else None
        return await self.tb.stream(self.i, self.d, beats, expect, label, want,
                                    SPEC.latency, count="tiles")

    async def tiles(self, tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]], label: str,
                    check_cycles: bool = True) -> int:
        """Independent tiles (in accumulate mode each is a one-step GEMM: first and last)."""
        return await self.run([beat(a, b, c) for a, b, c in tiles],
                              [mac_tile(a, b, c, W, SIGNED, ACC) for a, b, c in tiles], label,
                              check_cycles)

    async def gemm(self, a: np.ndarray, b: np.ndarray, c: np.ndarray, label: str,
                   check_cycles: bool = True) -> int:
        """A whole GEMM through the accumulate mode, driven by the golden schedule."""
        steps = list(gemm_schedule(a, b, c))
        beats = [beat(s.a, s.b, s.c, s.first, s.last) for s in steps]
        d = tiled_gemm(a, b, c, W, SIGNED, ACC)
        m, n = d.shape
        dp = np.zeros((-(-m // 4) * 4, -(-n // 4) * 4), dtype=np.int64)
        dp[:m, :n] = d
        expect = [dp[4 * s.i:4 * s.i + 4, 4 * s.j:4 * s.j + 4] for s in steps if s.last]
        REPORT["gemms"] += 1
        bad = await self.run(beats, expect, label, check_cycles)
        if check_cycles and bad == 0:
            assert SPEC.gemm_cycles(m, a.shape[1], n) == SPEC.cycles(len(beats))
        return bad

    def tile(self, lo: int = LO, hi: int = HI) -> np.ndarray:
        return self.np_rng.integers(lo, hi + 1, (4, 4))

    def c_tile(self) -> np.ndarray:
        return np.array([[int(self.np_rng.integers(CLO, CHI, endpoint=True)) for _ in range(4)]
                         for _ in range(4)])

    def random_tiles(self, count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return [(self.tile(), self.tile(), self.c_tile()) for _ in range(count)]


@cocotb.test()
async def test_random_tiles(dut):
    """Back-to-back random tiles over the full operand and C ranges; exact cycles."""
    core = Core(dut, "test_random_tiles")
    await core.tb.start()
    tiles = core.random_tiles(40)
    bad = await core.tiles(tiles, "random tiles")
    bad += await core.tiles(tiles[:1], "single tile")
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_output_held_fills_the_fifo(dut):
    """``d`` not ready for a long time while tiles stream in: the array accepts exactly as
    many tiles as it has credits (its output FIFO's depth), then holds ``i`` off; after
    ``d`` resumes every tile comes out, exact and in order."""
    core = Core(dut, "test_output_held_fills_the_fifo")
    await core.tb.start()
    credits = CreditQueue.depth_for(SPEC.latency)
    tiles = core.random_tiles(3 * credits)
    bad, accepted = await core.tb.stream_held(
        core.i, core.d, [beat(a, b, c) for a, b, c in tiles],
        [mac_tile(a, b, c, W, SIGNED, ACC) for a, b, c in tiles], "output held",
        4 * credits + 20, SPEC.latency)
    REPORT["accepted_while_held"] = accepted
    if accepted != credits:
        dut._log.error("accepted %d tiles while d was held, expected %d credits",
                       accepted, credits)
        bad += 1
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_extremes(dut):
    """Operands at their extremes everywhere; C at its extremes, so D overflows and wraps."""
    core = Core(dut, "test_extremes")
    await core.tb.start()
    full = [np.full((4, 4), v) for v in (LO, HI)]
    cs = [np.full((4, 4), v) for v in (CLO, CHI, 0, -1)]
    tiles = [(a, b, c) for a in full for b in full for c in cs]
    tiles.append((np.zeros((4, 4), int), np.zeros((4, 4), int), np.zeros((4, 4), int)))
    expect_wrap = any(
        not np.array_equal(mac_tile(a, b, c, W, SIGNED, ACC),
                           a.astype(object) @ b.astype(object) + c.astype(object))
        for a, b, c in tiles)
    REPORT["overflow_cases"] = expect_wrap
    bad = await core.tiles(tiles, "extremes")
    REPORT.write()
    assert expect_wrap, "the extreme cases should include a wrapping result"
    assert bad == 0


@cocotb.test()
async def test_stalls(dut):
    """Random bubbles on the input and back-pressure on the output."""
    core = Core(dut, "test_stalls", stall=(0.3, 0.5))
    await core.tb.start()
    np_rng = core.np_rng
    bad = await core.tiles(core.random_tiles(30), "stalled tiles", check_cycles=False)
    if ACCUM:
        for _ in range(3):
            m, k, n = (int(v) for v in np_rng.integers(1, 11, 3))
            bad += await core.gemm(np_rng.integers(LO, HI + 1, (m, k)),
                                   np_rng.integers(LO, HI + 1, (k, n)),
                                   np_rng.integers(CLO // 2, CHI // 2, (m, n)),
                                   f"stalled gemm {m}x{k}x{n}", check_cycles=False)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset while tiles (and, in accumulate mode, a partial K-loop) are in flight, with the
    input offered in reset; afterwards nothing stale comes out."""
    core = Core(dut, "test_reset_mid_stream", stall=(0.2, 0.3))
    tb, np_rng = core.tb, core.np_rng
    await tb.start()
    bad = 0
    for trial in range(4):
        steps = list(gemm_schedule(np_rng.integers(LO, HI + 1, (8, 12)),
                                   np_rng.integers(LO, HI + 1, (12, 8)),
                                   np.zeros((8, 8), dtype=np.int64)))
        bad += await tb.interrupt(core.i, [beat(s.a, s.b, s.c, s.first, s.last)
                                           for s in steps], f"trial {trial}")
        tb.stall(0, 0)
        if ACCUM:
            # a fresh GEMM must come out exact, with no stale tile ahead of it (missing and
            # extra outputs are both rejected)
            bad += await core.gemm(np_rng.integers(LO, HI + 1, (5, 9)),
                                   np_rng.integers(LO, HI + 1, (9, 6)),
                                   np_rng.integers(-1000, 1000, (5, 6)), f"after reset {trial}")
        else:
            bad += await core.tiles(core.random_tiles(5), f"after reset {trial}")
        tb.stall(0.2, 0.3)
    bad += tb.reset_violations()
    REPORT.write()
    assert bad == 0


@cocotb.test(skip=not ACCUM)
async def test_gemm_shapes(dut):
    """Random GEMM shapes (M, K, N not multiples of 4 included); exact result and cycles."""
    core = Core(dut, "test_gemm_shapes")
    await core.tb.start()
    np_rng = core.np_rng
    shapes = [(1, 1, 1), (4, 4, 4), (5, 3, 7), (8, 16, 4), (3, 17, 2)]
    shapes += [tuple(int(v) for v in np_rng.integers(1, 14, 3)) for _ in range(8)]
    bad = 0
    for m, k, n in shapes:
        a = np_rng.integers(LO, HI + 1, (m, k))
        b = np_rng.integers(LO, HI + 1, (k, n))
        c = np.array([[int(np_rng.integers(CLO, CHI, endpoint=True)) for _ in range(n)]
                      for _ in range(m)])
        bad += await core.gemm(a, b, c, f"gemm {m}x{k}x{n}")
    # accumulation that overflows: the longest K-loop of extreme products
    k = 64
    a = np.full((4, k), LO if SIGNED else HI)
    bad += await core.gemm(a, a.T.copy(), np.full((4, 4), CHI), f"overflowing gemm 4x{k}x4")
    REPORT.write()
    assert bad == 0


@cocotb.test(skip=not (ACCUM and REPORT["config"].get("listed")))
async def test_listed_gemms(dut):
    """GEMM shapes of the dense-vs-sparse comparison, with A pruned 2:4 as the sparse core
    sees it (the dense array gains nothing from the zeros): cycles recorded per shape."""
    core = Core(dut, "test_listed_gemms")
    await core.tb.start()
    np_rng = core.np_rng
    bad = 0
    REPORT["listed"] = []
    for m, k, n in REPORT["config"]["listed"]:
        a = prune_2_4(np_rng.integers(LO, HI + 1, (m, k)))
        bad += await core.gemm(a, np_rng.integers(LO, HI + 1, (k, n)),
                               np.zeros((m, n), dtype=np.int64), f"listed {m}x{k}x{n}")
        REPORT["listed"].append([m, k, n, REPORT["cycles"][-1][2]])
    REPORT.write()
    assert bad == 0
