"""cocotb throughput benchmark: one long back-to-back stream through the ternary core.

A single coroutine drives both inputs and samples the output each cycle (no stalls), with
payloads encoded up front (from the core's port layouts) as integers for the
``w__payload``/``x__payload`` ports. Every output is still compared with the golden model.
Reports simulated cycles and wall-clock time of the streaming loop to ``$MMFREE_TB_REPORT``.
"""

import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from mmfree.golden.ternary import encode_codes, ternary_matvec
from mmfree.sim.kit import PERIOD_NS, Report, component_of, port_codecs
from mmfree.spec import TernaryCoreSpec

REPORT = Report()
SPEC = REPORT.spec(TernaryCoreSpec)
N, ACC, BEATS = SPEC.lanes, SPEC.acc_width, int(REPORT["config"]["beats"])


@cocotb.test()
async def stream(dut):
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    codec = port_codecs(component_of(SPEC))
    groups = 4
    m = max(1, BEATS // groups)
    k = groups * N
    w = rng.integers(-1, 2, (m, k))
    x = rng.integers(-128, 128, k)
    expect = ternary_matvec(w, x, 8, ACC)
    codes = encode_codes(w).reshape(m * groups, N)
    w_beats = [codec["w"].encode({"codes": codes[i], "last": int(i % groups == groups - 1)})
               for i in range(m * groups)]
    x_beats = [codec["x"].encode(x[g * N:(g + 1) * N]) for g in range(groups)]

    Clock(dut.clk, PERIOD_NS, unit="ns").start()
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
            got.append(codec["y"].decode(int(dut.y__payload.value)))
    wall = time.perf_counter() - t0
    mismatches = int(np.sum(np.array(got) != expect))
    REPORT.update(cycles=cycles, wall_s=wall, cycles_per_s=cycles / wall, outputs=len(got),
                  mismatches=mismatches, expected_cycles=int(SPEC.cycles(m, k)))
    REPORT.write()
    assert mismatches == 0
