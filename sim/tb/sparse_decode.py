"""cocotb testbench: SparseDecode (expand or select mode) against :mod:`mmfree.golden.sparse`.

Configuration from ``$MMFREE_TB_CONFIG`` (JSON: mode, width, is_signed, acc_width,
accumulate). Every output field is compared; all 16 group codes are driven in every
position, and the sticky error flag is checked after each.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from mmfree.golden.sparse import compress, expand_tile, is_valid, prune_2_4, select_tile
from mmfree.golden.tensor_core import operand_range
from mmfree.sim.stream import pack
from mmfree.sim.tiles import TileHarness, new_report, signed_elements

CFG = json.loads(os.environ.get("MMFREE_TB_CONFIG", "{}"))
MODE = CFG.get("mode", "expand")
W = int(CFG.get("width", 8))
SIGNED = bool(CFG.get("is_signed", True))
ACC = int(CFG.get("acc_width", 32))
ACCUM = bool(CFG.get("accumulate", False))
LO, HI = operand_range(W, SIGNED)
REPORT = {**new_report(CFG), "codes_checked": []}


def _write_report() -> None:
    with open(os.environ["MMFREE_TB_REPORT"], "w") as f:
        json.dump(REPORT, f, indent=1)


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
            self.beat = pack(self.values.ravel(), W) | pack(self.codes.ravel(), 4) << 8 * W
            dense, self.invalid = expand_tile(self.values, self.codes)
            self.expect = dense.ravel()
            return
        self.b = np_rng.integers(LO, HI + 1, (8, 4))
        self.c = np_rng.integers(-(1 << (ACC - 1)), (1 << (ACC - 1)) - 1, (4, 4))
        self.first, self.last = bool(np_rng.integers(2)), bool(np_rng.integers(2))
        self.beat = (pack(self.values.ravel(), W) | pack(self.codes.ravel(), 4) << 16 * W
                     | pack(self.b.ravel(), W) << (16 * W + 32)
                     | pack(self.c.ravel(), ACC) << (48 * W + 32))
        top = 48 * W + 32 + 16 * ACC
        if ACCUM:
            self.beat |= int(self.first) << top | int(self.last) << (top + 1)
        a, bg, self.invalid = select_tile(self.values, self.codes, self.b)
        flags = [int(self.first), int(self.last)] if ACCUM else []
        self.expect = np.concatenate([a.ravel(), bg.ravel(), self.c.ravel(), flags])


def decode_output(value: int) -> np.ndarray:
    if MODE == "expand":
        return signed_elements(W, 16, (16,), SIGNED)(value)
    a = signed_elements(W, 16 + 64, (80,), SIGNED)(value)
    c = signed_elements(ACC, 16, (16,))(value >> (80 * W))
    flags = [(value >> (80 * W + 16 * ACC + f)) & 1 for f in range(2)] if ACCUM else []
    return np.concatenate([a, c, flags])


def harness(dut, rng, stall=(0, 0)) -> TileHarness:
    return TileHarness(dut, rng, REPORT, decode_output, 1, out="o", stall=stall)


def _rngs(dut, name: str) -> tuple[random.Random, np.random.Generator]:
    seed = cocotb.RANDOM_SEED
    dut._log.info("%s: seed %d (%s mode, width=%d signed=%s)", name, seed, MODE, W, SIGNED)
    REPORT["tests"][name] = seed
    return random.Random(seed), np.random.default_rng(seed)


def random_cases(np_rng: np.random.Generator, count: int, raw_codes: bool) -> list[Case]:
    """Tiles compressed from pruned random matrices, or with random raw 4-bit codes."""
    groups = 1 if MODE == "expand" else 2
    cases = []
    for _ in range(count):
        if raw_codes:
            cases.append(Case(np_rng, np_rng.integers(0, 16, 4 * groups)))
        else:
            dense = prune_2_4(np_rng.integers(LO, HI + 1, (4, 4 * groups)))
            values, codes = compress(dense)
            cases.append(Case(np_rng, codes, values))
    return cases


async def _check_flag(dut, expect: int, what: str) -> int:
    await ReadOnly()
    got = int(dut.error.value)
    if got != expect:
        dut._log.error("error flag %d after %s, expected %d", got, what, expect)
        return 1
    return 0


@cocotb.test()
async def test_all_codes(dut):
    """Every one of the 16 group codes in every position; the flag rises exactly for the
    ten invalid ones, stays up over later valid tiles, and clears on reset."""
    rng, np_rng = _rngs(dut, "test_all_codes")
    h = harness(dut, rng)
    await h.start()
    groups = 4 if MODE == "expand" else 8
    bad = 0
    for code in range(16):
        await h.reset()
        bad += await _check_flag(dut, 0, f"reset before code {code:#06b}")
        await RisingEdge(dut.clk)
        cases = [Case(np_rng, np.full(groups, code)) for _ in range(3)]
        # and each position alone, the others valid
        for pos in range(groups):
            codes = np_rng.choice([0b0100, 0b1000, 0b1100, 0b1001, 0b1101, 0b1110], groups)
            codes[pos] = code
            cases.append(Case(np_rng, codes))
        bad += await h.run([c.beat for c in cases], [c.expect for c in cases],
                           f"code {code:#06b}", check_cycles=True)
        bad += await _check_flag(dut, int(not is_valid(code)), f"code {code:#06b}")
        await RisingEdge(dut.clk)
        if not is_valid(code):  # sticky over valid tiles
            ok = [Case(np_rng, np.full(groups, 0b0100)) for _ in range(2)]
            bad += await h.run([c.beat for c in ok], [c.expect for c in ok], "valid after",
                               check_cycles=False)
            bad += await _check_flag(dut, 1, "valid tiles after an invalid code")
            await RisingEdge(dut.clk)
        REPORT["codes_checked"].append(code)
    await h.reset()
    bad += await _check_flag(dut, 0, "the final reset")
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_random_tiles(dut):
    """Compressed tiles of pruned random matrices, then random raw codes; exact cycles."""
    rng, np_rng = _rngs(dut, "test_random_tiles")
    h = harness(dut, rng)
    await h.start()
    bad = 0
    for raw in (False, True):
        cases = random_cases(np_rng, 40, raw)
        bad += await h.run([c.beat for c in cases], [c.expect for c in cases],
                           f"random (raw codes={raw})", check_cycles=True)
    _write_report()
    assert bad == 0


@cocotb.test()
async def test_stalls_and_reset(dut):
    """Random bubbles and back-pressure, and a reset in the middle of a stream."""
    rng, np_rng = _rngs(dut, "test_stalls_and_reset")
    h = harness(dut, rng, stall=(0.3, 0.5))
    await h.start()
    cases = random_cases(np_rng, 40, False)
    bad = await h.run([c.beat for c in cases], [c.expect for c in cases], "stalled",
                      check_cycles=False)
    for trial in range(3):
        noise = [c.beat for c in random_cases(np_rng, 20, True)]
        bad += await h.interrupt_with_reset(noise, rng, f"trial {trial}")
        cases = random_cases(np_rng, 10, False)
        bad += await h.run([c.beat for c in cases], [c.expect for c in cases],
                           f"after reset {trial}", check_cycles=False)
    _write_report()
    assert bad == 0
