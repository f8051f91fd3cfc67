"""The vector unit's golden primitives against Python integers, corners and bad input."""

import numpy as np
import pytest

from mmfree.golden.vector import MAP_OPS, rnd, sat, vector_op, vector_reduce


def _py(op, a, b, c, k, w):
    e = {"copy": a, "add": a + b, "sub": a - b, "mul": a * b, "scale": a * c,
         "addc": a + c}[op]
    if k:
        e = (e + (1 << (k - 1))) // (1 << k)  # Python's floor division
    return max(-(1 << (w - 1)), min((1 << (w - 1)) - 1, e))


@pytest.mark.parametrize("w", [2, 6, 16, 30])
@pytest.mark.parametrize("op", MAP_OPS)
def test_map_ops_match_python_integers(op, w):
    rng = np.random.default_rng(w)
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    a = np.concatenate([rng.integers(lo, hi + 1, 200), [lo, hi, 0, -1, 1, lo, hi]])
    b = np.concatenate([rng.integers(lo, hi + 1, 200), [lo, hi, 0, 1, -1, hi, lo]])
    for k in (0, 1, w, 2 * w - 1):
        for c in (lo, hi, min(3, hi)):
            got = vector_op(op, a, b, c, k, w)
            want = [_py(op, int(x), int(y), c, k, w) for x, y in zip(a, b, strict=True)]
            assert got.tolist() == want, (op, k, c)


def test_rounding_is_half_up_and_saturation_both_ways():
    assert rnd(np.array([-3, -2, -1, 1, 2, 3]), 1).tolist() == [-1, -1, 0, 1, 1, 2]
    assert sat(np.array([-200, 200, 5]), 8).tolist() == [-128, 127, 5]


def test_reductions():
    assert vector_reduce("sumsq", [-128] * 4096, 8) == (4096 * 16384, 0)
    assert vector_reduce("argmax", [3, -1, 7, 7, 2], 8) == (7, 2)  # ties: lowest index
    assert vector_reduce("argmax", [-5, -5], 4) == (-5, 0)
    big = [-(1 << 29)] * 3
    assert vector_reduce("sumsq", big, 30) == (3 << 58, 0)


@pytest.mark.parametrize("call, msg", [
    (lambda: vector_op("div", [1]), "op must be one of"),
    (lambda: vector_op("add", [1]), "needs b"),
    (lambda: vector_op("copy", [1], k=32), "k must be in 0..31"),
    (lambda: vector_op("copy", [200], width=8), "outside the signed 8-bit range"),
    (lambda: vector_op("scale", [1], c=128, width=8), "c outside"),
    (lambda: vector_reduce("argmax", [], 8), "non-empty"),
    (lambda: vector_op("copy", [1], width=31), "width must be in 2..30"),
])
def test_bad_input_names_the_argument(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
