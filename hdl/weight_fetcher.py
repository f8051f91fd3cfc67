"""Weight fetcher: an AXI4 read master that streams a ternary matrix's lane groups."""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.weight_fetcher import PAGE_BYTES, WeightFetcherSpec
from .axi import BURST_INCR, AxiReadSignature, size_code
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
      delivered anyway), an ``rid`` other than 0, or an empty command.

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
        # Operands of every comparison and sum have equal widths (no Verilator WIDTH
        # warnings: docs/lint.md).
        m = Module()
        spec = self.spec
        w, g = spec.data_width, spec.group_bits
        lw = spec.len_width
        beat_bytes = w // 8
        shift = beat_bytes.bit_length() - 1
        page_beats = PAGE_BYTES // beat_bytes
        axi = self.axi
        rst = ResetSignal()

        # first-word-fall-through (an asynchronous read: LUT RAM on an FPGA, whose output
        # is fast; a block RAM's unregistered output would set the clock)
        m.submodules.rdata = rfifo = fifo.SyncFIFO(width=w, depth=spec.fifo_depth)
        m.submodules.cmdq = cmdq = fifo.SyncFIFOBuffered(width=2 * lw + 2, depth=3)

        # --- read side: commands to AR bursts ------------------------------------------------
        # The address is the 4 KiB page and the beat index in it (``lo``); all burst-length
        # arithmetic is ``cw`` bits wide.
        lo_w = 12 - shift
        fw = (spec.fifo_depth).bit_length()
        cw = max(fw, spec.max_burst.bit_length(), lo_w + 1)
        bw = max(2 * lw + 1, cw + 1)
        page = Signal(spec.addr_width - 12)
        lo = Signal(lo_w)
        rows, groups = Signal(lw), Signal(lw)
        total = Signal(2 * lw)  # lane groups of the command
        beats_left = Signal(bw)
        idle = Signal(init=1)  # one-hot phases: idle, product, beat count, issuing
        product, counting, issuing = Signal(), Signal(), Signal()
        free = Signal(cw, init=spec.fifo_depth)  # FIFO credits
        inflight = Signal(range(spec.outstanding + 1))  # bursts presented, not yet complete
        error = Signal()

        cmd = self.cmd.payload
        one_group_in = ~cmd.groups[1:].any() & cmd.groups[0]  # groups == 1, no carry chain
        one_in_all_in = one_group_in & ~cmd.rows[1:].any() & cmd.rows[0]
        m.d.comb += [
            self.cmd.ready.eq(idle & cmdq.w_rdy & ~rst),
            # rows, groups, "one group per row", "one group in all"
            cmdq.w_data.eq(Cat(cmd.rows, cmd.groups, one_group_in, one_in_all_in)),
        ]
        with m.If(self.cmd.valid & self.cmd.ready):
            with m.If(~cmd.rows.any() | ~cmd.groups.any()):
                m.d.sync += error.eq(1)
            with m.Else():
                m.d.comb += cmdq.w_en.eq(1)
                m.d.sync += [page.eq(cmd.addr[12:]), lo.eq(cmd.addr[shift:12]),
                             rows.eq(cmd.rows), groups.eq(cmd.groups), idle.eq(0),
                             product.eq(1)]
        # rows * groups through plain registers around the multiplier (the ECP5 flow moves
        # them into the DSP block's operand and product registers): three cycles
        mul_a, mul_b = Signal(lw, reset_less=True), Signal(lw, reset_less=True)
        mul_p = Signal(2 * lw, reset_less=True)
        m.d.sync += [mul_a.eq(rows), mul_b.eq(groups), mul_p.eq(mul_a * mul_b)]
        wait = Signal(2)  # the product's cycles
        with m.If(product):
            m.d.sync += wait.eq(wait + 1)
            with m.If(wait == 2):
                m.d.sync += [total.eq(mul_p), wait.eq(0), product.eq(0), counting.eq(1)]
        with m.If(counting):
            if g <= w:
                k = (w // g).bit_length() - 1
                whole = total[k:]
                m.d.sync += beats_left.eq(Mux(total[:k].any(), whole + 1, whole) if k else total)
            else:
                m.d.sync += beats_left.eq(Cat(C(0, (g // w).bit_length() - 1), total))
            m.d.sync += [counting.eq(0), issuing.eq(1)]

        # The next burst is prepared ahead from registers, so the request path is short:
        # after a request, a cycle to prepare the next (``burst``) and one to check its
        # space (``space_ok``). Its length: the smallest of max_burst, the beats left and the
        # beats to the page end.
        p2 = spec.max_burst.bit_length() - 1
        blen = Signal(cw)
        m.d.comb += blen.eq(Mux(beats_left[p2:].any(), C(spec.max_burst, cw), beats_left[:cw]))
        to_page = Signal(cw)  # 1..page_beats: ~lo + 1, or the whole page when lo is 0
        m.d.comb += to_page.eq(Mux(lo.any(), Cat((~lo + 1)[:lo_w], C(0, cw - lo_w)),
                                   C(page_beats, cw)))
        burst_next = Signal(cw)
        m.d.comb += burst_next.eq(Mux(to_page < blen, to_page, blen))
        burst = Signal(cw)  # registered: the prepared burst's length
        prepared = Signal()  # ``burst`` matches the current address and beats left
        more = Signal()  # beats are left (registered with ``burst``)
        space_ok = Signal()  # free >= burst, from last cycle's credits (they only grew)
        slot_ok = Signal()  # a slot was free last cycle (slots only free up meanwhile)

        ar_free = ~axi.arvalid | axi.arready
        present = Signal()
        checked = Signal()  # ``space_ok`` and ``slot_ok`` refer to the prepared burst
        m.d.comb += present.eq(issuing & checked & more & space_ok & slot_ok & ar_free)
        m.d.sync += [
            burst.eq(burst_next),
            more.eq(beats_left.any()),
            prepared.eq(issuing & ~present),
            checked.eq(prepared & ~present),
            space_ok.eq(free >= burst),
            slot_ok.eq(inflight < C(spec.outstanding, len(inflight))),
        ]
        # the state after the prepared burst, registered too (valid with ``checked``)
        lo_cw = Signal(cw)  # lo widened by a real multiplexer, so the sum's operands match
        m.d.comb += lo_cw.eq(Mux(lo.any(), Cat(lo, C(0, cw - lo_w)), C(0, cw)))
        lo_after = Signal(lo_w + 1)  # the beat index after the burst; its top bit: page end
        burst_bw = Signal(bw)
        m.d.comb += burst_bw.eq(Mux(prepared, Cat(burst, C(0, bw - cw)), C(0, bw)))
        beats_after = Signal(bw)
        m.d.sync += [lo_after.eq((lo_cw + burst)[:lo_w + 1]),
                     beats_after.eq(beats_left - burst_bw)]
        taken = Signal(cw + 1)
        m.d.comb += taken.eq(Mux(present, Cat(burst, C(0, 1)), C(0, cw + 1)))
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        with m.If(present):
            m.d.sync += [axi.arvalid.eq(1), axi.araddr.eq(Cat(C(0, shift), lo, page)),
                         axi.arlen.eq((burst - 1)[:8]), lo.eq(lo_after[:lo_w]),
                         beats_left.eq(beats_after)]
            with m.If(lo_after[lo_w]):  # the burst ended at the page's end
                m.d.sync += page.eq(page + 1)
        with m.If(issuing & checked & ~more):
            m.d.sync += [issuing.eq(0), idle.eq(1)]
        m.d.comb += [axi.arid.eq(0), axi.arsize.eq(size_code(w)), axi.arburst.eq(BURST_INCR)]

        # R beats into the FIFO; credits and slots
        r_fire = axi.rvalid & axi.rready
        m.d.comb += [axi.rready.eq(rfifo.w_rdy & ~rst), rfifo.w_en.eq(r_fire),
                     rfifo.w_data.eq(axi.rdata)]
        with m.If(r_fire & (axi.rresp.any() | axi.rid.any())):  # not OKAY, or not our ID
            m.d.sync += error.eq(1)
        done = r_fire & axi.rlast
        with m.If(present & ~done):
            m.d.sync += inflight.eq(inflight + 1)
        with m.If(done & ~present):
            m.d.sync += inflight.eq(inflight - 1)
        popped = Signal()  # the FIFO popped a beat last cycle: its credit returns now
        m.d.sync += popped.eq(rfifo.r_en)
        back = Signal(cw + 1)
        m.d.comb += back.eq(Mux(popped, free + 1, Cat(free, C(0, 1))))
        m.d.sync += free.eq((back - taken)[:cw])

        # --- output side: beats to lane groups -------------------------------------------------
        o_rows = cmdq.r_data[:lw]
        o_groups = cmdq.r_data[lw:2 * lw]
        one_group, one_in_all = cmdq.r_data[2 * lw], cmdq.r_data[2 * lw + 1]
        gi1, ri1 = Signal(lw, init=1), Signal(lw, init=1)  # group in the row and row, + 1
        # ``last``/``final`` of the current group come from registers (computed when the
        # previous group left), or from the queue's flags for a command's first group, so
        # the FIFO's pop does not wait for the index comparisons
        first = Signal(init=1)
        last_r, final_r = Signal(), Signal()
        last, final = Signal(), Signal()
        m.d.comb += [last.eq(Mux(first, one_group, last_r)),
                     final.eq(Mux(first, one_in_all, final_r))]
        # the next group's indexes in this command, plus one (at most the counts)
        gi_n1, ri_n1 = Signal(lw), Signal(lw)
        m.d.comb += [gi_n1.eq(Mux(last, 1, (gi1 + 1)[:lw])),
                     ri_n1.eq(Mux(last, (ri1 + 1)[:lw], ri1))]
        # the groups leave through one register stage (``o``), which takes a group while it
        # is empty or its group transfers: ``valid``/``fire`` below are before it
        valid = Signal()
        take = ~self.o.valid | self.o.ready
        fire = valid & take
        group_field = Signal(g)
        out = self.o.payload
        with m.If(take):
            m.d.sync += [self.o.valid.eq(valid),
                         (out.packed if spec.packed else out.codes).eq(group_field),
                         out.last.eq(last), out.final.eq(final)]
        with m.If(fire):
            m.d.sync += [gi1.eq(gi_n1), ri1.eq(ri_n1), first.eq(0),
                         last_r.eq(gi_n1 == o_groups),
                         final_r.eq((gi_n1 == o_groups) & (ri_n1 == o_rows))]
            with m.If(final):
                m.d.sync += [gi1.eq(1), ri1.eq(1), first.eq(1)]
                m.d.comb += cmdq.r_en.eq(1)

        if g <= w:
            per_beat = w // g
            m.d.comb += valid.eq(cmdq.r_rdy & rfifo.r_rdy)
            if per_beat == 1:
                m.d.comb += group_field.eq(rfifo.r_data)
                with m.If(fire):
                    m.d.comb += rfifo.r_en.eq(1)
            else:
                j = Signal(range(per_beat))  # the group of the head beat
                with m.Switch(j):
                    for i in range(per_beat):
                        with m.Case(i):
                            m.d.comb += group_field.eq(rfifo.r_data[i * g:(i + 1) * g])
                with m.If(fire):
                    end = final | (j == C(per_beat - 1, len(j)))
                    m.d.comb += rfifo.r_en.eq(end)
                    m.d.sync += j.eq(Mux(end, 0, j + 1))
        else:
            parts = g // w
            gather = Signal(g)
            count = Signal(range(parts))
            full = Signal()
            m.d.comb += [valid.eq(cmdq.r_rdy & full), group_field.eq(gather)]
            pop = rfifo.r_rdy & (~full | fire)
            m.d.comb += rfifo.r_en.eq(pop)
            done = count == C(parts - 1, len(count))
            with m.If(fire):
                m.d.sync += full.eq(0)
            with m.If(pop):
                with m.Switch(count):
                    for i in range(parts):
                        with m.Case(i):
                            m.d.sync += gather[i * w:(i + 1) * w].eq(rfifo.r_data)
                m.d.sync += count.eq(Mux(done, 0, count + 1))
                with m.If(done):
                    m.d.sync += full.eq(1)

        m.d.comb += [self.busy.eq(~idle | cmdq.r_rdy), self.error.eq(error)]
        return m

