"""The BitLinear unit (fused RMSNorm + absmax quantiser feeding a ternary core) and its
quantiser: parameters and timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..golden.quantiser import (
    IN_WIDTH,
    MANT_BITS,
    RECIP_FRAC,
    RSQRT_FRAC,
    WEIGHT_WIDTH,
    NormQuantFormat,
    recip_width,
    rsqrt_dividend_width,
)
from .base import Bound, UnitSpec, at_least, ceil_div, ceil_log2, param
from .ternary_core import LANES, MAX_LANES, MAX_TREE_LEVELS_PER_STAGE, TernaryCoreSpec

__all__ = ["ACT_BITS", "MAX_DIM", "QUANTISER_TREE_LEVELS_PER_STAGE", "BitLinearUnitSpec",
           "NormQuantiserSpec", "RmsQuantiserSpec"]

MAX_DIM = 65536  #: the longest vector the quantiser's buffer may be sized for
ACT_BITS = 8  #: the quantiser's output (and so the core's activation) width: int8
#: the quantiser's load pipeline registers its max and adder trees every this many levels
QUANTISER_TREE_LEVELS_PER_STAGE = 2
_MAX_DIM = Bound(lambda s: s.lanes, "lanes")


@dataclass(frozen=True)
class RmsQuantiserSpec(UnitSpec):
    """The fused RMSNorm + absmax int8 quantiser
    (:class:`mmfree.hdl.rms_quantiser.RmsAbsmaxQuantiser`); part of the BitLinear unit."""

    name: ClassVar[str] = "rms-quantiser"
    summary: ClassVar[str] = "fused RMSNorm + absmax int8 quantiser"
    component: ClassVar[str] = "mmfree.hdl.rms_quantiser.RmsAbsmaxQuantiser"
    testbench: ClassVar[str] = ""

    lanes: int = param(LANES, "lane group width (of the input, and of the BitLinear unit's "
                              "ternary core)", lo=1, hi=MAX_LANES)
    max_dim: int = param(1024, "longest input vector K (sizes the vector buffers)",
                         lo=_MAX_DIM, hi=MAX_DIM)
    in_width: int = param(IN_WIDTH, "signed width of the input mantissas", lo=2, hi=32)
    recip_frac: int = param(RECIP_FRAC, "fraction bits of the absmax reciprocal R", lo=1,
                            hi=48)
    rsqrt_frac: int = param(RSQRT_FRAC, "fraction bits of RMSNorm's reciprocal square root r",
                            lo=1, hi=64)

    @property
    def tree_stages(self) -> Any:
        """Register stages of the load pipeline's max and adder trees over ``lanes`` values:
        ``max(1, ceil(ceil(log2 lanes) / 2))``."""
        return at_least(ceil_div(ceil_log2(self.lanes), QUANTISER_TREE_LEVELS_PER_STAGE), 1)

    @property
    def overhead(self) -> Any:
        """Cycles from the transfer of a vector's last input group to its ``scale`` output:
        the load pipeline's drain (group register, magnitudes and squares, the tree stages),
        one to start the dividers, the longer of the two restoring divisions (one cycle per
        dividend bit: ``127 * 2**recip_frac`` and ``2**(2 * rsqrt_frac)``), one to start the
        square root, the root (one cycle per two radicand bits) and one to register
        ``D = A * r``. The widths of ``A`` and ``N`` do not change the iteration counts."""
        divide = max(recip_width(self.recip_frac), rsqrt_dividend_width(self.rsqrt_frac))
        root = ceil_div(rsqrt_dividend_width(self.rsqrt_frac), 2)
        return 2 + self.tree_stages + 1 + divide + 1 + root + 1

    @property
    def latency(self) -> Any:
        return self.overhead

    def vector_cycles(self, groups: Any) -> Any:
        """Cycles from a vector's first ``x`` transfer to its last ``q`` transfer, with the
        streams keeping up: ``G`` loads, the overhead, the ``scale`` transfer, the quantise
        pipeline's three stages (buffer read, multiply by ``R``, round and clamp into the
        output queue), ``G`` groups: ``2G + overhead + 4``."""
        return groups + self.overhead + 4 + groups

    def top_name(self) -> str:
        return (f"mmfree_rms_quantiser_l{self.lanes}_k{self.max_dim}_i{self.in_width}"
                f"_r{self.recip_frac}_s{self.rsqrt_frac}")

    def cycle_formula(self) -> str:
        return f"2G + {self.overhead} + 4 with G = ceil(K / {self.lanes}) per vector"


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
    #: queue: the buffer read, the coarse and the fine normalising shift, the product
    #: ``a_i * R`` and its copy (then the rounding, combinational into the queue)
    QUANT_STAGES: ClassVar[int] = 5

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
        ``scale`` (``scale`` ready): the load pipeline to the accumulators' last update and
        the cycle after it (group register, products and squares, their copies, magnitudes,
        the tree stages, the accumulators: ``5 + tree_stages``); the normalisation
        (leading-one detection, shift amounts and ``E``, coarse and fine shifts: 4); one to
        start the dividers and the longer division (``max(P, 2P - 1)``: ``2P - 1``); one to
        start the square root and the root (``P``); the root's copy, the product
        ``D = Â * r`` and the ``scale`` register (3)."""
        divide = at_least(self.root_div_cycles, self.recip_cycles)
        return (5 + self.tree_stages) + 4 + (1 + divide) + (1 + self.isqrt_cycles) + 3

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
class BitLinearUnitSpec(RmsQuantiserSpec):
    """One BitLinear product with its activation quantisation on chip
    (:class:`mmfree.hdl.bitlinear_unit.BitLinearUnit`): the quantiser's parameters, then the
    core's."""

    name: ClassVar[str] = "bitlinear-unit"
    summary: ClassVar[str] = ("BitLinear: fused RMSNorm + absmax int8 quantiser feeding a "
                              "ternary core")
    component: ClassVar[str] = "mmfree.hdl.bitlinear_unit.BitLinearUnit"
    testbench: ClassVar[str] = "mmfree.sim.tb.bitlinear"

    acc_width: int = param(32, "signed row-sum width; results wrap", lo=ACT_BITS + 1, hi=64)
    tree_levels_per_stage: int = param(0, "register the core's adder tree every N levels (0: "
                                          "one stage)", lo=0, hi=MAX_TREE_LEVELS_PER_STAGE)

    def quantiser(self) -> RmsQuantiserSpec:
        """The spec of the unit's quantiser (its overhead is :attr:`overhead`)."""
        return RmsQuantiserSpec(lanes=self.lanes, max_dim=self.max_dim, in_width=self.in_width,
                                recip_frac=self.recip_frac, rsqrt_frac=self.rsqrt_frac)

    def core(self) -> TernaryCoreSpec:
        """The spec of the unit's ternary core (int8 activations)."""
        return TernaryCoreSpec(lanes=self.lanes, act_width=ACT_BITS, acc_width=self.acc_width,
                               tree_levels_per_stage=self.tree_levels_per_stage)

    def top_name(self) -> str:
        pipe = self.tree_levels_per_stage
        return (f"mmfree_bitlinear_l{self.lanes}_k{self.max_dim}_i{self.in_width}"
                f"_r{self.recip_frac}_s{self.rsqrt_frac}_a{self.acc_width}"
                f"{f'_t{pipe}' if pipe else ''}")

    @property
    def latency(self) -> Any:
        """The ternary core's: from the last weight group to its row sum."""
        return self.core().latency

    def cycles(self, m: Any, k: Any) -> Any:
        """Cycles of one ``m`` x ``k`` BitLinear product with the streams keeping up, from
        the first ``x`` transfer to the last ``y`` transfer inclusive:
        ``2G + overhead + 4 + M*G + latency`` with ``G = ceil(K / lanes)``: G input groups,
        the quantiser's fixed overhead, the scale transfer, the quantise pipeline's three
        stages, G quantised groups into the activation buffer
        (:meth:`RmsQuantiserSpec.vector_cycles`), M*G weight groups (the first right after
        the last quantised group), the core's latency."""
        g = ceil_div(k, self.lanes)
        return 2 * g + self.overhead + 4 + m * g + self.latency

    def cycle_formula(self) -> str:
        return (f"2G + {self.overhead} + 4 + M*G + {self.latency} with G = ceil(K / "
                f"{self.lanes}), for an M x K BitLinear product (latency: last weight group "
                "to its row sum)")
