"""cocotb testbench: SparseDecode (expand or select mode) against :mod:`mmfree.golden.sparse`.

Configuration: the unit's parameters (:class:`mmfree.spec.SparseDecodeSpec`) from
``$MMFREE_TB_CONFIG``. Every output field is compared; all 16 group codes are driven in
every position, and the sticky error flag is checked after each.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from mmfree.golden.sparse import compress, expand_tile, is_valid, prune_2_4, select_tile
from mmfree.golden.tensor_core import operand_range
from mmfree.sim.kit import Bench, Report
from mmfree.spec import SparseDecodeSpec

REPORT = Report(tiles=0, codes_checked=[])
SPEC: SparseDecodeSpec = REPORT.spec(SparseDecodeSpec)
MODE, W, SIGNED, ACC, ACCUM = SPEC.mode, SPEC.width, SPEC.is_signed, SPEC.acc_width, \
    SPEC.accumulate
LO, HI = operand_range(W, SIGNED)
GROUPS = 4 if MODE == "expand" else 8  #: group codes per beat


class Case:
    """One input beat and the decode unit's exact expected output."""

    def __init__(self, np_rng: np.random.Generator, codes: np.ndarray,
                 values: np.ndarray | None = None):
        rows = 4
        per_row = 2 if MODE == "expand" else 4
        self.codes = codes.reshape(rows, per_row // 2)
        self.values = (np_rng.integers(LO, HI + 1, (rows, per_row)) if values is None
                       else values.reshape(rows, per_row))
        if MODE == "expand":
            self.beat = {"values": self.values.ravel(), "meta": self.codes.ravel()}
            dense, self.invalid = expand_tile(self.values, self.codes)
            self.expect = dense.ravel()
            return
        b = np_rng.integers(LO, HI + 1, (8, 4))
        c = np_rng.integers(-(1 << (ACC - 1)), (1 << (ACC - 1)) - 1, (4, 4))
        first, last = int(np_rng.integers(2)), int(np_rng.integers(2))
        flags = {"first": first, "last": last} if ACCUM else {}
        self.beat = {"a": self.values.ravel(), "meta": self.codes.ravel(), "b": b.ravel(),
                     "c": c.ravel(), **flags}
        a, bg, self.invalid = select_tile(self.values, self.codes, b)
        self.expect = {"a": a.ravel(), "b": bg.ravel(), "c": c.ravel(), **flags}


class Decoder:
    """The bench, the input source and the output sink of one decode unit."""

    def __init__(self, dut, name: str, stall: tuple[float, float] = (0, 0)):
        self.tb = Bench(dut, REPORT, SPEC)
        self.rng, self.np_rng = self.tb.rngs(name)
        self.i, self.o = self.tb.source("i", stall[0]), self.tb.sink("o", stall[1])

    async def run(self, cases: list[Case], label: str, check_cycles: bool) -> int:
        want = SPEC.cycles(len(cases)) if check_cycles else None
        return await self.tb.stream(self.i, self.o, [c.beat for c in cases],
                                    [c.expect for c in cases], label, want, SPEC.latency,
                                    count="tiles")

    def random_cases(self, count: int, raw_codes: bool) -> list[Case]:
        """Tiles compressed from pruned random matrices, or with random raw 4-bit codes."""
        np_rng, cases = self.np_rng, []
        for _ in range(count):
            if raw_codes:
                cases.append(Case(np_rng, np_rng.integers(0, 16, GROUPS)))
            else:
                values, codes = compress(prune_2_4(np_rng.integers(LO, HI + 1,
                                                                   (4, GROUPS))))
                cases.append(Case(np_rng, codes, values))
        return cases


@cocotb.test()
async def test_all_codes(dut):
    """Every one of the 16 group codes in every position; the flag rises exactly for the
    ten invalid ones, stays up over later valid tiles, and clears on reset."""
    dec = Decoder(dut, "test_all_codes")
    tb, np_rng = dec.tb, dec.np_rng
    await tb.start()
    bad = 0
    for code in range(16):
        await tb.reset()
        bad += await tb.flag("error", 0, f"reset before code {code:#06b}")
        await RisingEdge(dut.clk)
        cases = [Case(np_rng, np.full(GROUPS, code)) for _ in range(3)]
        # and each position alone, the others valid
        for pos in range(GROUPS):
            codes = np_rng.choice([0b0100, 0b1000, 0b1100, 0b1001, 0b1101, 0b1110], GROUPS)
            codes[pos] = code
            cases.append(Case(np_rng, codes))
        bad += await dec.run(cases, f"code {code:#06b}", check_cycles=True)
        bad += await tb.flag("error", int(not is_valid(code)), f"code {code:#06b}")
        await RisingEdge(dut.clk)
        if not is_valid(code):  # sticky over valid tiles
            ok = [Case(np_rng, np.full(GROUPS, 0b0100)) for _ in range(2)]
            bad += await dec.run(ok, "valid after", check_cycles=False)
            bad += await tb.flag("error", 1, "valid tiles after an invalid code")
            await RisingEdge(dut.clk)
        REPORT["codes_checked"].append(code)
    await tb.reset()
    bad += await tb.flag("error", 0, "the final reset")
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_random_tiles(dut):
    """Compressed tiles of pruned random matrices, then random raw codes; exact cycles."""
    dec = Decoder(dut, "test_random_tiles")
    await dec.tb.start()
    bad = 0
    for raw in (False, True):
        bad += await dec.run(dec.random_cases(40, raw), f"random (raw codes={raw})",
                             check_cycles=True)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_stalls_and_reset(dut):
    """Random bubbles and back-pressure, and resets in the middle of a stream with the
    input offered in reset."""
    dec = Decoder(dut, "test_stalls_and_reset", stall=(0.3, 0.5))
    tb = dec.tb
    await tb.start()
    bad = await dec.run(dec.random_cases(40, False), "stalled", check_cycles=False)
    for trial in range(3):
        noise = [c.beat for c in dec.random_cases(20, True)]
        bad += await tb.interrupt(dec.i, noise, f"trial {trial}")
        bad += await dec.run(dec.random_cases(10, False), f"after reset {trial}",
                             check_cycles=False)
    bad += tb.reset_violations()
    REPORT.write()
    assert bad == 0
