"""The weight fetcher (an AXI4 read master streaming ternary weights): parameters and timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..golden.weight_image import group_bits
from .base import Bound, UnitSpec, ceil_div, check_int, param
from .ternary_core import LANES, MAX_LANES

__all__ = ["AXI_PORT_PARAMS", "MAX_ADDR_WIDTH", "MAX_BURST", "MAX_DATA_WIDTH", "MAX_ID_WIDTH",
           "MIN_ADDR_WIDTH", "MIN_DATA_WIDTH", "WeightFetcherSpec", "axi_port_param",
           "check_data_width"]

MIN_DATA_WIDTH, MAX_DATA_WIDTH = 32, 512  #: AXI data bus widths the fetcher supports
MIN_ADDR_WIDTH, MAX_ADDR_WIDTH = 12, 64  #: at least one 4 KiB page
MAX_ID_WIDTH = 16
MAX_BURST = 256  #: AXI4 INCR bursts: 1..256 beats (``arlen`` 0..255)
PAGE_BYTES = 4096  #: an AXI burst must not cross a 4 KiB boundary


def check_data_width(value: object) -> int:
    """``value`` if it is a power of two in 32..512; otherwise raise naming ``data_width``."""
    check_int("data_width", value, MIN_DATA_WIDTH, MAX_DATA_WIDTH)
    assert isinstance(value, int)
    if value & (value - 1):
        raise ValueError(f"data_width must be a power of two, got {value}")
    return value


#: The AXI read port's parameters, declared once: the fetcher's, and those of every unit
#: that passes them down to its fetchers (:func:`axi_port_param`). In this order.
AXI_PORT_PARAMS: dict[str, tuple[int, str, int | Bound, int]] = {
    "data_width": (64, "AXI data bus width per port in bits, a power of two",
                   MIN_DATA_WIDTH, MAX_DATA_WIDTH),
    "addr_width": (32, "AXI address width in bits", 16, MAX_ADDR_WIDTH),
    "max_burst": (16, "longest INCR burst in beats, a power of two", 1, MAX_BURST),
    "outstanding": (4, "read bursts in flight per port at most", 1, 64),
    "fifo_depth": (64, "read-data FIFO per port in beats; a burst is issued only when its "
                       "beats fit (sizes the prefetch)",
                   Bound(lambda s: max(2, s.max_burst), "max(2, max-burst)"), 4096),
    "len_width": (16, "bits of a command's row and group counts", 2, 24),
}


def axi_port_param(name: str) -> Any:
    """The dataclass field of AXI port parameter ``name`` (:data:`AXI_PORT_PARAMS`): its
    default, help and limits, the same in every spec that declares it."""
    default, help, lo, hi = AXI_PORT_PARAMS[name]
    return param(default, help, lo=lo, hi=hi)


@dataclass(frozen=True)
class WeightFetcherSpec(UnitSpec):
    """An AXI4 read master that streams a ternary matrix's lane groups from external memory
    (:class:`mmfree.hdl.weight_fetcher.WeightFetcher`; the memory image:
    :mod:`mmfree.golden.weight_image`).

    Timing (the one place of its formulas): see :meth:`cycles`.
    """

    name: ClassVar[str] = "weight-fetcher"
    summary: ClassVar[str] = ("AXI4 read master streaming ternary weights (2-bit codes or "
                              "5 trits/byte) from external memory")
    component: ClassVar[str] = "mmfree.hdl.weight_fetcher.WeightFetcher"
    testbench: ClassVar[str] = "mmfree.sim.tb.weight_fetcher"

    lanes: int = param(LANES, "weights per lane group (per output beat)", lo=1, hi=MAX_LANES)
    packed: bool = param(False, "groups stored packed 5 trits per byte (else 2-bit codes)")
    data_width: int = axi_port_param("data_width")
    addr_width: int = axi_port_param("addr_width")
    id_width: int = param(1, "AXI ID width in bits (every read uses ID 0: in order)", lo=1,
                          hi=MAX_ID_WIDTH)
    max_burst: int = axi_port_param("max_burst")
    outstanding: int = axi_port_param("outstanding")
    fifo_depth: int = axi_port_param("fifo_depth")
    len_width: int = axi_port_param("len_width")

    def _check(self) -> None:
        check_data_width(self.data_width)
        if self.max_burst & (self.max_burst - 1):
            raise ValueError(f"max_burst must be a power of two, got {self.max_burst}")
        g = self.group_bits
        if (g > self.data_width and g % self.data_width) or (
                g <= self.data_width and self.data_width % g):
            fmt = "packed" if self.packed else "2-bit code"
            raise ValueError(
                f"lanes={self.lanes} makes {g}-bit {fmt} groups, which neither divide nor are "
                f"a multiple of data_width={self.data_width}: choose lanes with a power-of-two "
                f"group ({'lanes = 5 * 2**n or 16' if self.packed else 'lanes a power of two'})")

    # --- derived sizes ---------------------------------------------------------------------

    @property
    def group_bits(self) -> int:
        """Bits of one lane group in memory (:func:`mmfree.golden.weight_image.group_bits`)."""
        return group_bits(self.lanes, self.packed)

    @property
    def groups_per_beat(self) -> int:
        """Lane groups in one data beat (0 when a group spans several beats)."""
        return self.data_width // self.group_bits

    @property
    def beats_per_group(self) -> int:
        """Data beats of one lane group (1 when a beat holds one or more groups)."""
        return max(1, self.group_bits // self.data_width)

    def beats(self, groups: Any) -> Any:
        """Data beats of an image of ``groups`` lane groups."""
        return ceil_div(groups * self.group_bits, self.data_width)

    def top_name(self) -> str:
        return (f"mmfree_weight_fetcher{'_packed' if self.packed else ''}_l{self.lanes}"
                f"_d{self.data_width}_a{self.addr_width}_b{self.max_burst}"
                f"_k{self.outstanding}_f{self.fifo_depth}")

    # --- timing ------------------------------------------------------------------------------

    #: cycles from the command's transfer to the first AR transfer (``arready`` high): the
    #: command register, the product ``rows * groups`` (3: operand, multiply, product
    #: registers), the beat count, the prepared burst, its space check, the AR register
    AR_START: ClassVar[int] = 8
    #: cycles from an R beat's transfer to its first group's on ``o``: the read FIFO (its
    #: write) and the output register (one more when a group spans several beats: the
    #: gather register)
    FIFO_LATENCY: ClassVar[int] = 2
    #: cycles between AR requests at least (the next burst is prepared and checked after a
    #: request)
    AR_INTERVAL: ClassVar[int] = 3
    #: cycles from a slot's release (the cycle after ``rlast``; FIFO space: two cycles
    #: after the pop, the credit being registered) to the next AR transfer: the registered
    #: check, the AR register
    SLOT_EXTRA: ClassVar[int] = 2

    @property
    def latency(self) -> int:
        """Cycles from the command's transfer to the first group's with a memory of zero
        latency: :attr:`AR_START` + the first group's beats and :attr:`FIFO_LATENCY`."""
        return self.AR_START + self.FIFO_LATENCY + (1 if self.beats_per_group > 1 else 0)

    def burst(self, groups: Any) -> Any:
        """Beats of a full burst for ``groups`` lane groups: ``min(max_burst, B)``."""
        return np.minimum(self.max_burst, self.beats(groups))

    def _waves(self, b: Any, mem_latency: Any, rate: Any, q: Any = 1.0) -> tuple[Any, Any]:
        """Bursts in flight at once and the cycles between the AR transfers of a burst and
        of the one that reuses its place. ``outstanding`` slots: a slot is free the cycle
        after the burst's ``rlast``, the next AR transfer ``SLOT_EXTRA`` later: ``L + (b -
        1) / rate + 1 + SLOT_EXTRA``. FIFO space for ``fifo_depth // b`` bursts: a burst's
        space returns two cycles after its last group left (the beat's ``FIFO_LATENCY``,
        then its groups at ``q`` per cycle), the next AR transfer ``SLOT_EXTRA`` later.
        Whichever gives fewer bursts per cycle sets the waves."""
        hold = mem_latency + (b - 1) / rate
        by_fifo = self.fifo_depth // b
        if self.beats_per_group == 1:
            r = self.groups_per_beat
            drain = np.maximum((b - 1) / rate + r - 1, (b * r - 1) / q)
        else:
            drain = (b - 1) / rate
        by_slot = hold + 1 + self.SLOT_EXTRA
        by_space = np.maximum(mem_latency + self.FIFO_LATENCY + drain + 2 + self.SLOT_EXTRA,
                              by_slot)
        # the constraint with the lower rate (bursts per cycle) sets the waves
        space_binds = by_fifo / by_space < self.outstanding / by_slot
        period = np.where(space_binds, by_space, by_slot)
        # a wave's first beat waits for the rate pattern's next slot: whole pattern periods
        # (exact for n = 1 of d, e.g. 1/2; close for evenly spread n of d)
        period = np.where(rate < 1, np.ceil(period * rate - 1e-9) / rate, period)
        return np.where(space_binds, by_fifo, self.outstanding), period

    def beat_rate(self, groups: Any, mem_latency: Any, mem_rate: Any = 1.0,
                  consumer_rate: Any = 1.0) -> Any:
        """Sustained R beats per cycle reading ``groups`` lane groups: the memory's rate
        ``mem_rate`` (beats per cycle, at most 1), or less when the bursts in flight cannot
        cover the latency ``L``: ``slots`` bursts of ``b`` beats (:meth:`burst`) per
        ``period`` cycles, ``slots = min(outstanding, fifo_depth // b)`` (see
        :meth:`_waves`)."""
        b = self.burst(groups)
        rate = np.minimum(np.minimum(mem_rate, 1.0), b / self.AR_INTERVAL)
        slots, period = self._waves(b, mem_latency, rate, np.minimum(consumer_rate, 1.0))
        return np.minimum(rate, slots * b / period)

    def cycles(self, groups: Any, mem_latency: Any = 2, mem_rate: Any = 1.0,
               consumer_rate: Any = 1.0) -> Any:
        """Cycles to deliver ``N = groups`` lane groups in ``B`` beats (:meth:`beats`), from
        the command's transfer to the last group's inclusive, with a memory answering
        ``mem_latency`` (``L``) cycles after an AR transfer (to its first R transfer) at
        ``mem_rate`` beats per cycle at most (``m``: that, or ``b / AR_INTERVAL`` for bursts
        of ``b`` < 2 beats), and a consumer taking ``consumer_rate``
        groups per cycle at most (the port's limit is 1).

        The last beat's R transfer, counted from the first AR transfer, is the later of
        ``L + (B - 1) / m`` (the memory's rate) and ``w * period + k * b / m + L +
        (b_last - 1) / m`` (bursts in waves of ``slots``, a wave's bursts back to back on
        R: the last burst is ``n_b - 1 = w * slots + k``, see :meth:`beat_rate`); its last
        group leaves ``FIFO_LATENCY + n_last - 1`` cycles later (``n_last`` groups in it;
        + 1 through the gather register when a group spans several beats). The last wave's
        groups (and the last burst's) leave from their first beat on at ``min(q, m *
        groups per beat)`` per cycle. The port delivers at most ``q = min(consumer_rate,
        1)`` groups per cycle from the first group on. Total: ``AR_START +`` the latest of
        these ``+ 1``.
        Exact when only the port's one group per cycle limits; otherwise an estimate
        (periodic rate patterns and bursts meeting on the R channel;
        docs/memory-system.md gives its error against the RTL)."""
        n = np.asarray(groups)
        big = self.beats(n)
        b = self.burst(n)
        m = np.minimum(np.minimum(mem_rate, 1.0), b / self.AR_INTERVAL)
        n_b = ceil_div(big, self.max_burst)
        b_last = big - (n_b - 1) * self.max_burst
        q = np.minimum(consumer_rate, 1.0)
        slots, period = self._waves(b, mem_latency, m, q)
        w, k = (n_b - 1) // slots, (n_b - 1) % slots
        last_beat = np.maximum(mem_latency + (big - 1) / m,
                               w * period + k * b / m + mem_latency + (b_last - 1) / m)
        p = self.beats_per_group
        fifo = self.latency - self.AR_START  # R transfer to the group's first cycle on o
        if p == 1:
            n_last = n - (big - 1) * self.groups_per_beat
            by_memory = last_beat + fifo + n_last - 1
            last_groups = n - (n_b - 1) * self.max_burst * self.groups_per_beat
            group_rate = np.minimum(q, m * self.groups_per_beat)
        else:
            by_memory = last_beat + fifo
            last_groups = b_last // p
            group_rate = np.minimum(q, m / p)
        # the last wave's groups, from its first beat, at the port's (or memory's) rate
        if p == 1:
            wave_groups = n - w * slots * self.max_burst * self.groups_per_beat
        else:
            wave_groups = (big - w * slots * self.max_burst) // p
        by_wave = (w * period + mem_latency + fifo + (p - 1) / m
                   + (wave_groups - 1) / group_rate)
        by_burst = np.maximum(by_wave, w * period + k * b / m + mem_latency + fifo
                              + (p - 1) / m + (last_groups - 1) / group_rate)
        by_port = fifo + mem_latency + (p - 1) / m + (n - 1) / q
        return self.AR_START + np.maximum(np.maximum(by_memory, by_port), by_burst) + 1

    def cycle_formula(self) -> str:
        return (f"{self.latency} + L + max((B - 1) / r + n_last - 1, (N - 1) / q) + 1 for N "
                f"groups in B = ceil(N * {self.group_bits} / {self.data_width}) beats, memory "
                "latency L, beat rate r, group rate q (WeightFetcherSpec.cycles)")
