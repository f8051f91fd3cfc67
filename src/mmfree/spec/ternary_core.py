"""The ternary accumulate core (and its packed-weight variant): parameters and timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Bound, UnitSpec, at_least, ceil_div, ceil_log2, param

__all__ = ["LANES", "MAX_LANES", "MAX_TREE_LEVELS_PER_STAGE", "UNPACK_LATENCY",
           "TernaryCoreSpec", "ternary_latency"]

LANES = 16  #: default lane count of every lane-parallel unit
MAX_LANES = 1024  #: the widest lane group any unit accepts
MAX_TREE_LEVELS_PER_STAGE = 10
UNPACK_LATENCY = 1  #: the trit unpacker's register stage in front of a packed core


def ternary_latency(lanes: Any, tree_levels_per_stage: int = 0, packed: bool = False) -> Any:
    """Cycles from a row's last lane group to its result: lane select (1) + adder-tree
    stages (1 unpipelined, else ``ceil(ceil(log2 lanes) / tree_levels_per_stage)``, at
    least 1) + accumulator (1), + 1 for the trit unpacker (``packed``). ``lanes`` may be a
    numpy array."""
    stages = (1 if tree_levels_per_stage == 0 else
              at_least(ceil_div(ceil_log2(lanes), tree_levels_per_stage), 1))
    return 2 + stages + (UNPACK_LATENCY if packed else 0)


@dataclass(frozen=True)
class TernaryCoreSpec(UnitSpec):
    """``y = W x`` for ternary ``W``, ``lanes`` weights per cycle
    (:class:`mmfree.hdl.ternary_core.TernaryCore`, with ``packed``
    :class:`mmfree.hdl.packed_ternary_core.PackedTernaryCore`)."""

    name: ClassVar[str] = "ternary-core"
    summary: ClassVar[str] = "ternary accumulate core, y = W x with W in {-1,0,+1}"
    testbench: ClassVar[str] = "mmfree.sim.tb.ternary_core"

    lanes: int = param(LANES, "weights/activations consumed per cycle", lo=1, hi=MAX_LANES)
    act_width: int = param(8, "signed activation width in bits", lo=2, hi=16)
    acc_width: int = param(32, "signed accumulator width; results wrap",
                           lo=Bound(lambda s: s.act_width + 1, "act-width+1"), hi=64)
    packed: bool = param(False, "read weights packed 5 trits per byte (adds the trit "
                                "unpacker, +1 cycle)")
    tree_levels_per_stage: int = param(
        0, "register the adder tree every N levels for a higher clock (0: the whole tree in "
           "one stage, latency 3; else latency 2 + ceil(ceil(log2 lanes) / N))",
        lo=0, hi=MAX_TREE_LEVELS_PER_STAGE)

    @property
    def component(self) -> str:  # type: ignore[override]
        return ("mmfree.hdl.packed_ternary_core.PackedTernaryCore" if self.packed
                else "mmfree.hdl.ternary_core.TernaryCore")

    def kwargs(self) -> dict[str, Any]:
        """Constructor keywords: ``packed`` selects the class instead."""
        return {k: v for k, v in self.params().items() if k != "packed"}

    def top_name(self) -> str:
        pipe = self.tree_levels_per_stage
        return (f"mmfree_ternary_core{'_packed' if self.packed else ''}_l{self.lanes}"
                f"_x{self.act_width}_a{self.acc_width}{f'_t{pipe}' if pipe else ''}")

    @property
    def latency(self) -> Any:
        return ternary_latency(self.lanes, self.tree_levels_per_stage, self.packed)

    def cycles(self, m: Any, k: Any) -> Any:
        """Cycles of an ``m`` x ``k`` matrix-vector product with the streams keeping up,
        from the first input transfer to the last output transfer inclusive:
        ``M * ceil(K / lanes) + latency``. Rows of several vectors streamed back to back
        count as more rows."""
        return m * ceil_div(k, self.lanes) + self.latency

    def cycle_formula(self) -> str:
        return f"M * ceil(K / {self.lanes}) + {self.latency} for an M x K product"
