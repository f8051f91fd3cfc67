"""A cocotb harness for units with one input stream ``i`` and one output stream of tiles.

It clocks and resets the DUT, streams input beats, collects outputs, compares each output
element with the expected arrays, checks that nothing extra comes out, and (optionally)
checks the cycle count ``len(beats) + latency``. Results are accumulated in a report dict
that the testbench writes to ``$MMFREE_TB_REPORT``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from .stream import StreamSink, StreamSource, to_signed

PERIOD_NS = 10


def new_report(config: dict) -> dict:
    """The counters every tile testbench reports."""
    return {"config": config, "tiles": 0, "outputs": 0, "mismatches": 0, "cycle_checks": 0,
            "cycle_mismatches": 0, "tests": {}}


def signed_elements(width: int, count: int, shape: tuple[int, ...],
                    signed: bool = True) -> Callable[[int], np.ndarray]:
    """A decoder of ``count`` ``width``-bit payload elements (element 0 lowest)."""
    mask = (1 << width) - 1

    def decode(value: int) -> np.ndarray:
        raw = [(value >> (width * e)) & mask for e in range(count)]
        return np.array([to_signed(v, width) if signed else v for v in raw]).reshape(shape)
    return decode


class TileHarness:
    """Clock, reset, input source ``i``, output sink ``out`` of one DUT."""

    def __init__(self, dut: SimHandleBase, rng: random.Random, report: dict,
                 decode: Callable[[int], np.ndarray], latency: int, out: str = "d",
                 stall: tuple[float, float] = (0, 0)) -> None:
        self.dut, self.report, self.decode, self.latency = dut, report, decode, latency
        dut.rst.value = 1
        self.i = StreamSource(dut, "i", dut.clk, PERIOD_NS, rng, stall[0])
        self.d = StreamSink(dut, out, dut.clk, PERIOD_NS, rng, stall[1])

    async def start(self) -> None:
        Clock(self.dut.clk, PERIOD_NS, unit="ns").start()
        await self.reset()
        self.i.start()
        self.d.start()

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0

    async def interrupt_with_reset(self, beats: list[int], rng: random.Random,
                                   label: str) -> int:
        """Start streaming ``beats``, then reset mid-stream while an input is offered.

        Returns the problems seen: the input accepted during reset, or an output valid (or
        the DUT's ``error`` flag set) right after it. The drivers are restarted afterwards
        with empty queues, so the next :meth:`run` starts from a clean pipeline.
        """
        dut, log = self.dut, self.dut._log
        self.i.send(beats)
        await ClockCycles(dut.clk, rng.randint(2, max(2, len(beats))))
        self.i.stop()
        self.d.stop()
        self.i.valid.value = 1
        dut.rst.value = 1
        await ReadOnly()
        bad = 0
        if int(self.i.ready.value):
            log.error("%s: input accepted while reset is asserted", label)
            bad += 1
        await RisingEdge(dut.clk)
        self.i.valid.value = 0
        await self.reset(rng.randint(1, 3))
        await ReadOnly()
        if int(self.d.valid.value):
            log.error("%s: output valid right after reset", label)
            bad += 1
        if hasattr(dut, "error") and int(dut.error.value):
            log.error("%s: error flag not cleared by reset", label)
            bad += 1
        await RisingEdge(dut.clk)
        self.i.start()
        self.d.start()
        return bad

    async def run_output_held(self, beats: list[int], expect: list[np.ndarray], label: str,
                              hold: int) -> tuple[int, int]:
        """:meth:`run` with the output not ready for the first ``hold`` cycles; returns the
        mismatches and the number of input beats accepted while the output was held."""
        self.d.stop()
        self.i.sent_cycles.clear()
        task = cocotb.start_soon(self.run(beats, expect, label, check_cycles=False))
        await ClockCycles(self.dut.clk, hold)
        accepted = len(self.i.sent_cycles)
        self.d.start()
        return await task, accepted

    async def run(self, beats: list[int], expect: list[np.ndarray], label: str,
                  check_cycles: bool) -> int:
        """Send ``beats``, collect ``len(expect)`` outputs, compare; returns mismatches.

        With ``check_cycles`` (streams without stalls) the measured cycles, first input
        transfer to last output transfer inclusive, must equal ``len(beats) + latency``.
        """
        self.i.sent_cycles.clear()
        self.d.received.clear()
        self.d.cycles.clear()
        self.i.send(beats)
        for _ in range(50 * (len(beats) + self.latency) + 100):
            await RisingEdge(self.dut.clk)
            if len(self.d.received) >= len(expect):
                break
        # Drain: anything arriving after the expected outputs is an error too.
        await ClockCycles(self.dut.clk, self.latency + 2)
        got = [self.decode(v) for v in self.d.received]
        log = self.dut._log
        bad = 0
        if len(got) != len(expect):
            log.error("%s: expected %d outputs, got %d", label, len(expect), len(got))
            bad += abs(len(expect) - len(got))
        for t, (g, e) in enumerate(zip(got, expect, strict=False)):
            wrong = int(np.sum(g != e))
            bad += wrong
            if wrong and bad <= 40:
                log.error("%s: output %d: got\n%s\nexpected\n%s", label, t, g, e)
        self.report["tiles"] += len(got)
        self.report["outputs"] += sum(int(g.size) for g in got)
        self.report["mismatches"] += bad
        if check_cycles and got:
            measured = self.d.cycles[-1] - self.i.sent_cycles[0] + 1
            want = len(beats) + self.latency
            self.report["cycle_checks"] += 1
            self.report.setdefault("cycles", []).append([label, len(beats), measured, want])
            if measured != want:
                self.report["cycle_mismatches"] += 1
                log.error("%s: %d beats took %d cycles, formula says %d", label, len(beats),
                          measured, want)
                bad += 1
        return bad
