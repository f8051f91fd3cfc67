"""The multi-core BitLinear unit (C ternary cores fed over AXI4): parameters, the host's
memory map of the weight images, and timing.

The unit (:class:`mmfree.hdl.multicore_bitlinear.MultiCoreBitLinear`) is the BitLinear
unit's front end (:class:`NormQuantiserSpec`) in front of a :class:`FetchedProductSpec`
product: ``cores`` ternary cores, each streaming its share of a matrix's rows from its own
AXI4 port (one memory channel per core), or, with ``channels`` K < C, ``C / K`` cores
sharing each of K ports through an AXI4 read arbiter
(:class:`mmfree.hdl.axi_read_arbiter.AxiReadArbiter`). Rows are **interleaved**: core ``c``
computes rows ``c, c + C, c + 2C, ...`` (:func:`mmfree.golden.weight_image.interleave_rows`),
so a round-robin merge hands the row sums on in row order.

**Shared channels.** Core ``c`` reads over port ``c mod K`` (channel), in its **slot**
``c // K`` of that channel: the slot is the arbiter's source index (the ARID's upper bits)
and the top :func:`source_bits` bits of the core's addresses, so every core sharing a
channel has its own region of ``2 ** slot_shift`` bytes (:attr:`MultiCoreBitLinearSpec.
slot_shift`) holding its share of every matrix at the address of the host's memory map
(:func:`matrix_addresses`, the same in every slot and channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..golden.weight_image import image_beats
from .base import ceil_div, param
from .bitlinear_unit import ACT_BITS, BitLinearUnitSpec
from .fetched_product import MAX_CORES, FetchedProductSpec
from .weight_fetcher import MAX_DATA_WIDTH, axi_port_param

__all__ = ["ARBITER_AR_STAGES", "CYCLE_TOLERANCE", "IMAGE_ALIGN", "MultiCoreBitLinearSpec",
           "matrix_addresses", "source_bits"]

#: every matrix image starts on a multiple of this many bytes (the widest data bus's beat)
IMAGE_ALIGN = MAX_DATA_WIDTH // 8


#: cycles the AXI4 read arbiter adds on AR (its registered stage; none on R:
#: :class:`mmfree.hdl.axi_read_arbiter.AxiReadArbiter`)
ARBITER_AR_STAGES = 1


def source_bits(sources: int) -> int:
    """ID (and address) bits that name one of ``sources`` managers sharing a port:
    ``ceil(log2 sources)``."""
    return (sources - 1).bit_length()


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
    data_width: int = axi_port_param("data_width")
    addr_width: int = axi_port_param("addr_width")
    max_burst: int = axi_port_param("max_burst")
    outstanding: int = axi_port_param("outstanding")
    fifo_depth: int = axi_port_param("fifo_depth")
    len_width: int = axi_port_param("len_width")
    channels: int = param(0, "AXI ports (memory channels), dividing cores: core c reads over "
                             "port c mod channels, cores sharing a port through an AR "
                             "arbiter (0: one port per core)", lo=0, hi=MAX_CORES)

    # --- ports, slots ------------------------------------------------------------------------

    @property
    def ports(self) -> int:
        """AXI ports (memory channels) ``K``: ``channels``, or ``cores`` when 0."""
        return self.channels or self.cores

    @property
    def sharing(self) -> int:
        """Cores per port ``S = cores / K`` (1: no arbiter)."""
        return self.cores // self.ports

    @property
    def port_id_width(self) -> int:
        """ARID bits of a port: the fetcher's 1, plus :func:`source_bits` of the sharing
        cores."""
        return 1 + source_bits(self.sharing)

    @property
    def slot_shift(self) -> int:
        """The lowest address bit of a core's slot in its channel: the top
        :func:`source_bits` ``(S)`` bits of the ``addr_width``-bit address name the slot, so
        each of the ``S`` cores on a channel has ``2 ** slot_shift`` bytes (the whole
        address space when ``S`` is 1)."""
        return self.addr_width - source_bits(self.sharing)

    def channel_of(self, core: int) -> int:
        """The port (channel) core ``core`` reads over: ``core mod K``."""
        return core % self.ports

    def slot_of(self, core: int) -> int:
        """Core ``core``'s slot in its channel (its arbiter source): ``core // K``."""
        return core // self.ports

    def core_address(self, core: int, addr: int) -> int:
        """The byte address in its channel of core ``core``'s share of a matrix at
        ``addr`` of the memory map: the slot in the top bits (``addr`` when 1 per port)."""
        return (self.slot_of(core) << self.slot_shift) | addr if self.sharing > 1 else addr

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
        if self.channels > self.cores:
            raise ValueError(f"channels must be at most cores ({self.cores}), got "
                             f"{self.channels}")
        if self.channels and self.cores % self.channels:
            raise ValueError(f"channels {self.channels} must divide cores {self.cores} (each "
                             "channel serves as many cores)")

    def top_name(self) -> str:
        shared = f"_ch{self.ports}" if self.sharing > 1 else ""
        return (super().top_name().replace("mmfree_bitlinear", "mmfree_multicore_bitlinear")
                + f"_c{self.cores}{'_packed' if self.packed else ''}_d{self.data_width}"
                  f"_b{self.max_burst}_o{self.outstanding}_f{self.fifo_depth}{shared}")

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
        later. Exact where :meth:`FetchedProductSpec.cycles` is (docs/memory-system.md).
        With cores sharing channels (:attr:`sharing` > 1): :meth:`shared_cycles`."""
        g = ceil_div(k, self.lanes)
        if self.sharing > 1:
            return self.vector_cycles(g) + self.shared_cycles(m, k, mem_latency, mem_rate)
        return (self.vector_cycles(g) + self.product().cycles(m, k, mem_latency, mem_rate)
                + (m - 1) % self.cores)

    def shared_cycles(self, m: Any, k: Any, mem_latency: Any = 2, mem_rate: Any = 1.0) -> Any:
        """With ``S`` = :attr:`sharing` cores per channel: cycles from the product's
        command transfer to the last real row sum's transfer (an **estimate**; the
        fetcher's terms are :meth:`WeightFetcherSpec.cycles`'s, ``F(N, L, r)``).

        Every fetcher takes the command in the same cycle and presents its first request
        :attr:`~WeightFetcherSpec.AR_START` cycles later; the arbiter adds
        :data:`ARBITER_AR_STAGES` (1) to every request's way (``L1 = L + 1``, exact) and
        passes the first requests in turn, slot 0 first (the round-robin may start
        elsewhere after a previous product: a few cycles' difference), and the memory
        answers in request order. Two bounds, the later of which is core ``c``'s fetch
        time:

        * its first burst (``b1 = min(max_burst, B)`` beats) waits behind the ``s``
          first bursts of the slots before its own (``s = c // K``) on the channel's R,
          once: ``s * b1 / r + F(N, L1, r)`` (from then on as if alone: exact when the
          channel keeps every core at one group per cycle, or when the requests in flight
          limit each core and its bursts do not meet the others' on R);
        * the channel carries the ``S * B`` beats of its cores back to back from its first
          beat: the last beat ``AR_START + L1 + (S * B - 1) / r``, its groups
          ``FIFO_LATENCY + n_last - 1`` later; and the last burst's (``b_last`` beats)
          groups leave from its first beat (``(S * B - b_last) / r`` after the channel's
          first) at the core's rate ``min(1, r * groups per beat)``, so a burst that
          arrives faster than its core takes it drains after it; ``+ 1`` (memory-bound).

        The channel's last bursts come in slot order (round-robin), so for the core in slot
        ``s`` the second bound is ``(S - 1 - s) * b_last / r`` earlier. Core ``c``'s last
        row sum is valid ``T_c = 1 + fetch + latency`` after the command
        (:meth:`FetchedProductSpec.cycles`' command register and core latency). The merge
        hands on the last real row, core ``r = (M - 1) mod C``, at the latest of ``T_c + r
        - c`` (``c <= r``) and ``T_c - G + r + C - c`` (``c > r``: the core's last real
        row, one row of ``G`` groups before its padding row, then the merge's way round).
        Where the rate pattern and the bursts of several cores meet on R is not followed:
        hence an estimate, tested within :data:`CYCLE_TOLERANCE`."""
        prod = self.product()
        f = prod.fetcher()
        cores, share = self.cores, self.sharing
        g = ceil_div(k, self.lanes)
        n = self.rows_per_core(m) * g
        big = f.beats(n)
        b1 = f.burst(n)
        rate = np.minimum(mem_rate, 1.0)
        l1 = mem_latency + ARBITER_AR_STAGES
        fifo = f.latency - f.AR_START  # R transfer to the group's first cycle on ``o``
        p = f.beats_per_group
        b_last = big - (ceil_div(big, f.max_burst) - 1) * f.max_burst
        if p == 1:
            tail = fifo + n - (big - 1) * f.groups_per_beat - 1
            last_groups = n - (ceil_div(big, f.max_burst) - 1) * f.max_burst * f.groups_per_beat
            group_rate = np.minimum(1.0, rate * f.groups_per_beat)
        else:
            tail = fifo
            last_groups = b_last // p
            group_rate = np.minimum(1.0, rate / p)
        # the last beat's groups; the last burst's, from its first beat at the core's rate
        by_beat = (share * big - 1) / rate + tail
        by_burst = ((share * big - b_last) / rate + fifo + (p - 1) / rate
                    + (last_groups - 1) / group_rate)
        by_channel = f.AR_START + l1 + np.maximum(by_beat, by_burst) + 1
        r = (m - 1) % cores
        end: Any = 0
        for c in range(cores):
            s = self.slot_of(c)
            # the channel's last bursts come in slot order: slot s's ends S - 1 - s later
            own_end = by_channel - (share - 1 - s) * b_last / rate
            fetch = np.maximum(s * b1 / rate + f.cycles(n, l1, mem_rate), own_end)
            t = prod.CMD_REGISTER + fetch + prod.latency
            end = np.maximum(end, np.where(c <= r, t + r - c, t - g + r + cores - c))
        return end

    def exact(self, m: int, k: int, mem_latency: int, mem_rate: float) -> bool:
        """Whether :meth:`cycles` is exact for this product and channel: one port per core
        (:attr:`sharing` 1), the channel runs at full rate (``mem_rate`` 1) and its
        sustained beats (:meth:`WeightFetcherSpec.beat_rate`) bring a core at least one
        lane group per cycle (compute-bound). Otherwise it is an estimate (within
        :data:`CYCLE_TOLERANCE` on the configurations measured)."""
        if self.sharing > 1:
            return False
        f = self.product().fetcher()
        n = self.rows_per_core(m) * ceil_div(k, self.lanes)
        rate = float(f.beat_rate(n, mem_latency, mem_rate))
        return mem_rate >= 1 and rate * self.data_width / f.group_bits >= 1

    def cycle_formula(self) -> str:
        shared = (f"; {self.sharing} cores per channel: shared_cycles (an estimate)"
                  if self.sharing > 1 else "")
        return (f"2G + {self.overhead} + {self.QUANT_STAGES + 1} + FetchedProductSpec.cycles"
                f"(M, K, L, rate) + (M - 1) mod {self.cores} with G = ceil(K / {self.lanes})"
                + shared)


def matrix_addresses(shapes: Sequence[tuple[int, int]], spec: MultiCoreBitLinearSpec,
                     base: int = 0) -> list[int]:
    """The host's memory map of a model's matrices (``(M, K)`` each, in program order): the
    byte address of each matrix's image in every channel (core ``c``'s share of matrix
    ``j`` is at the same address in channel ``c``; with cores sharing channels, at that
    address within core ``c``'s slot: :meth:`MultiCoreBitLinearSpec.core_address`), back
    to back from ``base``, each on a multiple of :data:`IMAGE_ALIGN` bytes. Raises
    ``ValueError`` naming ``addr_width`` if the images do not fit a slot (``2 **
    slot_shift`` bytes: the address space, or its share when cores share a channel)."""
    out, addr = [], ceil_div(base, IMAGE_ALIGN) * IMAGE_ALIGN
    for m, k in shapes:
        out.append(addr)
        addr += ceil_div(spec.image_bytes(m, k), IMAGE_ALIGN) * IMAGE_ALIGN
    if addr > 1 << spec.slot_shift:
        raise ValueError(
            f"addr_width {spec.addr_width}: the weight images take {addr} bytes per core, "
            f"more than the {1 << spec.slot_shift} bytes of a core's "
            + ("address space" if spec.sharing == 1 else
               f"slot ({spec.sharing} cores share each channel)"))
    return out
