"""Bit-exact reference for the 4x4x4 tensor-core MAC array and tiled integer GEMM.

**Tile operation.** ``D = A @ B + C`` for 4 x 4 tiles. ``A`` and ``B`` hold ``width``-bit
integers, signed (two's complement) or unsigned; ``C`` and ``D`` are signed ``acc_width``-bit.
Products and their sums are exact; the result is wrapped to ``acc_width`` bits (two's
complement, modulo ``2**acc_width``; never saturated). Because wrapping is modular, wrapping
once at the end equals wrapping after every addition, which is what the hardware does.

**Tiled GEMM.** ``D = A @ B + C`` for ``A`` (M x K), ``B`` (K x N), ``C`` (M x N). Every
dimension is padded with zeros to a multiple of 4; output tile ``(i, j)`` starts from ``C``'s
tile and accumulates ``A[i, k] @ B[k, j]`` for ``k = 0, 1, ...`` in order, wrapping after
each step, exactly as the array's accumulate-in-place mode does; the padding is cut off at
the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["TILE", "TileStep", "gemm_schedule", "mac_tile", "operand_range", "tiled_gemm", "tiles"]

TILE = 4


def operand_range(width: int, signed: bool = True) -> tuple[int, int]:
    """Smallest and largest operand value for ``width`` bits."""
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def _check(name: str, a: npt.ArrayLike, lo: int, hi: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name} values must be in {lo}..{hi}")
    return arr


def _wrap_exact(v: np.ndarray, acc_width: int) -> np.ndarray:
    """Wrap an array of exact Python integers to signed ``acc_width`` bits, as int64."""
    m = 1 << acc_width
    return np.vectorize(lambda x: ((int(x) + (m >> 1)) % m) - (m >> 1), otypes=[np.int64])(v)


def mac_tile(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike, width: int = 8,
             signed: bool = True, acc_width: int = 32) -> np.ndarray:
    """``D = A @ B + C`` for one 4 x 4 tile, wrapped to ``acc_width`` bits."""
    lo, hi = operand_range(width, signed)
    aa, bb = _check("A", a, lo, hi), _check("B", b, lo, hi)
    cc = _check("C", c, -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1)
    for name, t in (("A", aa), ("B", bb), ("C", cc)):
        if t.shape != (TILE, TILE):
            raise ValueError(f"{name} must be {TILE}x{TILE}, got {t.shape}")
    # Python integers: exact for any operand width (int64 could overflow at 32-bit operands).
    exact = aa.astype(object) @ bb.astype(object) + cc.astype(object)
    return _wrap_exact(exact, acc_width)


def tiles(m: int, k: int, n: int) -> tuple[int, int, int]:
    """Tile counts ``(ceil(M/4), ceil(K/4), ceil(N/4))``."""
    return -(-m // TILE), -(-k // TILE), -(-n // TILE)


def _pad(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=np.int64)
    out[: x.shape[0], : x.shape[1]] = x
    return out


@dataclass(frozen=True)
class TileStep:
    """One beat of the tiled GEMM schedule: ``acc(i, j) = A[i, k] @ B[k, j] + (C[i, j] if
    first else acc(i, j))``; ``last`` marks the step after which tile ``(i, j)`` is done."""

    i: int
    j: int
    k: int
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    first: bool
    last: bool


def gemm_schedule(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Iterator[TileStep]:
    """The host-side tiling the array is driven with: output tiles in row-major order
    (``i`` outer, ``j`` inner), and for each the K-tiles ``k = 0 .. ceil(K/4)-1`` back to
    back, zero-padded at the edges. ``c`` is only consumed on the first step of a tile."""
    m, k = a.shape
    n = b.shape[1]
    mt, kt, nt = tiles(m, k, n)
    ap, bp, cp = _pad(a, 4 * mt, 4 * kt), _pad(b, 4 * kt, 4 * nt), _pad(c, 4 * mt, 4 * nt)
    for i in range(mt):
        for j in range(nt):
            for kk in range(kt):
                yield TileStep(i, j, kk, ap[4 * i:4 * i + 4, 4 * kk:4 * kk + 4],
                               bp[4 * kk:4 * kk + 4, 4 * j:4 * j + 4],
                               cp[4 * i:4 * i + 4, 4 * j:4 * j + 4],
                               kk == 0, kk == kt - 1)


def tiled_gemm(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike | None = None,
               width: int = 8, signed: bool = True, acc_width: int = 32) -> np.ndarray:
    """``D = A @ B + C`` for any M x K x N, tile by tile in the hardware's order."""
    lo, hi = operand_range(width, signed)
    aa, bb = _check("A", a, lo, hi), _check("B", b, lo, hi)
    if aa.ndim != 2 or bb.ndim != 2 or aa.shape[1] != bb.shape[0]:
        raise ValueError(f"shapes do not chain: A {aa.shape}, B {bb.shape}")
    m, k = aa.shape
    n = bb.shape[1]
    if min(m, k, n) < 1:
        raise ValueError(f"GEMM dimensions must be >= 1, got M={m} K={k} N={n}")
    cc = np.zeros((m, n), dtype=np.int64) if c is None else _check(
        "C", c, -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1)
    if cc.shape != (m, n):
        raise ValueError(f"C must be {m}x{n}, got {cc.shape}")
    mt, _, nt = tiles(m, k, n)
    d = np.zeros((4 * mt, 4 * nt), dtype=np.int64)
    acc = np.zeros((TILE, TILE), dtype=np.int64)
    for step in gemm_schedule(aa, bb, cc):
        acc = mac_tile(step.a, step.b, step.c if step.first else acc, width, signed, acc_width)
        if step.last:
            d[4 * step.i:4 * step.i + 4, 4 * step.j:4 * step.j + 4] = acc
    return d[:m, :n]
