"""cocotb throughput benchmark: back-to-back GEMM tiles through the tensor core.

One coroutine drives the input and samples the output each cycle (no stalls); payloads are
prepared up front as wide integers. Every result tile is compared with the golden model.
Reports cycles, tiles and wall-clock time to ``$MMFREE_TB_REPORT``.
"""

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from mmfree.golden.tensor_core import gemm_schedule, tiled_gemm
from mmfree.sim.stream import pack, to_signed

CFG = json.loads(os.environ["MMFREE_TB_CONFIG"])
W, ACC, BEATS = int(CFG["width"]), int(CFG["acc_width"]), int(CFG["beats"])


@cocotb.test()
async def stream(dut):
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    # a GEMM of about BEATS tile steps: 4 K-tiles per output tile
    side = max(1, round((BEATS / 4) ** 0.5))
    m = n = 4 * side
    k = 16
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    a, b = rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, (k, n))
    c = rng.integers(-1000, 1000, (m, n))
    steps = list(gemm_schedule(a, b, c))
    top = 32 * W + 16 * ACC
    beats = [pack(s.a.ravel(), W) | pack(s.b.ravel(), W) << 16 * W
             | pack(s.c.ravel(), ACC) << 32 * W | int(s.first) << top | int(s.last) << top + 1
             for s in steps]
    d = tiled_gemm(a, b, c, W, True, ACC)
    expect = [d[4 * s.i:4 * s.i + 4, 4 * s.j:4 * s.j + 4] for s in steps if s.last]

    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.d__ready.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    got = []
    i = cycles = 0
    t0 = time.perf_counter()
    while len(got) < len(expect):
        await RisingEdge(dut.clk)
        cycles += 1
        if i < len(beats):
            dut.i__payload.value = beats[i]
            dut.i__valid.value = 1
        else:
            dut.i__valid.value = 0
        await ReadOnly()
        if i < len(beats) and int(dut.i__ready.value):
            i += 1
        if int(dut.d__valid.value):
            v = int(dut.d__payload.value)
            got.append(np.array([to_signed(v >> (ACC * e), ACC) for e in range(16)]))
    wall = time.perf_counter() - t0
    mismatches = int(sum(np.sum(g != e.ravel()) for g, e in zip(got, expect, strict=True)))
    report = {"cycles": cycles, "tiles": len(beats), "wall_s": wall,
              "cycles_per_s": cycles / wall, "tiles_per_s": len(beats) / wall,
              "outputs": 16 * len(got), "mismatches": mismatches,
              "expected_cycles": len(beats) + 3}
    with open(os.environ["MMFREE_TB_REPORT"], "w") as f:
        json.dump(report, f)
    assert mismatches == 0
