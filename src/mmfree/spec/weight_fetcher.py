"""The weight fetcher (an AXI4 read master streaming ternary weights): parameters and timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..golden.weight_image import group_bits
from .base import Bound, UnitSpec, ceil_div, check_int, param
from .ternary_core import LANES, MAX_LANES

__all__ = ["MAX_ADDR_WIDTH", "MAX_BURST", "MAX_DATA_WIDTH", "MAX_ID_WIDTH", "MIN_ADDR_WIDTH",
           "MIN_DATA_WIDTH", "WeightFetcherSpec", "check_data_width"]

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
    data_width: int = param(64, "AXI data bus width in bits, a power of two",
                            lo=MIN_DATA_WIDTH, hi=MAX_DATA_WIDTH)
    addr_width: int = param(32, "AXI address width in bits", lo=MIN_ADDR_WIDTH,
                            hi=MAX_ADDR_WIDTH)
    id_width: int = param(1, "AXI ID width in bits (every read uses ID 0: in order)", lo=1,
                          hi=MAX_ID_WIDTH)
    max_burst: int = param(16, "longest INCR burst in beats", lo=1, hi=MAX_BURST)
    outstanding: int = param(4, "read bursts in flight at most", lo=1, hi=64)
    fifo_depth: int = param(64, "read-data FIFO in beats; a burst is issued only when its "
                                "beats fit (sizes the prefetch)",
                            lo=Bound(lambda s: s.max_burst, "max-burst"), hi=4096)
    len_width: int = param(16, "bits of a command's row and group counts", lo=1, hi=24)

    def _check(self) -> None:
        check_data_width(self.data_width)
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
    #: command register, the product ``rows * groups``, the beat count
    AR_START: ClassVar[int] = 3
    #: cycles from an R beat's transfer to its first group on ``o`` (the read FIFO)
    FIFO_LATENCY: ClassVar[int] = 2
    #: cycles an outstanding-request slot stays taken beyond its burst's latency and beats
    SLOT_EXTRA: ClassVar[int] = 1
    #: cycles from a group's transfer on ``o`` to a burst issued on its freed FIFO space
    CREDIT_EXTRA: ClassVar[int] = 2

    @property
    def latency(self) -> int:
        """Cycles from the command's transfer to the first group on ``o`` with a memory of
        zero latency: :attr:`AR_START` + :attr:`FIFO_LATENCY`."""
        return self.AR_START + self.FIFO_LATENCY

    def beat_rate(self, mem_latency: Any, mem_rate: Any = 1.0) -> Any:
        """Sustained R beats per cycle: the memory's rate ``mem_rate`` (beats per cycle), or
        less when the bursts in flight cannot cover its latency: ``outstanding`` bursts of
        ``max_burst`` beats, each holding its slot ``mem_latency + max_burst / mem_rate +
        SLOT_EXTRA`` cycles, and ``fifo_depth`` beats of FIFO space, each reserved for
        ``mem_latency + FIFO_LATENCY + CREDIT_EXTRA`` cycles plus its wait in the FIFO."""
        b = self.max_burst
        slot = mem_latency + b / mem_rate + self.SLOT_EXTRA
        by_slots = self.outstanding * b / slot
        by_credits = self.fifo_depth / (mem_latency + self.FIFO_LATENCY + self.CREDIT_EXTRA
                                        + b / mem_rate)
        rate = min(mem_rate, 1.0) if isinstance(mem_rate, int | float) else mem_rate
        import numpy as np
        return np.minimum(np.minimum(rate, by_slots), by_credits)

    def cycles(self, groups: Any, mem_latency: Any = 0, mem_rate: Any = 1.0,
               consumer_rate: Any = 1.0) -> Any:
        """Cycles to deliver ``groups`` lane groups, from the command's transfer to the last
        group's transfer inclusive, with a memory that answers a burst ``mem_latency``
        cycles after its AR transfer and delivers at most ``mem_rate`` beats per cycle, and
        a consumer taking at most ``consumer_rate`` groups per cycle:

        ``latency + mem_latency + max((B - 1) / beat_rate, (N - 1) / min(consumer_rate,
        groups_per_beat * beat_rate... ))`` (see the code), ``N`` groups in ``B`` beats.
        Exact (an integer) when nothing but the output's one group per cycle limits the
        stream; otherwise a steady-state estimate (docs/memory-system.md gives its error
        against the RTL)."""
        import numpy as np
        n = groups
        b = self.beats(groups)
        rate = self.beat_rate(mem_latency, mem_rate)
        per_beat = self.data_width / self.group_bits  # groups per beat (a fraction if < 1)
        group_rate = np.minimum(np.minimum(consumer_rate, 1.0), per_beat * rate)
        body = np.maximum((n - 1) / group_rate, (b - 1) / rate)
        return self.latency + mem_latency + body + 1

    def cycle_formula(self) -> str:
        return (f"{self.latency} + L + max((N - 1) / group_rate, (B - 1) / beat_rate) + 1 for N "
                f"groups in B = ceil(N * {self.group_bits} / {self.data_width}) beats, memory "
                "latency L")
