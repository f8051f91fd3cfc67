"""The weighted front end's measurement options (``NormQuantFormat.act_bits`` and
``.rounding``): the defaults are the int8 contract, and each option does what it says, checked
against a float front end written here."""

import itertools
import math

import numpy as np
import pytest

from mmfree.golden.quantiser import (
    ROUNDINGS,
    NormBitLinear,
    NormQuantFormat,
    quantise_weighted,
    to_block_float,
    weighted_dequant_factor,
)


def float_round(v, rounding):
    """``v`` rounded to integers as ``rounding`` names it, in float64."""
    if rounding == "half_away":
        return np.copysign(np.floor(np.abs(v) + 0.5), v)
    if rounding == "half_even":
        return np.round(v)
    if rounding == "truncate":
        return np.trunc(v)
    return np.floor(v)


def test_defaults_are_the_int8_contract():
    fmt = NormQuantFormat()
    assert (fmt.act_bits, fmt.rounding, fmt.q_max, fmt.recip_frac) == (8, "half_away", 127, 26)
    assert NormQuantFormat(17, 9, 12).recip_frac == 2 * 12 - 8
    for kwargs in ({"act_bits": 1}, {"act_bits": 17}, {"act_bits": True},
                   {"rounding": "nearest"}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            NormQuantFormat(**kwargs)


def test_rounding_modes_on_exact_ties():
    # [1, -1, 2] at int8: +-63.5 exactly (a * R is an exact tie in the fixed point too)
    want = {"half_away": [64, -64, 127], "half_even": [64, -64, 127],
            "truncate": [63, -63, 127], "floor": [63, -64, 127]}
    for rounding, q in want.items():
        assert quantise_weighted([1, -1, 2], [1, 1, 1],
                                 NormQuantFormat(rounding=rounding)).q.tolist() == q
    # [1, -1, 6] at 3 bits (q_max 3): +-0.5 exactly, where half-even and half-away differ
    want = {"half_away": [1, -1, 3], "half_even": [0, 0, 3], "truncate": [0, 0, 3],
            "floor": [0, -1, 3]}
    for rounding, q in want.items():
        fmt = NormQuantFormat(act_bits=3, rounding=rounding)
        assert quantise_weighted([1, -1, 6], [1, 1, 1], fmt).q.tolist() == q


@pytest.mark.parametrize("act_bits", [4, 8, 12])
def test_options_follow_the_float_front_end(seed, act_bits):
    """For every rounding mode and activation width: ``q`` is the float front end's (same
    ``q_max``, same rounding) except within the truncations' ``3 * 2**(act_bits - P)`` of a
    step from a rounding boundary, where it is one step off at most; ``1/s_x`` is
    ``max|y| / q_max`` within the contract's ``3 * 2**(1-P)``."""
    rng = np.random.default_rng(seed)
    for rounding in ROUNDINGS:
        fmt = NormQuantFormat(act_bits=act_bits, rounding=rounding)
        tol = 3 * 2.0 ** (act_bits - fmt.mant_bits)
        for _ in range(20):
            k = int(rng.choice([3, 64, 700]))
            m, e = to_block_float(rng.normal(size=k) * 10 ** rng.uniform(-1, 1))
            v, ew = to_block_float(rng.normal(1, 0.5, k))
            x, w = np.ldexp(m.astype(float), -e), np.ldexp(v.astype(float), -ew)
            y = x / math.sqrt(np.mean(x * x)) * w
            scaled = y * fmt.q_max / np.abs(y).max()
            q_ref = float_round(scaled, rounding)
            res = quantise_weighted(m, v, fmt)
            assert np.abs(res.q).max() <= fmt.q_max
            off = res.q != q_ref
            assert np.all(np.abs(res.q - q_ref) <= 1)
            frac = scaled[off] - np.floor(scaled[off])
            boundary = 0.0 if rounding in ("truncate", "floor") else 0.5
            assert np.all(np.minimum(np.abs(frac - boundary), 1 - np.abs(frac - boundary))
                          < tol), (rounding, scaled[off])
            factor = weighted_dequant_factor(res.scale, res.exp, k, ew, fmt)
            inv_s = float(np.abs(y).max()) / fmt.q_max
            assert abs(factor / inv_s - 1) < 3 * 2.0 ** (1 - fmt.mant_bits)


def test_wider_activations_give_closer_outputs(seed):
    """The whole BitLinear (device and rescale): the error against the unquantised product
    ``RMSNorm(x) w . W`` falls as ``act_bits`` grows, and truncation costs more than
    rounding to nearest."""
    rng = np.random.default_rng(seed)
    k, rows = 512, 64
    x, w = rng.normal(size=k), rng.normal(1, 0.3, k)
    codes = rng.integers(-1, 2, (rows, k)).astype(np.int8)
    exact = codes @ (x / math.sqrt(np.mean(x * x)) * w)

    def error(fmt):
        arith = NormBitLinear(fmt)
        v, ew = arith.norm_weight(w)
        acc, scale, exp = arith.device(arith.mantissas(x), v, codes)
        out = arith.rescale(acc, scale, exp, k, ew, 1.0)
        return math.sqrt(np.mean((out - exact) ** 2) / np.mean(exact ** 2))

    errs = [error(NormQuantFormat(act_bits=b)) for b in (4, 6, 8, 10, 12)]
    assert all(a > 1.5 * b for a, b in itertools.pairwise(errs)), errs
    assert error(NormQuantFormat(rounding="truncate")) > 1.5 * errs[2]
