"""The multi-core BitLinear unit (C ternary cores fed over AXI4): parameters, the host's
memory map of the weight images, and timing.

The unit (:class:`mmfree.hdl.multicore_bitlinear.MultiCoreBitLinear`) is the BitLinear
unit's front end (:class:`NormQuantiserSpec`) in front of a :class:`FetchedProductSpec`
product: ``cores`` ternary cores, each streaming its share of a matrix's rows from its own
AXI4 port (one memory channel per core). Rows are **interleaved**: core ``c`` computes rows
``c, c + C, c + 2C, ...`` (:func:`mmfree.golden.weight_image.interleave_rows`), so a
round-robin merge hands the row sums on in row order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..golden.weight_image import image_beats
from .base import ceil_div, param
from .bitlinear_unit import ACT_BITS, BitLinearUnitSpec
from .fetched_product import MAX_CORES, FetchedProductSpec
from .weight_fetcher import MAX_BURST, MAX_DATA_WIDTH, MIN_DATA_WIDTH

__all__ = ["CYCLE_TOLERANCE", "IMAGE_ALIGN", "MultiCoreBitLinearSpec", "matrix_addresses"]

#: every matrix image starts on a multiple of this many bytes (the widest data bus's beat)
IMAGE_ALIGN = MAX_DATA_WIDTH // 8


#: where :meth:`MultiCoreBitLinearSpec.cycles` is an estimate (a channel limits the fetch,
#: :meth:`MultiCoreBitLinearSpec.exact`), the error the tests allow: the fetcher's closed
#: form is within 1.3 % of the RTL on every configuration measured (docs/memory-system.md)
CYCLE_TOLERANCE = 0.02


@dataclass(frozen=True)
class MultiCoreBitLinearSpec(BitLinearUnitSpec):
    """One BitLinear product with the weights read from external memory by ``cores``
    ternary cores (:class:`mmfree.hdl.multicore_bitlinear.MultiCoreBitLinear`): the
    BitLinear unit's parameters (:class:`BitLinearUnitSpec`), then the product's
    (:class:`FetchedProductSpec`). Not a registry unit of its own: it is co-simulated inside
    the engine (``EngineSpec(cores=...)``)."""

    name: ClassVar[str] = "multicore-bitlinear"
    summary: ClassVar[str] = ("BitLinear: RMSNorm with its weight + int8 quantiser feeding C "
                              "ternary cores whose weights stream over AXI4")
    component: ClassVar[str] = "mmfree.hdl.multicore_bitlinear.MultiCoreBitLinear"
    testbench: ClassVar[str] = "mmfree.sim.tb.engine"

    cores: int = param(2, "ternary cores (and AXI ports, one per memory channel); core c "
                          "computes rows c, c + cores, ...", lo=1, hi=MAX_CORES)
    packed: bool = param(False, "weights stored packed 5 trits per byte (else 2-bit codes)")
    data_width: int = param(64, "AXI data bus width per port, a power of two",
                            lo=MIN_DATA_WIDTH, hi=MAX_DATA_WIDTH)
    addr_width: int = param(32, "AXI address width", lo=16, hi=64)
    max_burst: int = param(16, "longest INCR burst in beats, a power of two", lo=1,
                           hi=MAX_BURST)
    outstanding: int = param(4, "read bursts in flight per port at most", lo=1, hi=64)
    fifo_depth: int = param(64, "read-data FIFO per port in beats", lo=2, hi=4096)
    len_width: int = param(16, "bits of a command's row and group counts", lo=2, hi=24)

    def product(self) -> FetchedProductSpec:
        """The spec of the cores and their fetchers (int8 activations from the front end)."""
        return FetchedProductSpec(
            cores=self.cores, lanes=self.lanes, packed=self.packed, max_dim=self.max_dim,
            act_width=ACT_BITS, acc_width=self.acc_width,
            tree_levels_per_stage=self.tree_levels_per_stage, data_width=self.data_width,
            addr_width=self.addr_width, max_burst=self.max_burst,
            outstanding=self.outstanding, fifo_depth=self.fifo_depth,
            len_width=self.len_width)

    def _check(self) -> None:
        super()._check()
        self.product().validate()

    def top_name(self) -> str:
        return (super().top_name().replace("mmfree_bitlinear", "mmfree_multicore_bitlinear")
                + f"_c{self.cores}{'_packed' if self.packed else ''}_d{self.data_width}"
                  f"_b{self.max_burst}_o{self.outstanding}_f{self.fifo_depth}")

    def rows_per_core(self, m: Any) -> Any:
        """Rows each core computes: ``R = ceil(M / cores)`` (the last round padded with zero
        rows)."""
        return ceil_div(m, self.cores)

    def check_shape(self, m: int, k: int) -> None:
        """Raise ``ValueError`` naming ``cores`` if an ``m`` x ``k`` product has fewer lane
        groups per row than cores (the round-robin merge hands on one row sum per cycle, so
        a round of ``cores`` row sums must not come faster than one every ``G`` cycles), or
        ``len_width`` if its counts do not fit the command."""
        g = ceil_div(k, self.lanes)
        if g < self.cores:
            raise ValueError(f"cores {self.cores} exceed the {g} lane groups of a {m} x {k} "
                             f"BitLinear at {self.lanes} lanes (at most one core per lane "
                             "group of a row)")
        if max(self.rows_per_core(m), g) >= 1 << self.len_width:
            raise ValueError(f"len_width {self.len_width} is too narrow for a {m} x {k} "
                             "BitLinear")

    def image_bytes(self, m: int, k: int) -> int:
        """Bytes one core's share of an ``m`` x ``k`` matrix takes in its channel: whole
        data beats (:func:`mmfree.golden.weight_image.image_beats`)."""
        g = ceil_div(k, self.lanes)
        return image_beats(self.rows_per_core(m), g, self.lanes, self.packed,
                           self.data_width) * self.data_width // 8

    def cycles(self, m: Any, k: Any, mem_latency: Any = 2, mem_rate: Any = 1.0) -> Any:
        """Cycles of one ``m`` x ``k`` product, from the first ``x`` transfer to the last
        ``y`` transfer inclusive, with ``y`` ready and every channel answering
        ``mem_latency`` cycles after an AR transfer at ``mem_rate`` beats per cycle at
        most: the front end's vector (:meth:`NormQuantiserSpec.vector_cycles`, to its last
        int8 group in the product's buffer); the product's command then transfers (it was
        registered at that group), and :meth:`FetchedProductSpec.cycles` later the cores'
        last row sums are valid (every core has ``R`` rows and its own channel: they finish
        together); the merge hands them on one per cycle in core order, so the last real
        row (``M - 1``, core ``(M - 1) mod cores``) leaves ``(M - 1) mod cores`` cycles
        later. Exact where :meth:`FetchedProductSpec.cycles` is (docs/memory-system.md)."""
        g = ceil_div(k, self.lanes)
        return (self.vector_cycles(g) + self.product().cycles(m, k, mem_latency, mem_rate)
                + (m - 1) % self.cores)

    def exact(self, m: int, k: int, mem_latency: int, mem_rate: float) -> bool:
        """Whether :meth:`cycles` is exact for this product and channel: the channel runs
        at full rate (``mem_rate`` 1) and its sustained beats
        (:meth:`WeightFetcherSpec.beat_rate`) bring a core at least one lane group per
        cycle (compute-bound). Otherwise it is an estimate (within
        :data:`CYCLE_TOLERANCE` on the configurations measured)."""
        f = self.product().fetcher()
        n = self.rows_per_core(m) * ceil_div(k, self.lanes)
        rate = float(f.beat_rate(n, mem_latency, mem_rate))
        return mem_rate >= 1 and rate * self.data_width / f.group_bits >= 1

    def cycle_formula(self) -> str:
        return (f"2G + {self.overhead} + {self.QUANT_STAGES + 1} + FetchedProductSpec.cycles"
                f"(M, K, L, rate) + (M - 1) mod {self.cores} with G = ceil(K / {self.lanes})")


def matrix_addresses(shapes: Sequence[tuple[int, int]], spec: MultiCoreBitLinearSpec,
                     base: int = 0) -> list[int]:
    """The host's memory map of a model's matrices (``(M, K)`` each, in program order): the
    byte address of each matrix's image in every channel (core ``c``'s share of matrix
    ``j`` is at the same address in channel ``c``), back to back from ``base``, each on a
    multiple of :data:`IMAGE_ALIGN` bytes."""
    out, addr = [], ceil_div(base, IMAGE_ALIGN) * IMAGE_ALIGN
    for m, k in shapes:
        out.append(addr)
        addr += ceil_div(spec.image_bytes(m, k), IMAGE_ALIGN) * IMAGE_ALIGN
    return out
