# amaranth: UnusedElaboratable=no
"""Testbench: C ternary cores fed over C AXI ports from cocotbext-axi RAMs.

Each core's port has its own memory (a channel) with the configuration's latency
(``mem_latency``) and R bandwidth limit (``mem_rate`` ``[n, d]``). Each product's matrix
is split into ``cores`` blocks of rows; every row sum is compared with
:func:`mmfree.golden.ternary.ternary_matvec`, and the cycles from the command to the last
row sum with :meth:`mmfree.spec.FetchedProductSpec.cycles` (``cycle_table``: rows, K,
measured, predicted, R beats of all ports).
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from mmfree.golden.ternary import ternary_matvec
from mmfree.golden.weight_image import image_beats, weight_image
from mmfree.sim.kit import Bench, Report
from mmfree.sim.kit.axi_memory import AxiReadMemory
from mmfree.spec import FetchedProductSpec

REPORT = Report(products=0, cycle_table=[], resets=0)
SPEC = REPORT.spec(FetchedProductSpec)
CFG = REPORT["config"]
LATENCY = int(CFG.get("mem_latency", 8))
RATE = tuple(CFG.get("mem_rate", [1, 1]))
STALL = float(CFG.get("stall", 0.2))
SHAPES = CFG.get("shapes", None)  # [[M, K], ...] for the cycle runs
MEM_BYTES = 1 << 20
C = SPEC.cores
LO = -(1 << (SPEC.act_width - 1))
HI = (1 << (SPEC.act_width - 1)) - 1


def split(w):
    """Core c's block of rows: R = ceil(M / cores) each, the last padded with zero rows."""
    r = -(-w.shape[0] // C)
    padded = np.zeros((r * C, w.shape[1]), dtype=np.int64)
    padded[:w.shape[0]] = w
    return r, [padded[c * r:(c + 1) * r] for c in range(C)]


async def product(tb, mems, x_src, cmd, sinks, w, x, label, timed=False):
    """One product: load x, then the command; collect and compare every core's row sums.
    Returns the mismatches (and records the cycles with ``timed``)."""
    r, blocks = split(w)
    g = -(-w.shape[1] // SPEC.lanes)
    base = 64 * int(tb.rng.randint(0, 8)) * (SPEC.data_width // 8)
    for mem, blk in zip(mems, blocks, strict=True):
        mem.write(base, weight_image(blk, SPEC.lanes, SPEC.packed))
        mem.clear_requests()
    xs = np.zeros(g * SPEC.lanes, dtype=np.int64)
    xs[:w.shape[1]] = x
    for s in sinks:
        s.clear()
    x_src.send([{"data": list(xs[i * SPEC.lanes:(i + 1) * SPEC.lanes]), "last": int(i == g - 1)}
                for i in range(g)])
    while not x_src.idle:
        await ClockCycles(tb.dut.clk, 1)
    await ClockCycles(tb.dut.clk, 2)
    cmd.sent_cycles.clear()
    cmd.send([{"addr": [base] * C, "rows": r, "groups": g}])
    budget = 40 * r * g + 50 * LATENCY + 500
    for s in sinks:
        await tb.collect(s, r, budget, 0)
    await ClockCycles(tb.dut.clk, SPEC.latency + 4)
    want = ternary_matvec(np.vstack(blocks), xs[:w.shape[1]], SPEC.act_width, SPEC.acc_width)
    got = [v for s in sinks for v in s.values()]
    bad = tb.report.compare(tb.log, label, got, list(want), count="products")
    if timed and all(len(s) for s in sinks):
        measured = max(s.cycles[-1] for s in sinks) - cmd.sent_cycles[0] + 1
        predicted = float(SPEC.cycles(r * C, w.shape[1], LATENCY, RATE[0] / RATE[1]))
        beats = C * image_beats(r, g, SPEC.lanes, SPEC.packed, SPEC.data_width)
        tb.report["cycle_table"].append([w.shape[0], w.shape[1], measured, predicted, beats])
        tb.log.info("%s: %d cycles, formula %.1f", label, measured, predicted)
    return bad


def setup(tb, stall=0.0):
    mems = [AxiReadMemory(tb.dut, f"axi{c}", size=MEM_BYTES, latency=LATENCY, rate=RATE)
            for c in range(C)]
    return mems, tb.source("x"), tb.source("cmd"), [tb.sink(f"y{c}", stall) for c in range(C)]


def weights(np_rng, m, k):
    return np_rng.integers(-1, 2, size=(m, k))


def acts(np_rng, k):
    return np_rng.integers(LO, HI + 1, size=k)


@cocotb.test()
async def test_products(dut):
    """Random shapes (M not a multiple of the cores, K not of the lanes), extremes
    (all -1 weights with the most negative activations), random back-pressure on y."""
    tb = Bench(dut, REPORT, SPEC)
    _, np_rng = tb.rngs("test_products")
    mems, x_src, cmd, sinks = setup(tb, STALL)
    await tb.start()
    bad = 0
    for i in range(4):
        m, k = int(np_rng.integers(1, 4 * C + 2)), int(np_rng.integers(1, 5 * SPEC.lanes))
        bad += await product(tb, mems, x_src, cmd, sinks, weights(np_rng, m, k),
                             acts(np_rng, k), f"product {i} ({m}x{k})")
    k = 3 * SPEC.lanes
    bad += await product(tb, mems, x_src, cmd, sinks, np.full((2 * C, k), -1),
                         np.full(k, LO), "extremes")
    bad += await tb.flag("error", 0, "the products")
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_cycles(dut):
    """Results always ready: cycles from the command to the last row sum vs the spec."""
    tb = Bench(dut, REPORT, SPEC)
    _, np_rng = tb.rngs("test_cycles")
    mems, x_src, cmd, sinks = setup(tb)
    await tb.start()
    bad = 0
    for m, k in SHAPES or [[4 * C, 4 * SPEC.lanes], [32 * C, 8 * SPEC.lanes]]:
        bad += await product(tb, mems, x_src, cmd, sinks, weights(np_rng, m, k),
                             acts(np_rng, k), f"cycles {m}x{k}", timed=True)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_reset_mid_product(dut):
    """Reset while the cores stream their weights; the next product must be exact."""
    tb = Bench(dut, REPORT, SPEC)
    rng, np_rng = tb.rngs("test_reset_mid_product")
    mems, x_src, cmd, sinks = setup(tb, STALL)
    await tb.start()
    bad = 0
    k = 4 * SPEC.lanes
    w = weights(np_rng, 8 * C, k)
    task = cocotb.start_soon(product(tb, mems, x_src, cmd, sinks, w, acts(np_rng, k),
                                     "interrupted"))
    await ClockCycles(dut.clk, rng.randint(8, 8 + LATENCY + 30))
    task.cancel()
    await tb.reset(2, offer=[x_src, cmd])
    REPORT["resets"] += 1
    bad += await tb.flag("error", 0, "the reset")
    await ClockCycles(dut.clk, 2)
    # (the interrupted product was cancelled before its comparison: nothing of it counts)
    bad += await product(tb, mems, x_src, cmd, sinks, weights(np_rng, 3 * C, k),
                         acts(np_rng, k), "after the reset")
    bad += tb.reset_violations()
    REPORT.write()
    assert bad == 0
