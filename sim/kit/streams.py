"""cocotb drivers and a monitor for Amaranth ``lib.stream`` valid/ready interfaces.

Every driver follows one clocking discipline, which behaves the same on every simulator:
right after a rising edge it drives the next cycle's values, then in the read-only phase of
that cycle it samples ``valid & ready`` (and the reset); a beat seen there transfers at the
next rising edge. Each transfer is recorded with its cycle index (simulation time / clock
period), so a testbench can measure latency and throughput exactly.

**Reset.** The drivers watch the DUT's synchronous reset themselves: in a cycle where it is
asserted they drop everything in flight (the queued beats and the presented one: the DUT
discards its pipeline too) and idle from the next cycle (``valid`` / ``ready`` low) until
it is released. They also check the reset contract of the stream ends they face: an input
that is ready while the reset is asserted and a beat is offered counts in
:attr:`StreamSource.accepted_in_reset`, an output that is valid in the first cycle after
the reset in :attr:`StreamSink.valid_after_reset` (a testbench adds them to its errors).

**Pauses** (as in cocotbext-axi): an iterable of booleans. A source consumes one before it
presents each new beat (``True``: a bubble cycle first); a sink one per cycle (``True``:
``ready`` low). :func:`random_pauses` makes a seeded random pattern; an exhausted pattern
means no more pauses.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.task import Task
from cocotb.triggers import Event, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from .payload import Codec

__all__ = ["StreamMonitor", "StreamSink", "StreamSource", "random_pauses"]


def random_pauses(rng: random.Random, probability: float) -> Iterator[bool]:
    """An endless pause pattern: each entry ``True`` with ``probability`` (from ``rng``)."""
    while True:
        yield rng.random() < probability


class _StreamEnd:
    """The ``<prefix>__valid/ready/payload`` handles of one interface, its clock, reset and
    payload codec, and the cycle counter."""

    def __init__(self, dut: SimHandleBase, prefix: str, *, clock: SimHandleBase | None = None,
                 reset: SimHandleBase | None = None, codec: Codec | None = None,
                 period_ns: float = 10) -> None:
        self.dut, self.prefix = dut, prefix
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clock = clock if clock is not None else dut.clk
        self.reset = reset if reset is not None else getattr(dut, "rst", None)
        self.codec, self.period = codec, period_ns
        self._pause: Iterator[bool] | None = None
        self._task: Task | None = None

    def cycle(self) -> int:
        """The current clock cycle's index."""
        return round(get_sim_time("ns") / self.period)

    def _in_reset(self) -> bool:
        return self.reset is not None and int(self.reset.value) == 1

    def set_pause_generator(self, pauses: Iterable[bool] | None) -> None:
        """Use ``pauses`` from now on (``None``: no pauses)."""
        self._pause = iter(pauses) if pauses is not None else None

    def clear_pause_generator(self) -> None:
        self._pause = None

    def _paused(self) -> bool:
        if self._pause is None:
            return False
        try:
            return bool(next(self._pause))
        except StopIteration:
            self._pause = None
            return False

    def _start(self) -> None:
        self._task = cocotb.start_soon(self._run())

    def kill(self) -> None:
        """Stop the driver for good."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError


class StreamSource(_StreamEnd):
    """Drives ``<prefix>__valid`` / ``__payload`` and honours ``__ready``.

    :meth:`send` queues beats (values encoded by the port's :class:`~.payload.Codec`, or raw
    integers); a presented beat is held until it transfers, as the stream protocol requires.
    :attr:`sent_cycles` records the cycle of every transfer.
    """

    def __init__(self, dut: SimHandleBase, prefix: str, *, pause: Iterable[bool] | None = None,
                 **kw: Any) -> None:
        super().__init__(dut, prefix, **kw)
        self.queue: deque[int] = deque()
        self.sent_cycles: list[int] = []
        self.accepted_in_reset = 0  #: beats the DUT was ready for while in reset
        self._current: int | None = None
        self._held = False  #: handshake taken over by :meth:`hold`
        self._reset_seen = False
        self.valid.value = 0
        self.set_pause_generator(pause)
        self._start()

    def send(self, beats: Iterable[Any]) -> None:
        """Queue beats (values, encoded by the port's codec; raw integers without one);
        they go out in order."""
        for beat in beats:
            self.queue.append(int(beat) if self.codec is None else self.codec.encode(beat))

    @property
    def idle(self) -> bool:
        """True when every queued beat has transferred."""
        return not self.queue and self._current is None

    def hold(self, valid: int) -> None:
        """Take over ``valid`` (e.g. to offer a beat while the DUT is in reset) until
        :meth:`release`; queued beats are dropped."""
        self.queue.clear()
        self._current = None
        self._held = True
        self.valid.value = valid

    def release(self) -> None:
        """Hand ``valid`` back to the driver (low until the next queued beat)."""
        self._held = False
        self.valid.value = 0

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.clock)
            if self._held:
                pass
            elif self._reset_seen:
                self.valid.value = 0
            elif self._current is None and self.queue and not self._paused():
                self._current = self.queue.popleft()
                self.payload.value = self._current
                self.valid.value = 1
            elif self._current is None:
                self.valid.value = 0
            await ReadOnly()
            offered = int(self.valid.value) == 1
            if self._in_reset():
                if offered and int(self.ready.value):
                    self.accepted_in_reset += 1
                self._reset_seen = True
                self.queue.clear()
                self._current = None
                continue
            self._reset_seen = False
            if self._current is not None and int(self.ready.value):
                self.sent_cycles.append(self.cycle())
                self._current = None


class StreamSink(_StreamEnd):
    """Drives ``<prefix>__ready`` and collects ``__payload`` on every transfer.

    :attr:`received` holds the raw payload integers and :attr:`cycles` their transfer
    cycles; ``await recv()`` returns the next beat not read yet, decoded by the port's
    codec.
    """

    def __init__(self, dut: SimHandleBase, prefix: str, *, pause: Iterable[bool] | None = None,
                 **kw: Any) -> None:
        super().__init__(dut, prefix, **kw)
        self.received: list[int] = []
        self.cycles: list[int] = []
        self.valid_after_reset = 0  #: cycles the DUT's output was valid right after reset
        self._read = 0
        self._arrived = Event()
        self._reset_seen = False
        self._held = False
        self.ready.value = 0
        self.set_pause_generator(pause)
        self._start()

    def __len__(self) -> int:
        return len(self.received)

    def clear(self) -> None:
        """Forget everything received so far."""
        self.received.clear()
        self.cycles.clear()
        self._read = 0

    def decode(self, raw: int) -> Any:
        return self.codec.decode(raw) if self.codec is not None else raw

    def values(self, start: int = 0) -> list[Any]:
        """Every beat received from index ``start`` on, decoded."""
        return [self.decode(v) for v in self.received[start:]]

    async def recv(self) -> Any:
        """The next beat not read yet, decoded. If it has to wait, it returns at the clock
        edge where the beat transfers (so the caller may drive signals right away)."""
        if self._read >= len(self.received):
            while self._read >= len(self.received):
                self._arrived.clear()
                await self._arrived.wait()  # set in the read-only phase before that edge
            await RisingEdge(self.clock)
        self._read += 1
        return self.decode(self.received[self._read - 1])

    def hold(self, ready: int = 0) -> None:
        """Hold ``ready`` at ``ready`` until :meth:`release` (back-pressure on demand)."""
        self._held = True
        self.ready.value = ready

    def release(self) -> None:
        self._held = False

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.clock)
            if not self._held:
                self.ready.value = int(not self._reset_seen and not self._paused())
            await ReadOnly()
            if self._in_reset():
                self._reset_seen = True
                continue
            if self._reset_seen and int(self.valid.value):
                self.valid_after_reset += 1
            self._reset_seen = False
            if int(self.ready.value) and int(self.valid.value):
                self.received.append(int(self.payload.value))
                self.cycles.append(self.cycle())
                self._arrived.set()


class StreamMonitor(_StreamEnd):
    """Records every transfer of a stream without driving it: :attr:`received` (raw
    payloads), :attr:`cycles`; ``await recv()`` as :class:`StreamSink`."""

    def __init__(self, dut: SimHandleBase, prefix: str, **kw: Any) -> None:
        super().__init__(dut, prefix, **kw)
        self.received: list[int] = []
        self.cycles: list[int] = []
        self._read = 0
        self._arrived = Event()
        self._start()

    decode = StreamSink.decode
    recv = StreamSink.recv
    clear = StreamSink.clear

    def __len__(self) -> int:
        return len(self.received)

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.clock)
            await ReadOnly()
            if not self._in_reset() and int(self.valid.value) and int(self.ready.value):
                self.received.append(int(self.payload.value))
                self.cycles.append(self.cycle())
                self._arrived.set()
