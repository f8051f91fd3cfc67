"""cocotb testbench: SparseTensorCore (2:4 sparse mode) against :mod:`mmfree.golden.sparse`.

Configuration: the unit's parameters (:class:`mmfree.spec.SparseTensorCoreSpec`) from
``$MMFREE_TB_CONFIG``, and optionally ``listed``: GEMM shapes whose cycles are recorded for
the dense-vs-sparse comparison. Every element of every D tile is compared with the golden
model, every no-stall run's cycle count with the spec's formula.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

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
from mmfree.sim.kit import Bench, Report
from mmfree.spec import SparseTensorCoreSpec

REPORT = Report(tiles=0, gemms=0, listed=[], codes_checked=[])
SPEC: SparseTensorCoreSpec = REPORT.spec(SparseTensorCoreSpec)
W, SIGNED, ACC, ACCUM = SPEC.width, SPEC.is_signed, SPEC.acc_width, SPEC.accumulate
LO, HI = operand_range(W, SIGNED)
CLO, CHI = -(1 << (ACC - 1)), (1 << (ACC - 1)) - 1


def beat(values, codes, b, c, first=True, last=True) -> dict:
    """One input beat: 16 kept values, 8 group codes, the 8 x 4 B tile, C, the flags."""
    value = {"a": np.ravel(values), "meta": np.ravel(codes), "b": np.ravel(b),
             "c": np.ravel(c)}
    return {**value, "first": int(first), "last": int(last)} if ACCUM else value


class Core:
    """The bench, the input source and the output sink of one sparse tensor core."""

    def __init__(self, dut, name: str, stall: tuple[float, float] = (0, 0)):
        self.tb = Bench(dut, REPORT, SPEC)
        self.rng, self.np_rng = self.tb.rngs(name)
        self.i, self.d = self.tb.source("i", stall[0]), self.tb.sink("d", stall[1])

    async def run(self, beats, expect, label, check_cycles) -> int:
        want = SPEC.cycles(len(beats)) if check_cycles else None
        return await self.tb.stream(self.i, self.d, beats, expect, label, want,
                                    SPEC.latency, count="tiles")

    async def tiles(self, tiles, label, check_cycles=True) -> int:
        """Independent logical 4x8x4 tiles ``(values, codes, b, c)``."""
        return await self.run([beat(*t) for t in tiles],
                              [sparse_mac_tile(*t, W, SIGNED, ACC)[0] for t in tiles], label,
                              check_cycles)

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
            assert SPEC.gemm_cycles(m, b.shape[0], n) == SPEC.cycles(len(steps))
        return bad

    def random_tile(self, raw_codes=False):
        np_rng = self.np_rng
        if raw_codes:
            values, codes = np_rng.integers(LO, HI + 1, (4, 4)), np_rng.integers(0, 16, (4, 2))
        else:
            values, codes = compress(prune_2_4(np_rng.integers(LO, HI + 1, (4, 8))))
        return (values, codes, np_rng.integers(LO, HI + 1, (8, 4)),
                np_rng.integers(CLO, CHI, (4, 4), endpoint=True))


@cocotb.test()
async def test_random_tiles(dut):
    """Pruned random tiles and tiles with random raw codes, extremes; exact cycles."""
    core = Core(dut, "test_random_tiles")
    tb = core.tb
    await tb.start()
    bad = await core.tiles([core.random_tile() for _ in range(40)], "pruned tiles")
    bad += await tb.flag("error", 0, "valid tiles")
    await RisingEdge(dut.clk)
    ext = [(np.full((4, 4), v), np.full((4, 2), 0b1110), np.full((8, 4), v),
            np.full((4, 4), cv)) for v in (LO, HI) for cv in (CLO, CHI)]
    bad += await core.tiles(ext, "extremes")
    bad += await core.tiles([core.random_tile(True) for _ in range(40)], "raw codes")
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_output_held_fills_the_fifo(dut):
    """``d`` not ready for a long time while tiles stream in: the core accepts exactly as
    many tiles as it has credits (its output FIFO's depth), then holds ``i`` off; after
    ``d`` resumes every tile comes out, exact and in order."""
    core = Core(dut, "test_output_held_fills_the_fifo")
    await core.tb.start()
    credits = CreditQueue.depth_for(SPEC.latency)
    tiles = [core.random_tile() for _ in range(3 * credits)]
    bad, accepted = await core.tb.stream_held(
        core.i, core.d, [beat(*t) for t in tiles],
        [sparse_mac_tile(*t, W, SIGNED, ACC)[0] for t in tiles], "output held",
        4 * credits + 20, SPEC.latency)
    REPORT["accepted_while_held"] = accepted
    if accepted != credits:
        dut._log.error("accepted %d tiles while d was held, expected %d credits",
                       accepted, credits)
        bad += 1
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_all_codes(dut):
    """Each of the 16 codes in each of the 8 group positions; the flag rises exactly for
    the invalid ones and clears on reset."""
    core = Core(dut, "test_all_codes")
    tb, np_rng = core.tb, core.np_rng
    await tb.start()
    bad = 0
    for code in range(16):
        await tb.reset()
        tiles = []
        for pos in range(8):
            values, _, b, c = core.random_tile()
            codes = np_rng.choice(VALID_CODES, 8)
            codes[pos] = code
            tiles.append((values, codes.reshape(4, 2), b, c))
        bad += await core.tiles(tiles, f"code {code:#06b}")
        bad += await tb.flag("error", int(not is_valid(code)), f"code {code:#06b}")
        await RisingEdge(dut.clk)
        REPORT["codes_checked"].append(code)
    REPORT.write()
    assert bad == 0


@cocotb.test(skip=not ACCUM)
async def test_gemm_shapes(dut):
    """Pruned GEMMs of random shape (M, K, N not multiples of 4 or 8); exact cycles."""
    core = Core(dut, "test_gemm_shapes")
    await core.tb.start()
    np_rng = core.np_rng
    shapes = [(1, 1, 1), (4, 8, 4), (5, 9, 3), (8, 16, 8), (3, 30, 2)]
    shapes += [tuple(int(v) for v in np_rng.integers(1, 18, 3)) for _ in range(6)]
    bad = 0
    for m, k, n in shapes:
        bad += await core.gemm(np_rng.integers(LO, HI + 1, (m, k)),
                               np_rng.integers(LO, HI + 1, (k, n)),
                               np_rng.integers(CLO // 2, CHI // 2, (m, n)), f"gemm {m}x{k}x{n}")
    REPORT.write()
    assert bad == 0


@cocotb.test(skip=not (ACCUM and REPORT["config"].get("listed")))
async def test_listed_gemms(dut):
    """The GEMM shapes of the dense-vs-sparse comparison: cycles recorded per shape."""
    core = Core(dut, "test_listed_gemms")
    await core.tb.start()
    np_rng = core.np_rng
    bad = 0
    for m, k, n in REPORT["config"]["listed"]:
        bad += await core.gemm(np_rng.integers(LO, HI + 1, (m, k)),
                               np_rng.integers(LO, HI + 1, (k, n)),
                               np.zeros((m, n), dtype=np.int64), f"listed {m}x{k}x{n}")
        REPORT["listed"].append([m, k, n, REPORT["cycles"][-1][2]])
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_stalls_and_reset(dut):
    """Random bubbles and back-pressure (tiles and GEMMs), and resets mid-stream with the
    input offered in reset."""
    core = Core(dut, "test_stalls_and_reset", stall=(0.3, 0.5))
    tb, np_rng = core.tb, core.np_rng
    await tb.start()
    bad = await core.tiles([core.random_tile() for _ in range(30)], "stalled",
                           check_cycles=False)
    if ACCUM:
        bad += await core.gemm(np_rng.integers(LO, HI + 1, (7, 21)),
                               np_rng.integers(LO, HI + 1, (21, 6)),
                               np.zeros((7, 6), dtype=np.int64), "stalled gemm",
                               check_cycles=False)
    for trial in range(3):
        noise = [beat(*core.random_tile(True)) for _ in range(20)]
        bad += await tb.interrupt(core.i, noise, f"trial {trial}")
        bad += await core.tiles([core.random_tile() for _ in range(8)], f"after reset {trial}",
                                check_cycles=False)
    bad += tb.reset_violations()
    REPORT.write()
    assert bad == 0
