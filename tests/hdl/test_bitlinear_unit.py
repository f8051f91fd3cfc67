"""Amaranth-simulator tests of the serial divider, square root, the BitLinear front end
(exact results and cycle counts) and the BitLinear unit's cycle count (the formula the cycle
model uses)."""

import math

import numpy as np
import pytest
from amaranth.sim import Simulator

from mmfree.golden.quantiser import NormBitLinear, quantise_weighted
from mmfree.golden.ternary import encode_codes
from mmfree.hdl.bitlinear_unit import BitLinearUnit
from mmfree.hdl.norm_quantiser import NormQuantiser
from mmfree.hdl.serial_divider import SerialDivider
from mmfree.hdl.serial_isqrt import SerialIsqrt
from mmfree.model.cycles import bitlinear_unit_cycles, quantiser_overhead_cycles


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


def test_divider_high_part():
    """``high`` extends the dividend: floor((high * 2**w + dividend) / divisor) for
    ``high < divisor``, in ``w`` cycles (the quantiser's shortened divisions)."""
    dut = SerialDivider(5, 4)
    cases = [(h, a, b) for b in range(1, 16) for h in range(b) for a in (0, 7, 31)]
    for (h, a, b), (q, busy) in zip(cases, _serial(dut, cases,
                                                   [dut.high, dut.dividend, dut.divisor],
                                                   dut.quotient), strict=True):
        assert q == ((h << 5) + a) // b and busy == 5, (h, a, b)


def _vectors(rng, spec, count):
    lo, hi = -(1 << (spec.in_width - 1)), (1 << (spec.in_width - 1)) - 1
    wlo, whi = -(1 << (spec.weight_width - 1)), (1 << (spec.weight_width - 1)) - 1
    out = []
    for i in range(count):
        k = [1, spec.max_dim, int(rng.integers(1, spec.max_dim + 1))][i % 3]
        kind = i % 4
        if kind == 0:
            m, v = rng.integers(lo, hi + 1, k), rng.integers(wlo, whi + 1, k)
        elif kind == 1:  # extremes: the largest products, a right shift
            m, v = rng.choice([lo, hi], k), rng.choice([wlo, whi], k)
        elif kind == 2:  # |p| <= 1: the largest left shift
            m, v = rng.integers(-1, 2, k), rng.integers(-1, 2, k)
        else:  # zero weights: A = 0 with N > 0
            m, v = rng.integers(lo, hi + 1, k), np.zeros(k, dtype=np.int64)
        out.append((m, v))
    return out


@pytest.mark.parametrize("params", [(4, 12, 16, 16, 17), (1, 3, 6, 5, 9), (5, 15, 24, 24, 30),
                                    (16, 32, 16, 16, 17)])
def test_norm_quantiser_exact_and_cycles_equal_the_formula(params, seed):
    """Vectors through the front end alone (Amaranth simulator), every stream keeping up:
    q, D and E equal :func:`quantise_weighted`'s, and from the first ``x`` transfer to the
    last ``q`` transfer takes :meth:`NormQuantiserSpec.vector_cycles`, with the spec's
    overhead (which the cycle model uses)."""
    lanes, max_dim, in_width, weight_width, mant_bits = params
    dut = NormQuantiser(lanes, max_dim, in_width, weight_width, mant_bits)
    spec = dut.spec
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    vectors = _vectors(rng, spec, 8)
    got = []

    async def bench(ctx):
        ctx.set(dut.q.ready, 1)
        ctx.set(dut.scale.ready, 1)
        for m, v in vectors:
            g = -(-len(m) // lanes)
            pad = g * lanes - len(m)
            mp = np.concatenate([m, np.zeros(pad, dtype=np.int64)])
            vp = np.concatenate([v, rng.integers(-1, 2, pad)])
            cyc, first, sent, qs, scale = 0, None, 0, [], None
            while True:
                ctx.set(dut.x.valid, sent < g)
                if sent < g:
                    sl = slice(sent * lanes, (sent + 1) * lanes)
                    ctx.set(dut.x.payload, {"data": [int(a) for a in mp[sl]],
                                            "weight": [int(a) for a in vp[sl]],
                                            "last": sent == g - 1})
                x_go = sent < g and ctx.get(dut.x.ready)
                q_go, q_val = ctx.get(dut.q.valid), ctx.get(dut.q.payload)
                if ctx.get(dut.scale.valid):
                    scale = ctx.get(dut.scale.payload)
                await ctx.tick()
                if x_go:
                    first = cyc if first is None else first
                    sent += 1
                cyc += 1
                if q_go:
                    qs += [int(a) for a in q_val.data]
                    if q_val.last:
                        break
            ctx.set(dut.x.valid, 0)
            got.append((np.array(qs), int(scale.scale), int(scale.exp), cyc - first, g))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert dut.overhead == spec.overhead
    if (lanes, mant_bits) == (16, 17):
        assert spec.overhead == quantiser_overhead_cycles(lanes, mant_bits)
    for (m, v), (q, d, e, cycles, g) in zip(vectors, got, strict=True):
        want = quantise_weighted(m, v, spec.fmt)
        assert np.array_equal(q[:len(m)], want.q) and not q[len(m):].any()
        assert (d, e) == (want.scale, want.exp)
        assert cycles == spec.vector_cycles(g)


@pytest.mark.parametrize("lanes,pipe", [(4, 0), (3, 1), (16, 0), (1, 0)])
def test_unit_cycles_equal_cycle_model(lanes, pipe, seed):
    """Run products back to back with every stream keeping up; each product's cycles, from
    its first x transfer to its last y transfer, equal the cycle model's formula, and every
    row sum, D and E is bit-exact."""
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
            norm = rng.integers(-32768, 32768, k)
            w = rng.integers(-1, 2, (m, k))
            g = -(-k // lanes)
            pad = g * lanes - k
            mv = np.concatenate([vec, np.zeros(pad, dtype=np.int64)])
            nv = np.concatenate([norm, np.zeros(pad, dtype=np.int64)])
            codes = np.concatenate([encode_codes(w), np.zeros((m, pad), np.int64)], axis=1)
            xb = [([int(v) for v in mv[i * lanes:(i + 1) * lanes]],
                   [int(v) for v in nv[i * lanes:(i + 1) * lanes]], i == g - 1)
                  for i in range(g)]
            wb = [([int(c) for c in codes[r, i * lanes:(i + 1) * lanes]], i == g - 1,
                   i == g - 1 and r == m - 1) for r in range(m) for i in range(g)]
            cyc, first, last, ys, scale, xi, wi = 0, None, None, [], None, 0, 0
            while len(ys) < m:
                ctx.set(dut.x.valid, xi < g)
                if xi < g:
                    ctx.set(dut.x.payload, {"data": xb[xi][0], "weight": xb[xi][1],
                                            "last": xb[xi][2]})
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
            results.append((m, k, vec, norm, w, ys, scale, last - first + 1))
            ctx.set(dut.x.valid, 0)
            ctx.set(dut.w.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(results) == len(shapes)
    for m, k, vec, norm, w, ys, scale, cycles in results:
        acc, want_scale, want_exp = NormBitLinear().device(vec, norm, w.astype(np.int8))
        assert ys == list(acc) and (scale.scale, scale.exp) == (want_scale, want_exp)
        assert cycles == dut.spec.cycles(m, k) == bitlinear_unit_cycles(
            m, k, lanes, tree_levels_per_stage=pipe), (m, k)
