"""Ternary accumulate core: y = W x with weights in {-1, 0, +1}, by additions only."""

from __future__ import annotations

from typing import NamedTuple

from amaranth import Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.ternary_core import TernaryCoreSpec
from ._arith import signed_sum, tree_depth
from .credit_queue import CreditQueue, ResultQueue

__all__ = ["Leaf", "TernaryCore", "tree_plan", "tree_width", "weight_layout"]


def weight_layout(lanes: int) -> data.StructLayout:
    """Payload of the weight stream: ``lanes`` 2-bit codes (lane 0 in bits 1:0) and ``last``."""
    return data.StructLayout({"codes": data.ArrayLayout(2, lanes), "last": 1})


def tree_width(lanes: int, act_width: int) -> int:
    """Width of the adder-tree result: terms are ``act_width + 1`` bits (``-x`` of the most
    negative ``x`` needs one more bit) and each of the ``ceil(log2(lanes))`` levels adds one."""
    return act_width + 1 + (lanes - 1).bit_length()


class Leaf(NamedTuple):
    """A value of the tree: its position in the level's list and its first (leftmost) lane."""

    index: int
    lead: int


def tree_plan(lanes: int) -> list[list[tuple[Leaf, ...]]]:
    """The ternary core's sign-factored adder tree over ``lanes`` lanes, level by level.

    Each level pairs neighbouring values ``(left, right)``; an odd value at the end of a level
    passes up alone. Every value ``v`` of the tree is kept with a sign ``s(v)``, the sign
    of the weight of its first lane ``lead`` (code bit 1), and stands for ``s(v) * v``:
    a lane's value is its activation (0 for a zero weight), and a node computes
    ``left + right`` if ``s(left) == s(right)``, else ``left - right`` (``rho`` = the two
    signs XORed), since ``s(l) l + s(r) r = s(l) (l + s(l) s(r) r)``. The node's sign is
    ``s(left)``, so the root's is the sign of lane 0, applied once, in the accumulator.
    A lane of weight 0 contributes 0 whatever its sign bit, so the code ``0b10`` needs no
    special case. Every node is one adder/subtractor; no lane ever negates its activation.
    """
    current = [Leaf(i, i) for i in range(lanes)]
    levels = []
    while len(current) > 1:
        level = [tuple(current[i:i + 2]) for i in range(0, len(current), 2)]
        levels.append(level)
        current = [Leaf(k, node[0].lead) for k, node in enumerate(level)]
    return levels


class TernaryCore(wiring.Component):
    """Matrix-vector product ``y = W x`` for ternary ``W`` (M x K) and signed activations ``x``.

    Dataflow: the K inputs of one output row are split into ``G = ceil(K / lanes)`` lane
    groups. Each transfer delivers one group: ``lanes`` weight codes on ``w`` (with ``last``
    set on the row's final group) and the matching ``lanes`` activations on ``x``. An adder
    tree sums the lanes' ``+x``, ``-x`` or 0 (no multiplier, and no lane negates anything:
    each tree node adds or subtracts, see :func:`tree_plan`), and an accumulator adds the
    group sums of a row; when the ``last`` group arrives the row's result leaves on ``y``
    and the accumulator restarts at 0. K not a multiple of ``lanes`` is handled by padding
    the final group with zero codes (any activation).

    Arithmetic: bit-exact with :func:`mmfree.golden.ternary.ternary_matvec`; the tree is
    exact (a node of level ``l`` is ``act_width + l`` bits wide, capped at ``acc_width``
    where the accumulator wraps anyway), the accumulator wraps modulo ``2**acc_width``
    (never saturates). Code 0b10 is treated as 0 (see :mod:`mmfree.golden.ternary`).

    Structure, per lane group: stage A registers each lane's activation, already zeroed
    for a zero weight by the register's synchronous reset (the second lane of each
    first-level pair is zeroed inside that pair's adder instead), and one sign bit per
    tree node; the tree's nodes are ``a + b`` or ``a - b`` by their sign bit
    (:func:`mmfree.hdl._arith.signed_sum`: one carry chain each, the ``+1`` of the negation
    carried in through a spare low bit); the accumulator adds or subtracts the root by the
    sign of lane 0. So a lane costs its share of the adder tree and little else (measured
    resources: docs/fpga-flow.md).

    Ports (Verilog names in brackets; every stream is valid/ready, a transfer happens on a
    rising clock edge where both are high):

    * ``w`` [``w__valid``, ``w__ready``, ``w__payload``]: in, :func:`weight_layout`, i.e.
      codes in bits ``2*lanes-1:0`` (lane ``i`` in ``2i+1:2i``) and ``last`` in bit ``2*lanes``.
    * ``x`` [``x__*``]: in, ``lanes`` signed ``act_width``-bit activations, lane ``i`` in bits
      ``(i+1)*act_width-1 : i*act_width``.
    * ``y`` [``y__*``]: out, one signed ``acc_width``-bit result per row, rows in order.
    * ``clk``, ``rst``: the ``sync`` domain; ``rst`` is synchronous, active high, and empties
      the pipeline and the accumulator (a partly accumulated row is discarded). While ``rst``
      is high ``w.ready`` and ``x.ready`` are low, so nothing transfers during reset.

    ``w`` and ``x`` are joined: they transfer together, and each one's ``ready`` is only
    asserted while the other is ``valid``.

    Timing: three register stages (lane registers, adder tree, accumulator), so a row's
    result is valid on ``y`` :attr:`latency` = 3 cycles after its last group transfers.
    With ``tree_levels_per_stage`` = k > 0 the adder tree is registered every k levels, for
    a higher clock: :attr:`latency` = ``2 + ceil(ceil(log2(lanes)) / k)``
    (:func:`mmfree.spec.ternary_latency`). Initiation interval: one lane group per cycle
    while ``w``/``x`` are valid and ``y`` is ready.

    Flow control: the pipeline is free-running. Its stage registers load every cycle (no
    clock enable from ``y.ready``); the accumulator writes each row's result into an output
    FIFO (:class:`mmfree.hdl.credit_queue.ResultQueue`, :meth:`CreditQueue.depth_for`
    ``(latency)`` entries: the smallest power of two ``>= latency + 2``), whose head drives
    ``y``. A row takes a credit when its last group transfers and gives it back when its
    result leaves on ``y`` (the other groups of a row make no result and take none), and
    ``w.ready`` / ``x.ready`` are a credit flip-flop AND the other stream's ``valid`` AND
    ``~rst``, so no combinational path runs from ``y.ready`` into the core. Under
    back-pressure the results wait in the FIFO and the inputs stop once the credits are used
    up (with one-group rows: after as many rows as the FIFO has entries); results stay in
    order. Cycle count of a whole M x K product with the streams keeping up:
    ``M * ceil(K / lanes) + latency`` (:meth:`mmfree.spec.TernaryCoreSpec.cycles`), counted
    inclusively from the cycle of the first input transfer to the cycle of the last output
    transfer.

    Parameters, their limits and defaults: :class:`mmfree.spec.TernaryCoreSpec` (``lanes``,
    ``act_width``, ``acc_width`` wider than ``act_width``, ``tree_levels_per_stage`` 0 for the
    whole tree in one stage); they are validated before anything is built, errors naming the
    parameter. :attr:`spec` holds them.
    """

    def __init__(self, lanes: int = TernaryCoreSpec.lanes,
                 act_width: int = TernaryCoreSpec.act_width,
                 acc_width: int = TernaryCoreSpec.acc_width,
                 tree_levels_per_stage: int = TernaryCoreSpec.tree_levels_per_stage) -> None:
        self.spec = TernaryCoreSpec(lanes=lanes, act_width=act_width, acc_width=acc_width,
                                    tree_levels_per_stage=tree_levels_per_stage).validate()
        self.lanes, self.act_width, self.acc_width = lanes, act_width, acc_width
        self.tree_levels_per_stage = tree_levels_per_stage
        self.latency = self.spec.latency
        super().__init__({
            "w": In(stream.Signature(weight_layout(lanes))),
            "x": In(stream.Signature(data.ArrayLayout(signed(act_width), lanes))),
            "y": Out(stream.Signature(signed(acc_width))),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n, aw, accw = self.lanes, self.act_width, self.acc_width
        # Free-running pipeline: every stage register loads every cycle (data registers have
        # neither enable nor reset; a valid bit per stage says whether they hold a beat).
        # Back-pressure acts only at the input, through the credits of the output FIFO.
        m.submodules.queue = queue = ResultQueue(signed(accw),
                                                 CreditQueue.depth_for(self.latency))
        levels = tree_plan(n)
        codes, xs = self.w.payload.codes, self.x.payload

        # Nothing transfers while reset is asserted; w and x transfer together. A row takes
        # an output-FIFO credit with its last group (only that group makes a result).
        m.d.comb += [
            self.w.ready.eq(queue.may_take & self.x.valid & ~ResetSignal()),
            self.x.ready.eq(queue.may_take & self.w.valid & ~ResetSignal()),
        ]
        fire = self.w.ready & self.w.valid
        m.d.comb += queue.take.eq(fire & self.w.payload.last)

        # Stage A: registers only, no arithmetic. Lane i's activation, zeroed by the
        # register's synchronous reset when its weight is 0 (code bit 0 clear) -- except for
        # the second lane of each first-level pair, which is zeroed inside that pair's adder
        # (a_nz). Sign handling (see tree_plan): every tree node adds or subtracts its right
        # operand, a_rho (one per node) says which, and a_neg is the sign of the whole sum.
        a_valid = Signal()
        a_last = Signal(reset_less=True)
        m.d.sync += [a_valid.eq(fire), a_last.eq(self.w.payload.last)]
        masked_later = {pair[1].lead for pair in levels[0] if len(pair) == 2} if levels else set()
        values, nonzero = [], {}
        for i in range(n):
            xi = Signal(signed(aw), name=f"a_x{i}", reset_less=True)
            if i in masked_later:
                nonzero[i] = Signal(name=f"a_nz{i}", reset_less=True)
                m.d.sync += [xi.eq(xs[i]), nonzero[i].eq(codes[i][0])]
            else:
                m.d.sync += xi.eq(Mux(codes[i][0], xs[i], 0))
            values.append(xi)
        rho = {}  # (level, node) -> register
        for li, level in enumerate(levels):
            for k, node in enumerate(level):
                if len(node) == 2:
                    r = Signal(name=f"a_rho{li + 1}_{k}", reset_less=True)
                    m.d.sync += r.eq(codes[node[0].lead][1] ^ codes[node[1].lead][1])
                    rho[li, k] = r
        neg = Signal(name="a_neg", reset_less=True)
        m.d.sync += neg.eq(codes[0][1])

        # Tree stages: the tree in one register stage or registered every
        # tree_levels_per_stage levels; the last stage holds the root (b_sum) and its sign.
        depth = tree_depth(n)
        n_stages = self.latency - 2
        per_stage = self.tree_levels_per_stage or max(depth, 1)
        valid, last, done = a_valid, a_last, 0
        for si in range(n_stages):
            final = si == n_stages - 1
            for li in range(done, depth if final else done + per_stage):
                out = []
                for k, node in enumerate(levels[li]):
                    if len(node) == 1:
                        out.append(values[node[0].index])
                        continue
                    a, b = values[node[0].index], values[node[1].index]
                    width = min(max(len(a), len(b)) + 1, accw)
                    out.append(signed_sum(m, a, b, rho.pop((li, k)), width,
                                          f"tree{li + 1}_{k}",
                                          nonzero.get(node[1].lead) if li == 0 else None))
                values = out
            done = depth if final else done + per_stage
            prefix = "b" if final else f"tree{si}"
            s_valid = Signal(name=f"{prefix}_valid")
            s_last = Signal(name=f"{prefix}_last", reset_less=True)
            s_neg = Signal(name=f"{prefix}_neg", reset_less=True)
            regs = [Signal(signed(len(v)), name="b_sum" if final else f"{prefix}_sum{j}",
                           reset_less=True) for j, v in enumerate(values)]
            m.d.sync += [s_valid.eq(valid), s_last.eq(last), s_neg.eq(neg),
                         *(r.eq(v) for r, v in zip(regs, values, strict=True))]
            for key in sorted(rho):  # signs of the nodes of later stages move along
                r = Signal(name=f"{prefix}_rho{key[0] + 1}_{key[1]}", reset_less=True)
                m.d.sync += r.eq(rho[key])
                rho[key] = r
            values, valid, last, neg = regs, s_valid, s_last, s_neg
        b_valid, b_last, b_sum, b_neg = valid, last, values[0], neg

        # Stage C: row accumulator (wraps at acc_width); the tree's sign is applied here, in
        # the accumulator's own adder. A row's result goes into the output FIFO.
        acc = Signal(signed(accw), reset_less=True)
        row_sum = signed_sum(m, acc, b_sum, b_neg, accw, "row_sum")
        m.d.comb += [
            queue.put.eq(b_valid & b_last),
            queue.data.eq(row_sum),
        ]
        # One synchronous clear (reset, or a finished row) over one enable (a valid beat):
        # the accumulator's flip-flops take both directly, without a multiplexer per bit.
        with m.If(ResetSignal() | (b_valid & b_last)):
            m.d.sync += acc.eq(0)
        with m.Elif(b_valid):
            m.d.sync += acc.eq(row_sum)
        wiring.connect(m, queue.o, wiring.flipped(self.y))
        return m
