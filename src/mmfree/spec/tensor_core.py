"""The 4x4x4 tensor-core MAC array, its 2:4 sparse mode and the sparse decode unit:
parameters and timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Bound, UnitSpec, ceil_div, param

__all__ = [
    "DECODE_LATENCY",
    "TILE",
    "SparseDecodeSpec",
    "SparseTensorCoreSpec",
    "TensorCoreSpec",
    "operand_bits",
]

TILE = 4  #: the array's tile side: 4 x 4 tiles, 4 x 4 x 4 MACs
ARRAY_LATENCY = 3  #: products, four-product sums, accumulate
DECODE_LATENCY = 1  #: the 2:4 decode stage in front of the array
DECODE_MODES = ("expand", "select")  #: the sparse decode unit's modes


def operand_bits(width: int, is_signed: bool) -> int:
    """Bits of one exact product of two operands: ``2 * width``, + 1 if unsigned (a zero sign
    bit on top)."""
    return 2 * width + (0 if is_signed else 1)


_ACC = Bound(lambda s: operand_bits(s.width, s.is_signed), "2*width (+1 if unsigned)")


@dataclass(frozen=True)
class TensorCoreSpec(UnitSpec):
    """``D = A @ B + C`` on 4 x 4 tiles, one tile per cycle
    (:class:`mmfree.hdl.tensor_core.TensorCore`)."""

    name: ClassVar[str] = "tensor-core"
    summary: ClassVar[str] = ("4x4x4 MAC array, D = A*B + C per cycle (optionally "
                              "accumulating)")
    component: ClassVar[str] = "mmfree.hdl.tensor_core.TensorCore"
    testbench: ClassVar[str] = "mmfree.sim.tb.tensor_core"

    width: int = param(8, "operand width of A and B in bits", lo=2, hi=32)
    is_signed: bool = param(True, "unsigned operands (without it: signed, two's complement)",
                            flag="--unsigned", negate=True)
    acc_width: int = param(32, "signed C/D width; D wraps", lo=_ACC, hi=64)
    accumulate: bool = param(False, "accumulate-in-place mode: first/last flags, D kept "
                                    "inside for K-loops")
    dsp_pipeline: bool = param(False, "register every product twice (a DSP block's output "
                                      "register, then the fabric) for a higher clock on "
                                      "FPGAs; latency +1")

    #: the stages in front of the array (the sparse core's decode)
    front_latency: ClassVar[int] = 0
    #: logical K of one beat
    k_per_beat: ClassVar[int] = TILE
    tiles: ClassVar[str] = "tiles"  #: what a beat carries (for the cycle formula's text)
    gemm: ClassVar[str] = "an M x K x N GEMM"

    def top_name(self) -> str:
        sign = "s" if self.is_signed else "u"
        return (f"mmfree_tensor_core_{sign}{self.width}_a{self.acc_width}"
                f"{'_acc' if self.accumulate else ''}{'_dp' if self.dsp_pipeline else ''}")

    @property
    def latency(self) -> int:
        return self.front_latency + ARRAY_LATENCY + int(self.dsp_pipeline)

    def cycles(self, beats: Any) -> Any:
        """Cycles for ``beats`` back-to-back input tiles: ``T + latency``."""
        return beats + self.latency

    def gemm_cycles(self, m: Any, k: Any, n: Any) -> Any:
        """Cycles for an M x K x N GEMM in accumulate mode:
        ``ceil(M/4) * ceil(N/4) * ceil(K/4) + latency`` (``ceil(K/8)`` sparse)."""
        return self.cycles(ceil_div(m, TILE) * ceil_div(k, self.k_per_beat)
                           * ceil_div(n, TILE))

    def cycle_formula(self) -> str:
        text = f"T + {self.latency} for T back-to-back {self.tiles}"
        if self.accumulate:
            text += (f"; ceil(M/4) * ceil(N/4) * ceil(K/{self.k_per_beat}) + {self.latency} "
                     f"for {self.gemm}")
        return text


@dataclass(frozen=True)
class SparseTensorCoreSpec(TensorCoreSpec):
    """The tensor core in 2:4 sparse mode: a logical 4 x 8 x 4 product per cycle
    (:class:`mmfree.hdl.sparse_decode.SparseTensorCore`)."""

    name: ClassVar[str] = "sparse-tensor-core"
    summary: ClassVar[str] = "tensor core in 2:4 sparse mode, logical 4x8x4 per cycle"
    component: ClassVar[str] = "mmfree.hdl.sparse_decode.SparseTensorCore"
    testbench: ClassVar[str] = "mmfree.sim.tb.sparse_tensor"
    front_latency: ClassVar[int] = DECODE_LATENCY
    k_per_beat: ClassVar[int] = 2 * TILE

    tiles: ClassVar[str] = "logical 4x8x4 tiles"
    gemm: ClassVar[str] = "a logical M x K x N GEMM"

    def top_name(self) -> str:
        return "mmfree_sparse_" + super().top_name().removeprefix("mmfree_")


@dataclass(frozen=True)
class SparseDecodeSpec(UnitSpec):
    """The 2:4 decode unit: expand compressed A tiles, or select the B rows of the kept
    values (:class:`mmfree.hdl.sparse_decode.SparseDecode`)."""

    name: ClassVar[str] = "sparse-decode"
    summary: ClassVar[str] = "2:4 sparse decode unit (expand to dense, or select B rows)"
    component: ClassVar[str] = "mmfree.hdl.sparse_decode.SparseDecode"
    testbench: ClassVar[str] = "mmfree.sim.tb.sparse_decode"

    width: int = param(8, "operand width", lo=2, hi=32)
    is_signed: bool = param(True, "unsigned operands", flag="--unsigned", negate=True)
    mode: str = param("expand", "expand compressed A to the dense tile, or select B rows for "
                                "the sparse MAC", choices=DECODE_MODES)
    acc_width: int = param(32, "C width carried through in select mode", lo=_ACC, hi=64)
    accumulate: bool = param(False, "select mode: carry the first/last flags of the "
                                    "accumulate protocol")

    def top_name(self) -> str:
        sign = "s" if self.is_signed else "u"
        extra = (f"_a{self.acc_width}{'_acc' if self.accumulate else ''}"
                 if self.mode == "select" else "")
        return f"mmfree_sparse_decode_{self.mode}_{sign}{self.width}{extra}"

    @property
    def latency(self) -> int:
        return DECODE_LATENCY

    def cycles(self, beats: Any) -> Any:
        """Cycles for ``beats`` back-to-back tiles: ``T + 1``."""
        return beats + self.latency

    def cycle_formula(self) -> str:
        return f"T + {self.latency} for T back-to-back tiles"
