"""cocotb testbench: SparseTensorCore (2:4 sparse mode) against :mod:`mmfree.golden.sparse`.

Configuration from ``$MMFREE_TB_CONFIG`` (JSON: width, is_signed, acc_width, accumulate, and
optionally ``listed``: GEMM shapes whose cycles are recorded for the dense-vs-sparse
comparison). Every element of every D tile is compared with the golden model.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from mmfree.golden.sparse import (
    VALID_CODES,
    compress,
    is_valid,
    prune_2_4,
    sparse_gemm,
    sparse_gemm_schedule,
    sparse_mac_tile,
)
from mmfree.golden.tensor_core import operand_range
from mmfree.hdl.credit_queue import CreditQueue
from mmfree.sim.stream import pack
from mmfree.sim.tiles import TileHarness, new_report, signed_elements
from mmfree.spec import SparseTensorCoreSpec

CFG = json.loads(os.environ.get("MMFREE_TB_CONFIG", "{}"))
W = int(CFG.get("width", 8))
SIGNED = bool(CFG.get("is_signed", True))
ACC = int(CFG.get("acc_width", 32))
ACCUM = bool(CFG.get("accumulate", False))
DSP = bool(CFG.get("dsp_pipeline", False))
SPEC = SparseTensorCoreSpec(W, SIGNED, ACC, ACCUM, DSP)
LATENCY = SPEC.latency
LO, HI = operand_range(W, SIGNED)
CLO, CHI = -(1 << (ACC - 1)), (1 << (ACC - 1)) - 1
REPORT = {**new_report(CFG), "gemms": 0, "listed": [], "codes_checked": []}


def _write_report() -> None:
    with open(os.environ["MMFREE_TB_REPORT"], "w") as f:
        json.dump(REPORT, f, indent=1)


def beat(values, codes, b, c, first=True, last=True) -> int:
    """Payload: a (16 kept values), meta (8 codes), b (8 x 4), c, then first, last."""
    v = (pack(np.ravel(values), W) | pack(np.ravel(codes), 4) << 16 * W
         | pack(np.ravel(b), W) << (16 * W + 32) | pack(np.ravel(c), ACC) << (48 * W + 32))
    if ACCUM:
        top = 48 * W + 32 + 16 * ACC
        v |= int(first) << top | int(last) << (top + 1)
    return v


class Harness(TileHarness):
    def __init__(self, dut, rng, stall=(0, 0)):
        super().__init__(dut, rng, REPORT, signed_elements(ACC, 16, (4, 4)), LATENCY,
                         stall=stall)

    async def tiles(self, tiles, label, check_cycles=True) -> int:
        """Independent logical 4x8x4 tiles ``(values, codes, b, c)``."""
        beats = [beat(*t) for t in tiles]
        expect = [sparse_mac_tile(*t, W, SIGNED, ACC)[0] for t in tiles]
        return await self.run(beats, expect, label, check_cycles)

    async def gemm(self, a_dense, b, c, label, check_cycles=True) -> int:
        """Prune ``a_dense`` 2:4, compress it and run the GEMM in sparse accumulate mode."""
        values, codes = compress(prune_2_4(a_dense))
        steps = list(sparse_gemm_schedule(values, codes, b, c))
        d = sparse_gemm(values, codes, b, c, W, SIGNED, ACC)
        m, n = d.shape
        dp = np.zeros((-(-m // 4) * 4, -(-n // 4) * 4), dtype=np.int64)
        dp[:m, :n] = d
        expect = [dp[4 * s.i:4 * s.i + 4, 4 * s.j:4 * s.j + 4] for s in steps if s.last]
        REPORT["gemms"] += 1
        bad = await self.run([beat(s.values, s.codes, s.b, s.c, s.first, s.last)
                              for s in steps], expect, label, check_cycles)
        if check_cycles:
            want = SPEC.gemm_cycles(m, b.shape[0], n)
            assert want == SPEC.cycles(len(steps))
        return bad


def _rngs(dut, name: str) -> tuple[random.Random, np.random.Generator]:
    seed = cocotb.RANDOM_SEED
    dut._log.info("%s: seed %d (width=%d signed=%s acc=%d accumulate=%s)", name, seed, W,
                  SIGNED, ACC, ACCUM)
    REPORT["tests"][name] = seed
    return random.Random(seed), np.random.default_rng(seed)


def random_tile(np_rng, raw_codes=False):
    if raw_codes:
        values, codes = np_rng.integers(LO, HI + 1, (4, 4)), np_rng.integers(0, 16, (4, 2))
    else:
        values, codes = compress(prune_2_4(np_rng.integers(LO, HI + 1, (4, 8))))
    return (values, codes, np_rng.integers(LO, HI + 1, (8, 4)),
            np_rng.integers(CLO, CHI, (4, 4), endpoint=True))


async def _flag(dut, expect: int, what: str) -> int:
    await ReadOnly()
    if int(dut.error.value) != expect:
        dut._log.error("error flag %d after %s, expected %d", int(dut.error.value), what,
                       expect)
        return 1
    return 0


@cocotb.test()
async def test_random_tiles(dut):
    """Pruned random tiles and tiles with random raw codes, extremes; exact cycles."""
    rng, np_rng = _rngs(dut, "test_random_tiles")
    h = Harness(dut, rng)
    await h.start()
    bad = await h.tiles([random_tile(np_rng) for _ in range(40)], "pruned tiles")
    bad += await _flag(dut, 0, "valid tiles")
    await RisingEdge(dut.clk)
    ext = [(np.full((4, 4), v), np.full((4, 2), 0b1110), np.full((8, 4), v),
            np.full((4, 4), cv)) for v in (LO, HI) for cv in (CLO, CHI)]
    bad += await h.tiles(ext, "extremes")
    bad += await h.tiles([random_tile(np_rng, True) for _ in range(40)], "raw codes")
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_output_held_fills_the_fifo(dut):
    """``d`` not ready for a long time while tiles stream in: the core accepts exactly as
    many tiles as it has credits (its output FIFO's depth), then holds ``i`` off; after
    ``d`` resumes every tile comes out, exact and in order."""
    rng, np_rng = _rngs(dut, "test_output_held_fills_the_fifo")
    h = Harness(dut, rng)
    await h.start()
    credits = CreditQueue.depth_for(LATENCY)
    tiles = [random_tile(np_rng) for _ in range(3 * credits)]
    bad, accepted = await h.run_output_held(
        [beat(*t) for t in tiles], [sparse_mac_tile(*t, W, SIGNED, ACC)[0] for t in tiles],
        "output held", 4 * credits + 20)
    REPORT["accepted_while_held"] = accepted
    if accepted != credits:
        dut._log.error("accepted %d tiles while d was held, expected %d credits",
                       accepted, credits)
        bad += 1
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_all_codes(dut):
    """Each of the 16 codes in each of the 8 group positions; the flag rises exactly for
    the invalid ones and clears on reset."""
    rng, np_rng = _rngs(dut, "test_all_codes")
    h = Harness(dut, rng)
    await h.start()
    bad = 0
    for code in range(16):
        await h.reset()
        await RisingEdge(dut.clk)
        tiles = []
        for pos in range(8):
            values, _, b, c = random_tile(np_rng)
            codes = np_rng.choice(VALID_CODES, 8)
            codes[pos] = code
            tiles.append((values, codes.reshape(4, 2), b, c))
        bad += await h.tiles(tiles, f"code {code:#06b}")
        bad += await _flag(dut, int(not is_valid(code)), f"code {code:#06b}")
        await RisingEdge(dut.clk)
        REPORT["codes_checked"].append(code)
    _write_report()
    assert bad == 0


@cocotb.test(skip=not ACCUM)
async def test_gemm_shapes(dut):
    """Pruned GEMMs of random shape (M, K, N not multiples of 4 or 8); exact cycles."""
    rng, np_rng = _rngs(dut, "test_gemm_shapes")
    h = Harness(dut, rng)
    await h.start()
    shapes = [(1, 1, 1), (4, 8, 4), (5, 9, 3), (8, 16, 8), (3, 30, 2)]
    shapes += [tuple(int(v) for v in np_rng.integers(1, 18, 3)) for _ in range(6)]
    bad = 0
    for m, k, n in shapes:
        bad += await h.gemm(np_rng.integers(LO, HI + 1, (m, k)),
                            np_rng.integers(LO, HI + 1, (k, n)),
                            np_rng.integers(CLO // 2, CHI // 2, (m, n)), f"gemm {m}x{k}x{n}")
    _write_report()
    assert bad == 0


@cocotb.test(skip=not (ACCUM and CFG.get("listed")))
async def test_listed_gemms(dut):
    """The GEMM shapes of the dense-vs-sparse comparison: cycles recorded per shape."""
    rng, np_rng = _rngs(dut, "test_listed_gemms")
    h = Harness(dut, rng)
    await h.start()
    bad = 0
    for m, k, n in CFG["listed"]:
        bad += await h.gemm(np_rng.integers(LO, HI + 1, (m, k)),
                            np_rng.integers(LO, HI + 1, (k, n)),
                            np.zeros((m, n), dtype=np.int64), f"listed {m}x{k}x{n}")
        REPORT["listed"].append([m, k, n, REPORT["cycles"][-1][2]])
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_stalls_and_reset(dut):
    """Random bubbles and back-pressure (tiles and GEMMs), and resets mid-stream."""
    rng, np_rng = _rngs(dut, "test_stalls_and_reset")
    h = Harness(dut, rng, stall=(0.3, 0.5))
    await h.start()
    bad = await h.tiles([random_tile(np_rng) for _ in range(30)], "stalled",
                        check_cycles=False)
    if ACCUM:
        bad += await h.gemm(np_rng.integers(LO, HI + 1, (7, 21)),
                            np_rng.integers(LO, HI + 1, (21, 6)),
                            np.zeros((7, 6), dtype=np.int64), "stalled gemm",
                            check_cycles=False)
    for trial in range(3):
        noise = [beat(*random_tile(np_rng, True)) for _ in range(20)]
        bad += await h.interrupt_with_reset(noise, rng, f"trial {trial}")
        bad += await h.tiles([random_tile(np_rng) for _ in range(8)], f"after reset {trial}",
                             check_cycles=False)
    _write_report()
    assert bad == 0
