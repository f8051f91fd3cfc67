"""cocotb throughput benchmark: one long back-to-back stream through the ternary core.

A single coroutine drives both inputs and samples the output each cycle (no stalls), with
payloads prepared up front as wide integers for the packed ``w__payload``/``x__payload``
ports. Every output is still compared with the golden model. Reports simulated cycles and
wall-clock time of the streaming loop to ``$MMFREE_TB_REPORT``.
"""

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from mmfree.golden.ternary import encode_codes, ternary_matvec
from mmfree.sim.stream import to_signed

CFG = json.loads(os.environ["MMFREE_TB_CONFIG"])
N, ACC, BEATS = int(CFG["lanes"]), int(CFG["acc_width"]), int(CFG["beats"])


def _ints(rows: np.ndarray) -> list[int]:
    """Each row of little-endian bytes as one integer."""
    return [int.from_bytes(r.tobytes(), "little") for r in rows]


@cocotb.test()
async def stream(dut):
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    groups = 4
    m = max(1, BEATS // groups)
    k = groups * N
    w = rng.integers(-1, 2, (m, k))
    x = rng.integers(-128, 128, k)
    expect = ternary_matvec(w, x, 8, ACC)
    codes = encode_codes(w).reshape(m * groups, N)
    bits = np.stack([codes & 1, codes >> 1], axis=-1).reshape(m * groups, 2 * N)
    last = np.tile(np.arange(groups) == groups - 1, m).astype(np.uint8)[:, None]
    w_beats = _ints(np.packbits(np.hstack([bits, last]), axis=1, bitorder="little"))
    x_beats = _ints(x.astype(np.int8).view(np.uint8).reshape(groups, N))

    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.w__valid.value = 0
    dut.x__valid.value = 0
    dut.y__ready.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    got = []
    i = cycles = 0
    t0 = time.perf_counter()
    while len(got) < m:
        await RisingEdge(dut.clk)
        cycles += 1
        if i < len(w_beats):
            dut.w__payload.value = w_beats[i]
            dut.x__payload.value = x_beats[i % groups]
            dut.w__valid.value = 1
            dut.x__valid.value = 1
        else:
            dut.w__valid.value = 0
            dut.x__valid.value = 0
        await ReadOnly()
        if i < len(w_beats) and int(dut.w__ready.value):
            i += 1
        if int(dut.y__valid.value):
            got.append(to_signed(int(dut.y__payload.value), ACC))
    wall = time.perf_counter() - t0
    mismatches = int(np.sum(np.array(got) != expect))
    report = {"cycles": cycles, "wall_s": wall, "cycles_per_s": cycles / wall,
              "outputs": len(got), "mismatches": mismatches,
              "expected_cycles": m * groups + 3}
    with open(os.environ["MMFREE_TB_REPORT"], "w") as f:
        json.dump(report, f)
    assert mismatches == 0
