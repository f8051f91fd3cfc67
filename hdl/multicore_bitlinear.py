"""BitLinear with C ternary cores whose weights stream from external memory over AXI4."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.multicore_bitlinear import MultiCoreBitLinearSpec
from .axi import AxiReadSignature
from .fetched_product import FetchedProduct
from .norm_quantiser import NormQuantiser, norm_input_layout, norm_scale_layout

__all__ = ["MultiCoreBitLinear", "matrix_command_layout"]


def matrix_command_layout(addr_width: int, len_width: int) -> data.StructLayout:
    """A product's command: the matrix image's byte address ``addr`` (the same in every
    channel: :func:`mmfree.spec.multicore_bitlinear.matrix_addresses`), its ``rows`` ``M``,
    the rows per core ``rows_pc`` (``ceil(M / cores)``, computed by the host) and the lane
    ``groups`` per row."""
    return data.StructLayout({"addr": addr_width, "rows": len_width, "rows_pc": len_width,
                              "groups": len_width})


class MultiCoreBitLinear(wiring.Component):
    """One BitLinear product ``acc = W_q q`` on ``cores`` ternary cores fed over AXI4.

    The sequencer's side is the BitLinear unit's
    (:class:`~mmfree.hdl.bitlinear_unit.BitLinearUnit`): an input vector and its norm
    weight on ``x``, ``D`` and ``E`` on ``scale``, the row sums on ``y`` in row order. The
    weights do not stream in: a command names the matrix, and a
    :class:`~mmfree.hdl.fetched_product.FetchedProduct` (a
    :class:`~mmfree.hdl.weight_fetcher.WeightFetcher`, a trit unpacker when ``packed`` and a
    :class:`~mmfree.hdl.ternary_core.TernaryCore` per core) reads each core's share from its
    own channel. Rows are interleaved (core ``c`` computes rows ``c, c + C, ...``:
    :func:`mmfree.golden.weight_image.interleave_rows`), and a round-robin merge takes one
    row sum per cycle from core 0, 1, ..., ``C - 1``, 0, ... and drops the last round's
    padding rows, so ``y`` carries rows ``0 .. M - 1`` in order.

    Ports:

    * ``x``: in, :func:`~mmfree.hdl.norm_quantiser.norm_input_layout` (as the BitLinear
      unit's).
    * ``cmd``: in, :func:`matrix_command_layout`: one per product, taken while no command
      is held and the previous product's fetchers and buffer are idle (the sequencer sends
      it with the vector).
    * ``axi0`` .. ``axi<C-1>``: :class:`~mmfree.hdl.axi.AxiReadSignature` managers, one per
      core and memory channel.
    * ``y``: out, signed ``acc_width``-bit row sums (wrapping), rows ``0 .. M - 1`` in order.
    * ``scale``: out, :func:`~mmfree.hdl.norm_quantiser.norm_scale_layout`.
    * ``error``: out, sticky until reset: a vector truncated at ``max_dim``, or the
      product's error (an AXI response other than OKAY, an invalid packed byte).

    Timing (:meth:`mmfree.spec.MultiCoreBitLinearSpec.cycles`): the front end loads and
    quantises the vector into the product's activation buffer; the command is registered
    when the last int8 group enters it and transfers to the product the next cycle, so the
    fetch of a matrix starts once its vector is quantised (the fetchers' latency is not
    hidden behind the front end). With ``y`` ready, every round of row sums leaves in
    ``cores`` cycles, which the products' ``G >= cores`` lane groups per row cover
    (:meth:`~mmfree.spec.MultiCoreBitLinearSpec.check_shape`). The next product's command is
    passed on only after the merge has dropped the previous one's padding rows.
    Synchronous reset abandons everything (the memories must be reset with it).

    Parameters, their limits and defaults: :class:`mmfree.spec.MultiCoreBitLinearSpec`
    (:attr:`spec`).
    """

    def __init__(self, **params: object) -> None:
        self.spec = spec = MultiCoreBitLinearSpec(**params).validate()  # type: ignore[arg-type]
        self.latency = spec.latency
        members = {
            "x": In(stream.Signature(norm_input_layout(spec.in_width, spec.weight_width,
                                                       spec.lanes))),
            "cmd": In(stream.Signature(matrix_command_layout(spec.addr_width,
                                                             spec.len_width))),
        }
        for c in range(spec.cores):
            members[f"axi{c}"] = Out(AxiReadSignature(addr_width=spec.addr_width,
                                                      data_width=spec.data_width))
        members["y"] = Out(stream.Signature(signed(spec.acc_width)))
        members["scale"] = Out(stream.Signature(norm_scale_layout(spec.fmt, spec.max_dim)))
        members["error"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self.spec
        cores = spec.cores
        rst = ResetSignal()
        m.submodules.quantiser = quant = NormQuantiser(**spec.quantiser().kwargs())
        m.submodules.product = prod = FetchedProduct(**spec.product().kwargs())
        wiring.connect(m, wiring.flipped(self.x), quant.x)
        wiring.connect(m, quant.scale, wiring.flipped(self.scale))
        for c in range(cores):
            wiring.connect(m, getattr(prod, f"axi{c}"), wiring.flipped(getattr(self, f"axi{c}")))
        # the quantised vector into the product's buffer
        m.d.comb += [prod.x.valid.eq(quant.q.valid),
                     prod.x.payload.data.eq(quant.q.payload.data),
                     prod.x.payload.last.eq(quant.q.payload.last),
                     quant.q.ready.eq(prod.x.ready)]

        # the command: held from the sequencer, passed on once the vector is quantised
        lw = spec.len_width
        cmd_r = Signal.like(self.cmd.payload)
        held = Signal()  # a command is held
        go = Signal()  # its vector is in the buffer: pass it on
        m.d.comb += self.cmd.ready.eq(~held & ~prod.busy & ~rst)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [cmd_r.eq(self.cmd.payload), held.eq(1)]
        with m.If(held & quant.q.valid & quant.q.ready & quant.q.payload.last):
            m.d.sync += go.eq(1)

        # the merge: round-robin over the cores, the last round's padding rows dropped
        all_left = Signal(lw + max(1, (cores - 1).bit_length()) + 1)  # rows of every core
        real_left = Signal(lw)  # rows of the matrix not yet handed on
        ptr = Signal(cores, init=1)  # one-hot: the core of the next row
        m.d.comb += [prod.cmd.valid.eq(go & ~all_left.any()),
                     *(prod.cmd.payload.addr[c].eq(cmd_r.addr) for c in range(cores)),
                     prod.cmd.payload.rows.eq(cmd_r.rows_pc),
                     prod.cmd.payload.groups.eq(cmd_r.groups)]
        with m.If(prod.cmd.valid & prod.cmd.ready):
            m.d.sync += [go.eq(0), held.eq(0), real_left.eq(cmd_r.rows),
                         all_left.eq(cmd_r.rows_pc * Const(cores, max(1, cores.bit_length()))),
                         ptr.eq(1)]
        ys = [getattr(prod, f"y{c}") for c in range(cores)]
        sel_valid = Signal()
        sel_payload = Signal(signed(spec.acc_width))
        for c, y in enumerate(ys):
            with m.If(ptr[c]):
                m.d.comb += [sel_valid.eq(y.valid), sel_payload.eq(y.payload)]
        real = Signal()
        m.d.comb += real.eq(real_left.any())
        take = Signal()  # the selected core's row sum transfers (handed on or dropped)
        m.d.comb += [self.y.valid.eq(sel_valid & real), self.y.payload.eq(sel_payload),
                     take.eq(sel_valid & all_left.any() & Mux(real, self.y.ready, 1))]
        for c, y in enumerate(ys):
            m.d.comb += y.ready.eq(ptr[c] & take)
        with m.If(take):
            m.d.sync += [all_left.eq(all_left - 1),
                         ptr.eq(Cat(ptr[cores - 1], ptr[:cores - 1]) if cores > 1 else ptr)]
            with m.If(real):
                m.d.sync += real_left.eq(real_left - 1)
        m.d.comb += self.error.eq(quant.truncated | prod.error)
        with m.If(rst):
            m.d.sync += [held.eq(0), go.eq(0), all_left.eq(0), real_left.eq(0), ptr.eq(1)]
        return m
