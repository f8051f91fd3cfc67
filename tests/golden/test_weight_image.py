"""The memory image of a ternary matrix and the fetch order: against the ternary golden."""

import numpy as np
import pytest

from mmfree.golden.ternary import decode_codes, pack_trits, unpack_trits
from mmfree.golden.weight_image import (
    group_bits,
    image_beats,
    image_bytes,
    stream_groups,
    weight_image,
)


@pytest.mark.parametrize("lanes,packed", [(16, False), (4, False), (1, False), (16, True),
                                          (5, True), (7, True)])
def test_stream_order_and_image(lanes, packed, seed):
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    m, k = int(rng.integers(1, 6)), int(rng.integers(1, 5 * lanes))
    w = rng.integers(-1, 2, size=(m, k))
    groups = stream_groups(w, lanes, packed)
    per_row = -(-k // lanes)
    assert len(groups) == m * per_row
    g = group_bits(lanes, packed)
    padded = np.zeros((m, per_row * lanes), dtype=np.int64)
    padded[:, :k] = w
    for idx, (value, last, final) in enumerate(groups):
        r, c = divmod(idx, per_row)
        want = padded[r, c * lanes:(c + 1) * lanes]
        if packed:
            nb = g // 8
            got, bad = unpack_trits(np.array([(value >> 8 * j) & 255 for j in range(nb)]),
                                    lanes)
            assert not bad.any()
            assert value == int.from_bytes(pack_trits(want).tobytes(), "little")
        else:
            got = decode_codes(np.array([(value >> 2 * i) & 3 for i in range(lanes)]))
        assert list(got) == list(want), (r, c)
        assert last == (c == per_row - 1) and final == (last and r == m - 1)
    image = weight_image(w, lanes, packed)
    assert len(image) == image_bytes(m, per_row, lanes, packed)
    as_int = int.from_bytes(image, "little")
    for idx, (value, _, _) in enumerate(groups):
        assert (as_int >> (idx * g)) & ((1 << g) - 1) == value
    assert as_int >> (len(groups) * g) == 0  # the final byte is padded with zero bits
    assert image_beats(m, per_row, lanes, packed, 64) == -(-len(groups) * g // 64)


def test_known_values():
    w = np.array([[1, -1, 0, 1, 1, -1, 0]])
    # codes 01, 11, 00, 01 -> 0b01_00_11_01; then 01, 11, 00 (+ padding 00)
    assert [v for v, _, _ in stream_groups(w, 4, False)] == [0b01001101, 0b001101]
    assert weight_image(w, 4, False) == bytes([0b01001101, 0b001101])
    # digits 2, 0, 1, 2, 2 -> 2 + 0 + 9 + 54 + 162 = 227; then 0, 1, (1, 1, 1) padding
    assert weight_image(w, 5, True) == bytes([227, 0 + 3 + 9 + 27 + 81])


def test_bad_matrix():
    with pytest.raises(ValueError, match="ternary weights"):
        stream_groups(np.array([[2]]), 4, False)
    with pytest.raises(ValueError, match="2-D"):
        weight_image(np.array([1, 0]), 4, False)
