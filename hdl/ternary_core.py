"""Ternary accumulate core: y = W x with weights in {-1, 0, +1}, by additions only."""

from __future__ import annotations

from amaranth import Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.ternary_core import TernaryCoreSpec
from ._arith import adder_levels, tree_depth
from .credit_queue import CreditQueue

__all__ = ["TernaryCore", "tree_width", "weight_layout"]


def weight_layout(lanes: int) -> data.StructLayout:
    """Payload of the weight stream: ``lanes`` 2-bit codes (lane 0 in bits 1:0) and ``last``."""
    return data.StructLayout({"codes": data.ArrayLayout(2, lanes), "last": 1})


def tree_width(lanes: int, act_width: int) -> int:
    """Width of the adder-tree result: terms are ``act_width + 1`` bits (``-x`` of the most
    negative ``x`` needs one more bit) and each of the ``ceil(log2(lanes))`` levels adds one."""
    return act_width + 1 + (lanes - 1).bit_length()


class TernaryCore(wiring.Component):
    """Matrix-vector product ``y = W x`` for ternary ``W`` (M x K) and signed activations ``x``.

    Dataflow: the K inputs of one output row are split into ``G = ceil(K / lanes)`` lane
    groups. Each transfer delivers one group: ``lanes`` weight codes on ``w`` (with ``last``
    set on the row's final group) and the matching ``lanes`` activations on ``x``. Each lane
    selects ``+x``, ``-x`` or 0 by its code (no multiplier), a balanced adder tree sums the
    lanes, and an accumulator adds the group sums of a row; when the ``last`` group arrives
    the row's result leaves on ``y`` and the accumulator restarts at 0. K not a multiple of
    ``lanes`` is handled by padding the final group with zero codes (any activation).

    Arithmetic: bit-exact with :func:`mmfree.golden.ternary.ternary_matvec`; the tree is
    exact, the accumulator wraps modulo ``2**acc_width`` (never saturates). Code 0b10 is
    treated as 0 (see :mod:`mmfree.golden.ternary`).

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

    Timing: three register stages (lane select, adder tree, accumulator), so a row's result
    is valid on ``y`` :attr:`latency` = 3 cycles after its last group transfers. With
    ``tree_levels_per_stage`` = k > 0 the adder tree is registered every k levels, for a
    higher clock: :attr:`latency` = ``2 + ceil(ceil(log2(lanes)) / k)``
    (:func:`mmfree.spec.ternary_latency`). Initiation interval: one lane group per cycle while
    ``w``/``x`` are valid and ``y`` is ready.

    Flow control: the pipeline is free-running. Its stage registers load every cycle (no
    clock enable from ``y.ready``); the accumulator writes each row's result into an output
    FIFO (:class:`mmfree.hdl.credit_queue.CreditQueue`, :meth:`~CreditQueue.depth_for` ``(latency)``
    entries: the smallest power of two ``>= latency + 2``), whose head drives ``y``. Every
    lane group takes a credit when it transfers and gives it back when it leaves the
    pipeline (a group that ends a row: when its result leaves on ``y``), and ``w.ready`` /
    ``x.ready`` are a credit flip-flop AND the other stream's ``valid`` AND ``~rst``, so no
    combinational path runs from ``y.ready`` into the core. Under back-pressure the results
    wait in the FIFO and the inputs stop once the credits are used up; results stay in order.
    Cycle count of a whole M x K product with the streams keeping up:
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
        n, aw = self.lanes, self.act_width
        # Free-running pipeline: every stage register loads every cycle (data registers have
        # neither enable nor reset; a valid bit per stage says whether they hold a beat).
        # Back-pressure acts only at the input, through the credits of the output FIFO.
        m.submodules.queue = queue = CreditQueue(signed(self.acc_width),
                                                     CreditQueue.depth_for(self.latency))

        # Stage A: per-lane term +x / -x / 0 (code bit 0 = non-zero, bit 1 = negative).
        a_valid = Signal()
        a_last = Signal(reset_less=True)
        a_terms = Signal(data.ArrayLayout(signed(aw + 1), n), reset_less=True)
        # Tree stages: the adder tree, in one register stage or split every
        # tree_levels_per_stage levels; the last stage holds the group sum at the
        # accumulator's width (sign-extended, or truncated when the tree is wider: the
        # accumulator wraps anyway).
        depth = tree_depth(n)
        n_stages = self.latency - 2
        per_stage = self.tree_levels_per_stage or max(depth, 1)
        # Stage C: row accumulator; a row's result goes into the output FIFO.
        acc = Signal(signed(self.acc_width))

        # Nothing transfers while reset is asserted; w and x transfer together.
        m.d.comb += [
            self.w.ready.eq(queue.may_take & self.x.valid & ~ResetSignal()),
            self.x.ready.eq(queue.may_take & self.w.valid & ~ResetSignal()),
        ]
        fire = self.w.ready & self.w.valid
        m.d.comb += queue.take.eq(fire)
        m.d.sync += [a_valid.eq(fire), a_last.eq(self.w.payload.last)]
        for i in range(n):
            code = self.w.payload.codes[i]
            xi = self.x.payload[i]
            m.d.sync += a_terms[i].eq(Mux(code[0], Mux(code[1], -xi, xi), 0))

        values, valid, last, done = [a_terms[i] for i in range(n)], a_valid, a_last, 0
        for si in range(n_stages):
            final = si == n_stages - 1
            levels = depth - done if final else per_stage
            sums = adder_levels(m, values, self.acc_width, levels, name=f"tree{si}",
                                first_level=done + 1)
            done += levels
            prefix = "b" if final else f"tree{si}"
            s_valid = Signal(name=f"{prefix}_valid")
            s_last = Signal(name=f"{prefix}_last", reset_less=True)
            if final:
                regs = [Signal(signed(self.acc_width), name="b_sum", reset_less=True)]
            else:
                regs = [Signal(signed(len(v)), name=f"tree{si}_sum{j}", reset_less=True)
                        for j, v in enumerate(sums)]
            m.d.sync += [s_valid.eq(valid), s_last.eq(last),
                         *(r.eq(v) for r, v in zip(regs, sums, strict=True))]
            values, valid, last = regs, s_valid, s_last
        b_valid, b_last, b_sum = valid, last, values[0]

        row_sum = Signal(signed(self.acc_width))
        m.d.comb += [
            row_sum.eq(acc + b_sum),  # truncation to acc_width = wrap
            queue.put.eq(b_valid & b_last),
            queue.data.eq(row_sum),
            queue.drop.eq(b_valid & ~b_last),
        ]
        with m.If(b_valid):
            m.d.sync += acc.eq(Mux(b_last, 0, row_sum))
        wiring.connect(m, queue.o, wiring.flipped(self.y))
        return m
