# amaranth: UnusedElaboratable=no
"""The credit queues of the free-running pipelines, in Amaranth's simulator.

A delay line of ``latency`` cycles with a :class:`CreditQueue` (or a :class:`ResultQueue`)
at its end stands in for a core: beats carry a value and a flag saying whether they produce
a result (like a lane group with ``last`` set), and the results must come out in order,
exactly once, under random bubbles, back-pressure and resets, at one beat per cycle when
nothing stalls. With a :class:`CreditQueue` every beat takes a credit (and a beat without
a result drops it at the end); with a :class:`ResultQueue` only result beats take one.
"""

import random

import pytest
from amaranth import ClockDomain, Module, ResetSignal, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from mmfree.hdl.credit_queue import CreditQueue, ResultQueue, de_bruijn_feedback

BEAT = data.StructLayout({"value": 8, "result": 1})


class DelayLine(wiring.Component):
    """``i`` -> ``latency - 1`` free-running register stages -> queue -> ``o``."""

    def __init__(self, latency: int, depth: int, queue: type = CreditQueue) -> None:
        self.latency, self.depth, self.queue = latency, depth, queue
        super().__init__({"i": In(stream.Signature(BEAT)), "o": Out(stream.Signature(8)),
                          "overflow": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = q = self.queue(8, self.depth)
        m.d.comb += self.i.ready.eq(q.may_take & ~ResetSignal())
        valid, beat = self.i.valid & self.i.ready, self.i.payload
        counting = self.queue is CreditQueue  # every beat takes a credit, or result beats
        m.d.comb += q.take.eq(valid if counting else valid & beat.result)
        for s in range(self.latency - 1):
            v, b = Signal(name=f"v{s}"), Signal(BEAT, name=f"b{s}", reset_less=True)
            m.d.sync += [v.eq(valid), b.eq(beat)]
            valid, beat = v, b
        m.d.comb += [q.put.eq(valid & beat.result), q.data.eq(beat.value)]
        if counting:
            m.d.comb += q.drop.eq(valid & ~beat.result)
        # a sticky flag if a result is put while the FIFO is full (counted here, outside)
        level = Signal(range(self.depth + 2))
        pop = self.o.valid & self.o.ready
        m.d.sync += level.eq(level + q.put - pop)
        with m.If(q.put & ~pop & (level == self.depth)):
            m.d.sync += self.overflow.eq(1)
        wiring.connect(m, q.o, wiring.flipped(self.o))
        return m


def _run(dut, beats, stall_in, stall_out, seed, resets=()):
    """Stream ``beats`` ((value, result) pairs) with random bubbles and back-pressure and
    synchronous resets in the cycles ``resets``; returns the outputs and the cycles of the
    input and output transfers. Fails if the FIFO ever overflowed."""
    rng = random.Random(seed)
    out, cycles = [], {"in": [], "out": []}
    top = Module()
    top.domains.sync = cd = ClockDomain()
    top.submodules.dut = dut

    async def source(ctx):
        cycle, i = 0, 0
        while i < len(beats):
            # reset is driven here, before ready is read (another testbench could run later)
            ctx.set(cd.rst, cycle in resets)
            if cycle in resets:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
                cycle += 1
                continue
            offer = rng.random() >= stall_in
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, {"value": beats[i][0], "result": beats[i][1]})
            if offer and ctx.get(dut.i.ready):
                cycles["in"].append(cycle)
                i += 1
            await ctx.tick()
            cycle += 1
        ctx.set(dut.i.valid, 0)
        assert cycle > max(resets, default=-1), "the stream ended before the last reset"

    async def sink(ctx):
        cycle = 0
        while True:
            ready = rng.random() >= stall_out
            ctx.set(dut.o.ready, ready)
            assert not ctx.get(dut.overflow), "a result was put into a full FIFO"
            if ready and ctx.get(dut.o.valid):
                out.append(ctx.get(dut.o.payload))
                cycles["out"].append(cycle)
            await ctx.tick()
            cycle += 1

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink, background=True)
    sim.run_until(1e-8 * (20 * len(beats) + 100))
    return out, cycles


QUEUES = [CreditQueue, ResultQueue]


@pytest.mark.parametrize("queue", QUEUES, ids=lambda q: q.__name__)
@pytest.mark.parametrize("latency", [1, 2, 3, 6, 9])
def test_results_in_order_under_stalls(queue, latency, seed):
    rng = random.Random(seed + latency)
    beats = [(rng.randrange(256), int(rng.random() < 0.4)) for _ in range(150)]
    dut = DelayLine(latency, CreditQueue.depth_for(latency), queue)
    out, _ = _run(dut, beats, 0.3, 0.6, seed)
    assert out == [v for v, r in beats if r], f"seed {seed}"


@pytest.mark.parametrize("queue", QUEUES, ids=lambda q: q.__name__)
@pytest.mark.parametrize("latency", [1, 2, 3, 5, 8])
def test_one_beat_per_cycle_with_depth_for(queue, latency, seed):
    """No stalls: ``n`` beats take ``n + latency`` cycles, first input to last output."""
    beats = [(i % 256, 1) for i in range(40)]
    out, cycles = _run(DelayLine(latency, CreditQueue.depth_for(latency), queue), beats, 0, 0,
                       seed)
    assert out == [v for v, _ in beats]
    assert cycles["out"][-1] - cycles["in"][0] + 1 == len(beats) + latency


@pytest.mark.parametrize("queue", QUEUES, ids=lambda q: q.__name__)
def test_latency_plus_one_credits_are_not_enough(queue):
    """A returned credit is registered for a cycle, so depth = latency + 1 loses throughput
    (this is why :meth:`CreditQueue.depth_for` asks for latency + 2)."""
    latency = 3
    beats = [(i, 1) for i in range(40)]
    out, cycles = _run(DelayLine(latency, latency + 1, queue), beats, 0, 0, 0)
    assert out == [v for v, _ in beats]
    assert cycles["out"][-1] - cycles["in"][0] + 1 > len(beats) + latency


@pytest.mark.parametrize("queue", QUEUES, ids=lambda q: q.__name__)
def test_reset_empties_queue_and_pipeline(queue, seed):
    """Resets while beats are in flight: afterwards only results of beats sent after the
    last reset can appear, and none twice."""
    rng = random.Random(seed)
    beats = [(i, int(rng.random() < 0.7)) for i in range(200)]
    out, cycles = _run(DelayLine(4, CreditQueue.depth_for(4), queue), beats, 0.2, 0.5, seed,
                       resets=(30, 31, 75))
    assert not set(cycles["in"]) & {30, 31, 75}, "a beat transferred during reset"
    after = [v for (v, r), c in zip(beats, cycles["in"], strict=True) if r and c > 75]
    before = {v for (v, r), c in zip(beats, cycles["in"], strict=True) if r and c < 75}
    assert len(after) > 50 and out[-len(after):] == after, f"seed {seed}"
    lost = out[:-len(after)]
    assert lost == sorted(set(lost)) and set(lost) <= before, f"seed {seed}"
    assert len(lost) < len(before), "the resets discarded nothing"


def test_depth_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        CreditQueue(8, 6)
    with pytest.raises(ValueError, match="power of two"):
        ResultQueue(8, 12)
    assert [CreditQueue.depth_for(n) for n in (1, 2, 3, 6, 7)] == [4, 4, 8, 8, 16]


@pytest.mark.parametrize("depth", [2, 4, 8, 16])
@pytest.mark.parametrize("results", [1.0, 0.3])
def test_result_queue_holds_exactly_depth_results(depth, results, seed):
    """Output held not ready: a :class:`ResultQueue` lets exactly ``depth`` result beats in
    (beats without a result pass freely, they take no credit), then holds its input off;
    when the output resumes, every result comes out in order."""
    rng = random.Random(seed + depth)
    # every third beat at least makes a result, so there are always more than depth of them
    beats = [(i % 256, int(i % 3 == 2 or rng.random() < results)) for i in range(6 * depth)]
    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut = DelayLine(3, depth, ResultQueue)
    taken, out = [], []

    async def source(ctx):
        for beat in beats:
            ctx.set(dut.i.payload, {"value": beat[0], "result": beat[1]})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            taken.append(beat)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        await ctx.tick().repeat(10 * depth + 20)
        assert sum(r for _, r in taken) == depth, "results let in while the output was held"
        ctx.set(dut.o.ready, 1)
        for _ in range(20 * depth):
            if ctx.get(dut.o.valid):  # transfers at the coming edge
                out.append(ctx.get(dut.o.payload))
            await ctx.tick()
        assert not ctx.get(dut.overflow)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    assert out == [v for v, r in beats if r], f"seed {seed}"


@pytest.mark.parametrize("bits", range(1, 9))
def test_de_bruijn_counter_visits_every_state(bits):
    """The counters of :class:`ResultQueue` step through all ``2**bits`` states, then repeat."""
    table, size = de_bruijn_feedback(bits), 1 << bits
    state, seen = 0, []
    for _ in range(size):
        seen.append(state)
        state = ((state << 1) | (table >> state & 1)) % size
    assert sorted(seen) == list(range(size)) and state == 0
