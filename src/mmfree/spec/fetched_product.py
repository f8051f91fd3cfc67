"""C ternary cores fed from external memory by weight fetchers: parameters and timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Bound, UnitSpec, ceil_div, param
from .ternary_core import LANES, MAX_LANES, MAX_TREE_LEVELS_PER_STAGE, TernaryCoreSpec
from .weight_fetcher import WeightFetcherSpec, axi_port_param

__all__ = ["MAX_CORES", "FetchedProductSpec"]

MAX_CORES = 16


@dataclass(frozen=True)
class FetchedProductSpec(UnitSpec):
    """``y = W x`` on ``cores`` ternary cores, each streaming its share of ``W``'s rows from
    its own AXI4 port through a :class:`~mmfree.spec.WeightFetcherSpec` fetcher
    (:class:`mmfree.hdl.fetched_product.FetchedProduct`). One AXI port per memory channel:
    the channels are the cores' ports."""

    name: ClassVar[str] = "fetched-product"
    summary: ClassVar[str] = ("C ternary cores fed with weights over AXI4 (one port per core "
                              "and channel), y = W x")
    component: ClassVar[str] = "mmfree.hdl.fetched_product.FetchedProduct"
    testbench: ClassVar[str] = "mmfree.sim.tb.fetched_product"

    cores: int = param(2, "ternary cores (and AXI ports): each computes a share of the rows",
                       lo=1, hi=MAX_CORES)
    lanes: int = param(LANES, "weights/activations per cycle and core", lo=1, hi=MAX_LANES)
    packed: bool = param(False, "weights stored packed 5 trits per byte (else 2-bit codes)")
    max_dim: int = param(1024, "longest vector K (sizes the activation buffer)",
                         lo=Bound(lambda s: s.lanes, "lanes"), hi=65536)
    act_width: int = param(8, "signed activation width in bits", lo=2, hi=16)
    acc_width: int = param(32, "signed accumulator width; results wrap",
                           lo=Bound(lambda s: s.act_width + 1, "act-width+1"), hi=64)
    tree_levels_per_stage: int = param(2, "register each core's adder tree every N levels "
                                          "(0: one stage)", lo=0,
                                       hi=MAX_TREE_LEVELS_PER_STAGE)
    data_width: int = axi_port_param("data_width")
    addr_width: int = axi_port_param("addr_width")
    max_burst: int = axi_port_param("max_burst")
    outstanding: int = axi_port_param("outstanding")
    fifo_depth: int = axi_port_param("fifo_depth")
    len_width: int = axi_port_param("len_width")

    def fetcher(self) -> WeightFetcherSpec:
        """The spec of each core's fetcher."""
        return WeightFetcherSpec(lanes=self.lanes, packed=self.packed,
                                 data_width=self.data_width, addr_width=self.addr_width,
                                 max_burst=self.max_burst, outstanding=self.outstanding,
                                 fifo_depth=self.fifo_depth, len_width=self.len_width)

    def core(self) -> TernaryCoreSpec:
        """The spec of each ternary core."""
        return TernaryCoreSpec(lanes=self.lanes, act_width=self.act_width,
                               acc_width=self.acc_width, packed=self.packed,
                               tree_levels_per_stage=self.tree_levels_per_stage)

    def _check(self) -> None:
        self.fetcher().validate()
        self.core().validate()

    @property
    def max_groups(self) -> int:
        """Lane groups the activation buffer holds: ``ceil(max_dim / lanes)``."""
        return ceil_div(self.max_dim, self.lanes)

    def top_name(self) -> str:
        pipe = self.tree_levels_per_stage
        return (f"mmfree_fetched_product{'_packed' if self.packed else ''}_c{self.cores}"
                f"_l{self.lanes}_k{self.max_dim}_x{self.act_width}_a{self.acc_width}_t{pipe}"
                f"_d{self.data_width}_b{self.max_burst}_o{self.outstanding}"
                f"_f{self.fifo_depth}")

    #: the command register in front of the fetchers (cycles)
    CMD_REGISTER: ClassVar[int] = 1

    @property
    def latency(self) -> Any:
        """The cores' latency: from a row's last weight group to its row sum."""
        return self.core().latency

    def rows_per_core(self, m: Any) -> Any:
        """Rows of core 0 (the most): ``ceil(M / cores)``; core ``c`` takes rows
        ``c * R .. (c + 1) * R - 1`` of ``R = ceil(M / cores)``."""
        return ceil_div(m, self.cores)

    def cycles(self, m: Any, k: Any, mem_latency: Any = 2, mem_rate: Any = 1.0) -> Any:
        """Cycles of an ``m`` x ``k`` product once the vector is in the buffer, from the
        command's transfer to the last row sum's transfer inclusive (the result streams
        ready): the command register (:attr:`CMD_REGISTER`), the fetcher's delivery of
        a core's ``ceil(M / cores) * G`` groups (:meth:`WeightFetcherSpec.cycles`, memory
        latency and rate per port) and the core's latency. Every core reads its own port
        and has as many rows (the last block padded), so they finish together."""
        g = ceil_div(k, self.lanes)
        n = self.rows_per_core(m) * g
        return self.CMD_REGISTER + self.fetcher().cycles(n, mem_latency, mem_rate) + self.latency

    def cycle_formula(self) -> str:
        return (f"1 + WeightFetcherSpec.cycles(ceil(M / {self.cores}) * ceil(K / "
                f"{self.lanes}), L, rate) + {self.latency} for an M x K product (vector loaded)")


