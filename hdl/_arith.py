"""Arithmetic building blocks shared by the components."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
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


def leading_one(m: Module, v: Value, name: str) -> Value:
    """The position of the leading one of an unsigned value, ``v.bit_length() - 1`` (0 for
    ``v == 0`` as for ``v == 1``), as a balanced tree of multiplexers: depth
    ``ceil(log2(len(v)))``, no adder (a split at a power of two ``2**k`` puts the upper
    part's position below a constant top bit). Result: ``(len(v) - 1).bit_length()`` bits
    (at least 1); every node exactly as wide as its positions."""

    def part(lo: int, n: int) -> tuple[Value, Value]:
        # (any bit set in v[lo:lo+n], position of the leading one in it)
        if n == 1:
            return v[lo], Const(0, 1)
        k = (n - 1).bit_length() - 1  # the lower part is 2**k bits, positions of k bits
        any_lo, pos_lo = part(lo, 1 << k)
        any_hi, pos_hi = part(lo + (1 << k), n - (1 << k))
        out = Signal(k + 1, name=f"{name}_lead{lo}_{n}")
        upper = Cat(pos_hi, Const(0, k - len(pos_hi)), Const(1, 1)) if k else Const(1, 1)
        lower = Cat(pos_lo, Const(0, 1)) if k else Const(0, 1)
        m.d.comb += out.eq(Mux(any_hi, upper, lower))
        return any_lo | any_hi, out

    return part(0, len(v))[1]


def leading_one_staged(m: Module, v: Value, name: str, block: int = 8,
                       nonzero: bool = False) -> tuple[Value, Value | None]:
    """The position of the leading one of an unsigned value (as :func:`leading_one`: 0 for
    ``v == 0``) in two steps, for a clock that leaves no room for the whole tree in one
    cycle: the first, registered here (free-running: the registers load every cycle), finds
    in every ``block``-bit slice of ``v`` whether it has a one and where its leading one is
    (:func:`leading_one` of the slice); the second, combinational and returned, picks the
    highest slice with a one. ``block`` must be a power of two.

    Returns ``(position, nonzero)``, both valid one cycle after ``v``: the position, of
    ``(len(v) - 1).bit_length()`` bits (at least 1), and (with ``nonzero``, else None)
    whether ``v`` has any one. A slice's position is its index above the slice's own bits,
    so no adder is needed."""
    if block < 1 or block & (block - 1):
        raise ValueError(f"block must be a power of two, got {block}")
    width = max(1, (len(v) - 1).bit_length())
    low = (block - 1).bit_length()  # bits of a position inside a slice
    anys, positions = [], []
    for j, lo in enumerate(range(0, len(v), block)):
        part = v[lo:lo + block]
        pos = Signal(max(1, low), name=f"{name}_pos{j}")
        m.d.sync += pos.eq(leading_one(m, part, f"{name}_b{j}"))
        if j or nonzero:  # slice 0's flag only serves the nonzero output
            flag = Signal(name=f"{name}_any{j}")
            m.d.sync += flag.eq(part.any())
            anys.append(flag)
        positions.append(Cat(pos[:low], Const(j, width - low))[:width] if width > low
                         else pos[:width])
    flags = anys if nonzero else [None, *anys]
    out = positions[0]
    for j in range(1, len(positions)):
        out = Mux(flags[j], positions[j], out)
    lead = Signal(width, name=f"{name}_lead")
    m.d.comb += lead.eq(out)
    return lead, (Cat(*anys).any() if nonzero else None)


def shift_right_staged(m: Module, value: Value, amount: Value, width: int, name: str
                       ) -> tuple[Signal, Signal]:
    """``floor(value / 2**amount)``, low ``width`` bits, for unsigned ``value``, in two
    registered stages: a coarse shift by ``amount & ~7`` (one cycle), then the fine shift
    by ``amount & 7`` (the next). Returns the two stage registers (coarse, result); the
    result is valid two cycles after ``value`` and ``amount`` (which must hold for the
    first of them; the fine stage uses a registered copy of ``amount & 7``)."""
    coarse = Signal(width + 7, name=f"{name}_coarse")
    fine_by = Signal(3, name=f"{name}_fine_by")
    out = Signal(width, name=f"{name}_shifted")
    amount_u = amount.as_unsigned()
    m.d.sync += [coarse.eq((value >> Cat(Const(0, 3), amount_u[3:]))[:width + 7]),
                 fine_by.eq(amount_u[:3]),
                 out.eq((coarse >> fine_by)[:width])]
    return coarse, out


def _resize(value: Value, width: int) -> Value:
    """``value`` (signed) sign-extended or truncated to ``width`` bits, with the extension
    written out, so that the Verilog has no implicit width changes (Verilator -Wall)."""
    value = Value.cast(value)
    if len(value) >= width:
        return value[:width].as_signed()
    return Cat(value, value[-1].replicate(width - len(value))).as_signed()


def signed_sum(m: Module, a: Value, b: Value, negate_b: Value, width: int, name: str,
               b_nonzero: Value | None = None) -> Signal:
    """``a + b`` or ``a - b`` (``negate_b`` high), exactly, as one subtraction that every FPGA
    family maps to a single carry chain: the named ``width``-bit result of
    ``(Cat(negate_b, a) - Cat(1, ~(b ^ negate_b))) >> 1`` (kept modulo ``2**width``).

    Why this shape: ``b ^ N`` (``N`` = ``negate_b`` in every bit) is ``b`` or ``-b - 1``, and
    ``~v`` is ``-v - 1``, so the subtraction is ``(2a + n) - (2 * ~(b ^ N) + 1)`` =
    ``2a + 2(b ^ N) + n + 1``: ``2(a + b) + 1`` for ``n`` = 0 and ``2(a - b)`` for ``n`` = 1,
    which the shift right by one turns into ``a + b`` and ``a - b``. The ``+1`` of the two's
    complement negation is thus the carry out of the extra low bit: no incrementer and no
    carry-in signal, and the low bit's own sum is never used. Written as a subtraction, Yosys
    keeps ``a`` as the first operand (it may swap the operands of an addition), so on Xilinx
    the carry chain's DI input is ``a`` itself and the XOR with ``negate_b`` shares the LUT
    of the adder's propagate function; on ECP5 the XOR is a LUT in front of the chain, which
    :func:`mmfree.flow.ecp5_carries.pack_ecp5_carries` folds into the chain's own LUTs.

    ``b_nonzero``, if given, masks ``b`` to 0 while low (a zero weight), in the same LUT.
    ``a`` and ``b`` are signed; both are sign-extended (or truncated) to ``width`` bits.
    """
    aa = Signal(signed(width), name=f"{name}_a")
    bb = Signal(signed(width), name=f"{name}_b")
    m.d.comb += [aa.eq(_resize(a, width)),
                 bb.eq(_resize(b if b_nonzero is None else Mux(b_nonzero, b, 0), width))]
    flipped = Signal(width, name=f"{name}_bx")
    m.d.comb += flipped.eq(~(bb ^ negate_b.replicate(width)))
    # Both operands are unsigned and width + 1 bits wide (aa's sign is already extended),
    # so the Verilog subtraction has operands of one width; bits 1..width are the result.
    difference = Cat(negate_b, aa.as_unsigned()) - Cat(Const(1, 1), flipped)
    out = Signal(signed(width), name=name)
    m.d.comb += out.eq(difference[1:width + 1])
    return out
