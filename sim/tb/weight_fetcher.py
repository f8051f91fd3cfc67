# amaranth: UnusedElaboratable=no
"""Testbench: the weight fetcher reading matrices from cocotbext-axi's AXI RAM.

The memory (:class:`mmfree.sim.kit.axi_memory.AxiReadMemory`) has the configuration's
latency (``mem_latency`` cycles) and bandwidth limit (``mem_rate``: ``[n, d]``, at most
``n`` beats per ``d`` cycles on R). Every delivered group is compared with the golden
stream (:func:`mmfree.golden.weight_image.stream_groups`); the AXI traffic is checked
(bursts of at most ``max_burst`` beats covering the image in order, at most
``outstanding`` bursts in flight, no 4 KiB crossing: the memory model asserts it); and the
cycles of unthrottled reads are compared with :meth:`mmfree.spec.WeightFetcherSpec.cycles`.
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from mmfree.golden.weight_image import image_beats, stream_groups, weight_image
from mmfree.sim.kit import Bench, Report
from mmfree.sim.kit.axi_memory import AxiReadMemory
from mmfree.spec import WeightFetcherSpec

REPORT = Report(groups=0, axi_checks=0, axi_errors=0, max_outstanding=0, resets=0,
                cycle_table=[])
SPEC = REPORT.spec(WeightFetcherSpec)
CFG = REPORT["config"]
LATENCY = int(CFG.get("mem_latency", 8))
RATE = tuple(CFG.get("mem_rate", [1, 1]))
STALL = float(CFG.get("stall", 0.3))
CONSUMER = float(CFG.get("consumer_stall", 0.0))  # test_cycles: ready low at this rate
MEM_BYTES = 1 << 18
BEAT = SPEC.data_width // 8


def expected(w):
    """The golden stream of ``w`` as the output port's values."""
    out = []
    for value, last, final in stream_groups(w, SPEC.lanes, SPEC.packed):
        if SPEC.packed:
            field = {"packed": [(value >> (8 * j)) & 0xFF for j in range(SPEC.group_bits // 8)]}
        else:
            field = {"codes": [(value >> (2 * i)) & 3 for i in range(SPEC.lanes)]}
        out.append({**field, "last": last, "final": final})
    return out


class AxiWatch:
    """Counts AR and R-last transfers on the DUT's port each cycle (outstanding bursts)."""

    def __init__(self, dut):
        self.dut, self.outstanding, self.max = dut, 0, 0
        self.task = cocotb.start_soon(self._run())

    async def _run(self):
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            await ReadOnly()
            if int(d.rst.value):
                self.outstanding = 0
                continue
            if int(d.axi__arvalid.value) and int(d.axi__arready.value):
                self.outstanding += 1
            if int(d.axi__rvalid.value) and int(d.axi__rready.value) and int(
                    d.axi__rlast.value):
                self.outstanding -= 1
            self.max = max(self.max, self.outstanding)


def check_requests(tb, mem, images, label):
    """The AR requests cover each image's beats in order with bursts of at most
    max_burst beats."""
    bad = 0
    reqs = list(mem.requests)
    for base, beats in images:
        addr, left = base, beats
        while left:
            if not reqs:
                tb.log.error("%s: missing requests for the image at %#x", label, base)
                return bad + 1
            _, a, n = reqs.pop(0)
            tb.report["axi_checks"] += 1
            if a != addr or n > SPEC.max_burst or n > left:
                tb.log.error("%s: burst at %#x of %d beats, expected at %#x (%d left)",
                             label, a, n, addr, left)
                bad += 1
                break
            addr, left = addr + n * BEAT, left - n
    if reqs:
        tb.log.error("%s: %d requests too many", label, len(reqs))
        bad += len(reqs)
    tb.report["axi_errors"] += bad
    return bad


def random_matrix(rng, rows, k):
    return rng.integers(-1, 2, size=(rows, k))


def place(np_rng, images_bytes, near_page=False):
    """Beat-aligned base addresses for images of the given lengths, not overlapping; with
    ``near_page`` the first starts a few beats before a 4 KiB boundary."""
    out, cursor = [], 0
    for i, n in enumerate(images_bytes):
        start = cursor + BEAT * int(np_rng.integers(0, 8))
        if near_page and i == 0:
            start = 4096 - BEAT * int(np_rng.integers(1, 4))
        out.append(start)
        cursor = -(-(start + n) // BEAT) * BEAT
    assert cursor <= MEM_BYTES
    return out


async def run_matrices(tb, mem, cmd, o, mats, label, np_rng, near_page=False):
    images = [weight_image(w, SPEC.lanes, SPEC.packed) for w in mats]
    bases = place(np_rng, [len(b) for b in images], near_page)
    for base, img in zip(bases, images, strict=True):
        mem.write(base, img)
    groups = [-(-w.shape[1] // SPEC.lanes) for w in mats]
    expect = [beat for w in mats for beat in expected(w)]
    mem.clear_requests()
    o.clear()
    cmd.sent_cycles.clear()
    cmd.send([{"addr": b, "rows": w.shape[0], "groups": g}
              for b, w, g in zip(bases, mats, groups, strict=True)])
    budget = 20 * (len(expect) + sum(LATENCY for _ in mats)) + 400
    await tb.collect(o, len(expect), budget, LATENCY + 8)
    bad = tb.report.compare(tb.log, label, o.values(), expect, count="groups")
    bad += check_requests(tb, mem, [
        (b, image_beats(w.shape[0], g, SPEC.lanes, SPEC.packed, SPEC.data_width))
        for b, w, g in zip(bases, mats, groups, strict=True)], label)
    return bad


def shapes(rng, count, max_rows=6, max_k=None):
    max_k = max_k or 6 * SPEC.lanes
    return [(int(rng.integers(1, max_rows + 1)), int(rng.integers(1, max_k + 1)))
            for _ in range(count)]


@cocotb.test()
async def test_matrices(dut):
    """Random matrices back to back (commands queued), random consumer back-pressure, the
    first image ending past a 4 KiB boundary; every group and every burst checked."""
    tb = Bench(dut, REPORT, SPEC)
    _, np_rng = tb.rngs("test_matrices")
    cmd, o = tb.source("cmd"), tb.sink("o", STALL)
    mem = AxiReadMemory(dut, size=MEM_BYTES, latency=LATENCY, rate=RATE)
    watch = AxiWatch(dut)
    await tb.start()
    mats = [random_matrix(np_rng, r, k) for r, k in shapes(np_rng, 5)]
    mats.append(random_matrix(np_rng, 1, 1))  # the smallest matrix: one group
    # one long enough for several full bursts
    mats.insert(0, random_matrix(np_rng, 3 + SPEC.max_burst * SPEC.groups_per_beat
                                 // 8, 8 * SPEC.lanes))
    bad = await run_matrices(tb, mem, cmd, o, mats, "matrices", np_rng, near_page=True)
    # all-zero, all +1 and all -1 (corner codes and bytes)
    for v in (0, 1, -1):
        bad += await run_matrices(tb, mem, cmd, o, [np.full((2, 3 * SPEC.lanes), v)],
                                  f"constant {v}", np_rng)
    tb.report["max_outstanding"] = max(tb.report["max_outstanding"], watch.max)
    if watch.max > SPEC.outstanding:
        tb.log.error("%d bursts in flight, outstanding=%d", watch.max, SPEC.outstanding)
        tb.report["axi_errors"] += 1
    bad += await tb.flag("error", 0, "the matrices")
    REPORT.write()
    assert bad == 0 and tb.report["axi_errors"] == 0


@cocotb.test()
async def test_cycles(dut):
    """Unthrottled consumer: cycles from the command to the last group vs the spec."""
    tb = Bench(dut, REPORT, SPEC)
    _, np_rng = tb.rngs("test_cycles")
    cmd, o = tb.source("cmd"), tb.sink("o")
    mem = AxiReadMemory(dut, size=MEM_BYTES, latency=LATENCY, rate=RATE)
    await tb.start()
    bad = 0
    g = max(1, 4 * SPEC.groups_per_beat)
    for rows in CFG.get("cycle_rows", [1, 8, 40]):
        w = random_matrix(np_rng, rows, g * SPEC.lanes)
        bad += await run_matrices(tb, mem, cmd, o, [w], f"cycles {rows}x{g}", np_rng)
        n = rows * g
        measured = o.cycles[-1] - cmd.sent_cycles[0] + 1
        predicted = float(SPEC.cycles(n, LATENCY, RATE[0] / RATE[1]))
        REPORT["cycle_table"].append([n, measured, predicted])
        REPORT["ar_cycles"] = [c - cmd.sent_cycles[0] for c, _, _ in mem.requests]
        tb.log.info("%d groups: %d cycles, formula %.1f; AR at %s, first group at %d",
                    n, measured, predicted, [c - cmd.sent_cycles[0] for c, _, _ in mem.requests],
                    o.cycles[0] - cmd.sent_cycles[0])
        await ClockCycles(dut.clk, 4)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset while a matrix streams (AR requests and R beats in flight), then a fresh matrix
    must come out whole; the reset contract of the streams and the error flag checked."""
    tb = Bench(dut, REPORT, SPEC)
    rng, np_rng = tb.rngs("test_reset_mid_stream")
    cmd, o = tb.source("cmd"), tb.sink("o", STALL)
    mem = AxiReadMemory(dut, size=MEM_BYTES, latency=LATENCY, rate=RATE)
    await tb.start()
    bad = 0
    for rep in range(3):
        w = random_matrix(np_rng, 8, 8 * SPEC.lanes)
        img = weight_image(w, SPEC.lanes, SPEC.packed)
        mem.write(0, img)
        cmd.send([{"addr": 0, "rows": 8, "groups": 8}])
        await ClockCycles(dut.clk, rng.randint(3, LATENCY + 40))
        await tb.reset(rng.randint(1, 3), offer=[cmd])
        REPORT["resets"] += 1
        o.clear()
        bad += await tb.flag("error", 0, f"reset {rep}")
        await RisingEdge(dut.clk)
        await ClockCycles(dut.clk, rng.randint(0, 3))
        mats = [random_matrix(np_rng, r, k) for r, k in shapes(np_rng, 2)]
        bad += await run_matrices(tb, mem, cmd, o, mats, f"after reset {rep}", np_rng)
    bad += tb.reset_violations()
    # an empty command raises the sticky error flag and fetches nothing
    cmd.send([{"addr": 0, "rows": 0, "groups": 3}])
    await ClockCycles(dut.clk, 4)
    bad += await tb.flag("error", 1, "an empty command")
    await RisingEdge(dut.clk)
    if len(mem.requests) != 0 and mem.requests[-1][0] > cmd.sent_cycles[-1]:
        bad += 1
    REPORT.write()
    assert bad == 0
