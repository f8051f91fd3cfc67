"""Arithmetic building blocks shared by the components."""

from __future__ import annotations

from amaranth import Const, Module, Signal, signed
from amaranth.hdl import Value


def adder_tree(m: Module, values: list[Value], max_width: int, name: str = "tree") -> Signal:
    """Balanced combinational sum of signed ``values`` (all of one width).

    Every node is a named signal one bit wider than its operands, so nothing overflows and
    every Verilog adder has operands of equal width; an odd value left over at a level is
    carried up into a node of the level's width. Nodes stop growing at ``max_width`` bits:
    from there on the sum is kept modulo ``2**max_width``, which is exact for a consumer that
    wraps at that width anyway (the accumulator).
    """
    width = len(values[0])
    level = list(values)
    depth = 0
    while len(level) > 1:
        depth += 1
        width = min(width + 1, max_width)
        nxt = []
        for i in range(0, len(level), 2):
            node = Signal(signed(width), name=f"{name}_l{depth}_{i // 2}")
            # An odd leftover is added to a zero of its own width: the same sum, but every
            # adder's operands then match (Amaranth folds a bare extension into the next add).
            pair = [*level[i:i + 2], Const(0, signed(len(level[i])))][:2]
            m.d.comb += node.eq(pair[0] + pair[1])
            nxt.append(node)
        level = nxt
    return level[0]
