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

from ..golden.hgrn_fixed import FixedConfig
from .base import UnitSpec, ceil_div, ceil_log2, param
from .ternary_core import MAX_LANES

__all__ = ["MAP_OPS", "REDUCE_OPS", "VecOp", "VectorUnitSpec"]


class VecOp(enum.IntEnum):
    """Op codes of the vector unit's ``cmd.op`` (4 bits), each one function of the
    fixed-point contract (:mod:`mmfree.golden.hgrn_fixed`, rounding ``half_up``), with
    ``fmt`` the command's output width ``ow`` and ``s`` its signed scalar:

    * ``MUL``: ``vec_mul(a, b, shift, fmt)``; ``MULS``: ``vec_mul(a, s, shift, fmt)``;
    * ``ADD`` / ``SUB``: ``vec_add(a, b, fmt)`` / ``vec_sub(a, b, fmt)``; ``RSUBI``:
      ``vec_sub(s, a, fmt)``;
    * ``FMA2``: ``vec_fma2(a, b, c, d, align, shift, fmt)``;
    * ``SIGMOID`` / ``SILU``: ``vec_sigmoid(a, xfrac)`` / ``vec_silu(a, xfrac)`` (the
      tables are ROMs of the unit; :meth:`VectorUnitSpec.command` sets the fields);
    * ``SUMSQ``: ``vec_sumsq(a)``; ``ARGMAX``: ``vec_argmax(a)`` with the maximum.
    """

    MUL = 0
    MULS = 1
    ADD = 2
    SUB = 3
    RSUBI = 4
    FMA2 = 5
    SIGMOID = 6
    SILU = 7
    SUMSQ = 8
    ARGMAX = 9

    @property
    def uses_b(self) -> bool:
        """The op reads a ``b`` group beside each ``a`` group."""
        return self in (VecOp.MUL, VecOp.ADD, VecOp.SUB, VecOp.FMA2)

    @property
    def uses_cd(self) -> bool:
        """The op reads ``c`` and ``d`` groups too (``FMA2``)."""
        return self == VecOp.FMA2

    @property
    def is_table(self) -> bool:
        return self in (VecOp.SIGMOID, VecOp.SILU)

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
    summary: ClassVar[str] = ("lane-parallel fixed-point vector unit: the whole-token "
                              "contract's element-wise ops, tables and reductions")
    component: ClassVar[str] = "mmfree.hdl.vector_unit.VectorUnit"
    testbench: ClassVar[str] = "mmfree.sim.tb.vector_unit"

    lanes: int = param(4, "elements per lane group (one group per cycle)", lo=1,
                       hi=MAX_LANES)
    width: int = param(24, "signed element width of the operands (results saturate to each "
                           "command's width)", lo=8, hi=24)
    max_dim: int = param(1024, "longest vector (sizes the group counter)", lo=1, hi=1 << 20)
    max_align: int = param(8, "largest FMA2 alignment shift", lo=0, hi=16)
    act_width: int = param(16, "the contract's act format: width (the SiLU table saturates "
                               "to it)", lo=4, hi=24)
    act_frac: int = param(11, "the act format's fraction bits (the SiLU table's scale)",
                          lo=0, hi=23)
    gate_frac: int = param(16, "fraction bits of the gate format (the sigmoid table's "
                               "scale; gate width is this + 2)", lo=4, hi=22)
    table_bits: int = param(10, "log2 of the table intervals (2**N + 1 knots)", lo=2, hi=12)
    table_range_log2: int = param(4, "log2 of the tables' input range R", lo=1, hi=6)

    #: stages of a map op, i.e. cycles from an operand transfer to its ``y`` transfer:
    #: 1 the operand registers (each op's two products chosen); 2 the products (in the DSP
    #: blocks' registers) / the table index; 3 the aligned second product / the table read
    #: (block RAM); 4 the sum / the block RAM's output register; 5 the rounding add and the
    #: left shift / the entry split; 6 the right shift / the interpolation product; 7 the
    #: saturation / t0 plus the rounded interpolation; 8 the table value's saturation; then
    #: the output queue's entry
    MAP_LATENCY: ClassVar[int] = 9
    #: cycles from the last operand transfer of a command to the next command's transfer
    CMD_GAP: ClassVar[int] = 1

    @property
    def group_bits(self) -> int:
        """Bits of a command's ``groups_m1``: ``G - 1`` up to ``ceil(max_dim / lanes) - 1``."""
        return max(1, (ceil_div(self.max_dim, self.lanes) - 1).bit_length())

    def groups_mask(self, count: int) -> tuple[int, int]:
        """``(groups_m1, mask)`` of a command over ``count`` (``1..max_dim``) elements: its
        lane groups less one, and the thermometer code of the last group's lanes that hold
        elements (the engine's program carries both; nothing in the unit divides)."""
        if not 1 <= count <= self.max_dim:
            raise ValueError(f"count must be in 1..{self.max_dim}, got {count}")
        g = ceil_div(count, self.lanes)
        return g - 1, (1 << (count - (g - 1) * self.lanes)) - 1

    def fixed(self) -> FixedConfig:
        """The contract's config of the unit's table and act/gate formats (other fields at
        their defaults; rounding ``half_up``)."""
        return FixedConfig(act_width=self.act_width, act_frac=self.act_frac,
                           gate_frac=self.gate_frac, table_bits=self.table_bits,
                           table_range_log2=self.table_range_log2,
                           state_frac=max(FixedConfig.state_frac, self.act_frac))

    def _check(self) -> None:
        if self.act_frac >= self.act_width:
            raise ValueError(f"act_frac must be below act_width ({self.act_width}), got "
                             f"{self.act_frac}")
        if max(self.act_width, self.gate_frac + 2) > self.width:
            raise ValueError(f"width {self.width} is below the act or gate format "
                             f"({max(self.act_width, self.gate_frac + 2)} bits)")

    @property
    def shift_bits(self) -> int:
        """Signed bits of the command's shift: ``-(2 width) .. 2 width + max_align``."""
        return (2 * self.width + self.max_align).bit_length() + 1

    @property
    def table_frac_bits(self) -> int:
        """The largest fraction ``b`` of a table op's position between two knots
        (:meth:`command`'s largest ``xfrac``), at least 1: the unit scales every fraction
        to this many bits so the interpolation rounds at one fixed bit."""
        hi = self.width - self.table_range_log2 + min(6, self.table_bits - 1)
        return max(1, hi + self.table_range_log2 + 1 - self.table_bits)

    @property
    def table_width(self) -> int:
        """Signed bits of a table entry: the wider of act and gate."""
        return max(self.act_width, self.gate_frac + 2)

    def command(self, op: VecOp, count: int, *, shift: int = 0, align: int = 0,
                ow: int | None = None, scalar: int = 0, xfrac: int = 0) -> dict[str, int]:
        """The ``cmd`` fields of one command (the engine's sequencer and the testbench build
        them the same way): ``ow`` defaults to ``width`` (the gate width for ``SIGMOID``,
        act for ``SILU``); table ops take the input's fraction bits ``xfrac``. Raises
        ``ValueError`` naming the argument out of range."""
        groups_m1, mask = self.groups_mask(count)
        if op.is_table:
            b = xfrac + self.table_range_log2 + 1 - self.table_bits
            lo = max(self.act_frac, self.table_bits - self.table_range_log2 - 1)
            hi = self.width - self.table_range_log2 + min(6, self.table_bits - 1)
            if not lo <= xfrac <= hi:
                raise ValueError(f"xfrac must be in {lo}..{hi}, got {xfrac}")
            ow = self.gate_frac + 2 if op == VecOp.SIGMOID else self.act_width
            shift, align = xfrac - self.act_frac, b
            rlog = xfrac + self.table_range_log2
        else:
            rlog = 0
        ow = self.width if ow is None else ow
        if not 2 <= ow <= self.width:
            raise ValueError(f"ow must be in 2..{self.width}, got {ow}")
        if not -2 * self.width <= shift <= 2 * self.width + self.max_align:
            raise ValueError(f"shift must be in {-2 * self.width}.."
                             f"{2 * self.width + self.max_align}, got {shift}")
        if not 0 <= align <= max(self.max_align, self.width):
            raise ValueError(f"align must be in 0..{self.max_align}, got {align}")
        lim = 1 << (self.width - 1)
        if not -lim <= scalar < lim:
            raise ValueError(f"scalar outside the signed {self.width}-bit range")
        return {"op": int(op), "groups_m1": groups_m1, "mask": mask, "shift": shift,
                "align": align, "ow": ow, "rlog": rlog, "scalar": scalar}

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
        register, squares (1), the tree (``ceil(log2 lanes)``), the accumulator, its result
        register (the output queue's entry)."""
        return 4 + self.tree_stages

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
        return (f"mmfree_vector_unit_l{self.lanes}_w{self.width}_k{self.max_dim}"
                f"_a{self.max_align}_f{self.act_width}.{self.act_frac}_g{self.gate_frac}"
                f"_t{self.table_bits}.{self.table_range_log2}").replace(".", "p")

    def cycle_formula(self) -> str:
        return (f"G + {self.MAP_LATENCY} per map op, G + {self.reduce_latency} per reduction, "
                f"G = ceil(count / {self.lanes})")
