"""Golden models: codes, packing and the ternary product."""

import itertools

import numpy as np
import pytest

from mmfree.golden import (
    decode_codes,
    encode_codes,
    max_exact_k,
    pack_trits,
    ternary_matvec,
    trit_byte_table,
    unpack_trits,
    wrap,
)


def test_codes_roundtrip_and_negative_zero():
    w = np.array([-1, 0, 1])
    assert list(encode_codes(w)) == [0b11, 0b00, 0b01]
    assert list(decode_codes([0b00, 0b01, 0b10, 0b11])) == [0, 1, 0, -1]
    with pytest.raises(ValueError, match="ternary"):
        encode_codes([2])
    with pytest.raises(ValueError, match="2-bit"):
        decode_codes([4])


def test_pack_all_243_patterns_roundtrip():
    trits = np.array(list(itertools.product([-1, 0, 1], repeat=5)))[:, ::-1]
    packed = np.concatenate([pack_trits(t) for t in trits])
    assert sorted(packed.tolist()) == list(range(243))  # a bijection onto 0..242
    w, bad = unpack_trits(packed, trits.size)
    assert not bad.any()
    assert np.array_equal(w.reshape(-1, 5), trits)


def test_pack_digit_order_and_padding():
    # first weight in the least significant base-3 digit; padding is the zero weight (digit 1)
    assert pack_trits(np.array([1, -1])).tolist() == [2 + 0 * 3 + 1 * 9 + 1 * 27 + 1 * 81]
    rng = np.random.default_rng(1)
    for n in range(1, 23):
        w = rng.integers(-1, 2, n)
        packed = pack_trits(w)
        assert packed.size == -(-n // 5)
        assert np.array_equal(unpack_trits(packed, n)[0], w)


def test_invalid_bytes_decode_to_zero():
    w, bad = unpack_trits(np.array([243, 255, 121]), 15)
    assert bad.tolist() == [True, True, False]
    assert not w[:10].any()
    assert w[10:].tolist() == [0, 0, 0, 0, 0]  # 121 = 1+1*3+1*9+1*27+1*81: all zero weights
    table = trit_byte_table()
    assert len(table) == 256 and all(t == 0 for t in table[243:])
    with pytest.raises(ValueError, match="need"):
        unpack_trits(np.array([0]), 6)


def test_matvec_matches_python_integers():
    rng = np.random.default_rng(2)
    for _ in range(20):
        m, k = rng.integers(1, 9), rng.integers(1, 200)
        w = rng.integers(-1, 2, (m, k))
        x = rng.integers(-128, 128, k)
        exact = [sum(int(a) * int(b) for a, b in zip(row, x, strict=True)) for row in w]
        assert ternary_matvec(w, x).tolist() == exact


def test_wrap_rule_at_the_accumulator_limit():
    kmax = max_exact_k(8, 16)
    assert kmax == 255
    w = -np.ones((1, kmax), dtype=int)
    x = np.full(kmax, -128)
    assert ternary_matvec(w, x, 8, 16).tolist() == [128 * 255]  # largest exact sum
    w1, x1 = -np.ones((1, kmax + 1), dtype=int), np.full(kmax + 1, -128)
    assert ternary_matvec(w1, x1, 8, 16).tolist() == [-32768]  # one more term wraps
    assert ternary_matvec(-w1, x1, 8, 16).tolist() == [-32768]  # most negative is exact
    assert wrap(np.array([2**15, -(2**15) - 1]), 16).tolist() == [-(2**15), 2**15 - 1]


def test_matvec_rejects_bad_input():
    with pytest.raises(ValueError, match="signed 8 bits"):
        ternary_matvec(np.ones((1, 1), dtype=int), np.array([128]))
    with pytest.raises(ValueError, match="shapes"):
        ternary_matvec(np.ones((2, 3), dtype=int), np.ones(2, dtype=int))
