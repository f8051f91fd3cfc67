"""cocotb testbench: TensorCore against :mod:`mmfree.golden.tensor_core`.

Configuration from ``$MMFREE_TB_CONFIG`` (JSON: width, is_signed, acc_width, accumulate);
summary to ``$MMFREE_TB_REPORT``. Every element of every result tile is compared with the
golden model; each test logs its seed (replay with the same ``COCOTB_RANDOM_SEED``).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np

from mmfree.golden.tensor_core import gemm_schedule, mac_tile, operand_range, tiled_gemm
from mmfree.hdl.credit_queue import CreditQueue
from mmfree.sim.stream import pack
from mmfree.sim.tiles import TileHarness, new_report, signed_elements
from mmfree.spec import TensorCoreSpec

CFG = json.loads(os.environ.get("MMFREE_TB_CONFIG", "{}"))
W = int(CFG.get("width", 8))
SIGNED = bool(CFG.get("is_signed", True))
ACC = int(CFG.get("acc_width", 32))
ACCUM = bool(CFG.get("accumulate", False))
DSP = bool(CFG.get("dsp_pipeline", False))
SPEC = TensorCoreSpec(W, SIGNED, ACC, ACCUM, DSP)
LATENCY = SPEC.latency
LO, HI = operand_range(W, SIGNED)
CLO, CHI = -(1 << (ACC - 1)), (1 << (ACC - 1)) - 1
REPORT: dict = {**new_report(CFG), "gemms": 0}


def _write_report() -> None:
    path = os.environ.get("MMFREE_TB_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(REPORT, f, indent=1)


def beat(a: np.ndarray, b: np.ndarray, c: np.ndarray, first: bool = True,
         last: bool = True) -> int:
    """The input payload: a, b, c tiles row-major from bit 0, then first, last."""
    value = (pack(a.ravel(), W) | pack(b.ravel(), W) << (16 * W)
             | pack(c.ravel(), ACC) << (32 * W))
    if ACCUM:
        value |= int(first) << (32 * W + 16 * ACC) | int(last) << (32 * W + 16 * ACC + 1)
    return value


class Harness(TileHarness):
    """The tile harness plus the tensor core's tile and GEMM drivers."""

    def __init__(self, dut, rng: random.Random, stall: tuple[float, float] = (0, 0)):
        super().__init__(dut, rng, REPORT, signed_elements(ACC, 16, (4, 4)), LATENCY,
                         stall=stall)

    async def tiles(self, tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]], label: str,
                    check_cycles: bool = True) -> int:
        """Independent tiles (in accumulate mode each is a one-step GEMM: first and last)."""
        beats = [beat(a, b, c) for a, b, c in tiles]
        expect = [mac_tile(a, b, c, W, SIGNED, ACC) for a, b, c in tiles]
        return await self.run(beats, expect, label, check_cycles)

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
            k = a.shape[1]
            assert SPEC.gemm_cycles(m, k, n) == SPEC.cycles(len(beats))
        return bad


def _rngs(dut, name: str) -> tuple[random.Random, np.random.Generator]:
    seed = cocotb.RANDOM_SEED
    dut._log.info("%s: seed %d (width=%d signed=%s acc=%d accumulate=%s dsp_pipeline=%s)",
                  name, seed, W, SIGNED, ACC, ACCUM, DSP)
    REPORT["tests"][name] = seed
    return random.Random(seed), np.random.default_rng(seed)


def rand_tile(np_rng: np.random.Generator, lo: int = LO, hi: int = HI) -> np.ndarray:
    return np_rng.integers(lo, hi + 1, (4, 4))


def rand_c(np_rng: np.random.Generator) -> np.ndarray:
    return np.array([[int(np_rng.integers(CLO, CHI, endpoint=True)) for _ in range(4)]
                     for _ in range(4)])


@cocotb.test()
async def test_random_tiles(dut):
    """Back-to-back random tiles over the full operand and C ranges; exact cycles."""
    rng, np_rng = _rngs(dut, "test_random_tiles")
    h = Harness(dut, rng)
    await h.start()
    tiles = [(rand_tile(np_rng), rand_tile(np_rng), rand_c(np_rng)) for _ in range(40)]
    bad = await h.tiles(tiles, "random tiles")
    bad += await h.tiles(tiles[:1], "single tile")
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_output_held_fills_the_fifo(dut):
    """``d`` not ready for a long time while tiles stream in: the array accepts exactly as
    many tiles as it has credits (its output FIFO's depth), then holds ``i`` off; after
    ``d`` resumes every tile comes out, exact and in order."""
    rng, np_rng = _rngs(dut, "test_output_held_fills_the_fifo")
    h = Harness(dut, rng)
    await h.start()
    credits = CreditQueue.depth_for(LATENCY)
    tiles = [(rand_tile(np_rng), rand_tile(np_rng), rand_c(np_rng)) for _ in range(3 * credits)]
    bad, accepted = await h.run_output_held(
        [beat(a, b, c) for a, b, c in tiles],
        [mac_tile(a, b, c, W, SIGNED, ACC) for a, b, c in tiles], "output held",
        4 * credits + 20)
    REPORT["accepted_while_held"] = accepted
    if accepted != credits:
        dut._log.error("accepted %d tiles while d was held, expected %d credits",
                       accepted, credits)
        bad += 1
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_extremes(dut):
    """Operands at their extremes everywhere; C at its extremes, so D overflows and wraps."""
    rng, _ = _rngs(dut, "test_extremes")
    h = Harness(dut, rng)
    await h.start()
    full = [np.full((4, 4), v) for v in (LO, HI)]
    cs = [np.full((4, 4), v) for v in (CLO, CHI, 0, -1)]
    tiles = [(a, b, c) for a in full for b in full for c in cs]
    tiles.append((np.zeros((4, 4), int), np.zeros((4, 4), int), np.zeros((4, 4), int)))
    expect_wrap = any(
        not np.array_equal(mac_tile(a, b, c, W, SIGNED, ACC),
                           a.astype(object) @ b.astype(object) + c.astype(object))
        for a, b, c in tiles)
    REPORT["overflow_cases"] = expect_wrap
    bad = await h.tiles(tiles, "extremes")
    _write_report()
    assert expect_wrap, "the extreme cases should include a wrapping result"
    assert bad == 0


@cocotb.test()
async def test_stalls(dut):
    """Random bubbles on the input and back-pressure on the output."""
    rng, np_rng = _rngs(dut, "test_stalls")
    h = Harness(dut, rng, stall=(0.3, 0.5))
    await h.start()
    tiles = [(rand_tile(np_rng), rand_tile(np_rng), rand_c(np_rng)) for _ in range(30)]
    bad = await h.tiles(tiles, "stalled tiles", check_cycles=False)
    if ACCUM:
        for _ in range(3):
            m, k, n = (int(v) for v in np_rng.integers(1, 11, 3))
            bad += await h.gemm(np_rng.integers(LO, HI + 1, (m, k)),
                                np_rng.integers(LO, HI + 1, (k, n)),
                                np_rng.integers(CLO // 2, CHI // 2, (m, n)),
                                f"stalled gemm {m}x{k}x{n}", check_cycles=False)
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset while tiles (and, in accumulate mode, a partial K-loop) are in flight."""
    rng, np_rng = _rngs(dut, "test_reset_mid_stream")
    h = Harness(dut, rng, stall=(0.2, 0.3))
    await h.start()
    bad = 0
    for trial in range(4):
        steps = list(gemm_schedule(np_rng.integers(LO, HI + 1, (8, 12)),
                                   np_rng.integers(LO, HI + 1, (12, 8)),
                                   np.zeros((8, 8), dtype=np.int64)))
        bad += await h.interrupt_with_reset(
            [beat(s.a, s.b, s.c, s.first, s.last) for s in steps], rng, f"trial {trial}")
        h.i.stall = h.d.stall = 0.0
        if ACCUM:
            # a fresh GEMM must come out exact, with no stale tile ahead of it (the harness
            # rejects missing and extra outputs)
            bad += await h.gemm(np_rng.integers(LO, HI + 1, (5, 9)),
                                np_rng.integers(LO, HI + 1, (9, 6)),
                                np_rng.integers(-1000, 1000, (5, 6)), f"after reset {trial}")
        else:
            tiles = [(rand_tile(np_rng), rand_tile(np_rng), rand_c(np_rng)) for _ in range(5)]
            bad += await h.tiles(tiles, f"after reset {trial}")
        h.i.stall, h.d.stall = 0.2, 0.3
    _write_report()
    assert bad == 0


@cocotb.test(skip=not ACCUM)
async def test_gemm_shapes(dut):
    """Random GEMM shapes (M, K, N not multiples of 4 included); exact result and cycles."""
    rng, np_rng = _rngs(dut, "test_gemm_shapes")
    h = Harness(dut, rng)
    await h.start()
    shapes = [(1, 1, 1), (4, 4, 4), (5, 3, 7), (8, 16, 4), (3, 17, 2)]
    shapes += [tuple(int(v) for v in np_rng.integers(1, 14, 3)) for _ in range(8)]
    bad = 0
    for m, k, n in shapes:
        a = np_rng.integers(LO, HI + 1, (m, k))
        b = np_rng.integers(LO, HI + 1, (k, n))
        c = np.array([[int(np_rng.integers(CLO, CHI, endpoint=True)) for _ in range(n)]
                      for _ in range(m)])
        bad += await h.gemm(a, b, c, f"gemm {m}x{k}x{n}")
    # accumulation that overflows: the longest K-loop of extreme products
    k = 64
    a = np.full((4, k), LO if SIGNED else HI)
    bad += await h.gemm(a, a.T.copy(), np.full((4, 4), CHI), f"overflowing gemm 4x{k}x4")
    _write_report()
    assert bad == 0


@cocotb.test(skip=not (ACCUM and CFG.get("listed")))
async def test_listed_gemms(dut):
    """GEMM shapes of the dense-vs-sparse comparison, with A pruned 2:4 as the sparse core
    sees it (the dense array gains nothing from the zeros): cycles recorded per shape."""
    from mmfree.golden.sparse import prune_2_4
    rng, np_rng = _rngs(dut, "test_listed_gemms")
    h = Harness(dut, rng)
    await h.start()
    bad = 0
    REPORT["listed"] = []
    for m, k, n in CFG["listed"]:
        a = prune_2_4(np_rng.integers(LO, HI + 1, (m, k)))
        bad += await h.gemm(a, np_rng.integers(LO, HI + 1, (k, n)),
                            np.zeros((m, n), dtype=np.int64), f"listed {m}x{k}x{n}")
        REPORT["listed"].append([m, k, n, REPORT["cycles"][-1][2]])
    _write_report()
    assert bad == 0
