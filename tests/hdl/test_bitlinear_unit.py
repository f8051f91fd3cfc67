"""Amaranth-simulator tests of the serial divider, square root and the BitLinear unit's
cycle count (the formula the cycle model uses)."""

import math

import numpy as np
import pytest
from amaranth.sim import Simulator

from mmfree.golden.quantiser import FixedBitLinear
from mmfree.golden.ternary import encode_codes
from mmfree.hdl.bitlinear_unit import BitLinearUnit
from mmfree.hdl.rms_quantiser import RmsAbsmaxQuantiser
from mmfree.hdl.serial_divider import SerialDivider
from mmfree.hdl.serial_isqrt import SerialIsqrt
from mmfree.model.cycles import bitlinear_unit_cycles, quantiser_overhead_cycles
from mmfree.spec import RmsQuantiserSpec


def _serial(dut, cases, inputs, output):
    got = []

    async def bench(ctx):
        for case in cases:
            for sig, v in zip(inputs, case, strict=True):
                ctx.set(sig, v)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            busy = 0
            while ctx.get(dut.busy):
                busy += 1
                await ctx.tick()
            got.append((ctx.get(output), busy))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


def test_divider_exhaustive_small():
    dut = SerialDivider(6, 4)
    cases = [(a, b) for a in range(64) for b in range(16)]
    for (a, b), (q, busy) in zip(cases, _serial(dut, cases, [dut.dividend, dut.divisor],
                                                 dut.quotient), strict=True):
        assert q == (a // b if b else 63), (a, b)
        assert busy == dut.cycles == 6


def test_isqrt_exhaustive_small_and_wide():
    dut = SerialIsqrt(9)
    cases = [(v,) for v in range(512)]
    for (v,), (r, busy) in zip(cases, _serial(dut, cases, [dut.radicand], dut.root),
                               strict=True):
        assert r == math.isqrt(v) and busy == 5
    wide = SerialIsqrt(65)
    vals = [(0,), (1,), ((1 << 65) - 1,), (1 << 64,), (12345678901234567,)]
    for (v,), (r, _) in zip(vals, _serial(wide, vals, [wide.radicand], wide.root),
                            strict=True):
        assert r == math.isqrt(v)


@pytest.mark.parametrize("lanes,recip_frac,rsqrt_frac",
                         [(4, 24, 32), (1, 5, 7), (16, 40, 10), (5, 24, 32), (64, 24, 32)])
def test_quantiser_vector_cycles_equal_the_formula(lanes, recip_frac, rsqrt_frac, seed):
    """Vectors of 1, 2 and 3 lane groups through the quantiser alone, every stream keeping
    up: from the first ``x`` transfer to the last ``q`` transfer takes
    :meth:`RmsQuantiserSpec.vector_cycles` (``2G + overhead + 3``), the overhead being the
    spec's (:attr:`RmsQuantiserSpec.overhead`, which the cycle model uses)."""
    dut = RmsAbsmaxQuantiser(lanes, 3 * lanes, 16, recip_frac, rsqrt_frac)
    rng = np.random.default_rng(seed)
    measured = []

    async def bench(ctx):
        ctx.set(dut.q.ready, 1)
        ctx.set(dut.scale.ready, 1)
        for groups in (1, 2, 3):
            cyc, first, last, sent, got = 0, None, None, 0, 0
            while got < groups:
                ctx.set(dut.x.valid, sent < groups)
                ctx.set(dut.x.payload, {"data": [int(v) for v in rng.integers(-999, 999, lanes)],
                                        "last": sent == groups - 1})
                x_go = sent < groups and ctx.get(dut.x.ready)
                q_go = ctx.get(dut.q.valid)
                await ctx.tick()
                if x_go:
                    first = cyc if first is None else first
                    sent += 1
                if q_go:
                    got, last = got + 1, cyc
                cyc += 1
            ctx.set(dut.x.valid, 0)
            measured.append((groups, last - first + 1))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    spec = RmsQuantiserSpec(lanes=lanes, recip_frac=recip_frac, rsqrt_frac=rsqrt_frac)
    assert dut.overhead == spec.overhead == quantiser_overhead_cycles(lanes, recip_frac,
                                                                       rsqrt_frac)
    assert measured == [(g, spec.vector_cycles(g)) for g in (1, 2, 3)]


@pytest.mark.parametrize("lanes,pipe", [(4, 0), (3, 1), (16, 0), (1, 0)])
def test_unit_cycles_equal_cycle_model(lanes, pipe, seed):
    """Run products back to back with every stream keeping up; each product's cycles, from
    its first x transfer to its last y transfer, equal the cycle model's formula, and every
    row sum and scale is bit-exact."""
    dut = BitLinearUnit(lanes=lanes, max_dim=40, tree_levels_per_stage=pipe)
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    shapes = [(1, 1), (3, 40), (5, 7), (2, lanes)]
    results = []

    async def bench(ctx):
        ctx.set(dut.y.ready, 1)
        ctx.set(dut.scale.ready, 1)
        for m, k in shapes:
            vec = rng.integers(-32768, 32768, k)
            w = rng.integers(-1, 2, (m, k))
            g = -(-k // lanes)
            pad = g * lanes - k
            mv = np.concatenate([vec, np.zeros(pad, dtype=np.int64)])
            codes = np.concatenate([encode_codes(w), np.zeros((m, pad), np.int64)], axis=1)
            xb = [([int(v) for v in mv[i * lanes:(i + 1) * lanes]], i == g - 1)
                  for i in range(g)]
            wb = [([int(c) for c in codes[r, i * lanes:(i + 1) * lanes]], i == g - 1,
                   i == g - 1 and r == m - 1) for r in range(m) for i in range(g)]
            cyc, first, last, ys, scale, xi, wi = 0, None, None, [], None, 0, 0
            while len(ys) < m:
                ctx.set(dut.x.valid, xi < g)
                if xi < g:
                    ctx.set(dut.x.payload, {"data": xb[xi][0], "last": xb[xi][1]})
                ctx.set(dut.w.valid, wi < len(wb))
                if wi < len(wb):
                    ctx.set(dut.w.payload, dict(zip(("codes", "last", "final"), wb[wi],
                                                    strict=True)))
                x_go = xi < g and ctx.get(dut.x.ready)
                w_go = wi < len(wb) and ctx.get(dut.w.ready)
                y_go, y_val = ctx.get(dut.y.valid), ctx.get(dut.y.payload)
                if ctx.get(dut.scale.valid):
                    scale = ctx.get(dut.scale.payload)
                await ctx.tick()
                if x_go:
                    first = cyc if first is None else first
                    xi += 1
                wi += int(w_go)
                if y_go:
                    ys.append(y_val)
                    last = cyc
                cyc += 1
            results.append((m, k, vec, w, ys, scale, last - first + 1))
            ctx.set(dut.x.valid, 0)
            ctx.set(dut.w.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(results) == len(shapes)
    for m, k, vec, w, ys, scale, cycles in results:
        acc, want_scale = FixedBitLinear().device(vec, w)
        assert ys == list(acc) and scale == want_scale
        assert cycles == dut.spec.cycles(m, k) == bitlinear_unit_cycles(
            m, k, lanes, tree_levels_per_stage=pipe), (m, k)
