"""The whole-token engine's vector unit: its operations, parameters and timing.

The vector unit (:class:`mmfree.hdl.vector_unit.VectorUnit`) is the engine's element-wise
datapath: a lane-parallel, fully pipelined integer unit that takes one command, then
streams ``G = ceil(count / lanes)`` lane groups of its operands ``a`` (and ``b``) through
one of a small set of operations, one group per cycle. A *map* operation returns one group
on ``y`` per input group; a *reduction* returns one scalar beat on ``s`` per command. The
per-operation arithmetic is the fixed-point contract's (docs/engine.md names each op's
golden function); this module is the one place of the op codes and of the cycle formulas.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import UnitSpec, ceil_div, ceil_log2, param
from .ternary_core import LANES, MAX_LANES

__all__ = ["MAP_OPS", "REDUCE_OPS", "VecOp", "VectorUnitSpec"]


class VecOp(enum.IntEnum):
    """Op codes of the vector unit's ``cmd.op`` (4 bits). ``a``, ``b``: the operand lane
    groups, ``c``: the command's signed scalar, ``k``: its shift (``0 <= k``),
    ``sat``: saturation to the signed ``width``-bit range, ``rnd(v, k)``: ``floor((v +
    2**(k-1)) / 2**k)`` (round half up; ``v`` for ``k = 0``)."""

    COPY = 0  #: ``y = a``
    ADD = 1  #: ``y = sat(a + b)``
    SUB = 2  #: ``y = sat(a - b)``
    MUL = 3  #: ``y = sat(rnd(a * b, k))``
    SCALE = 4  #: ``y = sat(rnd(a * c, k))``
    ADDC = 5  #: ``y = sat(a + c)``
    SUMSQ = 8  #: ``s = sum a_i**2`` over the ``count`` elements (exact, ``sumsq_width`` bits)
    ARGMAX = 9  #: ``s = (max a_i, its lowest index)`` over the ``count`` elements

    @property
    def uses_b(self) -> bool:
        """The op reads a ``b`` group beside each ``a`` group."""
        return self in (VecOp.ADD, VecOp.SUB, VecOp.MUL)

    @property
    def is_reduction(self) -> bool:
        """The op returns one ``s`` beat per command instead of ``G`` ``y`` groups."""
        return self >= 8


MAP_OPS = tuple(op for op in VecOp if not op.is_reduction)
REDUCE_OPS = tuple(op for op in VecOp if op.is_reduction)


@dataclass(frozen=True)
class VectorUnitSpec(UnitSpec):
    """The engine's lane-parallel element-wise unit
    (:class:`mmfree.hdl.vector_unit.VectorUnit`).

    Timing (the one place of its formulas; the RTL, the testbench, the engine's cycle
    formula and the cycle model use them): the unit is free-running with one group per
    cycle; a map command of ``G`` groups takes :meth:`map_cycles` ``= G + MAP_LATENCY``
    cycles from its first operand transfer to its last ``y`` transfer inclusive, a
    reduction :meth:`reduce_cycles` ``= G + reduce_latency`` to its ``s`` transfer, with the
    streams keeping up. A command is taken in the cycle after the previous command's last
    operand transfer at the earliest (:attr:`CMD_GAP`)."""

    name: ClassVar[str] = "vector-unit"
    summary: ClassVar[str] = ("lane-parallel fixed-point vector unit: add, multiply-shift, "
                              "scale, sum of squares, argmax")
    component: ClassVar[str] = "mmfree.hdl.vector_unit.VectorUnit"
    testbench: ClassVar[str] = "mmfree.sim.tb.vector_unit"

    lanes: int = param(LANES, "elements per lane group (one group per cycle)", lo=1,
                       hi=MAX_LANES)
    width: int = param(16, "signed element width of the operands and results", lo=2, hi=30)
    max_dim: int = param(4096, "longest vector (sizes the element counter and the argmax "
                               "index)", lo=1, hi=1 << 20)

    #: stages of a map op: operand register, product, rounding and saturation (the output
    #: queue's entry), i.e. cycles from an operand transfer to its ``y`` transfer
    MAP_LATENCY: ClassVar[int] = 3
    #: cycles from the last operand transfer of a command to the next command's transfer
    CMD_GAP: ClassVar[int] = 1

    @property
    def group_bits(self) -> int:
        """Bits of a command's ``groups_m1``: ``G - 1`` up to ``ceil(max_dim / lanes) - 1``."""
        return max(1, (ceil_div(self.max_dim, self.lanes) - 1).bit_length())

    def command(self, count: int) -> tuple[int, int]:
        """``(groups_m1, mask)`` of a command over ``count`` (``1..max_dim``) elements: its
        lane groups less one, and the thermometer code of the last group's lanes that hold
        elements (the engine's program carries both; nothing in the unit divides)."""
        if not 1 <= count <= self.max_dim:
            raise ValueError(f"count must be in 1..{self.max_dim}, got {count}")
        g = ceil_div(count, self.lanes)
        return g - 1, (1 << (count - (g - 1) * self.lanes)) - 1

    @property
    def scalar_width(self) -> int:
        """Bits of the command's signed scalar ``c``: ``width``."""
        return self.width

    @property
    def shift_width(self) -> int:
        """Bits of the command's shift ``k``: ``0 .. 2 width - 1``."""
        return (2 * self.width - 1).bit_length()

    @property
    def sumsq_width(self) -> int:
        """Bits of an exact sum of squares over ``max_dim`` elements (unsigned)."""
        return 2 * self.width - 1 + ceil_log2(self.max_dim)

    @property
    def tree_stages(self) -> Any:
        """Register stages of the reductions' trees over ``lanes`` values: one per level."""
        return ceil_log2(self.lanes)

    @property
    def reduce_latency(self) -> Any:
        """Cycles from a reduction's last operand transfer to its ``s`` transfer: operand
        register, squares (1), the tree (``ceil(log2 lanes)``), the accumulator (the
        output queue's entry)."""
        return 3 + self.tree_stages

    @property
    def latency(self) -> Any:
        return self.MAP_LATENCY

    def groups(self, count: Any) -> Any:
        """Lane groups of a ``count``-element vector."""
        return ceil_div(count, self.lanes)

    def map_cycles(self, count: Any) -> Any:
        """Cycles of a map command over ``count`` elements, first operand to last ``y``."""
        return self.groups(count) + self.MAP_LATENCY

    def reduce_cycles(self, count: Any) -> Any:
        """Cycles of a reduction over ``count`` elements, first operand to the ``s`` beat."""
        return self.groups(count) + self.reduce_latency

    def cycles(self, op: VecOp, count: Any) -> Any:
        """:meth:`map_cycles` or :meth:`reduce_cycles` for ``op``."""
        return self.reduce_cycles(count) if op.is_reduction else self.map_cycles(count)

    def top_name(self) -> str:
        return f"mmfree_vector_unit_l{self.lanes}_w{self.width}_k{self.max_dim}"

    def cycle_formula(self) -> str:
        return (f"G + {self.MAP_LATENCY} per map op, G + {self.reduce_latency} per reduction, "
                f"G = ceil(count / {self.lanes})")
