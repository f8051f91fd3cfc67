"""BitLinear on chip: the front end with the RMSNorm weight feeding the ternary core."""

from __future__ import annotations

from amaranth import Module, ResetSignal, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.bitlinear_unit import ACT_BITS, BitLinearUnitSpec
from .norm_quantiser import NormQuantiser, norm_input_layout, norm_scale_layout
from .ternary_core import TernaryCore

__all__ = ["BitLinearUnit", "matrix_weight_layout"]


def matrix_weight_layout(lanes: int) -> data.StructLayout:
    """Weight stream of the BitLinear unit: ``lanes`` 2-bit codes, ``last`` on a row's final
    group and ``final`` on the matrix's final group (with ``last``)."""
    return data.StructLayout({"codes": data.ArrayLayout(2, lanes), "last": 1, "final": 1})


class BitLinearUnit(wiring.Component):
    """One BitLinear product ``acc = W_q q`` with its activation quantisation on chip.

    An input vector and its norm weight (host mantissas,
    :class:`mmfree.golden.quantiser.NormBitLinear`) go through
    :class:`~mmfree.hdl.norm_quantiser.NormQuantiser`; its int8 groups fill an activation
    buffer (``ceil(max_dim / lanes)`` words of ``lanes`` bytes) and its ``D`` and ``E``
    leave on ``scale``. Then the weight rows stream in on ``w`` and the buffer replays the
    activation group that matches each weight group into a
    :class:`~mmfree.hdl.ternary_core.TernaryCore`, whose row sums leave on ``y``. The host
    computes BitLinear's float output as ``y * D * 2**(E - S - e_w) * sqrt(K) / (127 s_w)``
    (:meth:`mmfree.golden.quantiser.NormBitLinear.rescale`).

    Ports (valid/ready streams):

    * ``x``: in, :func:`~mmfree.hdl.norm_quantiser.norm_input_layout`: each lane group of
      the input mantissas with the same group of the norm weight mantissas (the norm weight
      travels with the input, so a sequencer that holds norm weights in on-chip buffers
      reads both in step; the unit keeps no per-matrix state).
    * ``w``: in, :func:`matrix_weight_layout`: the matrix row by row, each row ``G`` groups
      (``G`` = the vector's group count) with ``last`` on its final group, and ``final`` with
      ``last`` on the matrix's final row. Codes as the ternary core reads them.
    * ``y``: out, one signed ``acc_width``-bit row sum per row, wrapping like the core's.
    * ``scale``: out, :func:`~mmfree.hdl.norm_quantiser.norm_scale_layout`: ``D`` and ``E``
      per vector.
    * ``error``: out, sticky until reset: a vector was truncated at ``max_dim``, or a weight
      row's length differed from the vector's ``G`` groups (rows are still processed, with the
      buffer's group index wrapping at the row end).

    Timing: the activation buffer is filled before the first weight group is accepted (``w``
    is not ready until then), and ``x`` is taken again once the front end is free (it may
    load the next vector while the core works on the current matrix). With the streams
    keeping up, one product of an ``M`` x ``K`` matrix takes
    :meth:`mmfree.spec.BitLinearUnitSpec.cycles` ``= 2G + overhead + QUANT_STAGES + 1 + M*G
    + latency`` cycles, ``G = ceil(K / lanes)``, counted from the first ``x`` transfer to
    the last ``y`` transfer inclusive: the front end's vector
    (:meth:`~mmfree.spec.NormQuantiserSpec.vector_cycles`, to its last group in the buffer),
    ``M*G`` weight groups (the first right after it) and the core's latency.
    Synchronous reset empties everything and clears ``error``; no input transfers in reset.

    Parameters, their limits and defaults: :class:`mmfree.spec.BitLinearUnitSpec`
    (:attr:`spec`): as the front end (``lanes``, ``max_dim``, ``in_width``,
    ``weight_width``, ``mant_bits``) and the core (``acc_width``, ``tree_levels_per_stage``).
    """

    def __init__(self, lanes: int = BitLinearUnitSpec.lanes,
                 max_dim: int = BitLinearUnitSpec.max_dim,
                 in_width: int = BitLinearUnitSpec.in_width,
                 weight_width: int = BitLinearUnitSpec.weight_width,
                 mant_bits: int = BitLinearUnitSpec.mant_bits,
                 acc_width: int = BitLinearUnitSpec.acc_width,
                 tree_levels_per_stage: int = BitLinearUnitSpec.tree_levels_per_stage) -> None:
        self.spec = spec = BitLinearUnitSpec(
            lanes=lanes, max_dim=max_dim, in_width=in_width, weight_width=weight_width,
            mant_bits=mant_bits, acc_width=acc_width,
            tree_levels_per_stage=tree_levels_per_stage).validate()
        self.lanes, self.max_dim, self.in_width = lanes, max_dim, in_width
        self.weight_width, self.mant_bits = weight_width, mant_bits
        self.acc_width, self.tree_levels_per_stage = acc_width, tree_levels_per_stage
        self.latency = spec.latency
        self.overhead = spec.overhead
        super().__init__({
            "x": In(stream.Signature(norm_input_layout(in_width, weight_width, lanes))),
            "w": In(stream.Signature(matrix_weight_layout(lanes))),
            "y": Out(stream.Signature(signed(acc_width))),
            "scale": Out(stream.Signature(norm_scale_layout(spec.fmt, max_dim))),
            "error": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.quantiser = quant = NormQuantiser(**self.spec.quantiser().kwargs())
        m.submodules.core = core = TernaryCore(**self.spec.core().kwargs())
        groups = quant.max_groups
        m.submodules.acts = acts = memory.Memory(
            shape=data.ArrayLayout(signed(ACT_BITS), self.lanes), depth=groups, init=[])
        wr = acts.write_port()
        rd = acts.read_port(domain="comb")

        wiring.connect(m, wiring.flipped(self.x), quant.x)
        wiring.connect(m, quant.scale, wiring.flipped(self.scale))
        wiring.connect(m, core.y, wiring.flipped(self.y))

        index = Signal(range(groups))  # buffer write index, then the replayed group
        groups_m1 = Signal(range(groups))
        row_error = Signal()
        m.d.comb += [
            wr.addr.eq(index),
            wr.data.eq(quant.q.payload.data),
            rd.addr.eq(index),
            self.error.eq(quant.truncated | row_error),
        ]
        running = Signal()  # 0: filling the buffer from the quantiser, 1: replaying it
        with m.If(~running):
            m.d.comb += [quant.q.ready.eq(~ResetSignal()),
                         wr.en.eq(quant.q.valid & quant.q.ready)]
            with m.If(quant.q.valid & quant.q.ready):
                m.d.sync += index.eq(index + 1)
                with m.If(quant.q.payload.last):
                    m.d.sync += [groups_m1.eq(index), index.eq(0), running.eq(1)]
        with m.Else():
            m.d.comb += [
                core.w.valid.eq(self.w.valid),
                core.w.payload.codes.eq(self.w.payload.codes),
                core.w.payload.last.eq(self.w.payload.last),
                core.x.valid.eq(self.w.valid),
                core.x.payload.eq(rd.data),
                self.w.ready.eq(core.w.ready & core.x.ready),  # equal: both join w.valid
            ]
            with m.If(self.w.valid & self.w.ready):
                at_end = index == groups_m1
                with m.If(self.w.payload.last != at_end):
                    m.d.sync += row_error.eq(1)
                with m.If(self.w.payload.last | at_end):
                    m.d.sync += index.eq(0)
                with m.Else():
                    m.d.sync += index.eq(index + 1)
                with m.If(self.w.payload.last & self.w.payload.final):
                    m.d.sync += running.eq(0)
        return m
