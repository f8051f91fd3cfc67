"""Golden BitLinear: absmean ternary weights, absmax int8 activations, the float layer."""

import numpy as np
import pytest

from mmfree.golden import bitlinear, quantize_activations, quantize_weights


def test_absmean_weights_hand_example():
    # mean|W| = 0.625 -> scale 1.6 -> W*s = 0.8, -0.8, 2.4, 0 -> 1, -1, 1 (clamped), 0
    wq, s = quantize_weights([[0.5, -0.5], [1.5, 0.0]])
    assert s == pytest.approx(1.6)
    assert wq.tolist() == [[1, -1], [1, 0]]


def test_absmax_activations_per_token():
    xq, s = quantize_activations([[0.5, -1.0, 0.25], [2.0, 0.0, -2.0]])
    assert s[:, 0].tolist() == pytest.approx([127.0, 63.5])
    # 0.5 * 127 = 63.5 -> 64 and 0.25 * 127 = 31.75 -> 32
    assert xq.tolist() == [[64, -127, 32], [127, 0, -127]]
    # exact ties round half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
    xq2, _ = quantize_activations([[1.0, 0.5 / 127, 1.5 / 127, 2.5 / 127]])
    assert xq2.tolist() == [[127, 0, 2, 2]]


def test_bitlinear_approximates_float():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(64, 256))
    x = rng.normal(size=(4, 256))
    r = bitlinear(x, w)
    assert r.acc.dtype == np.int64 and np.abs(r.x_q).max() <= 128
    # the integer path equals the dequantised float product exactly (up to float rounding)
    deq = (r.x_q / r.x_scale) @ (r.w_q / r.w_scale).T
    assert np.allclose(r.y, deq)
    # and is a fair approximation of the unquantised layer on RMS-normalised input
    xn = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-8)
    ref = xn @ w.T
    corr = np.corrcoef(ref.ravel(), r.y.ravel())[0, 1]
    assert corr > 0.85, corr
