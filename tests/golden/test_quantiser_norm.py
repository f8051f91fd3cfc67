"""The weighted fixed-point front end (mmfree.golden.quantiser, second contract) against the
released floating-point BitLinear with a norm weight, and its corner cases."""

import math

import numpy as np
import pytest

from mmfree.golden.quantiser import (
    MAX_DIM,
    NormBitLinear,
    NormQuantFormat,
    quantise_weighted,
    ternary_product,
    to_block_float,
    weighted_dequant_factor,
)
from mmfree.golden.ternary import ternary_matvec

FMT = NormQuantFormat()


def float_front_end(x, w, eps):
    """The released kernel: q and 1/s_x of x * rstd(x) * w (rounding half away from zero)."""
    y = x / math.sqrt(np.mean(x * x) + eps) * w
    amax = max(float(np.abs(y).max()), 1e-5)
    v = y * 127.0 / amax
    return np.clip(np.copysign(np.floor(np.abs(v) + 0.5), v), -128, 127), amax / 127.0, v


def random_vector(rng, k):
    kind = rng.integers(4)
    if kind == 0:
        return rng.normal(size=k) * 10 ** rng.uniform(-1, 2)
    if kind == 1:
        return rng.standard_t(2, size=k)  # heavy tails: a few large elements
    if kind == 2:
        return rng.uniform(-1, 1, k) * 10 ** rng.uniform(-1, 1)
    x = rng.normal(size=k)
    x[rng.integers(k)] *= 100  # one outlier
    return x


def random_norm_weight(rng, k):
    # trained norm weights: mostly positive around one scale, some small or negative
    return rng.normal(1, 0.5, k) * 10 ** rng.uniform(-1, 1)


def test_device_arithmetic_is_float_on_its_own_mantissas(seed):
    """On the inputs the device really sees (x and w rounded to their mantissas), the only
    differences from the float front end are the contract's truncations: q differs by one
    step at most, and only within 0.006 of a rounding tie; 1/s_x within 3 * 2**(1-P)."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        k = int(rng.choice([1, 2, 3, 16, 100, 1024, 2816]))
        m, e = to_block_float(random_vector(rng, k), FMT.in_width)
        v, ew = to_block_float(random_norm_weight(rng, k), FMT.weight_width)
        x, w = np.ldexp(m.astype(float), -e), np.ldexp(v.astype(float), -ew)
        res = quantise_weighted(m, v, FMT)
        q, inv_s, scaled = float_front_end(x, w, eps=0.0)
        diff = res.q != q
        assert np.abs(res.q - q).max(initial=0) <= 1
        frac = np.abs(scaled[diff]) - np.floor(np.abs(scaled[diff]))
        assert np.all(np.abs(frac - 0.5) < 0.006), frac
        factor = weighted_dequant_factor(res.scale, res.exp, k, ew, FMT)
        assert abs(factor / inv_s - 1) < 3 * 2.0 ** (1 - FMT.mant_bits)


def test_against_released_bitlinear_with_norm_weight(seed):
    """Against the released float BitLinear (eps 1e-6, original float x and w) on random
    vectors: every q within one step, >= 99 % equal (measured 99.8 %), 1/s_x within the
    documented bound 2**-15 (rho_x + rho_w + 1) + 3 * 2**(1-P) + eps / (2 mean(x**2)), and
    each output row within (n (1 + bound) + bound |acc|) / (s_x s_w), n = the count of
    differing q values."""
    rng = np.random.default_rng(seed)
    arith = NormBitLinear(FMT)
    equal = total = 0
    for _ in range(150):
        k = int(rng.choice([2, 16, 64, 1024, 2048, 5632]))
        x = random_vector(rng, k) * 10 ** rng.uniform(-2, 0)
        w = random_norm_weight(rng, k)
        codes = rng.integers(-1, 2, (8, k)).astype(np.int8)
        s_w = float(rng.uniform(0.5, 4))
        q, inv_s, _ = float_front_end(x, w, eps=1e-6)
        v, ew = arith.norm_weight(w)
        m = arith.mantissas(x)
        res = arith.quantise(m, v)
        assert np.abs(res.q - q).max() <= 1
        equal += int(np.sum(res.q == q))
        total += k
        j = int(np.argmax(np.abs(x * w)))
        rho_x, rho_w = np.abs(x).max() / abs(x[j]), np.abs(w).max() / abs(w[j])
        bound = (2.0 ** -15 * (rho_x + rho_w + 1) + 3 * 2.0 ** (1 - FMT.mant_bits)
                 + 1e-6 / (2 * np.mean(x * x)))
        factor = weighted_dequant_factor(res.scale, res.exp, k, ew, FMT)
        assert abs(factor / inv_s - 1) < bound
        acc, scale, exp = arith.device(m, v, codes)
        out = arith.rescale(acc, scale, exp, k, ew, s_w)
        acc_f = codes.astype(np.int64) @ q.astype(np.int64)
        want = acc_f * inv_s / s_w
        n_diff = int(np.sum(res.q != q))
        assert np.all(np.abs(out - want)
                      <= (n_diff * (1 + bound) + bound * np.abs(acc_f) + 1e-9) * inv_s / s_w)
    assert equal / total >= 0.99, f"{100 * equal / total:.2f} % equal"


def test_contract_invariants_and_widths(seed):
    rng = np.random.default_rng(seed)
    for fmt in (FMT, NormQuantFormat(6, 5, 9), NormQuantFormat(24, 24, 30)):
        lo_e, hi_e = fmt.exp_range()
        for _ in range(100):
            k = int(rng.integers(1, 300))
            m = rng.integers(-(1 << (fmt.in_width - 1)), 1 << (fmt.in_width - 1), k)
            v = rng.integers(-(1 << (fmt.weight_width - 1)), 1 << (fmt.weight_width - 1), k)
            m[rng.random(k) < 0.2] = 0
            r = quantise_weighted(m, v, fmt)
            p = fmt.mant_bits
            if r.prod_max == 0:
                assert not r.q.any() and r.scale == 0
                continue
            assert 1 << (p - 1) <= r.norm_max < 1 << p
            assert 1 << (p - 2) < r.recip < 1 << p
            assert 1 << (2 * p - 2) <= r.sumsq_norm < 1 << (2 * p)
            # r is the exact floor of 2**S / sqrt(N')
            s = fmt.rsqrt_frac
            assert r.rsqrt ** 2 * r.sumsq_norm <= 1 << (2 * s) < (r.rsqrt + 1) ** 2 * r.sumsq_norm
            assert 1 << (p - 2) <= r.rsqrt <= 1 << (p - 1)
            assert r.scale < 1 << fmt.scale_width and lo_e <= r.exp <= hi_e
            assert np.abs(r.q).max() == 127 and np.abs(r.q).max() <= 127
            # q has the sign of the product
            prod = m.astype(np.int64) * v
            assert np.all(np.sign(r.q[r.q != 0]) == np.sign(prod[r.q != 0]))


def test_corner_cases():
    # all-zero input, and a norm weight that is zero wherever x is not: q = 0, D = 0
    for m, v in (([0, 0, 0], [5, -3, 7]), ([4, 0, -9], [0, 7, 0])):
        r = quantise_weighted(m, v)
        assert not r.q.any() and r.scale == 0 and r.exp == 0
    # single element, both signs: +-127
    assert quantise_weighted([-3], [-5]).q.tolist() == [127]
    assert quantise_weighted([3], [-5]).q.tolist() == [-127]
    # the extreme mantissas (-2**15 times -2**15: |p| = 2**30, L = 31)
    r = quantise_weighted([-32768, 1, 16384], [-32768, 1, -32768])
    assert r.lead == 31 and r.q.tolist() == [127, 0, -64]
    # rounding ties go away from zero: p = +-1 and +-3 against A = 2 ... q = 127 * p / A
    r = quantise_weighted([1, -1, 2], [1, 1, 1])  # 63.5 -> 64, -63.5 -> -64
    assert r.q.tolist() == [64, -64, 127]
    # the largest K of the contract
    r = quantise_weighted(np.full(MAX_DIM, -32768), np.full(MAX_DIM, 32767))
    assert np.all(r.q == -127) and r.sq_shift == (r.sumsq.bit_length() - 33) // 2


def test_rejections():
    with pytest.raises(ValueError, match="norm weight has 2 elements"):
        quantise_weighted([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="16-bit"):
        quantise_weighted([40000], [1])
    with pytest.raises(ValueError, match="longer than"):
        quantise_weighted(np.ones(MAX_DIM + 1, dtype=int), np.ones(MAX_DIM + 1, dtype=int))
    for kwargs in ({"in_width": 25}, {"weight_width": 1}, {"mant_bits": 8}, {"mant_bits": True}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            NormQuantFormat(**kwargs)


def test_ternary_product_is_exact(seed):
    rng = np.random.default_rng(seed)
    for m, k in ((1, 1), (7, 300), (300, 2048), (2, (1 << 17) + 3)):
        codes = rng.integers(-1, 2, (m, k)).astype(np.int8)
        q = rng.integers(-128, 128, k)
        q[: min(k, 50)] = -128
        assert np.array_equal(ternary_product(codes, q), ternary_matvec(codes, q, 8, 64))


def test_block_float():
    m, e = to_block_float(np.array([1.0, -0.5, 0.25]))
    assert np.abs(m).max() <= 32767 and np.abs(m).max() > 16383
    assert np.allclose(np.ldexp(m.astype(float), -e), [1.0, -0.5, 0.25], atol=2.0**-e)
    assert to_block_float(np.zeros(3))[0].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="NaN"):
        to_block_float(np.array([1.0, np.nan]))
