# amaranth: UnusedElaboratable=no
"""Fast tests of the components in Amaranth's own simulator (no Verilog, no cocotb)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from mmfree.golden.ternary import decode_codes, encode_codes, pack_trits, ternary_matvec
from mmfree.hdl import PackedTernaryCore, TernaryCore
from mmfree.sim.kit import port_codecs
from mmfree.spec import TernaryCoreSpec


def _run_product(dut, lanes, w, x, seed, stall=0.3, packed=False, acc=32):
    """Stream W @ x through ``dut`` with random stalls; return (outputs, cycles)."""
    rng = random.Random(seed)
    codec = port_codecs(dut)
    m, k = w.shape
    groups = -(-k // lanes)
    beats = []
    for r in range(m):
        for g in range(groups):
            wg = np.zeros(lanes, dtype=np.int64)
            xg = np.zeros(lanes, dtype=np.int64)
            lo, hi = g * lanes, min(k, (g + 1) * lanes)
            wg[: hi - lo], xg[: hi - lo] = w[r, lo:hi], x[lo:hi]
            last = int(g == groups - 1)
            wp = ({"packed": pack_trits(wg), "last": last} if packed
                  else {"codes": encode_codes(wg), "last": last})
            beats.append((codec["w"].encode(wp), codec["x"].encode(xg)))
    out = []

    def producer(stream, index):
        async def run(ctx):
            for beat in beats:
                while rng.random() < stall:
                    await ctx.tick()
                ctx.set(stream.payload.as_value(), beat[index])
                ctx.set(stream.valid, 1)
                await ctx.tick().until(stream.ready)
                ctx.set(stream.valid, 0)
        return run

    async def consumer(ctx):
        while len(out) < m:
            ctx.set(dut.y.ready, rng.random() >= stall)
            await ctx.tick()
        ctx.set(dut.y.ready, 0)

    async def monitor(ctx):
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(
                dut.y.valid, dut.y.ready, dut.y.payload):
            if valid and ready:
                out.append(codec["y"].decode(int(payload)))
            if len(out) == m:
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer(dut.w, 0))
    sim.add_testbench(producer(dut.x, 1))
    sim.add_testbench(consumer)
    sim.add_process(monitor)
    sim.run_until(1e-8 * (len(beats) * 20 + 200))
    return out


@pytest.mark.parametrize("lanes,packed,pipe", [(1, False, 0), (4, False, 0), (7, True, 0),
                                               (16, False, 0), (16, False, 1), (7, True, 2),
                                               (33, False, 3)])
def test_core_random_with_stalls(lanes, packed, pipe, seed):
    rng = np.random.default_rng(seed + lanes)
    cls = PackedTernaryCore if packed else TernaryCore
    for trial in range(3):
        m, k = int(rng.integers(1, 5)), int(rng.integers(1, 4 * lanes + 3))
        w = rng.integers(-1, 2, (m, k))
        x = rng.integers(-128, 128, k)
        got = _run_product(cls(lanes=lanes, tree_levels_per_stage=pipe), lanes, w, x,
                           seed + trial, packed=packed)
        assert got == ternary_matvec(w, x).tolist(), f"seed {seed}, {m}x{k}"


def test_core_cycle_formula_without_stalls(seed):
    lanes = 8
    w = np.random.default_rng(seed).integers(-1, 2, (5, 19))
    x = np.random.default_rng(seed + 1).integers(-128, 128, 19)
    dut = TernaryCore(lanes=lanes)
    codec = port_codecs(dut)
    first, last = [], []

    async def bench(ctx):
        ctx.set(dut.y.ready, 1)
        groups = -(-19 // lanes)
        cycle = 0
        for r in range(5):
            for g in range(groups):
                wg = np.zeros(lanes, dtype=np.int64)
                lo, hi = g * lanes, min(19, (g + 1) * lanes)
                wg[: hi - lo] = w[r, lo:hi]
                ctx.set(dut.w.payload.as_value(), codec["w"].encode(
                    {"codes": encode_codes(wg), "last": int(g == groups - 1)}))
                ctx.set(dut.x.payload.as_value(),
                        codec["x"].encode(np.pad(x[lo:hi], (0, lanes - hi + lo))))
                ctx.set(dut.w.valid, 1)
                ctx.set(dut.x.valid, 1)
                assert ctx.get(dut.w.ready), "core not ready while streaming"
                if not first:
                    first.append(cycle)
                await ctx.tick()
                cycle += 1
        ctx.set(dut.w.valid, 0)
        ctx.set(dut.x.valid, 0)
        outs = 0
        while outs < 5:
            # count outputs already transferred during streaming too
            outs = len(last)
            if outs == 5:
                break
            await ctx.tick()
            cycle += 1

    async def monitor(ctx):
        cycle = 0
        async for _clk, _rst, valid in ctx.tick().sample(dut.y.valid):
            if valid:
                last.append(cycle)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run_until(1e-8 * 100)
    assert len(last) >= 5
    assert last[4] - first[0] + 1 == TernaryCoreSpec(lanes=lanes).cycles(5, 19)


@pytest.mark.parametrize("kwargs,name", [
    ({"lanes": 0}, "lanes"), ({"lanes": 1025}, "lanes"), ({"lanes": 2.0}, "lanes"),
    ({"act_width": 1}, "act_width"), ({"acc_width": 8}, "acc_width"),
    ({"acc_width": 65}, "acc_width"),
])
def test_parameters_are_validated_by_name(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        TernaryCore(**kwargs)
    with pytest.raises((ValueError, TypeError), match=name):
        PackedTernaryCore(**kwargs)


@pytest.mark.parametrize("lanes,act,acc,pipe", [(1, 8, 32, 0), (2, 8, 12, 0), (5, 8, 32, 1),
                                                (8, 8, 12, 0), (11, 3, 6, 2), (16, 16, 20, 1)])
def test_core_every_code_and_extreme_activations(lanes, act, acc, pipe, seed):
    """Raw weight codes, 0b10 ("negative zero", decoded as 0) included in every lane (the
    sign-factored tree takes each node's sign from its first lane's code bit 1, so this
    is the case that could break it), activations drawn from the extremes and random values
    in every lane, zero-weight lanes too; one-group and multi-group rows, back to back.
    Every result against the golden decoding, wrapped at ``acc`` bits."""
    rng = np.random.default_rng(seed + 7 * lanes + pipe)
    lo, hi = -(1 << (act - 1)), (1 << (act - 1)) - 1
    dut = TernaryCore(lanes=lanes, act_width=act, acc_width=acc, tree_levels_per_stage=pipe)
    codec = port_codecs(dut)
    beats, expected, total = [], [], 0
    for row in range(40):
        groups = 1 + int(rng.integers(0, 3)) if row % 4 else 1
        for g in range(groups):
            codes = rng.integers(0, 4, lanes)
            if row % 8 == 1:
                codes[:] = 2  # every lane negative zero
            x = np.where(rng.random(lanes) < 0.5, rng.choice([lo, hi, -1, 0, 1], lanes),
                         rng.integers(lo, hi + 1, lanes))
            total += int(decode_codes(codes) @ x)
            last = int(g == groups - 1)
            beats.append((codec["w"].encode({"codes": codes, "last": last}),
                          codec["x"].encode(x)))
            if last:
                expected.append(codec["y"].decode(total % (1 << acc)))
                total = 0
    got = []

    async def bench(ctx):
        ctx.set(dut.y.ready, 1)
        for wp, xp in beats:
            ctx.set(dut.w.payload.as_value(), wp)
            ctx.set(dut.x.payload.as_value(), xp)
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.x.valid, 1)
            await ctx.tick().until(dut.w.ready)
        ctx.set(dut.w.valid, 0)
        ctx.set(dut.x.valid, 0)

    async def monitor(ctx):
        async for _clk, _rst, valid, payload in ctx.tick().sample(dut.y.valid, dut.y.payload):
            if valid:
                got.append(codec["y"].decode(int(payload)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run_until(1e-8 * (len(beats) + 40))
    assert got == expected, f"seed {seed}: lanes {lanes}, act {act}, acc {acc}, pipe {pipe}"
