"""Arithmetic building blocks shared by the components."""

from __future__ import annotations

from amaranth import Const, Module, Signal, signed
from amaranth.hdl import Value


def tree_depth(count: int) -> int:
    """Levels of a balanced binary adder tree over ``count`` values: ``ceil(log2(count))``."""
    return (count - 1).bit_length()


def adder_levels(m: Module, values: list[Value], max_width: int, levels: int,
                 name: str = "tree", first_level: int = 1, keep: bool = False) -> list[Signal]:
    """``levels`` levels of a balanced combinational adder tree over signed ``values`` (all of
    one width); returns the partial sums after them (one value once the tree is complete).

    Every node is a named signal one bit wider than its operands, so nothing overflows and
    every Verilog adder has operands of equal width; an odd value left over at a level is
    carried up into a node of the level's width. Nodes stop growing at ``max_width`` bits:
    from there on the sum is kept modulo ``2**max_width``, which is exact for a consumer that
    wraps at that width anyway (the accumulator).

    ``keep`` marks every node with the ``keep`` attribute, so that synthesis builds each node
    as its own adder (on an FPGA a carry chain). Without it Yosys (``alumacc``) may merge a
    small tree into one multi-operand ``$macc`` and build it as a carry-save tree of LUTs:
    for the tensor core's four-product sums that costs about 1400 LUT4 instead of a few
    dozen, and the path is slower.
    """
    level = list(values)
    width = len(level[0])
    for depth in range(first_level, first_level + levels):
        if len(level) == 1:
            break
        width = min(width + 1, max_width)
        nxt = []
        for i in range(0, len(level), 2):
            node = Signal(signed(width), name=f"{name}_l{depth}_{i // 2}",
                          attrs={"keep": 1} if keep else {})
            # An odd leftover is added to a zero of its own width: the same sum, but every
            # adder's operands then match (Amaranth folds a bare extension into the next add).
            pair = [*level[i:i + 2], Const(0, signed(len(level[i])))][:2]
            m.d.comb += node.eq(pair[0] + pair[1])
            nxt.append(node)
        level = nxt
    return level


def adder_tree(m: Module, values: list[Value], max_width: int, name: str = "tree",
               keep: bool = False) -> Signal:
    """The whole balanced adder tree in one combinational stage (see :func:`adder_levels`)."""
    return adder_levels(m, values, max_width, tree_depth(len(values)), name, keep=keep)[0]
