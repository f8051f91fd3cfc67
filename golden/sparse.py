"""2:4 structured sparsity: pruning, compression, metadata, decode and permutation search.

**Pruning.** Along K (the columns of ``A``, M x K), in each group of 4 consecutive elements
keep the 2 of largest magnitude and zero the others. Ties are broken towards the lower index
(a stable sort on magnitude, largest first). K not a multiple of 4 is padded with zeros.

**Compression.** Each group keeps 2 values and a 4-bit *group code* of two 2-bit indices
``i0 < i1`` (``code = i0 | i1 << 2``, the low index in the low bits, strictly increasing), as
in the PTX ISA's sparse metadata. A group with fewer than two non-zeros still gets a valid
code: its non-zero positions, completed with the lowest unused indices, sorted (an all-zero
group is ``(0, 1)``, code ``0b0100``). Values are ``M x K/2`` (``values[r, 2g + s]`` is the
element at index ``i_s`` of group ``g``); metadata words pack 8 group codes per 32-bit word,
group ``g`` of a row in bits ``4*(g % 8) + 3 .. 4*(g % 8)`` of the row's word ``g // 8``;
missing groups at the end of a row's last word are padded with ``0b0100``.

**Valid and invalid codes.** Valid: ``0b0100, 0b1000, 0b1100, 0b1001, 0b1101, 0b1110``. The
other ten codes are invalid: equal indices (``0b0000, 0b0101, 0b1010, 0b1111``) and decreasing
pairs. The decode unit (and :func:`decode_group`) produces **an all-zero group** for an
invalid code (both values are dropped) and raises its sticky error flag.

**Permutation search.** :func:`search_permutation` reorders the K columns (the same order
must be applied to B's rows, so ``A[:, p] @ B[p, :] == A @ B``) to keep more magnitude
after pruning: a greedy search that swaps columns between groups while the retained
magnitude grows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CODES_PER_WORD", "GROUP", "KSTEP", "PAD_CODE", "VALID_CODES", "SparseStep", "compress",
           "decode_group", "decompress", "expand_tile", "group_indices", "is_valid",
           "pack_metadata", "prune_2_4", "retained_magnitude", "search_permutation", "select_tile",
           "sparse_gemm", "sparse_gemm_schedule", "sparse_mac_tile", "unpack_metadata"]

GROUP = 4
VALID_CODES = (0b0100, 0b1000, 0b1100, 0b1001, 0b1101, 0b1110)
CODES_PER_WORD = 8
PAD_CODE = 0b0100
KSTEP = 2 * GROUP  #: logical K per beat of the sparse tensor core


def group_indices(code: int) -> tuple[int, int]:
    """The two 2-bit indices ``(i0, i1)`` of a 4-bit group code (low index in the low bits)."""
    return code & 3, (code >> 2) & 3


def is_valid(code: int) -> bool:
    """True for the six strictly increasing index pairs."""
    i0, i1 = group_indices(code)
    return i0 < i1


def _pad_k(a: np.ndarray) -> np.ndarray:
    k = a.shape[1]
    kp = -(-k // GROUP) * GROUP
    out = np.zeros((a.shape[0], kp), dtype=a.dtype)
    out[:, :k] = a
    return out


def prune_2_4(a: npt.ArrayLike) -> np.ndarray:
    """Keep the 2 largest magnitudes of every group of 4 along K (ties: lower index wins).

    Returns an array of the input's shape and dtype with the pruned entries zeroed.
    """
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"prune_2_4 takes a 2-D matrix, got shape {arr.shape}")
    padded = _pad_k(arr)
    m, kp = padded.shape
    groups = padded.reshape(m, kp // GROUP, GROUP)
    order = np.argsort(-np.abs(groups), axis=-1, kind="stable")  # largest first, low index wins
    keep = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :2], True, axis=-1)
    return np.where(keep, groups, 0).reshape(m, kp)[:, : arr.shape[1]]


def _group_code(group: np.ndarray) -> int:
    nz = [i for i in range(GROUP) if group[i] != 0]
    if len(nz) > 2:
        raise ValueError(f"group {group.tolist()} has {len(nz)} non-zeros; prune it first")
    fill = [i for i in range(GROUP) if i not in nz]
    i0, i1 = sorted(nz + fill[: 2 - len(nz)])
    return i0 | i1 << 2


def compress(a: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Compress a 2:4-sparse matrix (M x K) to ``(values, codes)``.

    ``values`` is M x (Kp/2) and ``codes`` M x (Kp/4), Kp = K rounded up to a multiple of 4.
    Raises ``ValueError`` if a group has more than two non-zeros.
    """
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"compress takes a 2-D matrix, got shape {arr.shape}")
    padded = _pad_k(arr.astype(np.int64) if arr.dtype.kind in "iub" else arr)
    m, kp = padded.shape
    codes = np.zeros((m, kp // GROUP), dtype=np.int64)
    values = np.zeros((m, kp // 2), dtype=padded.dtype)
    for r in range(m):
        for g in range(kp // GROUP):
            grp = padded[r, GROUP * g:GROUP * g + GROUP]
            code = _group_code(grp)
            i0, i1 = group_indices(code)
            codes[r, g] = code
            values[r, 2 * g], values[r, 2 * g + 1] = grp[i0], grp[i1]
    return values, codes


def decode_group(v0: int, v1: int, code: int) -> tuple[list[int], bool]:
    """Expand one group: ``(dense 4 values, invalid)``; an invalid code gives four zeros."""
    if not is_valid(code):
        return [0, 0, 0, 0], True
    i0, i1 = group_indices(code)
    dense = [0, 0, 0, 0]
    dense[i0], dense[i1] = v0, v1
    return dense, False


def decompress(values: npt.ArrayLike, codes: npt.ArrayLike,
               k: int | None = None) -> tuple[np.ndarray, bool]:
    """Expand ``(values, codes)`` to the dense matrix (cut to ``k`` columns if given).

    Returns ``(dense, any_invalid)``; groups with invalid codes decode to zeros.
    """
    v = np.asarray(values)
    c = np.asarray(codes)
    if v.ndim != 2 or c.ndim != 2 or v.shape != (c.shape[0], 2 * c.shape[1]):
        raise ValueError(f"values {v.shape} and codes {c.shape} do not match (M x 2G, M x G)")
    m, g = c.shape
    dense = np.zeros((m, GROUP * g), dtype=np.int64 if v.dtype.kind in "iub" else v.dtype)
    bad = False
    for r in range(m):
        for j in range(g):
            grp, inv = decode_group(v[r, 2 * j], v[r, 2 * j + 1], int(c[r, j]))
            dense[r, GROUP * j:GROUP * j + GROUP] = grp
            bad |= inv
    return (dense if k is None else dense[:, :k]), bad


def pack_metadata(codes: npt.ArrayLike) -> np.ndarray:
    """Pack group codes (M x G) into 32-bit words (M x ceil(G/8)), 8 codes per word."""
    c = np.asarray(codes, dtype=np.int64)
    if c.ndim != 2 or ((c < 0) | (c > 15)).any():
        raise ValueError("codes must be an M x G array of 4-bit values")
    m, g = c.shape
    words = np.zeros((m, -(-g // CODES_PER_WORD)), dtype=np.uint32)
    padded = np.full((m, words.shape[1] * CODES_PER_WORD), PAD_CODE, dtype=np.int64)
    padded[:, :g] = c
    for j in range(CODES_PER_WORD):
        words |= (padded[:, j::CODES_PER_WORD] << (4 * j)).astype(np.uint32)
    return words


def unpack_metadata(words: npt.ArrayLike, groups: int) -> np.ndarray:
    """Unpack 32-bit metadata words (M x W) into ``groups`` codes per row."""
    w = np.asarray(words, dtype=np.int64)
    if w.ndim != 2 or groups > w.shape[1] * CODES_PER_WORD:
        raise ValueError(f"{groups} groups need {-(-groups // CODES_PER_WORD)} words per row")
    codes = np.stack([(w >> (4 * j)) & 15 for j in range(CODES_PER_WORD)], axis=-1)
    return codes.reshape(w.shape[0], -1)[:, :groups]


def retained_magnitude(a: npt.ArrayLike) -> float:
    """Fraction of ``sum(|a|)`` that 2:4 pruning keeps."""
    arr = np.abs(np.asarray(a, dtype=np.float64))
    total = arr.sum()
    return float(np.abs(prune_2_4(arr)).sum() / total) if total else 1.0


def search_permutation(a: npt.ArrayLike, max_passes: int = 20,
                       seed: int = 0) -> np.ndarray:
    """A column order ``p`` for which ``prune_2_4(a[:, p])`` keeps at least as much magnitude.

    Greedy: repeatedly try swapping every pair of columns in different groups, and keep a
    swap when the two groups involved retain more magnitude. Stops after a pass with no
    improving swap or after ``max_passes`` passes. K is padded to a multiple of 4 with zero
    columns (which the order may move), so ``len(p)`` is K rounded up; apply it to the
    zero-padded A and B.
    """
    arr = _pad_k(np.abs(np.asarray(a, dtype=np.float64)))
    kp = arr.shape[1]
    rng = np.random.default_rng(seed)
    perm = np.arange(kp)

    def kept(cols: np.ndarray) -> float:  # retained magnitude of one group of 4 columns
        block = arr[:, cols]
        return float(np.sort(block, axis=1)[:, 2:].sum())

    for _ in range(max_passes):
        improved = False
        for i in rng.permutation(kp):
            gi = i // GROUP
            for j in range(kp):
                gj = j // GROUP
                if gi == gj:
                    continue
                a_cols, b_cols = perm[GROUP * gi:GROUP * gi + GROUP].copy(), \
                    perm[GROUP * gj:GROUP * gj + GROUP].copy()
                before = kept(a_cols) + kept(b_cols)
                a_cols[i % GROUP], b_cols[j % GROUP] = b_cols[j % GROUP], a_cols[i % GROUP]
                if kept(a_cols) + kept(b_cols) > before * (1 + 1e-12):
                    perm[i], perm[j] = perm[j], perm[i]
                    improved = True
        if not improved:
            break
    return perm


# --- the decode unit's two modes, tile by tile -------------------------------------------


def expand_tile(values: npt.ArrayLike, codes: npt.ArrayLike) -> tuple[np.ndarray, bool]:
    """Expand mode: 4 x 2 values and 4 row codes -> the dense 4 x 4 tile, ``any_invalid``."""
    v = np.asarray(values).reshape(4, 2)
    c = np.asarray(codes).reshape(4, 1)
    return decompress(v, c)


def select_tile(values: npt.ArrayLike, codes: npt.ArrayLike,
                b: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """Select mode: ``(a, b_gathered, any_invalid)`` for a compressed logical 4 x 8 A tile.

    ``a[r, s]`` is kept value ``s`` of row ``r`` (0 if its group's code is invalid);
    ``b_gathered[r, s, :]`` is ``B[4 * (s // 2) + i_s, :]``, ``i_s`` taken from the code's
    raw index bits (so also for invalid codes, whose values are zero).
    """
    v = np.asarray(values).reshape(4, 4)
    c = np.asarray(codes).reshape(4, 2)
    bb = np.asarray(b).reshape(KSTEP, 4)
    a = np.zeros((4, 4), dtype=np.int64)
    bg = np.zeros((4, 4, 4), dtype=np.int64)
    bad = False
    for r in range(4):
        for g in range(2):
            code = int(c[r, g])
            ok = is_valid(code)
            bad |= not ok
            for s, idx in ((2 * g, code & 3), (2 * g + 1, code >> 2)):
                a[r, s] = v[r, s] if ok else 0
                bg[r, s] = bb[GROUP * g + idx]
    return a, bg, bad


# --- the sparse tensor core: a logical 4 x 8 x 4 product per beat --------------------------

def sparse_mac_tile(values: npt.ArrayLike, codes: npt.ArrayLike, b: npt.ArrayLike,
                    c: npt.ArrayLike, width: int = 8, signed: bool = True,
                    acc_width: int = 32) -> tuple[np.ndarray, bool]:
    """``D = decompress(values, codes) @ B + C`` for one beat of the sparse tensor core.

    ``values`` is 4 x 4 (two kept values for each of a row's two groups), ``codes`` 4 x 2,
    ``b`` the logical 8 x 4 B tile, ``c`` 4 x 4. Returns ``(D, any_invalid)``; an invalid
    code's group contributes nothing, as in the hardware.
    """
    from .tensor_core import mac_tile
    dense, bad = decompress(values, codes)
    bb = np.asarray(b)
    if dense.shape != (4, KSTEP) or bb.shape != (KSTEP, 4):
        raise ValueError(f"expected 4x4 values, 4x2 codes and an 8x4 B, got {dense.shape} "
                         f"and {bb.shape}")
    # two dense 4x4x4 steps over the halves of K: the same arithmetic, wrapped once more
    d = mac_tile(dense[:, :GROUP], bb[:GROUP], c, width, signed, acc_width)
    return mac_tile(dense[:, GROUP:], bb[GROUP:], d, width, signed, acc_width), bad


@dataclass(frozen=True)
class SparseStep:
    """One beat of the sparse GEMM schedule (the dense schedule with K-steps of 8)."""

    i: int
    j: int
    k: int
    values: np.ndarray  #: 4 x 4 kept values
    codes: np.ndarray  #: 4 x 2 group codes
    b: np.ndarray  #: 8 x 4
    c: np.ndarray  #: 4 x 4
    first: bool
    last: bool


def sparse_gemm_schedule(values: np.ndarray, codes: np.ndarray, b: np.ndarray,
                         c: np.ndarray) -> Iterator[SparseStep]:
    """Beats for ``decompress(values, codes) @ b + c`` on the sparse array.

    ``values`` (M x Kp/2) and ``codes`` (M x Kp/4) come from :func:`compress`; ``b`` is
    K x N with K <= Kp. Output tiles in row-major order, each with its ``ceil(K/8)`` K-steps
    back to back; everything zero-padded (padding groups get code ``0b0100``).
    """
    m, n = c.shape
    k = b.shape[0]
    mt, kt, nt = -(-m // 4), -(-k // KSTEP), -(-n // 4)
    vp = np.zeros((4 * mt, kt * GROUP), dtype=np.int64)
    vp[:m, : values.shape[1]] = values
    cp_codes = np.full((4 * mt, 2 * kt), PAD_CODE, dtype=np.int64)
    cp_codes[:m, : codes.shape[1]] = codes
    bp = np.zeros((kt * KSTEP, 4 * nt), dtype=np.int64)
    bp[:k, :n] = b
    cc = np.zeros((4 * mt, 4 * nt), dtype=np.int64)
    cc[:m, :n] = c
    for i in range(mt):
        for j in range(nt):
            for kk in range(kt):
                yield SparseStep(i, j, kk, vp[4 * i:4 * i + 4, 4 * kk:4 * kk + 4],
                                 cp_codes[4 * i:4 * i + 4, 2 * kk:2 * kk + 2],
                                 bp[KSTEP * kk:KSTEP * kk + KSTEP, 4 * j:4 * j + 4],
                                 cc[4 * i:4 * i + 4, 4 * j:4 * j + 4], kk == 0, kk == kt - 1)


def sparse_gemm(values: np.ndarray, codes: np.ndarray, b: np.ndarray, c: np.ndarray,
                width: int = 8, signed: bool = True, acc_width: int = 32) -> np.ndarray:
    """The sparse array's GEMM result, step by step in the hardware's order."""
    m, n = c.shape
    mt, nt = -(-m // 4), -(-n // 4)
    d = np.zeros((4 * mt, 4 * nt), dtype=np.int64)
    acc = np.zeros((4, 4), dtype=np.int64)
    for s in sparse_gemm_schedule(values, codes, b, c):
        acc, _ = sparse_mac_tile(s.values, s.codes, s.b, s.c if s.first else acc, width,
                                 signed, acc_width)
        if s.last:
            d[4 * s.i:4 * s.i + 4, 4 * s.j:4 * s.j + 4] = acc
    return d[:m, :n]
