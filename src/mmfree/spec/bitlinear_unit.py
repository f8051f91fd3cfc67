"""The BitLinear unit (the front end with the RMSNorm weight feeding a ternary core) and its
front end: parameters and timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..golden.quantiser import IN_WIDTH, MANT_BITS, WEIGHT_WIDTH, NormQuantFormat
from .base import Bound, UnitSpec, at_least, ceil_div, ceil_log2, param
from .ternary_core import LANES, MAX_LANES, MAX_TREE_LEVELS_PER_STAGE, TernaryCoreSpec

__all__ = ["ACT_BITS", "MAX_DIM", "BitLinearUnitSpec", "NormQuantiserSpec"]

MAX_DIM = 65536  #: the longest vector the quantiser's buffer may be sized for
ACT_BITS = 8  #: the quantiser's output (and so the core's activation) width: int8
_MAX_DIM = Bound(lambda s: s.lanes, "lanes")


@dataclass(frozen=True)
class NormQuantiserSpec(UnitSpec):
    """The BitLinear front end with the per-channel RMSNorm weight
    (:class:`mmfree.hdl.norm_quantiser.NormQuantiser`), bit-exact to
    :func:`mmfree.golden.quantiser.quantise_weighted`; part of the BitLinear unit.

    Timing (the one place of its formulas; the RTL's docstring, the testbench and the cycle
    model use them): a vector of ``G`` lane groups takes :meth:`vector_cycles` ``=
    2G + overhead + QUANT_STAGES + 1`` cycles from its first ``x`` transfer to its last
    ``q`` transfer with the streams keeping up; :attr:`overhead` is fixed (no data
    dependence)."""

    name: ClassVar[str] = "norm-quantiser"
    summary: ClassVar[str] = ("BitLinear front end: RMSNorm with its weight + absmax int8 "
                              "quantiser")
    component: ClassVar[str] = "mmfree.hdl.norm_quantiser.NormQuantiser"
    testbench: ClassVar[str] = "mmfree.sim.tb.norm_quantiser"

    lanes: int = param(LANES, "lane group width (of the input, and of the BitLinear unit's "
                              "ternary core)", lo=1, hi=MAX_LANES)
    max_dim: int = param(1024, "longest input vector K (sizes the vector buffer)",
                         lo=_MAX_DIM, hi=MAX_DIM)
    in_width: int = param(IN_WIDTH, "signed width of the input mantissas m", lo=2, hi=24)
    weight_width: int = param(WEIGHT_WIDTH, "signed width of the norm weight mantissas v",
                              lo=2, hi=24)
    mant_bits: int = param(MANT_BITS, "P: bits of the normalised magnitudes, R and r (17: "
                                      "every multiply fits one 18x18 DSP)", lo=9, hi=30)

    #: cycles of the quantise pass from a group's read to its result entering the output
    #: queue: the buffer read and its register, the coarse and the fine normalising shift,
    #: the multiplier's operand register (``a_i``'s copy, 8 since the 150 MHz work: the
    #: route into the DSP block starts from a flip-flop), the product ``a_i * R`` and its
    #: copy, the rounded int8 value
    QUANT_STAGES: ClassVar[int] = 8

    @property
    def fmt(self) -> NormQuantFormat:
        """The golden model's format for these widths."""
        return NormQuantFormat(self.in_width, self.weight_width, self.mant_bits)

    @property
    def tree_stages(self) -> Any:
        """Register stages of the load pipeline's max and adder trees over ``lanes`` values:
        one per tree level, ``ceil(log2 lanes)`` (0 for one lane)."""
        return ceil_log2(self.lanes)

    @property
    def recip_cycles(self) -> Any:
        """Iterations of the ``R`` division: ``P`` quotient bits."""
        return self.mant_bits

    @property
    def root_div_cycles(self) -> Any:
        """Iterations of the ``2**(2S) / N'`` division: ``2P - 1`` quotient bits."""
        return 2 * self.mant_bits - 1

    @property
    def isqrt_cycles(self) -> Any:
        """Iterations of the square root of the ``(2P - 1)``-bit quotient: ``P``."""
        return self.mant_bits

    @property
    def overhead(self) -> Any:
        """Cycles from the transfer of a vector's last input group to the transfer of its
        ``scale`` (``scale`` ready): the load pipeline to ``A``'s last update (group
        register, products and squares, their copies, magnitudes: 4; the max tree, a
        compare and a select stage per level: ``2 tree_stages``; the two interleaved ``A``
        accumulators' compare and select: 2; the larger of the two, compare and select: 2;
        ``8 + 2 tree_stages``, which was ``5 + tree_stages`` before the 150 MHz work: 7
        cycles more at 16 lanes); the normalisation
        (leading-one detection in two steps, coarse and fine shifts: 4); one to
        start the dividers and the longer division (``max(P, 2P - 1)``: ``2P - 1``); one to
        start the square root and the root (``P``); the root's copy, the product
        ``D = Â * r`` and the ``scale`` register (3)."""
        divide = at_least(self.root_div_cycles, self.recip_cycles)
        return (8 + 2 * self.tree_stages) + 4 + (1 + divide) + (1 + self.isqrt_cycles) + 3

    @property
    def latency(self) -> Any:
        return self.overhead

    def vector_cycles(self, groups: Any) -> Any:
        """Cycles from a vector's first ``x`` transfer to its last ``q`` transfer, with the
        streams keeping up: ``G`` loads, the overhead (to the ``scale`` transfer), one cycle
        to the first read, the quantise pass's :attr:`QUANT_STAGES`, the output queue's
        register, ``G`` groups (one per cycle): ``2G + overhead + QUANT_STAGES + 1``."""
        return groups + self.overhead + self.QUANT_STAGES + 1 + groups

    def top_name(self) -> str:
        return (f"mmfree_norm_quantiser_l{self.lanes}_k{self.max_dim}_i{self.in_width}"
                f"_w{self.weight_width}_p{self.mant_bits}")

    def cycle_formula(self) -> str:
        return (f"2G + {self.overhead} + {self.QUANT_STAGES + 1} with G = ceil(K / "
                f"{self.lanes}) per vector")


@dataclass(frozen=True)
class BitLinearUnitSpec(NormQuantiserSpec):
    """One BitLinear product with its activation quantisation on chip
    (:class:`mmfree.hdl.bitlinear_unit.BitLinearUnit`): the front end's parameters
    (:class:`NormQuantiserSpec`), then the core's."""

    name: ClassVar[str] = "bitlinear-unit"
    summary: ClassVar[str] = ("BitLinear: RMSNorm with its weight + absmax int8 quantiser "
                              "feeding a ternary core")
    component: ClassVar[str] = "mmfree.hdl.bitlinear_unit.BitLinearUnit"
    testbench: ClassVar[str] = "mmfree.sim.tb.bitlinear"

    acc_width: int = param(32, "signed row-sum width; results wrap", lo=ACT_BITS + 1, hi=64)
    tree_levels_per_stage: int = param(2, "register the core's adder tree every N levels (0: "
                                          "one stage)", lo=0, hi=MAX_TREE_LEVELS_PER_STAGE)

    def quantiser(self) -> NormQuantiserSpec:
        """The spec of the unit's front end (its overhead is :attr:`overhead`)."""
        return NormQuantiserSpec(lanes=self.lanes, max_dim=self.max_dim,
                                 in_width=self.in_width, weight_width=self.weight_width,
                                 mant_bits=self.mant_bits)

    def core(self) -> TernaryCoreSpec:
        """The spec of the unit's ternary core (int8 activations)."""
        return TernaryCoreSpec(lanes=self.lanes, act_width=ACT_BITS, acc_width=self.acc_width,
                               tree_levels_per_stage=self.tree_levels_per_stage)

    def top_name(self) -> str:
        pipe = self.tree_levels_per_stage
        return (f"mmfree_bitlinear_l{self.lanes}_k{self.max_dim}_i{self.in_width}"
                f"_w{self.weight_width}_p{self.mant_bits}_a{self.acc_width}_t{pipe}")

    @property
    def latency(self) -> Any:
        """The ternary core's: from the last weight group to its row sum."""
        return self.core().latency

    def cycles(self, m: Any, k: Any) -> Any:
        """Cycles of one ``m`` x ``k`` BitLinear product with the streams keeping up, from
        the first ``x`` transfer to the last ``y`` transfer inclusive:
        ``vector_cycles(G) + M*G + latency`` = ``2G + overhead + QUANT_STAGES + 1 + M*G +
        latency`` with ``G = ceil(K / lanes)``: the front end's vector
        (:meth:`NormQuantiserSpec.vector_cycles`: its last quantised group enters the
        activation buffer), ``M*G`` weight groups (the first right after it), the core's
        latency."""
        g = ceil_div(k, self.lanes)
        return self.vector_cycles(g) + m * g + self.latency

    def cycle_formula(self) -> str:
        return (f"2G + {self.overhead} + {self.QUANT_STAGES + 1} + M*G + {self.latency} with "
                f"G = ceil(K / {self.lanes}), for an M x K BitLinear product (latency: last "
                "weight group to its row sum)")
