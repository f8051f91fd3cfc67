"""Bit-exact reference of the fused RMSNorm + absmax int8 quantiser (the BitLinear front end).

BitLinear (see :mod:`mmfree.golden.bitlinear`) normalises its input with RMSNorm and then
quantises it per token with absmax. Without an affine norm weight the two commute: RMSNorm
multiplies every element by the same positive ``r = 1 / rms(x)``, and absmax quantisation
divides by the largest magnitude, so ``r`` cancels from the int8 values and survives only in
the output rescale. The hardware (:class:`mmfree.hdl.rms_quantiser.RmsAbsmaxQuantiser`)
therefore computes, for one vector of ``K`` signed ``in_width``-bit integers ``m``:

* ``A = max |m_i|`` and ``N = sum m_i**2`` (exact integers), in one pass;
* ``R = floor(127 * 2**recip_frac / A)``: the absmax scale as a fixed-point reciprocal
  (restoring division, one quotient bit per cycle);
* ``r = floor(2**rsqrt_frac / sqrt(N)) = isqrt(floor(2**(2 * rsqrt_frac) / N))``: RMSNorm's
  reciprocal square root (the identity ``floor(sqrt(floor(y))) = floor(sqrt(y))`` makes the
  two-step form exact); division then a bit-serial integer square root;
* ``q_i = clamp(floor((m_i * R + 2**(recip_frac - 1)) / 2**recip_frac), -128, 127)``: the
  int8 activations, **rounding half up** (towards +inf) then clamping (the clamp never acts
  for ``A > 0``: ``|m_i| <= A`` keeps ``|q_i| <= 127``);
* ``D = A * r``: the dequantisation scale, an unsigned integer.

Read ``m`` as ``x * 2**e`` for any exponent ``e`` (the whole vector shares it). Then
``RMSNorm(x)_i = m_i * sqrt(K / N)`` and the absmax scale of the normalised vector is
``s_x = 127 * sqrt(N) / (A * sqrt(K))``, so BitLinear's output ``acc / (s_x * s_w)`` is

    ``y = acc * D * sqrt(K) / (127 * 2**rsqrt_frac * s_w)``,

independent of ``e``: the front end needs no exponent, and the host may choose ``e`` per
vector for the most precision (:func:`to_block_float`). BitLinear's ``eps = 1e-8`` inside the
square root is left out: it only matters for vectors whose RMS is below 1e-4 (relative to
their own scale it is then far below one LSB); an all-zero vector gives ``q = 0`` and ``D = 0``.

Division by zero (``A = 0`` or ``N = 0``) is defined as the restoring divider computes it: an
all-ones quotient. It never reaches an output, because ``A = 0`` forces every ``m_i``, and so
``q`` and ``D = A * r``, to zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["IN_WIDTH", "Q_MAX", "RECIP_FRAC", "RSQRT_FRAC", "FixedBitLinear", "QuantResult",
           "check_mantissas", "dequant_factor", "divide", "isqrt_floor", "quantise", "recip_width",
           "rsqrt_dividend_width", "rsqrt_width", "scale_width", "to_block_float"]

Q_MAX = 127  #: int8 absmax target (BitLinear's ``127 / max|x|``)
IN_WIDTH = 16  #: default width of the front end's input mantissas
RECIP_FRAC = 24  #: default fraction bits of the absmax reciprocal ``R``
RSQRT_FRAC = 32  #: default fraction bits of RMSNorm's reciprocal square root ``r``


def isqrt_floor(v: int) -> int:
    """``floor(sqrt(v))`` for a non-negative integer."""
    if v < 0:
        raise ValueError(f"isqrt of a negative number: {v}")
    return math.isqrt(v)


def divide(dividend: int, divisor: int, quotient_width: int) -> int:
    """Restoring division as the hardware does it: ``floor(dividend / divisor)``, and an
    all-ones ``quotient_width``-bit quotient for a zero divisor."""
    if divisor == 0:
        return (1 << quotient_width) - 1
    return dividend // divisor


def recip_width(recip_frac: int) -> int:
    """Bits of the absmax-reciprocal dividend ``127 * 2**recip_frac`` (and of ``R``)."""
    return (Q_MAX << recip_frac).bit_length()


def rsqrt_dividend_width(rsqrt_frac: int) -> int:
    """Bits of the square-root dividend ``2**(2 * rsqrt_frac)``."""
    return 2 * rsqrt_frac + 1


def rsqrt_width(rsqrt_frac: int) -> int:
    """Bits of ``r``: ``r <= 2**rsqrt_frac`` (reached for ``N = 1``)."""
    return rsqrt_frac + 1


def scale_width(in_width: int, rsqrt_frac: int) -> int:
    """Bits of the dequantisation scale ``D = A * r``, with ``A <= 2**(in_width - 1)``."""
    return in_width + rsqrt_width(rsqrt_frac)


@dataclass(frozen=True)
class QuantResult:
    """Every intermediate of the front end for one vector (all Python/numpy integers)."""

    q: np.ndarray  #: int8 activations (int64 array)
    amax: int  #: ``A = max |m_i|``
    sumsq: int  #: ``N = sum m_i**2``
    recip: int  #: ``R``
    rsqrt: int  #: ``r``
    scale: int  #: ``D = A * r``


def check_mantissas(m: npt.ArrayLike, in_width: int) -> np.ndarray:
    """Return ``m`` as a 1-D int64 array, raising unless it holds signed ``in_width``-bit
    integers."""
    arr = np.asarray(m)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"front-end input must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"front-end input must be a non-empty vector, got shape {arr.shape}")
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    if arr.min() < lo or arr.max() > hi:
        raise ValueError(f"front-end input outside signed {in_width}-bit range {lo}..{hi}")
    return arr


def quantise(m: npt.ArrayLike, in_width: int = IN_WIDTH, recip_frac: int = RECIP_FRAC,
             rsqrt_frac: int = RSQRT_FRAC) -> QuantResult:
    """The front end's result for one vector of mantissas ``m`` (see the module docstring)."""
    arr = check_mantissas(m, in_width)
    amax = int(np.abs(arr).max())
    sumsq = int(sum(int(v) * int(v) for v in arr))
    recip = divide(Q_MAX << recip_frac, amax, recip_width(recip_frac))
    root_in = divide(1 << (2 * rsqrt_frac), sumsq, rsqrt_dividend_width(rsqrt_frac))
    rsqrt = isqrt_floor(root_in)
    half = 1 << (recip_frac - 1)
    q = np.array([min(max((int(v) * recip + half) >> recip_frac, -128), 127) for v in arr],
                 dtype=np.int64)
    return QuantResult(q, amax, sumsq, recip, rsqrt, amax * rsqrt)


def dequant_factor(scale: int, k: int, rsqrt_frac: int = RSQRT_FRAC) -> float:
    """``1 / s_x`` from the hardware's ``D``: ``D * sqrt(K) / (127 * 2**rsqrt_frac)``."""
    return scale * math.sqrt(k) / (Q_MAX * float(1 << rsqrt_frac))


def to_block_float(x: npt.ArrayLike, in_width: int = IN_WIDTH) -> tuple[np.ndarray, int]:
    """Host side: the vector ``x`` as signed ``in_width``-bit mantissas ``m`` and one shared
    exponent ``e`` with ``m = round_half_even(x * 2**e)``; ``e`` is the largest that keeps
    every ``|m_i| <= 2**(in_width - 1) - 1``. An all-zero vector gives ``m = 0``, ``e = 0``.
    Raises on non-finite input (nothing is silently clipped)."""
    xa = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(xa)):
        raise ValueError("front-end input holds NaN or infinity")
    peak = float(np.max(np.abs(xa))) if xa.size else 0.0
    if peak == 0.0:
        return np.zeros(xa.shape, dtype=np.int64), 0
    top = (1 << (in_width - 1)) - 1
    e = math.floor(math.log2(top / peak)) + 1  # one too many at most: the loop steps back
    while True:
        m = np.round(np.ldexp(xa, e)).astype(np.int64)
        if int(np.abs(m).max()) <= top:
            return m, e
        e -= 1


@dataclass(frozen=True)
class FixedBitLinear:
    """BitLinear as the hardware computes it, for one vector (see the module docstring).

    Host side: :meth:`mantissas` turns the float input into the front end's mantissas and
    :meth:`rescale` turns the integer row sums and ``D`` into the float output. Device side
    (the RTL, or :meth:`device` here): quantise, then the ternary product."""

    in_width: int = IN_WIDTH
    recip_frac: int = RECIP_FRAC
    rsqrt_frac: int = RSQRT_FRAC
    acc_width: int = 32

    def mantissas(self, x: npt.ArrayLike) -> np.ndarray:
        """The block-floating-point mantissas of ``x`` (the exponent is not needed)."""
        return to_block_float(x, self.in_width)[0]

    def device(self, m: np.ndarray, w_q: np.ndarray) -> tuple[np.ndarray, int]:
        """What the BitLinear unit returns: the row sums ``W_q q`` (wrapped at
        ``acc_width``) and ``D``."""
        from .ternary import ternary_matvec

        res = quantise(m, self.in_width, self.recip_frac, self.rsqrt_frac)
        return ternary_matvec(w_q, res.q, 8, self.acc_width), res.scale

    def rescale(self, acc: npt.ArrayLike, scale: int, k: int,
                row_scales: npt.ArrayLike) -> np.ndarray:
        """BitLinear's float output: ``acc * dequant_factor(D, K) / s_w`` (per row)."""
        return (np.asarray(acc, dtype=np.float64) * dequant_factor(scale, k, self.rsqrt_frac)
                / np.asarray(row_scales, dtype=np.float64))
