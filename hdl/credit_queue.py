"""Flow control of the free-running pipelines: an output FIFO and a registered credit count.

The compute pipelines of the ternary and tensor cores advance every cycle: their stage
registers have no clock enable driven by the downstream ``ready``. Back-pressure is handled
at the input instead. Every beat takes a *credit* when it enters; a beat that leaves the
pipeline without a result gives its credit back there, and a beat that produces a result
carries its credit into the output FIFO, which gives it back when the result leaves on the
output stream. With ``depth`` credits and a FIFO of ``depth`` entries the FIFO can never
overflow, and the input ``ready`` comes from a flip-flop (``may_take``), so no combinational
path runs from the output's ``ready`` to the input's ``ready`` or to any stage register.
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["CreditQueue", "ResultQueue", "de_bruijn_feedback"]


class CreditQueue(wiring.Component):
    """The output end of a free-running pipeline: a result FIFO and the input credits.

    ``depth`` is both the number of FIFO entries and the number of credits; it must be a
    power of two (the FIFO pointers wrap freely) and at least ``latency + 2`` for a pipeline
    of ``latency`` cycles to run at one beat per cycle (:meth:`depth_for`; see Timing).

    Ports (all in the ``sync`` domain):

    * ``take`` in: a beat enters the pipeline this cycle (it takes a credit). Only assert it
      while ``may_take`` is high.
    * ``drop`` in: a beat leaves the pipeline this cycle without a result (its credit
      returns).
    * ``put`` in, ``data`` in: a beat leaves the pipeline with the result ``data``, which
      enters the FIFO (the beat's credit stays taken until the result leaves on ``o``).
    * ``may_take`` out: a flip-flop (bit 0 of the thermometer-coded free credits), high while
      at least one credit is free.
    * ``o`` out: the results, in order, as a valid/ready stream. ``o.valid`` is a flip-flop
      (bit 0 of the FIFO's thermometer-coded occupancy) and ``o.payload`` is read
      combinationally from the FIFO's storage (LUT RAM on an FPGA) at the read pointer.

    Timing: a result put in cycle ``t`` is valid on ``o`` in cycle ``t + 1`` (the queue adds
    no latency to a pipeline whose last stage would otherwise be the output register). A
    credit given back in cycle ``t`` (by ``drop`` or by an ``o`` transfer) is registered and
    can be taken again in cycle ``t + 2``. A beat that enters in cycle ``t`` and whose result
    leaves in cycle ``t + latency`` therefore blocks its credit for ``latency + 2`` cycles,
    so ``latency + 2`` credits sustain one beat per cycle while ``o`` is ready. Every control
    bit (``may_take``, ``o.valid``, the credits and the occupancy) is a flip-flop whose next
    value is at most two LUT levels away from other flip-flops and the ports.

    Reset (synchronous) empties the FIFO and returns every credit; the pipeline's own valid
    bits must be reset by the same reset, so nothing in flight survives.
    """

    def __init__(self, shape: object, depth: int) -> None:
        if depth < 1 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two, got {depth}")
        self.shape, self.depth = shape, depth
        super().__init__({
            "take": In(1),
            "drop": In(1),
            "put": In(1),
            "data": In(shape),
            "may_take": Out(1),
            "o": Out(stream.Signature(shape)),
        })

    @staticmethod
    def depth_for(latency: int) -> int:
        """The smallest power of two that sustains one beat per cycle: ``>= latency + 2``."""
        return 1 << (latency + 1).bit_length()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        depth = self.depth
        m.submodules.storage = storage = Memory(shape=Shape.cast(self.shape).width,
                                                depth=depth, init=[])
        wr = storage.write_port()
        rd = storage.read_port(domain="comb")
        wptr, rptr = Signal(range(depth)), Signal(range(depth))
        # Thermometer-coded FIFO occupancy: bit i is set while more than i results wait, so
        # o.valid is a flip-flop and each bit's next value depends on three neighbours.
        held = Signal(depth)
        pop = Signal()
        m.d.comb += [
            wr.addr.eq(wptr),
            wr.data.eq(Value.cast(self.data)),
            wr.en.eq(self.put),
            rd.addr.eq(rptr),
            Value.cast(self.o.payload).eq(rd.data),
            self.o.valid.eq(held[0]),
            pop.eq(self.o.valid & self.o.ready),
        ]
        with m.If(self.put):
            m.d.sync += wptr.eq(wptr + 1)  # wraps: depth is a power of two
        with m.If(pop):
            m.d.sync += rptr.eq(rptr + 1)
        with m.If(self.put & ~pop):
            m.d.sync += held.eq(Cat(1, held[:-1]))
        with m.Elif(pop & ~self.put):
            m.d.sync += held.eq(held[1:])

        # Thermometer-coded free credits: bit i is set while more than i are free, so
        # may_take is a flip-flop. Credits given back are registered first (one cycle), so
        # each bit's next value is two LUT levels from flip-flops: shift up by the returns of
        # the previous cycle (0, 1 or 2), then down by one if a beat is taken.
        free = Signal(depth, init=(1 << depth) - 1)
        back_drop, back_pop = Signal(), Signal()
        returned = Signal(depth)
        m.d.sync += [back_drop.eq(self.drop), back_pop.eq(pop)]
        m.d.comb += [
            returned.eq(Mux(back_drop & back_pop, Cat(C(0b11, 2), free),
                            Mux(back_drop | back_pop, Cat(C(1, 1), free), free))),
            self.may_take.eq(free[0]),
        ]
        m.d.sync += free.eq(Mux(self.take, returned[1:], returned))
        return m


def de_bruijn_feedback(bits: int) -> int:
    """Truth table (bit ``s`` = the new low bit after state ``s``) of a ``bits``-bit shift
    register that steps through all ``2**bits`` states in one cycle: state ``s`` is followed
    by ``((s << 1) | table[s]) % 2**bits`` (the register follows a de Bruijn sequence)."""
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    # Greedy "prefer one" construction of a binary de Bruijn sequence (Martin, 1934):
    # start from all zeros and append a 1 whenever that state has not been seen yet.
    size, state, seen, table = 1 << bits, 0, {0}, 0
    for _ in range(size - 1):
        bit = int(((state << 1) | 1) % size not in seen)
        table |= bit << state
        state = ((state << 1) | bit) % size
        seen.add(state)
    return table  # the last state (a one and zeros) shifts in a 0: back to all zeros


class ResultQueue(wiring.Component):
    """The output end of a free-running pipeline in which only the beats that produce a
    result take a credit: a result FIFO, its credits, and a handful of LUTs.

    Same ports and timing as :class:`CreditQueue` without ``drop``: a beat that will leave
    the pipeline with a result asserts ``take`` when it enters (it may only do so while
    ``may_take`` is high) and ``put`` with ``data`` when it leaves; beats without a result
    take nothing and give nothing back (the ternary core's lane groups before the last of a
    row). ``depth`` (a power of two, at least 2) is the number of FIFO entries and of
    credits; :meth:`CreditQueue.depth_for` gives the depth that sustains one result per cycle
    for a pipeline of a given latency, as for :class:`CreditQueue`.

    * ``may_take`` and ``o.valid`` are flip-flops. ``o.payload`` is read combinationally
      from the FIFO's storage (LUT RAM on an FPGA) at the read pointer.
    * A result put in cycle ``t`` is valid on ``o`` in cycle ``t + 1``; a credit is given back
      the cycle after its result leaves on ``o`` and can be taken again a cycle later, so a
      result blocks its credit for ``latency + 2`` cycles, as in :class:`CreditQueue`.

    Implementation: three ``log2(depth)``-bit counters (write pointer, read pointer, credits
    taken) and a copy of the read pointer one cycle late (the credits returned); no
    occupancy or credit count is kept. The FIFO holds between 0 and ``depth`` results and at
    most ``depth`` credits are out, so each count is known from the counters modulo
    ``depth``: ``o.valid`` falls when the one result left is popped (write pointer = read
    pointer + 1), and ``may_take`` falls when the ``depth``-th credit is taken (credits
    taken + 1 = credits returned). The counters are shift registers that step through
    their ``depth`` states in a de Bruijn sequence (:func:`de_bruijn_feedback`) rather than
    binary counters: advancing one costs one LUT (its new low bit), the other bits are
    plain flip-flops with an enable, and "plus one" inside a compare is free (the compare's
    LUTs compute it). Each flag's next value is one LUT level after such a compare and the
    ``take`` / ``put`` / ``pop`` strobes. On Xilinx 7-series the control takes about eight
    LUTs (a thermometer-coded :class:`CreditQueue` of 8 entries about 25).

    Reset (synchronous) empties the FIFO and returns every credit.
    """

    def __init__(self, shape: object, depth: int) -> None:
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two >= 2, got {depth}")
        self.shape, self.depth = shape, depth
        super().__init__({
            "take": In(1),
            "put": In(1),
            "data": In(shape),
            "may_take": Out(1),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        depth = self.depth
        bits = (depth - 1).bit_length()
        table = de_bruijn_feedback(bits)

        def succ(state: Signal) -> Value:
            """The state after ``state`` in the counters' sequence."""
            new_bit = Signal(name=f"{state.name}_next_bit")
            with m.Switch(state):
                for value in range(depth):
                    with m.Case(value):
                        m.d.comb += new_bit.eq((table >> value) & 1)
            return Cat(new_bit, state[:-1])

        m.submodules.storage = storage = Memory(shape=Shape.cast(self.shape).width,
                                                depth=depth, init=[])
        wr = storage.write_port()
        rd = storage.read_port(domain="comb")
        wptr, rptr, taken, returned = (Signal(bits, name=n)
                                       for n in ("wptr", "rptr", "taken", "returned"))
        valid = Signal()
        may_take = Signal(init=1)
        back = Signal()  # a result left on o last cycle: its credit returns now
        pop = Signal()
        m.d.comb += [
            wr.addr.eq(wptr),
            wr.data.eq(Value.cast(self.data)),
            wr.en.eq(self.put),
            rd.addr.eq(rptr),
            Value.cast(self.o.payload).eq(rd.data),
            self.o.valid.eq(valid),
            self.may_take.eq(may_take),
            pop.eq(valid & self.o.ready),
        ]
        for counter, step in ((wptr, self.put), (rptr, pop), (taken, self.take)):
            with m.If(step):
                m.d.sync += counter.eq(succ(counter))
        m.d.sync += [returned.eq(rptr), back.eq(pop)]
        one_left = wptr == succ(rptr)
        last_credit = succ(taken) == returned
        # valid: a result is put, or one stays after this cycle's pop.
        m.d.sync += valid.eq(self.put | (valid & ~(pop & one_left)))
        # may_take: falls when the last credit is taken, rises when one returns.
        with m.If(self.take & ~back):
            m.d.sync += may_take.eq(~last_credit)
        with m.Elif(back & ~self.take):
            m.d.sync += may_take.eq(1)
        return m
