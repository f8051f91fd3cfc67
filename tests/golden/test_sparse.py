"""Golden model of 2:4 sparsity: pruning, codes, metadata words, decode, permutation search."""

import itertools

import numpy as np
import pytest

from mmfree.golden.sparse import (
    VALID_CODES,
    compress,
    decode_group,
    decompress,
    expand_tile,
    is_valid,
    pack_metadata,
    prune_2_4,
    retained_magnitude,
    search_permutation,
    select_tile,
    sparse_gemm,
    sparse_mac_tile,
    unpack_metadata,
)
from mmfree.golden.tensor_core import tiled_gemm


def test_valid_codes_are_the_six_increasing_pairs():
    assert sorted(VALID_CODES) == sorted(c for c in range(16) if is_valid(c))
    assert sorted(VALID_CODES) == [0b0100, 0b1000, 0b1001, 0b1100, 0b1101, 0b1110]
    for code in (0b0000, 0b0101, 0b1010, 0b1111, 0b0001, 0b0110):
        assert not is_valid(code)


def test_prune_keeps_two_largest_ties_to_lower_index():
    a = np.array([[1, -5, 3, 2, 7, 7, 7, 7, 0, 0, 0, 0]])
    assert prune_2_4(a).tolist() == [[0, -5, 3, 0, 7, 7, 0, 0, 0, 0, 0, 0]]
    # K not a multiple of 4: the padded tail is pruned as if zeros were there
    assert prune_2_4(np.array([[4, -9, 1]])).tolist() == [[4, -9, 0]]


def test_compress_every_group_pattern_roundtrips_with_valid_codes():
    for pattern in itertools.product([0, 3, -2], repeat=4):
        g = np.array([pattern])
        if np.count_nonzero(g) > 2:
            with pytest.raises(ValueError, match="non-zeros"):
                compress(g)
            continue
        values, codes = compress(g)
        assert is_valid(int(codes[0, 0]))
        assert np.array_equal(decompress(values, codes)[0], g)
    assert compress(np.zeros((1, 4), int))[1].tolist() == [[0b0100]]
    assert compress(np.array([[0, 0, 0, 5]]))[1].tolist() == [[0b1100]]  # fill lowest unused


def test_invalid_codes_decode_to_zero_group():
    for code in range(16):
        dense, bad = decode_group(7, -3, code)
        assert bad == (not is_valid(code))
        if bad:
            assert dense == [0, 0, 0, 0]
        else:
            assert dense[code & 3] == 7 and dense[code >> 2] == -3 and sum(map(abs, dense)) == 10


def test_metadata_words_pack_eight_groups_low_first():
    codes = np.array([[0b0100, 0b1000, 0b1100, 0b1001, 0b1101, 0b1110, 0b0100, 0b1000, 0b1110]])
    words = pack_metadata(codes)
    assert words.shape == (1, 2)
    assert int(words[0, 0]) == 0x8_4_E_D_9_C_8_4  # group 0 in bits 3:0
    assert int(words[0, 1]) == 0x4444444E  # ninth group, then padding code 0b0100
    assert np.array_equal(unpack_metadata(words, 9), codes)


def test_select_tile_gathers_b_rows():
    rng = np.random.default_rng(0)
    values, b = rng.integers(-9, 9, (4, 4)), rng.integers(-9, 9, (8, 4))
    codes = np.array([[0b1001, 0b1110], [0b0100, 0b0000], [0b1100, 0b1000], [0b1101, 0b0110]])
    a, bg, bad = select_tile(values, codes, b)
    assert bad
    assert np.array_equal(bg[0, 0], b[1]) and np.array_equal(bg[0, 3], b[4 + 3])
    assert (a[1, 2:] == 0).all() and (a[3, 2:] == 0).all()  # invalid groups zeroed
    dense, _ = decompress(values, codes)
    assert np.array_equal(np.einsum("rs,rsc->rc", a, bg), dense @ b)


def test_sparse_tile_and_gemm_equal_dense_products():
    rng = np.random.default_rng(1)
    for _ in range(20):
        m, k, n = (int(v) for v in rng.integers(1, 20, 3))
        a = prune_2_4(rng.integers(-128, 128, (m, k)))
        b, c = rng.integers(-128, 128, (k, n)), rng.integers(-999, 999, (m, n))
        values, codes = compress(a)
        assert np.array_equal(sparse_gemm(values, codes, b, c), tiled_gemm(a, b, c))
    values, codes = compress(prune_2_4(rng.integers(-8, 8, (4, 8))))
    d, bad = sparse_mac_tile(values, codes, rng.integers(-8, 8, (8, 4)), np.zeros((4, 4), int),
                             4, True, 9)
    assert not bad and d.shape == (4, 4)
    dense, _ = expand_tile(values[:, :2], codes[:, :1])
    assert dense.shape == (4, 4)


@pytest.mark.parametrize("kind", ["gaussian", "heavy-tailed"])
def test_permutation_search_keeps_more_magnitude(kind):
    rng = np.random.default_rng(2)
    a = rng.normal(size=(32, 32)) if kind == "gaussian" else rng.standard_t(1.5, (32, 32))
    perm = search_permutation(a, seed=3)
    assert sorted(perm.tolist()) == list(range(32))
    plain, permuted = retained_magnitude(a), retained_magnitude(a[:, perm])
    print(f"{kind}: retained {plain:.4f} plain, {permuted:.4f} permuted")
    assert permuted > plain
    # the permuted product is the same product
    b = rng.normal(size=(32, 5))
    assert np.allclose(a[:, perm] @ b[perm], a @ b)
