"""Bit-exact reference of the fused RMSNorm + absmax int8 quantiser (the BitLinear front end).

The contract of the BitLinear front end with the per-channel RMSNorm weight that every
BitLinear of the released HGRN-Bit carries (``FusedBitLinear``; see
:mod:`mmfree.golden.hgrn_bit`): :func:`quantise_weighted` and :class:`NormBitLinear`. The
RTL (:class:`mmfree.hdl.norm_quantiser.NormQuantiser`, inside
:class:`mmfree.hdl.bitlinear_unit.BitLinearUnit`) mirrors it bit-exactly. (The earlier
unweighted front end, RMSNorm without a weight, went with the paper-form tiny model: no
released BitLinear lacks the weight.)

Front end with the norm weight (:func:`quantise_weighted`): the contract
-------------------------------------------------------------------------
The released ``FusedBitLinear`` computes, in floating point, for an input ``x`` (K) and its
own RMSNorm weight ``w`` (K)::

    rstd = 1 / sqrt(mean(x**2) + 1e-6)          # from the UNWEIGHTED input
    y    = x * rstd * w                           # the weighted, normalised vector
    s_x  = 127 / max(max|y|, 1e-5)
    q    = clamp(round_half_away_from_zero(y * s_x), -128, 127)
    out  = (q . W_q) / (s_x * s_w)

``rstd`` is one positive factor per vector, so it cancels from ``q`` again: ``q`` depends on
the products ``x_i * w_i`` only, and ``rstd`` enters the output scale. The hardware works
on block-floating-point vectors chosen by the host (:func:`to_block_float`):

* input ``x = m * 2**-e``: ``m`` signed ``in_width``-bit mantissas, one exponent per vector
  (chosen per call; the device never sees ``e``);
* norm weight ``w = v * 2**-e_w``: ``v`` signed ``weight_width``-bit mantissas, one exponent
  ``e_w`` per BitLinear, converted once when the checkpoint is loaded (round half to even,
  the largest exponent that keeps ``|v_i| <= 2**(weight_width-1) - 1``).

With ``P = mant_bits`` (default 17, so that every per-element product below is one
unsigned 17 x 17 multiply: one ECP5 ``MULT18X18D``), ``f = 2P - 8`` (26) and
``S = 2P - 2`` (32), the device computes, exactly, for one vector (the int8 contract;
:class:`NormQuantFormat` has two options, other activation widths and rounding modes, only to
measure what they would cost):

1. ``p_i = m_i * v_i`` (signed ``in_width x weight_width`` multiply, one DSP per lane);
   ``A = max |p_i|`` and ``N = sum m_i**2`` (the **unweighted** sum of squares), in the load
   pass;
2. if ``A = 0``: ``q = 0``, ``D = 0``, ``E = 0``, done (an all-zero vector, or a norm weight
   that is zero wherever ``x`` is not);
3. normalise the products to ``P`` bits with ``L = bit_length(A)``:
   ``a_i = floor(|p_i| * 2**(P - L))`` and ``Â = floor(A * 2**(P - L))``, so
   ``2**(P-1) <= Â < 2**P`` (a left shift when ``L < P``; a right shift that drops the low
   bits when ``L > P``; one shift amount per vector, a barrel shifter per lane);
4. ``R = floor(127 * 2**f / Â)`` (restoring division; ``2**(P-2) < R < 2**P``);
5. ``q_i = sign(p_i) * min(127, floor((a_i * R + 2**(f-1)) / 2**f))``: **round half away
   from zero**, as the released kernel's ``tl.math.round`` (a rounding of the magnitude,
   then the sign; the ``min`` never acts because ``a_i <= Â``, and -128 never occurs);
6. normalise ``N`` by an even shift: ``b = bit_length(N)``, ``t = floor((b - 2P + 1) / 2)``,
   ``N' = floor(N / 4**t)`` (``N * 4**-t`` exactly when ``t < 0``), so
   ``2**(2P-2) <= N' < 2**(2P)``;
7. ``r = isqrt(floor(2**(2S) / N')) = floor(2**S / sqrt(N'))``, so
   ``2**(P-2) <= r <= 2**(P-1)`` (restoring division, bit-serial square root);
8. outputs: the int8 vector ``q``, ``D = Â * r`` (unsigned, ``2P - 1`` bits, one 17 x 17
   multiply per vector) and the signed shift ``E = L - P - t`` (7 bits hold it).

Because ``A ~ Â * 2**(L-P)`` and ``1/sqrt(N) ~ r * 2**(-S-t)``, BitLinear's output is, on
the host (``acc`` is the ternary core's row sum, ``s_w`` the matrix's absmean scale),

    ``out = acc * D * 2**(E - S - e_w) * sqrt(K) / (127 * s_w)``    (:meth:`NormBitLinear.rescale`).

**What is dropped, and why.** (a) ``eps = 1e-6`` in ``rstd``: its relative effect on the
output scale is ``eps / (2 mean(x**2))``: below 5e-5 whenever ``mean(x**2) >= 0.01``, 1 %
at ``mean(x**2) = 5e-5``. Keeping it would need the input exponent ``e`` on the device; its
cost on whole models is measured by ``bench/hgrn_bit.py`` (float reference with and without
eps). (b) The ``1e-5`` floor of ``max|y|``: it acts only when the weighted, normalised
vector is below 1e-5 everywhere; the released kernel then uses fewer than 127 levels while
the device keeps 127, and both outputs approximate the same ``y . W``. (c) Precision: ``x``
and ``w`` are rounded to their mantissas; ``a_i``, ``Â`` and ``R`` are truncated to ``P``
bits (together less than ``3 * 2**(8-P)`` of an int8 step: 0.006 at ``P = 17``) and ``r``
is a floor (relative ``2**(2-P)``, 3e-5, on the output scale). So ``q`` is within one step
of the float ``q`` and equal to it except near rounding ties, and ``1/s_x`` is within

    ``2**-15 * (rho_x + rho_w + 1) + 3 * 2**(1-P) + eps / (2 mean(x**2))``

relative, where ``rho_x = max|x| / |x_j|`` and ``rho_w = max|w| / |w_j|`` at the element
``j`` with the largest ``|x_j w_j|`` (the mantissa rounding of that element; ``rho`` is 1
when the largest input meets a large weight). Tested in
``tests/golden/test_quantiser_norm.py``; measured in docs/bitlinear.md.

**Hardware cost** (the reason for the normalisations): per lane one ``in_width x
weight_width`` signed multiplier and one ``P x P`` unsigned multiplier beside the existing
squarer, and a ``P``-bit barrel shifter; per vector two leading-one detectors, an even
shift of ``N``, a ``(f + 7)``-bit and a ``(2S + 1)``-bit restoring division, a square root
of a ``(2P - 1)``-bit number (``P`` result bits) and one ``P x P`` multiply. No operand is wider
than 17 bits at the default ``P``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["IN_WIDTH", "MANT_BITS", "MAX_DIM", "Q_MAX", "WEIGHT_WIDTH", "NormBitLinear",
           "NormQuantFormat", "NormQuantResult", "check_mantissas", "quantise_weighted",
           "ternary_product", "to_block_float", "weighted_dequant_factor"]

Q_MAX = 127  #: int8 absmax target (BitLinear's ``127 / max|x|``)
IN_WIDTH = 16  #: default width of the front end's input mantissas


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


# --- Front end with the norm weight (the released FusedBitLinear) ------------------------------

WEIGHT_WIDTH = 16  #: default width of the norm weight's mantissas ``v``
MANT_BITS = 17  #: default ``P``: width of the normalised magnitudes, ``R`` and ``r``
MAX_DIM = 65536  #: the longest vector the contract covers (``N`` stays below 2**63)


def _bit_length(v: int) -> int:
    return int(v).bit_length()


ROUNDINGS = ("half_away", "half_even", "truncate", "floor")  #: :attr:`NormQuantFormat.rounding`


@dataclass(frozen=True)
class NormQuantFormat:
    """Widths of the weighted front end (module docstring, second contract).

    ``in_width``: input mantissas ``m`` (2..24); ``weight_width``: norm weight mantissas
    ``v`` (2..24); ``mant_bits``: ``P`` (9..30). ``f = 2P - act_bits`` and ``S = 2P - 2``
    follow.

    Two options exist to measure what other hardware choices would cost (``bench/quality.py``);
    their defaults are the contract, and only the defaults are the RTL's:

    * ``act_bits`` (2..16, default 8): width of the signed activations ``q``, which use
      ``±q_max = ±(2**(act_bits - 1) - 1)`` (127 for int8) in place of 127 everywhere
      (step 4, the rescale); ``f = 2P - act_bits`` keeps ``R < 2**P``.
    * ``rounding`` (default ``"half_away"``, the released kernel's ``tl.math.round``): how
      step 5 rounds ``y = a_i * R / 2**f``: ``"half_even"`` (ties to the even integer),
      ``"truncate"`` (towards zero: the magnitude's floor, as a sign-magnitude datapath that
      drops the low bits), ``"floor"`` (towards minus infinity on the signed value, as a
      two's-complement datapath that drops the low bits)."""

    in_width: int = IN_WIDTH
    weight_width: int = WEIGHT_WIDTH
    mant_bits: int = MANT_BITS
    act_bits: int = 8
    rounding: str = "half_away"

    def __post_init__(self) -> None:
        for name, lo, hi in (("in_width", 2, 24), ("weight_width", 2, 24),
                             ("mant_bits", 9, 30), ("act_bits", 2, 16)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, "
                             f"got {self.rounding!r}")

    @property
    def q_max(self) -> int:
        """The largest activation magnitude: ``2**(act_bits - 1) - 1`` (127 for int8)."""
        return (1 << (self.act_bits - 1)) - 1

    @property
    def recip_frac(self) -> int:
        """``f = 2P - act_bits`` (``2P - 8``): fraction bits of ``R`` (so that ``R < 2**P``)."""
        return 2 * self.mant_bits - self.act_bits

    @property
    def rsqrt_frac(self) -> int:
        """``S = 2P - 2``: fraction bits of ``r`` (so that ``r <= 2**(P-1)``)."""
        return 2 * self.mant_bits - 2

    @property
    def scale_width(self) -> int:
        """Bits of ``D = Â * r``: ``2P - 1``."""
        return 2 * self.mant_bits - 1

    @property
    def product_width(self) -> int:
        """Bits of the signed products ``p_i = m_i * v_i``."""
        return self.in_width + self.weight_width

    def exp_range(self, max_dim: int = MAX_DIM) -> tuple[int, int]:
        """The smallest and largest shift ``E`` for vectors of up to ``max_dim`` elements."""
        p = self.mant_bits
        lead_max = self.product_width - 1  # |p| <= 2**(in_width-1) * 2**(weight_width-1)
        sumsq_bits = 2 * self.in_width - 1 + (max_dim - 1).bit_length()
        t_min = (1 - 2 * p + 1) // 2
        t_max = (sumsq_bits - 2 * p + 1) // 2
        return 1 - p - t_max, lead_max - p - t_min


@dataclass(frozen=True)
class NormQuantResult:
    """Every intermediate of the weighted front end for one vector (module docstring)."""

    q: np.ndarray  #: int8 activations (int64 array)
    prod_max: int  #: ``A = max |m_i * v_i|``
    sumsq: int  #: ``N = sum m_i**2`` (unweighted)
    lead: int  #: ``L = bit_length(A)``
    norm_max: int  #: ``Â``
    recip: int  #: ``R``
    sq_shift: int  #: ``t``
    sumsq_norm: int  #: ``N'``
    rsqrt: int  #: ``r``
    scale: int  #: ``D = Â * r``
    exp: int  #: ``E = L - P - t``


def _shift(v: np.ndarray | int, by: int) -> np.ndarray | int:
    """``floor(v * 2**by)`` for non-negative ``v`` (left shift, or a right shift dropping bits)."""
    return v << by if by >= 0 else v >> -by


def _round_scaled(y: np.ndarray, f: int, sign: np.ndarray, rounding: str) -> np.ndarray:
    """The magnitude of ``sign * y / 2**f`` rounded as ``rounding`` says (non-negative ``y``;
    :attr:`NormQuantFormat.rounding`)."""
    if rounding == "half_away":
        return (y + (1 << (f - 1))) >> f
    low = y & ((1 << f) - 1)
    down = y >> f
    if rounding == "truncate":
        return down
    if rounding == "floor":  # a negative value rounds its magnitude up
        return down + ((sign < 0) & (low != 0))
    half = 1 << (f - 1)  # half_even
    return down + ((low > half) | ((low == half) & ((down & 1) == 1)))


def quantise_weighted(m: npt.ArrayLike, v: npt.ArrayLike,
                      fmt: NormQuantFormat = NormQuantFormat()) -> NormQuantResult:
    """The weighted front end for one vector: input mantissas ``m`` and norm weight
    mantissas ``v`` (both length ``K`` <= 65536), exactly as the module docstring defines."""
    ma = check_mantissas(m, fmt.in_width)
    va = check_mantissas(v, fmt.weight_width)
    if va.shape != ma.shape:
        raise ValueError(f"norm weight has {va.size} elements, the input {ma.size}")
    if ma.size > MAX_DIM:
        raise ValueError(f"vectors longer than {MAX_DIM} elements are outside the contract")
    prod = ma * va  # |p| < 2**46: exact in int64
    mag = np.abs(prod)
    amax = int(mag.max())
    sumsq = int(np.dot(ma, ma))  # < 2**(2*24 - 2 + 16): exact in int64
    if amax == 0:
        return NormQuantResult(np.zeros(ma.size, dtype=np.int64), 0, sumsq, 0, 0, 0, 0, 0, 0,
                               0, 0)
    p, f, s = fmt.mant_bits, fmt.recip_frac, fmt.rsqrt_frac
    lead = _bit_length(amax)
    norm_max = int(_shift(amax, p - lead))
    a = _shift(mag, p - lead)
    q_max = fmt.q_max
    recip = (q_max << f) // norm_max
    q = np.sign(prod) * np.minimum(_round_scaled(a * recip, f, np.sign(prod), fmt.rounding),
                                   q_max)  # a * R < 2**(2P) <= 2**60
    t = (_bit_length(sumsq) - 2 * p + 1) // 2
    sumsq_norm = sumsq >> (2 * t) if t >= 0 else sumsq << (-2 * t)
    rsqrt = math.isqrt((1 << (2 * s)) // sumsq_norm)
    return NormQuantResult(q.astype(np.int64), amax, sumsq, lead, norm_max, recip, t,
                           sumsq_norm, rsqrt, norm_max * rsqrt, lead - p - t)


def weighted_dequant_factor(scale: int, exp: int, k: int, weight_exp: int,
                            fmt: NormQuantFormat = NormQuantFormat()) -> float:
    """``1 / s_x`` from the device's ``D`` and ``E``:
    ``D * 2**(E - S - e_w) * sqrt(K) / 127`` (``/ q_max`` for other ``act_bits``)."""
    return (math.ldexp(float(scale), exp - fmt.rsqrt_frac - weight_exp) * math.sqrt(k)
            / fmt.q_max)


@dataclass(frozen=True)
class NormBitLinear:
    """BitLinear with its RMSNorm weight, as the hardware computes it (second contract).

    Host side: :meth:`norm_weight` converts a BitLinear's norm weight once, at load time;
    :meth:`mantissas` converts each input; :meth:`rescale` turns the device's row sums,
    ``D`` and ``E`` into the float output. Device side (the RTL, or :meth:`device` here):
    the weighted quantiser, then the ternary product (wrapped at ``acc_width``)."""

    fmt: NormQuantFormat = NormQuantFormat()
    acc_width: int = 32

    def norm_weight(self, w: npt.ArrayLike) -> tuple[np.ndarray, int]:
        """The norm weight as ``weight_width``-bit mantissas ``v`` and its exponent ``e_w``."""
        return to_block_float(w, self.fmt.weight_width)

    def mantissas(self, x: npt.ArrayLike) -> np.ndarray:
        """The input's ``in_width``-bit block-floating-point mantissas (exponent not needed)."""
        return to_block_float(x, self.fmt.in_width)[0]

    def quantise(self, m: npt.ArrayLike, v: npt.ArrayLike) -> NormQuantResult:
        return quantise_weighted(m, v, self.fmt)

    def device(self, m: np.ndarray, v: np.ndarray, codes: np.ndarray
               ) -> tuple[np.ndarray, int, int]:
        """What the BitLinear unit returns: the row sums ``W_q q`` (wrapped at
        ``acc_width``), ``D`` and ``E``."""
        from .ternary import wrap

        res = self.quantise(m, v)
        return wrap(ternary_product(codes, res.q), self.acc_width), res.scale, res.exp

    def rescale(self, acc: npt.ArrayLike, scale: int, exp: int, k: int, weight_exp: int,
                w_scale: float) -> np.ndarray:
        """BitLinear's float output: ``acc * D * 2**(E - S - e_w) * sqrt(K) / (127 s_w)``."""
        factor = weighted_dequant_factor(scale, exp, k, weight_exp, self.fmt)
        return np.asarray(acc, dtype=np.float64) * factor / w_scale


def ternary_product(codes: np.ndarray, q: npt.ArrayLike) -> np.ndarray:
    """``codes @ q`` for ternary ``codes`` (M x K, any integer dtype, values in {-1, 0, 1})
    and integer ``q`` (K; int8 range in the contract), exactly, as int64.

    ``numpy.einsum`` with an integer accumulator: the operands are widened in small buffered
    blocks, never whole, so a billion-weight int8 matrix needs no extra memory. The sum is
    accumulated in int32 while it cannot overflow (``|sum| <= max|q| K < 2**31``: for int8
    ``q``, ``K < 2**24``), else int64."""
    qa = np.asarray(q)
    if codes.ndim != 2 or qa.ndim != 1 or codes.shape[1] != qa.shape[0]:
        raise ValueError(f"shapes do not chain: codes {codes.shape}, q {qa.shape}")
    peak = max(int(np.abs(qa).max(initial=0)), 128)
    acc = np.int32 if peak * codes.shape[1] < (1 << 31) else np.int64
    return np.einsum("ij,j->i", codes, qa.astype(acc), dtype=acc).astype(np.int64)
