"""BitLinear with C ternary cores whose weights stream from external memory over AXI4."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.multicore_bitlinear import MultiCoreBitLinearSpec, source_bits
from .axi import AxiReadSignature
from .axi_read_arbiter import AxiReadArbiter
from .fetched_product import FetchedProduct
from .norm_quantiser import NormQuantiser, norm_input_layout, norm_scale_layout

__all__ = ["MultiCoreBitLinear", "matrix_command_layout"]


def matrix_command_layout(addr_width: int, len_width: int) -> data.StructLayout:
    """A product's command: the matrix image's byte address ``addr`` (the same in every
    channel and slot: :func:`mmfree.spec.multicore_bitlinear.matrix_addresses`; with
    cores sharing a channel, its top bits are replaced by each core's slot), its ``rows``
    ``M``,
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
    * ``axi0`` .. ``axi<K-1>``: :class:`~mmfree.hdl.axi.AxiReadSignature` managers, one per
      memory channel: ``K = cores`` (``channels`` 0 or ``cores``: core ``c`` on ``axi<c>``,
      ID width 1), or ``K = channels`` < ``cores``: core ``c`` on ``axi<c mod K>`` through
      an :class:`~mmfree.hdl.axi_read_arbiter.AxiReadArbiter` (one per port) as its source
      ``c // K`` (the ARID's upper bits; ID width ``1 + ceil(log2(C / K))``), its
      addresses in that slot (the top bits:
      :meth:`~mmfree.spec.MultiCoreBitLinearSpec.core_address`).
    * ``y``: out, signed ``acc_width``-bit row sums (wrapping), rows ``0 .. M - 1`` in order.
    * ``scale``: out, :func:`~mmfree.hdl.norm_quantiser.norm_scale_layout`.
    * ``error``: out, sticky until reset: a vector truncated at ``max_dim``, or the
      product's error (an AXI response other than OKAY, an invalid packed byte), or an
      arbiter's (an RID naming no core).

    Timing (:meth:`mmfree.spec.MultiCoreBitLinearSpec.cycles`): the front end loads and
    quantises the vector into the product's activation buffer; the command is registered
    when the last int8 group enters it and transfers to the product the next cycle, so the
    fetch of a matrix starts once its vector is quantised (the fetchers' latency is not
    hidden behind the front end). With ``y`` ready, every round of row sums leaves in
    ``cores`` cycles, which the products' ``G >= cores`` lane groups per row cover
    (:meth:`~mmfree.spec.MultiCoreBitLinearSpec.check_shape`). The next product's command is
    passed on only after the merge has dropped the previous one's padding rows. With cores
    sharing channels, each request passes the arbiter's register (one cycle more on AR)
    and the cores share the channel's beats:
    :meth:`~mmfree.spec.MultiCoreBitLinearSpec.shared_cycles` (an estimate).
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
        for c in range(spec.ports):
            members[f"axi{c}"] = Out(AxiReadSignature(addr_width=spec.addr_width,
                                                      data_width=spec.data_width,
                                                      id_width=spec.port_id_width))
        members["y"] = Out(stream.Signature(signed(spec.acc_width)))
        members["scale"] = Out(stream.Signature(norm_scale_layout(spec.fmt, spec.max_dim)))
        members["error"] = Out(1)
        super().__init__(members)

    def _core_address(self, addr: Value, core: int) -> Value:
        """Core ``core``'s address of a matrix at ``addr``: its slot in the top bits when
        cores share a channel (:meth:`MultiCoreBitLinearSpec.core_address`)."""
        spec = self.spec
        if spec.sharing == 1:
            return addr
        return Cat(addr[:spec.slot_shift], Const(spec.slot_of(core), source_bits(spec.sharing)))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self.spec
        cores = spec.cores
        rst = ResetSignal()
        m.submodules.quantiser = quant = NormQuantiser(**spec.quantiser().kwargs())
        m.submodules.product = prod = FetchedProduct(**spec.product().kwargs())
        wiring.connect(m, wiring.flipped(self.x), quant.x)
        wiring.connect(m, quant.scale, wiring.flipped(self.scale))
        arb_errors = []
        if spec.sharing == 1:
            for c in range(cores):
                wiring.connect(m, getattr(prod, f"axi{c}"),
                               wiring.flipped(getattr(self, f"axi{c}")))
        else:  # core c on port c mod K, as source c // K of that port's arbiter
            for k in range(spec.ports):
                arb = AxiReadArbiter(ports=spec.sharing, addr_width=spec.addr_width,
                                     data_width=spec.data_width)
                m.submodules[f"arbiter{k}"] = arb
                wiring.connect(m, arb.axi, wiring.flipped(getattr(self, f"axi{k}")))
                arb_errors.append(arb.error)
            for c in range(cores):
                arb = m.submodules[f"arbiter{spec.channel_of(c)}"]
                wiring.connect(m, getattr(prod, f"axi{c}"),
                               getattr(arb, f"src{spec.slot_of(c)}"))
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
                     *(prod.cmd.payload.addr[c].eq(self._core_address(cmd_r.addr, c))
                       for c in range(cores)),
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
        error = quant.truncated | prod.error
        if arb_errors:
            error = error | Cat(*arb_errors).any()
        m.d.comb += self.error.eq(error)
        with m.If(rst):
            m.d.sync += [held.eq(0), go.eq(0), all_left.eq(0), real_left.eq(0), ptr.eq(1)]
        return m
