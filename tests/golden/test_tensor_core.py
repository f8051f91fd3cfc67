"""Golden model of the tensor core: tile MAC, wrap rule, tiled GEMM and its schedule."""

import numpy as np
import pytest

from mmfree.golden.tensor_core import (
    gemm_schedule,
    mac_tile,
    operand_range,
    tiled_gemm,
    tiles,
)


def test_tile_matches_python_integers_at_every_width():
    rng = np.random.default_rng(0)
    for width in (4, 8, 16, 32):
        for signed in (True, False):
            lo, hi = operand_range(width, signed)
            a = np.array([[int(v) for v in rng.integers(lo, hi, 4, endpoint=True)]
                          for _ in range(4)])
            b = np.array([[int(v) for v in rng.integers(lo, hi, 4, endpoint=True)]
                          for _ in range(4)])
            c = rng.integers(-1000, 1000, (4, 4))
            exact = [[sum(int(a[r, k]) * int(b[k, cc]) for k in range(4)) + int(c[r, cc])
                      for cc in range(4)] for r in range(4)]
            wrapped = [[((v + 2**63) % 2**64) - 2**63 for v in row] for row in exact]
            assert mac_tile(a, b, c, width, signed, 64).tolist() == wrapped


def test_overflow_wraps_modulo_acc_width():
    lo = -(2**15)
    a = np.full((4, 4), lo)
    # 4 * 2**30 = 2**32 wraps to 0 in 32 bits; + (2**31 - 1) stays at the top
    d = mac_tile(a, a, np.full((4, 4), 2**31 - 1), 16, True, 32)
    assert (d == 2**31 - 1).all()
    d = mac_tile(a, a, np.full((4, 4), 5), 16, True, 33)  # 2**32 + 5 wraps in 33 bits
    assert (d == -(2**32) + 5).all()
    u = np.full((4, 4), 15)
    assert (mac_tile(u, u, np.zeros((4, 4), int), 4, False, 10) == 900 - 1024).all()


def test_range_and_shape_checks():
    with pytest.raises(ValueError, match="A values"):
        mac_tile(np.full((4, 4), 128), np.zeros((4, 4), int), np.zeros((4, 4), int))
    with pytest.raises(ValueError, match="B values"):
        mac_tile(np.zeros((4, 4), int), np.full((4, 4), -1), np.zeros((4, 4), int), 8, False)
    with pytest.raises(ValueError, match="4x4"):
        mac_tile(np.zeros((3, 4), int), np.zeros((4, 4), int), np.zeros((4, 4), int))
    with pytest.raises(ValueError, match="chain"):
        tiled_gemm(np.zeros((2, 3), int), np.zeros((4, 2), int))


def test_tiled_gemm_equals_numpy_without_overflow():
    rng = np.random.default_rng(1)
    for _ in range(30):
        m, k, n = (int(v) for v in rng.integers(1, 15, 3))
        a = rng.integers(-128, 128, (m, k))
        b = rng.integers(-128, 128, (k, n))
        c = rng.integers(-(2**20), 2**20, (m, n))
        assert np.array_equal(tiled_gemm(a, b, c), a @ b + c)


def test_tiled_gemm_wraps_like_the_exact_sum_wrapped_once():
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (6, 37))
    b = rng.integers(-128, 128, (37, 5))
    exact = a @ b
    got = tiled_gemm(a, b, None, 8, True, 12)
    assert np.array_equal(got, ((exact + 2048) % 4096) - 2048)


def test_schedule_order_and_flags():
    a, b, c = np.ones((5, 9), int), np.ones((9, 6), int), np.zeros((5, 6), int)
    steps = list(gemm_schedule(a, b, c))
    mt, kt, nt = tiles(5, 9, 6)
    assert (mt, kt, nt) == (2, 3, 2) and len(steps) == mt * nt * kt
    assert [(s.i, s.j, s.k) for s in steps[:4]] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)]
    assert [s.first for s in steps[:3]] == [True, False, False]
    assert [s.last for s in steps[:3]] == [False, False, True]
    # the zero padding of the edge tiles
    assert steps[2].a[:, 1:].sum() == 0 and steps[-1].b[:, 2:].sum() == 0
