"""Weight fetcher: an AXI4 read master that streams a ternary matrix's lane groups."""

from __future__ import annotations

from amaranth import Module, Mux, ResetSignal, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.weight_fetcher import PAGE_BYTES, WeightFetcherSpec
from .axi import BURST_INCR, RESP_OKAY, AxiReadSignature, size_code
from .bitlinear_unit import matrix_weight_layout
from .trit_unpacker import packed_bytes

__all__ = ["WeightFetcher", "command_layout", "fetch_layout"]


def command_layout(addr_width: int, len_width: int) -> data.StructLayout:
    """A fetch command: the matrix image's base address (a multiple of the data bus's byte
    width; lower bits are ignored), its ``rows`` and its lane ``groups`` per row (each at
    least 1)."""
    return data.StructLayout({"addr": addr_width, "rows": len_width, "groups": len_width})


def fetch_layout(lanes: int, packed: bool) -> data.StructLayout:
    """The fetcher's output: one lane group with ``last`` (a row's final group) and
    ``final`` (the matrix's final group). Codes: exactly
    :func:`mmfree.hdl.bitlinear_unit.matrix_weight_layout` (the BitLinear unit's ``w``);
    packed: ``ceil(lanes / 5)`` bytes as :func:`mmfree.hdl.trit_unpacker.packed_layout`,
    plus ``final``."""
    if not packed:
        return matrix_weight_layout(lanes)
    return data.StructLayout({"packed": data.ArrayLayout(8, packed_bytes(lanes)), "last": 1,
                              "final": 1})


class WeightFetcher(wiring.Component):
    """Stream a ternary matrix from external memory, in the order a ternary core reads it.

    A command on ``cmd`` names a matrix image (:mod:`mmfree.golden.weight_image`: ``rows`` x
    ``groups`` lane groups stored back to back from ``addr``); the fetcher reads its
    ``B = ceil(rows * groups * g / data_width)`` beats over ``axi`` (``g`` the group's
    bits) and delivers the ``rows * groups`` lane groups on ``o``, row by row, with
    ``last``/``final`` marks.

    Ports:

    * ``cmd``: in, :func:`command_layout`. Taken while the read side is idle and the
      output side has room for one more command (commands queue: the next matrix's reads
      start while the previous one drains, so fetch overlaps compute across matrices).
      A command with zero rows or groups is dropped and sets ``error``.
    * ``axi``: :class:`~mmfree.hdl.axi.AxiReadSignature` (manager). INCR bursts of full
      beats (``arsize`` = the bus width), ``arid`` 0 (responses in order), at most
      ``max_burst`` beats, never across a 4 KiB boundary; at most ``outstanding`` bursts in
      flight, and a burst is issued only when the read FIFO (``fifo_depth`` beats) has room
      for all of its beats counting those in flight, so ``rready`` stays high: the memory
      is never stalled by the fetcher.
    * ``o``: out, :func:`fetch_layout`, valid/ready with back-pressure (a group is held
      until it transfers); at most one group per cycle.
    * ``busy``: out, a command is being read or delivered.
    * ``error``: out, sticky until reset: an ``rresp`` other than OKAY (the data is
      delivered anyway) or an empty command.

    Timing (:class:`mmfree.spec.WeightFetcherSpec`): the first AR request is valid
    :attr:`~mmfree.spec.WeightFetcherSpec.AR_START` cycles after the command's transfer; a
    beat's first group is valid on ``o`` :attr:`~mmfree.spec.WeightFetcherSpec.FIFO_LATENCY`
    cycles after the beat's R transfer. Throughput: one group per cycle while the memory
    delivers ``1 / groups_per_beat`` beats per cycle and ``o`` is ready; a beat per cycle
    on R while ``outstanding * max_burst`` and ``fifo_depth`` cover the memory's latency
    (:meth:`~mmfree.spec.WeightFetcherSpec.cycles`). Synchronous reset abandons everything
    (the memory must be reset with it) and clears ``error``; no command is taken in reset.
    """

    def __init__(self, *, lanes: int = WeightFetcherSpec.lanes,
                 packed: bool = WeightFetcherSpec.packed,
                 data_width: int = WeightFetcherSpec.data_width,
                 addr_width: int = WeightFetcherSpec.addr_width,
                 id_width: int = WeightFetcherSpec.id_width,
                 max_burst: int = WeightFetcherSpec.max_burst,
                 outstanding: int = WeightFetcherSpec.outstanding,
                 fifo_depth: int = WeightFetcherSpec.fifo_depth,
                 len_width: int = WeightFetcherSpec.len_width) -> None:
        self.spec = WeightFetcherSpec(
            lanes=lanes, packed=packed, data_width=data_width, addr_width=addr_width,
            id_width=id_width, max_burst=max_burst, outstanding=outstanding,
            fifo_depth=fifo_depth, len_width=len_width).validate()
        super().__init__({
            "cmd": In(stream.Signature(command_layout(addr_width, len_width))),
            "axi": Out(AxiReadSignature(addr_width=addr_width, data_width=data_width,
                                        id_width=id_width)),
            "o": Out(stream.Signature(fetch_layout(lanes, packed))),
            "busy": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self.spec
        w, g = spec.data_width, spec.group_bits
        lw = spec.len_width
        beat_bytes = w // 8
        shift = beat_bytes.bit_length() - 1
        axi = self.axi
        rst = ResetSignal()

        m.submodules.rdata = rfifo = fifo.SyncFIFOBuffered(width=w, depth=spec.fifo_depth)
        m.submodules.cmdq = cmdq = fifo.SyncFIFOBuffered(width=2 * lw, depth=2)

        # --- read side: commands to AR bursts ------------------------------------------------
        addr = Signal(spec.addr_width)
        rows, groups = Signal(lw), Signal(lw)
        total = Signal(2 * lw)  # lane groups of the command
        beats_left = Signal(2 * lw + 1)
        phase = Signal(range(4))  # 0 idle, 1 product, 2 beat count, 3 issuing
        free = Signal(range(spec.fifo_depth + 1), init=spec.fifo_depth)  # FIFO credits
        inflight = Signal(range(spec.outstanding + 1))  # bursts presented, not yet complete
        error = Signal()

        cmd = self.cmd.payload
        m.d.comb += [
            self.cmd.ready.eq((phase == 0) & cmdq.w_rdy & ~rst),
            cmdq.w_data.eq(cmd.rows | (cmd.groups << lw)),
        ]
        with m.If(self.cmd.valid & self.cmd.ready):
            with m.If((cmd.rows == 0) | (cmd.groups == 0)):
                m.d.sync += error.eq(1)
            with m.Else():
                m.d.comb += cmdq.w_en.eq(1)
                m.d.sync += [addr.eq(cmd.addr >> shift << shift), rows.eq(cmd.rows),
                             groups.eq(cmd.groups), phase.eq(1)]
        with m.If(phase == 1):
            m.d.sync += [total.eq(rows * groups), phase.eq(2)]
        with m.If(phase == 2):
            if g <= w:
                per_beat = w // g
                m.d.sync += beats_left.eq((total + per_beat - 1) >> (per_beat.bit_length() - 1))
            else:
                m.d.sync += beats_left.eq(total << ((g // w).bit_length() - 1))
            m.d.sync += phase.eq(3)

        # burst length: the smallest of max_burst, the beats left and the beats to the page end
        page_left = Signal(range(PAGE_BYTES // beat_bytes + 1))
        m.d.comb += page_left.eq((PAGE_BYTES - addr[:12]) >> shift)
        blen = Signal(range(spec.max_burst + 1))
        m.d.comb += blen.eq(spec.max_burst)
        with m.If(beats_left < spec.max_burst):
            m.d.comb += blen.eq(beats_left)
        page_min = Signal.like(blen)
        m.d.comb += page_min.eq(Mux(page_left < blen, page_left, blen))

        ar_free = ~axi.arvalid | axi.arready
        present = Signal()
        m.d.comb += present.eq((phase == 3) & (beats_left != 0) & ar_free
                               & (inflight < spec.outstanding) & (free >= page_min))
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        with m.If(present):
            m.d.sync += [axi.arvalid.eq(1), axi.araddr.eq(addr), axi.arlen.eq(page_min - 1),
                         addr.eq(addr + (page_min << shift)),
                         beats_left.eq(beats_left - page_min)]
        with m.If((phase == 3) & (beats_left == 0)):
            m.d.sync += phase.eq(0)
        m.d.comb += [axi.arid.eq(0), axi.arsize.eq(size_code(w)), axi.arburst.eq(BURST_INCR)]

        # R beats into the FIFO; credits and slots
        r_fire = axi.rvalid & axi.rready
        m.d.comb += [axi.rready.eq(rfifo.w_rdy & ~rst), rfifo.w_en.eq(r_fire),
                     rfifo.w_data.eq(axi.rdata)]
        with m.If(r_fire & (axi.rresp != RESP_OKAY)):
            m.d.sync += error.eq(1)
        m.d.sync += [
            inflight.eq(inflight + present - (r_fire & axi.rlast)),
            free.eq(free - Mux(present, page_min, 0) + rfifo.r_en),
        ]

        # --- output side: beats to lane groups -------------------------------------------------
        o_rows = cmdq.r_data[:lw]
        o_groups = cmdq.r_data[lw:]
        gi, ri = Signal(lw), Signal(lw)  # group in the row, row
        last = gi == o_groups - 1
        final = last & (ri == o_rows - 1)
        fire = self.o.valid & self.o.ready
        payload = self.o.payload
        group_field = payload.packed if spec.packed else payload.codes
        m.d.comb += [payload.last.eq(last), payload.final.eq(final)]
        with m.If(fire):
            with m.If(last):
                m.d.sync += [gi.eq(0), ri.eq(ri + 1)]
            with m.Else():
                m.d.sync += gi.eq(gi + 1)
            with m.If(final):
                m.d.sync += ri.eq(0)
                m.d.comb += cmdq.r_en.eq(1)

        if g <= w:
            per_beat = w // g
            j = Signal(range(per_beat))  # the group of the head beat
            m.d.comb += [
                self.o.valid.eq(cmdq.r_rdy & rfifo.r_rdy),
                group_field.eq(rfifo.r_data.word_select(j, g) if per_beat > 1 else rfifo.r_data),
            ]
            with m.If(fire):
                end = final if per_beat == 1 else (final | (j == per_beat - 1))
                m.d.comb += rfifo.r_en.eq(end)
                if per_beat > 1:
                    m.d.sync += j.eq(Mux(end, 0, j + 1))
        else:
            parts = g // w
            gather = Signal(g)
            count = Signal(range(parts))
            full = Signal()
            m.d.comb += [self.o.valid.eq(cmdq.r_rdy & full), group_field.eq(gather)]
            pop = rfifo.r_rdy & (~full | fire)
            m.d.comb += rfifo.r_en.eq(pop)
            with m.If(fire):
                m.d.sync += full.eq(0)
            with m.If(pop):
                m.d.sync += [gather.word_select(count, w).eq(rfifo.r_data),
                             count.eq(Mux(count == parts - 1, 0, count + 1))]
                with m.If(count == parts - 1):
                    m.d.sync += full.eq(1)

        m.d.comb += [self.busy.eq((phase != 0) | cmdq.r_rdy), self.error.eq(error)]
        return m
