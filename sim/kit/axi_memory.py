"""An AXI4 read memory for co-simulation: cocotbext-axi's ``AxiRamRead`` with a latency and
a bandwidth limit, so DDR4- and HBM-like channels can be emulated.

cocotbext-axi (``AxiRam``/``AxiRamRead``) answers each AR request as soon as it has sent the
previous burst, and throttles only through pause generators on its channels (``True``: the
channel idles that cycle). :class:`AxiReadMemory` keeps its memory, its AR sink and its R
source and adds:

* **latency**: a burst's first R beat transfers no earlier than ``latency`` cycles after
  its AR transfer (edge to edge, ``rready`` high); requests are accepted without limit
  (``arready`` high) and served in order, so several bursts overlap their latencies, as in
  a pipelined memory controller;
* **bandwidth**: a periodic pause pattern on R, ``rate = (n, d)``: at most ``n`` beats in
  every ``d`` cycles (:func:`duty_pauses`); or any pause generator;
* a record of every AR request (cycle, address, beats) and of the bursts in flight, for
  the protocol checks of a testbench.

Reset (the DUT's, synchronous) drops every request and beat in flight, as the memory
controller of a reset system would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.queue import Queue
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiRamRead, AxiReadBus

__all__ = ["MIN_LATENCY", "AxiReadMemory", "duty_pauses"]

#: The shortest latency the model can give: the R source drives a beat on the edge after it
#: is queued, so a beat queued right after the AR transfer transfers 2 edges later.
MIN_LATENCY = 2


def duty_pauses(n: int, d: int) -> Iterator[bool]:
    """The periodic pattern of ``n`` active cycles in every ``d`` (``n / d`` beats per cycle
    at most), the active cycles spread evenly."""
    if not 1 <= n <= d:
        raise ValueError(f"rate must be n/d with 1 <= n <= d, got {n}/{d}")
    pattern = [((i + 1) * n) // d == (i * n) // d for i in range(d)]  # True: pause
    return itertools.cycle(pattern)


class _LatencyRamRead(AxiRamRead):
    def __init__(self, bus: AxiReadBus, clock: SimHandleBase, reset: SimHandleBase | None,
                 *, latency: int, period_ns: float, size: int, mem: Any = None) -> None:
        self.latency, self.period = latency, period_ns
        self.requests: list[tuple[int, int, int]] = []  #: (cycle, address, beats) per AR
        self.max_in_flight = 0
        self._in_flight = 0
        self._pending: Queue = Queue()
        self._tasks: list[Any] = []
        super().__init__(bus, clock, reset, size=size, mem=mem)
        self.ar_channel.queue_occupancy_limit = -1  # arready high: the controller queues

    def _cycle(self) -> int:
        return round(get_sim_time("ns") / self.period)

    def _handle_reset(self, state: bool) -> None:
        super()._handle_reset(state)
        # the base class starts its own _process_read on release; it is replaced here
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        self._pending = Queue()
        self._in_flight = 0
        if not state:
            if self._process_read_cr is not None:
                self._process_read_cr.cancel()
            self._process_read_cr = None
            self._tasks = [cocotb.start_soon(self._accept()), cocotb.start_soon(self._serve())]

    async def _accept(self) -> None:
        while True:
            ar = await self.ar_channel.recv()
            now = self._cycle()
            self.requests.append((now, int(ar.araddr), int(ar.arlen) + 1))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._pending.put_nowait((now, ar))

    async def _serve(self) -> None:
        from cocotbext.axi.constants import AxiBurstType, AxiResp
        while True:
            stamp, ar = await self._pending.get()
            while self._cycle() < stamp + self.latency - MIN_LATENCY:
                await RisingEdge(self.clock)
            addr, beats = int(ar.araddr), int(ar.arlen) + 1
            num_bytes = 2 ** int(ar.arsize)
            assert num_bytes == self.byte_lanes, f"arsize {int(ar.arsize)}: narrow burst"
            assert int(ar.arburst) == AxiBurstType.INCR, f"arburst {int(ar.arburst)}"
            assert 0x1000 - (addr & 0xFFF) >= num_bytes * beats, (
                f"burst at {addr:#x} of {beats} beats crosses a 4 KiB boundary")
            for n in range(beats):
                r = self.r_channel._transaction_obj()
                r.rid = int(ar.arid)
                r.rlast = n == beats - 1
                r.rresp = AxiResp.OKAY
                word = (addr // self.byte_lanes + n) * self.byte_lanes
                r.rdata = int.from_bytes(await self._read(word, self.byte_lanes), "little")
                await self.r_channel.send(r)
            self._in_flight -= 1


class AxiReadMemory:
    """A byte-addressed memory of ``size`` bytes behind the AXI4 read port ``prefix`` of
    ``dut`` (Verilog ports ``<prefix>__ar...``/``__r...``, as
    :class:`mmfree.hdl.axi.AxiReadSignature` names them).

    ``latency``: cycles from an AR transfer to its first R transfer at the earliest (at
    least :data:`MIN_LATENCY`). ``rate``: ``(n, d)``, at most ``n`` R beats in every ``d``
    cycles; or ``pauses``, any pause generator for R (cocotbext-axi's). :meth:`write`
    stores data; :attr:`requests` lists ``(cycle, address, beats)`` of every AR transfer;
    :attr:`max_in_flight` is the most bursts seen between their AR transfer and the
    queueing of their last beat.
    """

    def __init__(self, dut: SimHandleBase, prefix: str = "axi", *, size: int = 1 << 20,
                 latency: int = MIN_LATENCY, rate: tuple[int, int] | None = None,
                 pauses: Iterable[bool] | None = None, period_ns: float = 10) -> None:
        if latency < MIN_LATENCY:
            raise ValueError(f"latency must be at least {MIN_LATENCY} cycles, got {latency}")
        bus = AxiReadBus.from_prefix(dut, f"{prefix}_")
        self.port = _LatencyRamRead(bus, dut.clk, dut.rst, latency=latency,
                                    period_ns=period_ns, size=size)
        if rate is not None:
            pauses = duty_pauses(*rate)
        if pauses is not None:
            self.port.r_channel.set_pause_generator(pauses)
        self.latency = latency

    def write(self, address: int, data: bytes) -> None:
        self.port.write(address, data)

    @property
    def requests(self) -> list[tuple[int, int, int]]:
        return self.port.requests

    @property
    def max_in_flight(self) -> int:
        return self.port.max_in_flight

    def clear_requests(self) -> None:
        self.port.requests.clear()
        self.port.max_in_flight = 0


