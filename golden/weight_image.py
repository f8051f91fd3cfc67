"""Bit-exact reference for ternary weight matrices in external memory and their stream order.

This is the contract between whoever lays a matrix out in memory (the host, a checkpoint
converter) and the weight fetcher (:class:`mmfree.hdl.weight_fetcher.WeightFetcher`) that
streams it to a ternary core or BitLinear unit.

**Order.** An ``M`` x ``K`` ternary matrix is consumed row by row; a row is ``G =
ceil(K / lanes)`` lane groups of ``lanes`` weights, the last group padded with zero
weights. Group ``k`` of the stream (``k = m * G + g``) holds ``W[m, g*lanes : (g+1)*lanes]``.
The stream marks ``last`` on each row's final group and ``final`` on the matrix's final
group (with ``last``), as :func:`mmfree.hdl.bitlinear_unit.matrix_weight_layout` does.

**Group formats** (:mod:`mmfree.golden.ternary`):

* ``codes``: ``lanes`` 2-bit codes, the code of lane ``i`` in bits ``2i+1..2i``
  (``2 * lanes`` bits);
* ``packed``: ``ceil(lanes / 5)`` bytes of 5 trits each (:func:`pack_trits` of the group),
  byte ``j`` in bits ``8j+7..8j`` (``8 * ceil(lanes / 5)`` bits).

**Image.** The groups are stored back to back as one little-endian bit string from the
matrix's base address: group ``k`` occupies bits ``k*g .. (k+1)*g - 1`` of the image, ``g``
the group's bit count, bit ``b`` of the image being bit ``b % 8`` of byte ``b // 8``. There
is no padding between rows or groups; the image is :func:`image_bytes` long (its final byte
padded with zero bits), and a reader with a ``W``-bit data bus reads :func:`image_beats`
beats.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .ternary import TRITS_PER_BYTE, check_ternary, encode_codes

__all__ = ["group_bit_matrix", "group_bits", "image_beats", "image_bytes", "interleave_rows",
           "stream_groups", "weight_image"]


def group_bits(lanes: int, packed: bool) -> int:
    """Bits of one lane group in memory: ``2 * lanes`` (codes) or ``8 * ceil(lanes / 5)``
    (packed)."""
    return 8 * -(-lanes // TRITS_PER_BYTE) if packed else 2 * lanes


def _padded(w: npt.ArrayLike, lanes: int) -> np.ndarray:
    arr = check_ternary(w)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"w must be a non-empty 2-D matrix, got shape {arr.shape}")
    m, k = arr.shape
    padded = np.zeros((m, -(-k // lanes) * lanes), dtype=np.int64)
    padded[:, :k] = arr
    return padded


def group_bit_matrix(w: npt.ArrayLike, lanes: int, packed: bool) -> np.ndarray:
    """The bits of every lane group of ``w`` in stream order: shape ``(M * G, g)``, uint8,
    bit 0 (lane 0's low code bit, or byte 0's bit 0) first."""
    padded = _padded(w, lanes)
    groups = padded.reshape(-1, lanes)  # row-major: row by row, group by group
    if packed:
        nb = -(-lanes // TRITS_PER_BYTE)
        digits = np.ones((groups.shape[0], nb * TRITS_PER_BYTE), dtype=np.int64)
        digits[:, :lanes] = groups + 1
        byte_vals = digits.reshape(-1, nb, TRITS_PER_BYTE) @ (3 ** np.arange(TRITS_PER_BYTE))
        return np.unpackbits(byte_vals.astype(np.uint8)[..., None], axis=-1,
                             bitorder="little").reshape(groups.shape[0], 8 * nb)
    codes = encode_codes(groups)
    return np.stack([codes & 1, codes >> 1], axis=-1).reshape(groups.shape[0], 2 * lanes)


def stream_groups(w: npt.ArrayLike, lanes: int, packed: bool) -> list[tuple[int, int, int]]:
    """The stream a fetcher delivers for matrix ``w`` (``M`` x ``K``): one ``(group, last,
    final)`` per lane group, row by row, ``group`` the group's bits as an integer (lane 0 /
    byte 0 lowest)."""
    bits = group_bit_matrix(w, lanes, packed)
    m = check_ternary(w).shape[0]
    per_row = bits.shape[0] // m
    weights = [1 << i for i in range(bits.shape[1])]
    out = []
    for k, row in enumerate(bits.astype(object)):
        last = int(k % per_row == per_row - 1)
        out.append((int(np.dot(row, weights)), last, int(last and k == bits.shape[0] - 1)))
    return out


def image_bytes(rows: int, groups: int, lanes: int, packed: bool) -> int:
    """Bytes of the image of ``rows`` x ``groups`` lane groups."""
    return -(-rows * groups * group_bits(lanes, packed) // 8)


def image_beats(rows: int, groups: int, lanes: int, packed: bool, data_width: int) -> int:
    """``data_width``-bit beats that cover the image (read from an aligned base address)."""
    return -(-rows * groups * group_bits(lanes, packed) // data_width)


def weight_image(w: npt.ArrayLike, lanes: int, packed: bool) -> bytes:
    """The memory image of matrix ``w`` (see the module docstring)."""
    bits = group_bit_matrix(w, lanes, packed).reshape(-1)
    return np.packbits(bits, bitorder="little").tobytes()


def interleave_rows(w: npt.ArrayLike, cores: int) -> list[np.ndarray]:
    """The shares of ``cores`` cores that split ``w``'s rows round-robin: core ``c`` gets
    rows ``c, c + cores, c + 2 cores, ...``, ``R = ceil(M / cores)`` rows each, the last
    round padded with zero rows (so every core has the same image size and its row ``r``
    is row ``r * cores + c`` of ``w``)."""
    arr = check_ternary(w)
    if arr.ndim != 2 or cores < 1:
        raise ValueError(f"w must be a 2-D matrix and cores >= 1, got shape {arr.shape}, "
                         f"cores {cores}")
    r = -(-arr.shape[0] // cores)
    padded = np.zeros((r * cores, arr.shape[1]), dtype=np.int64)
    padded[:arr.shape[0]] = arr
    return [padded[c::cores] for c in range(cores)]
