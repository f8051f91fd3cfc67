"""AXI4 read arbiter: N read managers share one AXI4 read port (one memory channel)."""

from __future__ import annotations

from amaranth import Cat, Const, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec.base import check_int
from ..spec.weight_fetcher import MAX_ID_WIDTH
from .axi import AxiReadSignature

__all__ = ["MAX_PORTS", "AxiReadArbiter", "source_bits"]

MAX_PORTS = 16  #: managers one arbiter takes at most (the engine's cores)


def source_bits(ports: int) -> int:
    """ARID bits the arbiter adds above a manager's ID: ``ceil(log2 ports)``."""
    return (ports - 1).bit_length()


class AxiReadArbiter(wiring.Component):
    """``ports`` AXI4 read managers on one AXI4 read port.

    Ports:

    * ``src0`` .. ``src<N-1>``: :class:`~mmfree.hdl.axi.AxiReadSignature` (``id_width``),
      flipped: the arbiter is each manager's subordinate.
    * ``axi``: :class:`~mmfree.hdl.axi.AxiReadSignature` manager of ``id_width +``
      :func:`source_bits` ID bits, towards the memory.
    * ``error``: out, sticky until reset: an R beat whose RID names no source (it is taken,
      ``rready`` high, and dropped, so the channel cannot hang on it).

    **AR**: round-robin. The requests presented on the sources are granted in turn, starting
    after the source granted last; the granted request is taken (its ``arready`` high) into
    a register, which presents it on ``axi`` the next cycle with the source's index in the
    ARID's upper bits (``arid = source << id_width | src.arid``) and holds it unchanged
    until ``axi.arready``. A source's ``arready`` is high in a cycle where it is granted
    and the register is empty or transferring (combinational from ``axi.arready``; AXI
    allows ready to depend on valid), so the register passes one request per cycle. The
    arbiter waits for nothing before presenting (valid never waits on ready), and a source
    presenting a request is granted within ``N`` grants.

    **R**: routed by the RID's upper bits, combinationally: ``src<i>.rvalid`` is
    ``axi.rvalid`` when they are ``i``, with the lower ``id_width`` bits as the source's
    ``rid`` and ``rdata``, ``rresp``, ``rlast`` as they come; ``axi.rready`` is the
    addressed source's ``rready``. Beats of different IDs may interleave (each beat goes
    where its ID says); beats of one source and ID keep the memory's order.

    Timing: **one cycle added on AR** (the registered stage: a request granted in cycle
    ``t`` is valid on ``axi`` in ``t + 1``), **none on R**; throughput one AR request and
    one R beat per cycle. Synchronous reset empties the register and restarts the
    round-robin at source 0; no request is taken in reset (the memory must be reset with
    it: beats in flight are not tracked).
    """

    def __init__(self, *, ports: int, addr_width: int, data_width: int,
                 id_width: int = 1) -> None:
        self.ports = check_int("ports", ports, 1, MAX_PORTS)
        self.sel_bits = source_bits(ports)
        check_int("id_width", id_width, 1, MAX_ID_WIDTH - self.sel_bits)
        self.id_width = id_width
        members = {f"src{i}": In(AxiReadSignature(addr_width=addr_width,
                                                  data_width=data_width, id_width=id_width))
                   for i in range(ports)}
        members["axi"] = Out(AxiReadSignature(addr_width=addr_width, data_width=data_width,
                                              id_width=id_width + self.sel_bits))
        members["error"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n, iw, sb = self.ports, self.id_width, self.sel_bits
        srcs = [getattr(self, f"src{i}") for i in range(n)]
        axi = self.axi
        rst = ResetSignal()

        # --- AR: round-robin grant into the output register ----------------------------------
        ptr = Signal(range(n))  # the source with the highest priority this cycle
        grant = Signal(n)  # one-hot: the source granted this cycle (none: no request)
        with m.Switch(ptr):
            for p in range(n):  # the last as the default: every pattern covered (lint)
                with (m.Case(p) if p < n - 1 else m.Default()):
                    order = [(p + k) % n for k in range(n)]
                    with m.If(srcs[order[0]].arvalid):
                        m.d.comb += grant[order[0]].eq(1)
                    for i in order[1:]:
                        with m.Elif(srcs[i].arvalid):
                            m.d.comb += grant[i].eq(1)
        free = Signal()  # the register is empty or its request transfers this cycle
        m.d.comb += free.eq((~axi.arvalid | axi.arready) & ~rst)
        for i, s in enumerate(srcs):
            m.d.comb += s.arready.eq(grant[i] & free)
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        with m.If(free & grant.any()):
            m.d.sync += axi.arvalid.eq(1)
            for i, s in enumerate(srcs):
                with m.If(grant[i]):
                    m.d.sync += [axi.araddr.eq(s.araddr), axi.arlen.eq(s.arlen),
                                 axi.arsize.eq(s.arsize), axi.arburst.eq(s.arburst),
                                 axi.arid.eq(Cat(s.arid, Const(i, sb)) if sb else s.arid),
                                 ptr.eq((i + 1) % n)]

        # --- R: routed by the ID's upper bits ------------------------------------------------
        dest = Signal(n)  # one-hot: the source the beat's ID names (none: unknown)
        if sb:
            with m.Switch(axi.rid[iw:]):
                for i in range(n):  # the whole vector in every case: one process (lint)
                    with (m.Case(i) if i < n - 1 or n < 1 << sb else m.Default()):
                        m.d.comb += dest.eq(1 << i)
                if n < 1 << sb:
                    with m.Default():
                        m.d.comb += dest.eq(0)
        else:
            m.d.comb += dest.eq(1)
        mines = [dest[i] for i in range(n)]
        known = Signal()
        m.d.comb += known.eq(dest.any())
        ready = Signal()
        m.d.comb += ready.eq(~known)  # an unknown ID: taken and dropped
        for s, mine in zip(srcs, mines, strict=True):
            m.d.comb += [s.rvalid.eq(axi.rvalid & mine), s.rid.eq(axi.rid[:iw]),
                         s.rdata.eq(axi.rdata), s.rresp.eq(axi.rresp), s.rlast.eq(axi.rlast)]
            with m.If(mine):
                m.d.comb += ready.eq(s.rready)
        m.d.comb += axi.rready.eq(ready)
        error = Signal()
        with m.If(axi.rvalid & ~known):
            m.d.sync += error.eq(1)
        m.d.comb += self.error.eq(error)
        return m
