"""cocotb drivers for Amaranth ``lib.stream`` valid/ready interfaces.

Both classes follow one clocking discipline, which behaves the same on every simulator:
right after a rising edge they drive the next cycle's values, then in the read-only phase of
that cycle they sample ``valid & ready``; a beat seen there transfers at the next rising edge.
Each transfer is recorded with its cycle index (simulation time / clock period), so a
testbench can measure latency and throughput exactly.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.task import Task
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time


def _cycle(period_ns: float) -> int:
    return round(get_sim_time("ns") / period_ns)


class _StreamEnd:
    """Handles of one ``<prefix>__valid/ready/payload`` interface and a driving task."""

    def __init__(self, dut: SimHandleBase, prefix: str, clk: SimHandleBase, period_ns: float,
                 rng: random.Random, stall: float) -> None:
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clk, self.period, self.rng, self.stall = clk, period_ns, rng, stall
        self._task: Task | None = None

    def start(self) -> None:
        """Start driving the interface from the next rising edge."""
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        """Stop driving (e.g. before a reset) and deassert this end's handshake signal."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._idle()

    def _idle(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        raise NotImplementedError


class StreamSource(_StreamEnd):
    """Drives ``<prefix>__valid`` / ``__payload`` and honours ``__ready``.

    ``stall`` is the probability of a bubble (``valid`` low) before each beat. A presented
    beat is held until it transfers, as the stream protocol requires. :meth:`stop` drops
    pending beats.
    """

    def __init__(self, dut: SimHandleBase, prefix: str, clk: SimHandleBase, period_ns: float,
                 rng: random.Random, stall: float = 0.0) -> None:
        super().__init__(dut, prefix, clk, period_ns, rng, stall)
        self.queue: deque[int] = deque()
        self.sent_cycles: list[int] = []
        self._current: int | None = None
        self.valid.value = 0

    def send(self, beats: Iterable[int]) -> None:
        """Queue payload integers; they go out in order."""
        self.queue.extend(beats)

    @property
    def idle(self) -> bool:
        """True when every queued beat has transferred."""
        return not self.queue and self._current is None

    def _idle(self) -> None:
        self.queue.clear()
        self._current = None
        self.valid.value = 0

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.clk)
            if self._current is None and self.queue and self.rng.random() >= self.stall:
                self._current = self.queue.popleft()
                self.payload.value = self._current
                self.valid.value = 1
            elif self._current is None:
                self.valid.value = 0
            await ReadOnly()
            if self._current is not None and int(self.ready.value):
                self.sent_cycles.append(_cycle(self.period))
                self._current = None


class StreamSink(_StreamEnd):
    """Drives ``<prefix>__ready`` and collects ``__payload`` on every transfer.

    ``stall`` is the probability that ``ready`` is low in a cycle.
    """

    def __init__(self, dut: SimHandleBase, prefix: str, clk: SimHandleBase, period_ns: float,
                 rng: random.Random, stall: float = 0.0) -> None:
        super().__init__(dut, prefix, clk, period_ns, rng, stall)
        self.received: list[int] = []  #: raw (unsigned) payload integers
        self.cycles: list[int] = []
        self.ready.value = 0

    def _idle(self) -> None:
        self.ready.value = 0

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.clk)
            ready = self.rng.random() >= self.stall
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and int(self.valid.value):
                self.received.append(int(self.payload.value))
                self.cycles.append(_cycle(self.period))


def pack(values: Iterable[int], width: int) -> int:
    """Concatenate ``values`` into one integer, element 0 in the low ``width`` bits."""
    mask = (1 << width) - 1
    out = 0
    for i, v in enumerate(values):
        out |= (int(v) & mask) << (i * width)
    return out


def to_signed(value: int, width: int) -> int:
    """Read a ``width``-bit unsigned integer as two's complement."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value
