"""Bit-exact reference of the engine's vector unit: its primitive integer operations.

The whole-token engine (docs/engine.md) runs every element-wise step of a token as a short
sequence of these primitives on integer vectors; :class:`mmfree.hdl.vector_unit.VectorUnit`
computes them bit-exactly. With ``w`` the element width, ``k >= 0`` a shift and ``c`` a
signed ``w``-bit scalar:

* ``rnd(v, k) = floor((v + 2**(k-1)) / 2**k)`` (round half up; ``rnd(v, 0) = v``);
* ``sat(v)`` clamps to the signed ``w``-bit range ``-2**(w-1) .. 2**(w-1) - 1``;
* map ops, ``y_i = sat(rnd(e_i, k))`` with ``e_i`` = ``a_i`` (``copy``), ``a_i + b_i``
  (``add``), ``a_i - b_i`` (``sub``), ``a_i * b_i`` (``mul``), ``a_i * c`` (``scale``),
  ``a_i + c`` (``addc``): every intermediate is exact (at most ``2w + 1`` bits);
* reductions: ``sumsq`` = ``sum a_i**2`` (exact), ``argmax`` = ``(max a_i, the lowest i
  where it occurs)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["MAP_OPS", "MAX_WIDTH", "REDUCE_OPS", "rnd", "sat", "vector_op", "vector_reduce"]

MAP_OPS = ("copy", "add", "sub", "mul", "scale", "addc")
REDUCE_OPS = ("sumsq", "argmax")
_USES_B = ("add", "sub", "mul")


MAX_WIDTH = 30  #: the widest elements: ``a * b`` and its rounding addend fit int64


def _ints(name: str, v: npt.ArrayLike, width: int) -> np.ndarray:
    if isinstance(width, bool) or not isinstance(width, int) or not 2 <= width <= MAX_WIDTH:
        raise ValueError(f"width must be in 2..{MAX_WIDTH}, got {width!r}")
    arr = np.asarray(v)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name} outside the signed {width}-bit range {lo}..{hi}")
    return arr


def rnd(v: npt.ArrayLike, k: int) -> np.ndarray:
    """``floor((v + 2**(k-1)) / 2**k)``: round half up, an arithmetic shift; ``v`` at 0."""
    a = np.asarray(v, dtype=np.int64)
    return a if k == 0 else (a + (1 << (k - 1))) >> k


def sat(v: npt.ArrayLike, width: int) -> np.ndarray:
    """Clamp to the signed ``width``-bit range."""
    return np.clip(np.asarray(v, dtype=np.int64), -(1 << (width - 1)), (1 << (width - 1)) - 1)


def vector_op(op: str, a: npt.ArrayLike, b: npt.ArrayLike | None = None, c: int = 0,
              k: int = 0, width: int = 16) -> np.ndarray:
    """One map op over signed ``width``-bit vectors (module docstring); ``b`` only for
    ``add``, ``sub``, ``mul``. Raises ``ValueError`` for an unknown op, a shift outside
    ``0 .. 2 width - 1``, or operands outside ``width`` bits."""
    if op not in MAP_OPS:
        raise ValueError(f"op must be one of {', '.join(MAP_OPS)}, got {op!r}")
    if not 0 <= k <= 2 * width - 1:
        raise ValueError(f"k must be in 0..{2 * width - 1}, got {k}")
    av = _ints("a", a, width)
    cv = int(_ints("c", np.array([c]), width)[0])
    if op in _USES_B:
        if b is None:
            raise ValueError(f"op {op} needs b")
        bv = _ints("b", b, width)
        if bv.shape != av.shape:
            raise ValueError(f"a has shape {av.shape}, b {bv.shape}")
    e = {"copy": lambda: av, "add": lambda: av + bv, "sub": lambda: av - bv,
         "mul": lambda: av * bv, "scale": lambda: av * cv, "addc": lambda: av + cv}[op]()
    return sat(rnd(e, k), width)


def vector_reduce(op: str, a: npt.ArrayLike, width: int = 16) -> tuple[int, int]:
    """A reduction over a non-empty signed ``width``-bit vector: ``sumsq`` gives
    ``(sum a_i**2, 0)``, ``argmax`` ``(max a_i, lowest index of it)``."""
    if op not in REDUCE_OPS:
        raise ValueError(f"op must be one of {', '.join(REDUCE_OPS)}, got {op!r}")
    if np.asarray(a).ndim != 1 or np.asarray(a).size == 0:
        raise ValueError(f"a must be a non-empty vector, got shape {np.asarray(a).shape}")
    av = _ints("a", a, width)
    if op == "sumsq":
        return sum(int(x) * int(x) for x in av), 0  # exact at any length
    i = int(np.argmax(av))
    return int(av[i]), i
