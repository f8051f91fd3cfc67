# amaranth: UnusedElaboratable=no
"""Fast tests of the tensor core in Amaranth's simulator."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from mmfree.golden.tensor_core import gemm_schedule, mac_tile, tiled_gemm
from mmfree.hdl.tensor_core import TensorCore
from mmfree.sim.kit import port_codecs


def _stream(dut, beats, n_out, seed, stall=0.3):
    rng = random.Random(seed)
    out = []

    async def producer(ctx):
        for b in beats:
            while rng.random() < stall:
                await ctx.tick()
            ctx.set(dut.i.payload.as_value(), b)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while len(out) < n_out:
            ctx.set(dut.d.ready, rng.random() >= stall)
            await ctx.tick()

    async def monitor(ctx):
        async for _c, _r, valid, ready, payload in ctx.tick().sample(
                dut.d.valid, dut.d.ready, dut.d.payload.as_value()):
            if valid and ready:
                out.append(port_codecs(dut)["d"].decode(int(payload)).reshape(4, 4))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(monitor)
    sim.run_until(1e-8 * (len(beats) * 15 + 100))
    return out


def _beat(dut, a, b, c, first=True, last=True):
    value = {"a": a.ravel(), "b": b.ravel(), "c": c.ravel()}
    if dut.accumulate:
        value.update(first=int(first), last=int(last))
    return port_codecs(dut)["i"].encode(value)


@pytest.mark.parametrize("width,is_signed", [(8, True), (4, False), (16, True)])
def test_plain_tiles_with_stalls(width, is_signed, seed):
    rng = np.random.default_rng(seed)
    dut = TensorCore(width=width, is_signed=is_signed)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if is_signed else (0, (1 << width) - 1)
    tiles = [(rng.integers(lo, hi + 1, (4, 4)), rng.integers(lo, hi + 1, (4, 4)),
              rng.integers(-(2**31), 2**31 - 1, (4, 4))) for _ in range(12)]
    got = _stream(dut, [_beat(dut, *t) for t in tiles], len(tiles), seed)
    for g, t in zip(got, tiles, strict=True):
        assert np.array_equal(g, mac_tile(*t, width, is_signed, 32)), f"seed {seed}"


@pytest.mark.parametrize("dsp", [False, True])
def test_accumulate_mode_runs_a_gemm(dsp, seed):
    rng = np.random.default_rng(seed)
    dut = TensorCore(width=8, accumulate=True, dsp_pipeline=dsp)
    a, b = rng.integers(-128, 128, (6, 11)), rng.integers(-128, 128, (11, 7))
    c = rng.integers(-1000, 1000, (6, 7))
    steps = list(gemm_schedule(a, b, c))
    got = _stream(dut, [_beat(dut, s.a, s.b, s.c, s.first, s.last) for s in steps],
                  sum(s.last for s in steps), seed)
    d = np.zeros((8, 8), dtype=np.int64)
    for g, s in zip(got, [s for s in steps if s.last], strict=True):
        d[4 * s.i:4 * s.i + 4, 4 * s.j:4 * s.j + 4] = g
    assert np.array_equal(d[:6, :7], tiled_gemm(a, b, c)), f"seed {seed}"


@pytest.mark.parametrize("kwargs,name", [
    ({"width": 1}, "width"), ({"width": 33}, "width"), ({"acc_width": 15}, "acc_width"),
    ({"width": 8, "is_signed": False, "acc_width": 16}, "acc_width"),
    ({"is_signed": 1}, "is_signed"), ({"accumulate": "yes"}, "accumulate"),
    ({"dsp_pipeline": 1}, "dsp_pipeline"),
])
def test_parameters_are_validated_by_name(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        TensorCore(**kwargs)
