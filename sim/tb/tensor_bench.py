"""cocotb throughput benchmark: back-to-back GEMM tiles through the tensor core.

One coroutine drives the input and samples the output each cycle (no stalls); payloads are
encoded up front (from the core's port layouts) as integers. Every result tile is compared
with the golden model. Reports cycles, tiles and wall-clock time to ``$MMFREE_TB_REPORT``.
"""

import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from mmfree.golden.tensor_core import gemm_schedule, tiled_gemm
from mmfree.sim.kit import PERIOD_NS, Report, component_of, port_codecs
from mmfree.spec import TensorCoreSpec

REPORT = Report()
SPEC = REPORT.spec(TensorCoreSpec).replace(accumulate=True)
W, ACC, BEATS = SPEC.width, SPEC.acc_width, int(REPORT["config"]["beats"])


@cocotb.test()
async def stream(dut):
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    codec = port_codecs(component_of(SPEC))
    # a GEMM of about BEATS tile steps: 4 K-tiles per output tile
    side = max(1, round((BEATS / 4) ** 0.5))
    m = n = 4 * side
    k = 16
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    a, b = rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, (k, n))
    c = rng.integers(-1000, 1000, (m, n))
    steps = list(gemm_schedule(a, b, c))
    beats = [codec["i"].encode({"a": s.a.ravel(), "b": s.b.ravel(), "c": s.c.ravel(),
                                "first": int(s.first), "last": int(s.last)}) for s in steps]
    d = tiled_gemm(a, b, c, W, True, ACC)
    expect = [d[4 * s.i:4 * s.i + 4, 4 * s.j:4 * s.j + 4] for s in steps if s.last]

    Clock(dut.clk, PERIOD_NS, unit="ns").start()
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
            got.append(codec["d"].decode(int(dut.d__payload.value)))
    wall = time.perf_counter() - t0
    mismatches = int(sum(np.sum(g != e.ravel()) for g, e in zip(got, expect, strict=True)))
    REPORT.update(cycles=cycles, tiles=len(beats), wall_s=wall, cycles_per_s=cycles / wall,
                  tiles_per_s=len(beats) / wall, outputs=16 * len(got), mismatches=mismatches,
                  expected_cycles=int(SPEC.cycles(len(beats))))
    REPORT.write()
    assert mismatches == 0
