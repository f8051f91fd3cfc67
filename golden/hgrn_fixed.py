"""HGRN-Bit, the whole token in fixed point: the bit-exact contract of the token engine.

:mod:`mmfree.golden.hgrn_bit` runs the released model with float64 element-wise work on the
host and (in its ``IntegerBitLinear`` pipeline) the BitLinears in the hardware's arithmetic.
This module puts **every** operation of a token in integers: the BitLinears through the
existing weighted front end (:class:`~mmfree.golden.quantiser.NormBitLinear`, unchanged) and
the element-wise work (RMSNorms with weights, sigmoid, SiLU, the lower-bounded forget gate,
the recurrence, the GLU, residual adds, the BitLinear rescale, the argmax) as the pure
functions below, on numpy ``int64`` arrays, with the formats of ONE frozen
:class:`FixedConfig`. A lane-parallel vector unit implements each ``vec_*`` / ``sc_*``
function bit-exactly; :func:`fixed_token_step` is the order in which a token calls them.
Formats, ops, table errors and the measured deviation from the float reference:
docs/fixed-point.md.

Number formats
--------------
A :class:`Fmt` ``(width, frac, rounding)`` is a signed two's-complement integer of ``width``
bits standing for ``value * 2**-frac``. Every vector op ends in the same requantisation
(:func:`requantise`): an exact integer result ``v`` (products are exact in int64), divided by
``2**shift`` with the format's rounding (``shift < 0``: an exact left shift), then
**saturated** to ``[-2**(width-1), 2**(width-1) - 1]``. Nothing wraps in the element-wise
path; the only wrap is the BitLinear accumulator's (``acc_width`` 32, as the unit's).

Rounding modes (:data:`ROUNDINGS`, one for the whole token, :attr:`FixedConfig.rounding`):
``half_up`` (add ``2**(shift-1)``, arithmetic shift: one adder, the default), ``half_even``,
``half_away`` (the magnitude rounded, then the sign), ``floor`` (arithmetic shift alone),
``truncate`` (towards zero).

The formats of :class:`FixedConfig` (defaults; all sweepable, ``bench/quality.py``):

=================  ===========================  =============================================
name               default                      holds
=================  ===========================  =============================================
``res``            18 bits, 12 fraction (±32)   the residual stream ``x``, the embedding row,
                                                the logits
``act``            16 bits, 11 fraction (±16)   BitLinear outputs i, f, g, gate/up; norm
                                                outputs (the next BitLinear's ``m``, so
                                                ``act_width <= bitlinear.in_width``); SiLU
                                                outputs, GLU and gate products
``state``          18 bits, 15 fraction (±4)    the recurrent state of every layer
``gate``           ``gate_frac + 2`` bits,      sigmoid, forget gate ``f``, ``1 - f``, lower
                   16 fraction ([0, 1])         bounds ``lb`` and ``1 - lb`` (``1.0`` is
                                                ``2**gate_frac``)
norm weights       ``norm_width`` 16-bit        block norms, g_norm, final norm: one exponent
                   mantissas, one exponent      per vector (host, at load)
scalars            ``scale_bits`` 17            normalised scale mantissas (rsqrt * sqrt(K),
                                                the BitLinear rescale constant)
rsqrt              ``rsqrt_bits`` Q 17          ``r`` of the element-wise RMSNorms, ``S = 2Q-2``
                                                fraction bits
tables             ``table_bits`` 10 (1025      sigmoid and SiLU knots over
                   knots), range ``±16``        ``[-2**table_range_log2, +...]``
BitLinear          ``NormQuantFormat()``        the weighted front end and the unit (unchanged)
=================  ===========================  =============================================

The default widths were chosen from the value ranges of the shipped trained checkpoint
(``src/mmfree/data/hgrn-bit-tiny``, 3000 held-out bytes, float reference): embeddings
``|e| <= 0.19``, BitLinear outputs ``<= 4.2``, norm outputs ``<= 4.4``, recurrent state
``<= 1.2``, logits ``<= 15.8``, norm weights 0.87..1.49; and from the measured cost of each
choice (``bench/quality.py``, docs/fixed-point.md).

Ops (the distinct kinds a token uses; :data:`OP_KINDS`)
-------------------------------------------------------
Vector ops (one result per lane; ``b`` may be a scalar, broadcast from a register):

* :func:`vec_mul` ``(a * b) >> shift`` -> fmt (norm scaling, norm weights, BitLinear
  rescale, forget gate, GLU, ``rms_norm(g) * silu(s)``, state -> act requantisation);
* :func:`vec_add`, :func:`vec_sub`: saturating ``a ± b`` in one format (residual adds,
  ``f = lb + ...``, ``1 - f``);
* :func:`vec_fma2` ``(a*b + (c*d << align)) >> shift`` -> fmt, one rounding (the recurrence
  ``state = f * state + silu(i) * (1 - f)``);
* :func:`vec_sigmoid`, :func:`vec_silu`: table lookup with linear interpolation
  (:func:`vec_table`; contents from :func:`sigmoid_table`, :func:`silu_table`).

Reductions and scalar ops (one per vector):

* :func:`vec_sumsq` ``N = sum x_i**2`` (exact), :func:`vec_argmax` (ties: lowest index);
* :func:`sc_rmsnorm_scale` (``N + eps_q`` -> even normalisation -> :func:`sc_rsqrt` -> times
  ``sqrt(K)`` -> :func:`sc_normalise`), :func:`sc_rescale` (the BitLinear's ``D``, ``E`` and
  the matrix constant -> one scale and shift).

:func:`vec_rmsnorm` composes sumsq, the scalar step and two :func:`vec_mul`.

Table error (measured with :func:`table_max_error` over every input of the act format,
default config; the knots' and the interpolation's roundings included): sigmoid max
``|error|`` ``2.4e-5`` (1.5 LSB of ``2**-16``), SiLU ``5.2e-4`` (1.1 LSB of ``2**-11``; the
same for state inputs, 15 fraction bits). Smaller tables (``table_bits``: sigmoid / SiLU):
4: ``4.1e-2`` / ``1.5e-1``; 6: ``3.0e-3`` / ``1.5e-2``; 8: ``2.0e-4`` / ``1.2e-3``;
12: ``1.5e-5`` / ``4.9e-4`` (interpolation error ``~ (2R / 2**table_bits)**2 / 8 * max|f''|``
until the output LSB dominates). ``tests/golden/test_hgrn_fixed.py`` checks these bounds.

Multiplier widths (ECP5 ``MULT18X18D``: 18 x 18 signed). Default config: norm scaling
``res (18) x scale (17)`` then ``act (16) x norm weight (16)``; rescale ``acc x scale (17)``
(``|acc| <= 127 K`` is 18 bits for ``K <= 1024``, wider beyond); gate products
``gate (18) x state (18)`` and ``act (16) x gate (18)``; tables ``slope (<= 18) x
fraction``; sumsq ``res (18) squared`` (36-bit, summed into a 64-bit register). Scalar
multiplies (``r * sqrt(K)``, ``D * c``) are 17 x 17 after normalisation, once per vector.

Host side (not per-token integers): at load, norm weights -> mantissas + exponent, lower
bounds -> ``gate`` ints, each BitLinear's constant ``sqrt(K) / (q_max * s_w) * 2**-e_w`` ->
a ``scale_bits`` mantissa + exponent, ``sqrt(K)`` mantissas (integer square root), the
``eps`` constants ``eps_q = round(eps * K * 4**frac)``, the tables. Per token: the
embedding row (float) -> ``res`` (round half to even, saturate); the logits out are ``res``
integers (``value = int * 2**-res_frac``, exact in float64).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from .hgrn_bit import HGRNBitModel
from .hgrn_bit import sigmoid as _sigmoid
from .quantiser import NormBitLinear, NormQuantFormat, to_block_float

__all__ = [
    "OP_KINDS",
    "ROUNDINGS",
    "FixedBitLinear",
    "FixedConfig",
    "FixedModel",
    "FixedStep",
    "Fmt",
    "embed_fixed",
    "fixed_token_step",
    "requantise",
    "sc_normalise",
    "sc_rescale",
    "sc_rmsnorm_scale",
    "sc_rsqrt",
    "sigmoid_table",
    "silu_table",
    "sqrt_mantissa",
    "table_max_error",
    "vec_add",
    "vec_argmax",
    "vec_fma2",
    "vec_mul",
    "vec_rmsnorm",
    "vec_sigmoid",
    "vec_silu",
    "vec_sub",
    "vec_sumsq",
    "vec_table",
]

ROUNDINGS = ("half_up", "half_even", "half_away", "floor", "truncate")

#: the distinct op kinds of one token (what the vector unit decodes), in first-use order
OP_KINDS = ("vec_sumsq", "sc_rmsnorm_scale", "vec_mul", "sc_rescale", "vec_sigmoid",
            "vec_silu", "vec_add", "vec_sub", "vec_fma2", "vec_argmax")

_MAX_BITS = 24  # every vector format; products stay exact in int64


@dataclass(frozen=True)
class Fmt:
    """Signed ``width``-bit two's complement, ``value * 2**-frac``; results rounded by
    ``rounding`` (:data:`ROUNDINGS`) and saturated."""

    width: int
    frac: int
    rounding: str = "half_up"

    def __post_init__(self) -> None:
        if (isinstance(self.width, bool) or not isinstance(self.width, int)
                or not 2 <= self.width <= _MAX_BITS + 2):
            raise ValueError(f"width must be an integer in 2..{_MAX_BITS + 2}, got "
                             f"{self.width!r}")
        if (isinstance(self.frac, bool) or not isinstance(self.frac, int)
                or not 0 <= self.frac <= 40):
            raise ValueError(f"frac must be an integer in 0..40, got {self.frac!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got "
                             f"{self.rounding!r}")

    @property
    def lo(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.width - 1)) - 1


def _int(v: npt.ArrayLike) -> np.ndarray:
    a = np.asarray(v)
    if a.dtype.kind not in "iu":
        raise TypeError(f"fixed-point ops take integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def _round_shift(v: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """``v / 2**shift`` rounded (``shift > 0``)."""
    half = np.int64(1) << np.int64(shift - 1)
    if rounding == "half_up":
        return (v + half) >> shift
    if rounding == "floor":
        return v >> shift
    mag = np.abs(v)
    if rounding == "truncate":
        return np.sign(v) * (mag >> shift)
    if rounding == "half_away":
        return np.sign(v) * ((mag + half) >> shift)
    down = v >> shift  # half_even
    low = v & ((np.int64(1) << np.int64(shift)) - 1)
    return down + ((low > half) | ((low == half) & ((down & 1) == 1)))


def requantise(v: npt.ArrayLike, shift: int, fmt: Fmt) -> np.ndarray:
    """The common tail of every vector op: ``v / 2**shift`` rounded as ``fmt.rounding``
    (``shift <= 0``: ``v * 2**-shift``, exact), saturated to ``fmt``'s range."""
    a = _int(v)
    shift = int(shift)
    if shift > 0:
        a = _round_shift(a, shift, fmt.rounding)
    elif shift < 0:  # clamp first: the result saturates anyway, and int64 must not overflow
        lim = np.int64(1) << np.int64(fmt.width)
        a = np.clip(a, -lim, lim) << np.int64(min(-shift, 62 - fmt.width))
    return np.clip(a, fmt.lo, fmt.hi)


# --- vector ops ----------------------------------------------------------------------------------


def vec_mul(a: npt.ArrayLike, b: npt.ArrayLike, shift: int, fmt: Fmt) -> np.ndarray:
    """``requantise(a * b, shift, fmt)``: per-lane product (``b`` a vector or a broadcast
    scalar), rounded and saturated."""
    return requantise(_int(a) * _int(b), shift, fmt)


def vec_add(a: npt.ArrayLike, b: npt.ArrayLike, fmt: Fmt) -> np.ndarray:
    """``a + b`` saturated to ``fmt`` (both already in ``fmt``'s fraction)."""
    return requantise(_int(a) + _int(b), 0, fmt)


def vec_sub(a: npt.ArrayLike, b: npt.ArrayLike, fmt: Fmt) -> np.ndarray:
    """``a - b`` saturated to ``fmt``."""
    return requantise(_int(a) - _int(b), 0, fmt)


def vec_fma2(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike, d: npt.ArrayLike,
             align: int, shift: int, fmt: Fmt) -> np.ndarray:
    """``requantise(a*b + (c*d << align), shift, fmt)``: two products, one exact sum, one
    rounding (``align >= 0``)."""
    if align < 0:
        raise ValueError(f"align must be >= 0, got {align}")
    return requantise(_int(a) * _int(b) + ((_int(c) * _int(d)) << np.int64(align)), shift,
                      fmt)


def vec_sumsq(x: npt.ArrayLike) -> int:
    """``N = sum x_i**2``, exact (a Python int; below ``2**62`` for 24-bit lanes and
    ``K <= 65536``)."""
    a = _int(x)
    return int(np.dot(a, a))


def vec_argmax(x: npt.ArrayLike) -> int:
    """Index of the largest element; ties go to the lowest index."""
    return int(np.argmax(_int(x)))


# --- scalar ops ----------------------------------------------------------------------------------


def sc_normalise(v: int, bits: int) -> tuple[int, int]:
    """``v >= 0`` as ``(mant, exp)`` with ``v ~ mant * 2**exp`` and
    ``2**(bits-1) <= mant < 2**bits`` (leading-one detector and a shift; low bits dropped);
    ``(0, 0)`` for zero."""
    v = int(v)
    if v < 0:
        raise ValueError(f"sc_normalise takes v >= 0, got {v}")
    if v == 0:
        return 0, 0
    e = v.bit_length() - bits
    return (v >> e if e >= 0 else v << -e), e


def sc_rsqrt(n: int, bits: int) -> tuple[int, int]:
    """``1 / sqrt(n) ~ r * 2**-s`` for ``n > 0``: normalise ``n`` by an even shift ``2t``
    to ``N'`` in ``[2**(2Q-2), 2**(2Q))`` (``Q = bits``), then
    ``r = isqrt(2**(2S) // N')``, ``S = 2Q - 2`` (restoring division, bit-serial square
    root: ``2**(Q-2) <= r <= 2**(Q-1)``); returns ``(r, S + t)``. ``(0, 0)`` for 0."""
    n = int(n)
    if n < 0:
        raise ValueError(f"sc_rsqrt takes n >= 0, got {n}")
    if n == 0:
        return 0, 0
    s = 2 * bits - 2
    t = (n.bit_length() - 2 * bits + 1) // 2
    nn = n >> (2 * t) if t >= 0 else n << (-2 * t)
    return math.isqrt((1 << (2 * s)) // nn), s + t


def sqrt_mantissa(k: int, bits: int) -> tuple[int, int]:
    """``sqrt(k) ~ m * 2**-e`` with a ``bits``-bit ``m = isqrt(k * 4**e)`` (host constant,
    integers only)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    e = bits - (math.isqrt(k).bit_length())
    m = math.isqrt(k << (2 * e)) if e >= 0 else math.isqrt(k >> (-2 * e))
    while m >= (1 << bits):
        e -= 1
        m = math.isqrt(k << (2 * e)) if e >= 0 else math.isqrt(k >> (-2 * e))
    return m, e


def sc_rmsnorm_scale(sumsq: int, eps_q: int, sqrtk: tuple[int, int], x_frac: int,
                     out_frac: int, cfg: FixedConfig) -> tuple[int, int]:
    """The RMSNorm's per-vector scale: ``x_i * g >> shift`` is ``x_i / sqrt(mean(x**2) +
    eps)`` in ``out_frac`` fraction bits, for an input with ``x_frac`` fraction bits:
    ``(r, s) = sc_rsqrt(sumsq + eps_q, rsqrt_bits)``, ``(g, ge) = sc_normalise(r * k_m,
    scale_bits)``, ``shift = s + k_e - ge - out_frac`` (``x_frac`` cancels:
    ``x * sqrt(K) / sqrt(N)`` is dimensionless; it is a parameter only to say so).
    ``sqrtk = (k_m, k_e)`` is :func:`sqrt_mantissa` of ``K``. A zero ``sumsq + eps_q``
    gives ``(0, 0)`` (a zero vector stays zero)."""
    del x_frac  # documented: the input's scale cancels
    r, s = sc_rsqrt(sumsq + eps_q, cfg.rsqrt_bits)
    if r == 0:
        return 0, 0
    k_m, k_e = sqrtk
    g, ge = sc_normalise(r * k_m, cfg.scale_bits)
    return g, s + k_e - ge - out_frac


def sc_rescale(scale: int, exp: int, const: tuple[int, int], out_frac: int,
               cfg: FixedConfig) -> tuple[int, int]:
    """The BitLinear rescale's per-vector scale: the unit returns ``D`` (``scale``) and
    ``E`` (``exp``); the matrix constant ``const = (c_m, c_e)`` stands for
    ``sqrt(K) / (q_max * s_w) * 2**-e_w`` (:class:`FixedBitLinear`). With
    ``(D', d_e) = sc_normalise(D, scale_bits)`` and ``(g, g_e) = sc_normalise(D' * c_m,
    scale_bits)``, the output ``acc * D * 2**(E - S) * C`` in ``out_frac`` fraction bits is
    ``acc * g >> shift``, ``shift = S + c_e - E - d_e - g_e - out_frac`` (``S`` the
    front end's rsqrt fraction bits). ``D = 0`` (a zero input) gives ``(0, 0)``."""
    if scale == 0:
        return 0, 0
    c_m, c_e = const
    d, d_e = sc_normalise(scale, cfg.scale_bits)
    g, g_e = sc_normalise(d * c_m, cfg.scale_bits)
    return g, cfg.bitlinear.rsqrt_frac + c_e - exp - d_e - g_e - out_frac


# --- tables --------------------------------------------------------------------------------------


def _knots(cfg: FixedConfig) -> np.ndarray:
    n = 1 << cfg.table_bits
    r = 1 << cfg.table_range_log2
    return -r + np.arange(n + 1, dtype=np.float64) * (2.0 * r / n)


@functools.lru_cache(maxsize=64)
def _tables(cfg: FixedConfig) -> tuple[np.ndarray, np.ndarray]:
    x = _knots(cfg)
    sig = np.round(np.ldexp(_sigmoid(x), cfg.gate_frac)).astype(np.int64)
    act = cfg.act
    silu = np.clip(np.round(np.ldexp(x * _sigmoid(x), act.frac)), act.lo, act.hi)
    sig.setflags(write=False)
    silu = silu.astype(np.int64)
    silu.setflags(write=False)
    return sig, silu


def sigmoid_table(cfg: FixedConfig) -> np.ndarray:
    """The sigmoid ROM: ``2**table_bits + 1`` knots ``x_j = -R + j * 2R / 2**table_bits``
    (``R = 2**table_range_log2``), ``round_half_even(sigmoid(x_j) * 2**gate_frac)``
    (computed once in float64; the integers are the contract)."""
    return _tables(cfg)[0]


def silu_table(cfg: FixedConfig) -> np.ndarray:
    """The SiLU ROM: the same knots, ``round_half_even(silu(x_j) * 2**act_frac)`` saturated
    to ``act``."""
    return _tables(cfg)[1]


def vec_table(x: npt.ArrayLike, x_frac: int, table: np.ndarray, cfg: FixedConfig,
              fmt: Fmt) -> np.ndarray:
    """Linear interpolation in ``table`` (knots over ``[-R, R]``, :func:`sigmoid_table`) for
    inputs with ``x_frac`` fraction bits, result in ``fmt``: ``u = clamp(x, -R, R - 1 LSB)
    + R`` (as ``x_frac`` integers), ``j = u >> b``, ``w = u & (2**b - 1)`` with
    ``b = x_frac + table_range_log2 + 1 - table_bits`` (>= 0),
    ``y = T[j] + requantise((T[j+1] - T[j]) * w, b)``, saturated to ``fmt``; for
    ``b < 0`` (an input coarser than the knots) ``j = u << -b`` and ``w = 0``. Inputs
    outside ``[-R, R)`` take the end value (the caller decides the asymptote)."""
    b = x_frac + cfg.table_range_log2 + 1 - cfg.table_bits
    r = np.int64(1) << np.int64(cfg.table_range_log2 + x_frac)
    u = np.clip(_int(x), -r, r - 1) + r
    if b < 0:  # the input is coarser than the knots: every input sits on a knot
        j, w, b = u << np.int64(-b), np.zeros_like(u), 0
    else:
        j = u >> np.int64(b)
        w = u & ((np.int64(1) << np.int64(b)) - 1)
    t0, t1 = table[j], table[j + 1]
    interp = requantise((t1 - t0) * w, b, Fmt(fmt.width + 2, fmt.frac, fmt.rounding))
    return requantise(t0 + interp, 0, fmt)


def vec_sigmoid(x: npt.ArrayLike, x_frac: int, cfg: FixedConfig) -> np.ndarray:
    """``sigmoid(x)`` in ``cfg.gate`` (:func:`vec_table` on :func:`sigmoid_table`; beyond
    ``±R`` the end knots: error ``<= sigmoid(-R)``, 1.1e-7 at R 16)."""
    return vec_table(x, x_frac, sigmoid_table(cfg), cfg, cfg.gate)


def vec_silu(x: npt.ArrayLike, x_frac: int, cfg: FixedConfig) -> np.ndarray:
    """``silu(x) = x * sigmoid(x)`` in ``cfg.act``: :func:`vec_table` on :func:`silu_table`
    inside ``[-R, R)``; ``x >= R``: ``x`` requantised to ``act`` (``silu(x) - x`` is below
    ``R e**-R``, 1.8e-6 at R 16); ``x < -R``: 0 (``|silu| < R e**-R``)."""
    xa = _int(x)
    r = np.int64(1) << np.int64(cfg.table_range_log2 + x_frac)
    inside = vec_table(xa, x_frac, silu_table(cfg), cfg, cfg.act)
    above = requantise(xa, x_frac - cfg.act.frac, cfg.act)
    return np.where(xa >= r, above, np.where(xa < -r, 0, inside))


def table_max_error(kind: str, cfg: FixedConfig, x_frac: int | None = None) -> float:
    """Measured max ``|approximation - float|`` (real units) of :func:`vec_sigmoid` or
    :func:`vec_silu` over every input of ``act`` (or of a ``x_frac`` format as wide).
    An analysis helper (float64), not part of the token."""
    xf = cfg.act_frac if x_frac is None else x_frac
    xs = np.arange(cfg.act.lo, cfg.act.hi + 1, dtype=np.int64)
    real = np.ldexp(xs.astype(np.float64), -xf)
    if kind == "sigmoid":
        got = np.ldexp(vec_sigmoid(xs, xf, cfg).astype(np.float64), -cfg.gate_frac)
        want = _sigmoid(real)
    elif kind == "silu":
        got = np.ldexp(vec_silu(xs, xf, cfg).astype(np.float64), -cfg.act_frac)
        want = np.clip(real * _sigmoid(real), np.ldexp(cfg.act.lo, -cfg.act_frac),
                       np.ldexp(cfg.act.hi, -cfg.act_frac))
    else:
        raise ValueError(f"kind must be 'sigmoid' or 'silu', got {kind!r}")
    return float(np.max(np.abs(got - want)))


# --- RMSNorm -------------------------------------------------------------------------------------


def vec_rmsnorm(x: npt.ArrayLike, x_frac: int, weight: np.ndarray, weight_exp: int,
                eps_q: int, sqrtk: tuple[int, int], cfg: FixedConfig) -> np.ndarray:
    """``rms_norm(x) * w`` in ``cfg.act``: ``N = vec_sumsq(x)``,
    ``(g, shift) = sc_rmsnorm_scale(N, eps_q, sqrtk, x_frac, act_frac, cfg)``,
    ``z = vec_mul(x, g, shift, act)`` (the normalised vector), ``y = vec_mul(z, v,
    weight_exp, act)`` with the weight ``w = v * 2**-weight_exp``."""
    xa = _int(x)
    g, shift = sc_rmsnorm_scale(vec_sumsq(xa), eps_q, sqrtk, x_frac, cfg.act_frac, cfg)
    z = vec_mul(xa, g, shift, cfg.act)
    return vec_mul(z, weight, weight_exp, cfg.act)


# --- configuration -------------------------------------------------------------------------------


def _default_bitlinear() -> NormQuantFormat:
    return NormQuantFormat()


@dataclass(frozen=True)
class FixedConfig:
    """Every format of the whole-token fixed-point model (module docstring); errors name the
    field. Defaults are the contract; other values exist to measure what they cost."""

    res_width: int = 18
    res_frac: int = 12
    act_width: int = 16
    act_frac: int = 11
    state_width: int = 18
    state_frac: int = 15
    gate_frac: int = 16
    norm_width: int = 16
    scale_bits: int = 17
    rsqrt_bits: int = 17
    table_bits: int = 10
    table_range_log2: int = 4
    rounding: str = "half_up"
    bitlinear: NormQuantFormat = field(default_factory=_default_bitlinear)

    def __post_init__(self) -> None:
        limits = {"res_width": (4, _MAX_BITS), "res_frac": (0, _MAX_BITS - 1),
                  "act_width": (4, _MAX_BITS), "act_frac": (0, _MAX_BITS - 1),
                  "state_width": (4, _MAX_BITS), "state_frac": (0, _MAX_BITS - 1),
                  "gate_frac": (4, 22), "norm_width": (2, 24), "scale_bits": (8, 24),
                  "rsqrt_bits": (6, 24), "table_bits": (2, 16), "table_range_log2": (1, 6)}
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got "
                             f"{self.rounding!r}")
        if not isinstance(self.bitlinear, NormQuantFormat):
            raise ValueError(f"bitlinear must be a NormQuantFormat, got {self.bitlinear!r}")
        for w, f in (("res_width", "res_frac"), ("act_width", "act_frac"),
                     ("state_width", "state_frac")):
            if getattr(self, f) >= getattr(self, w):
                raise ValueError(f"{f} must be below {w} ({getattr(self, w)}), got "
                                 f"{getattr(self, f)}")
        if self.act_width > self.bitlinear.in_width:
            raise ValueError(f"act_width {self.act_width} exceeds the BitLinear input width "
                             f"bitlinear.in_width {self.bitlinear.in_width}")
        if self.state_frac < self.act_frac:
            raise ValueError(f"state_frac must be >= act_frac ({self.act_frac}), got "
                             f"{self.state_frac}")

    @property
    def res(self) -> Fmt:
        return Fmt(self.res_width, self.res_frac, self.rounding)

    @property
    def act(self) -> Fmt:
        return Fmt(self.act_width, self.act_frac, self.rounding)

    @property
    def state(self) -> Fmt:
        return Fmt(self.state_width, self.state_frac, self.rounding)

    @property
    def gate(self) -> Fmt:
        """``[0, 1]`` as ``gate_frac + 2``-bit signed integers (``1.0 = 2**gate_frac``)."""
        return Fmt(self.gate_frac + 2, self.gate_frac, self.rounding)

    @property
    def one(self) -> int:
        """1.0 in ``gate``."""
        return 1 << self.gate_frac

    def replace(self, **changes: object) -> FixedConfig:
        """A copy with some fields changed (validated)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = [k for k in changes if k not in values]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        values.update(changes)
        return FixedConfig(**values)  # type: ignore[arg-type]


# --- the model, prepared on the host at load -----------------------------------------------------


def _host_round(v: np.ndarray, fmt: Fmt) -> np.ndarray:
    return np.clip(np.round(np.ldexp(np.asarray(v, dtype=np.float64), fmt.frac)),
                   fmt.lo, fmt.hi).astype(np.int64)


def _float_mantissa(c: float, bits: int) -> tuple[int, int]:
    """``c > 0`` as ``(m, e)``, ``c ~ m * 2**-e``, ``2**(bits-1) <= m < 2**bits``."""
    e = bits - 1 - math.floor(math.log2(c))
    m = round(math.ldexp(c, e))
    if m >= (1 << bits):
        e -= 1
        m = round(math.ldexp(c, e))
    return m, e


@dataclass(frozen=True, eq=False)
class FixedBitLinear:
    """One BitLinear as the token engine sees it: ternary ``codes`` (M x K), the norm weight
    mantissas ``v`` (the unit's ``weight_width``), and ``const = (c_m, c_e)``:
    ``sqrt(K) / (q_max * s_w) * 2**-e_w ~ c_m * 2**-c_e``, a ``scale_bits`` mantissa."""

    name: str
    codes: np.ndarray
    v: np.ndarray
    const: tuple[int, int]


@dataclass(frozen=True, eq=False)
class FixedNorm:
    """One RMSNorm's host constants: weight mantissas ``v`` (``norm_width``), exponent
    ``e``, ``eps_q = round(eps * K * 4**x_frac)``, ``sqrtk`` = :func:`sqrt_mantissa` of K."""

    v: np.ndarray
    e: int
    eps_q: int
    sqrtk: tuple[int, int]


class FixedModel:
    """An :class:`~mmfree.golden.hgrn_bit.HGRNBitModel` converted once, on the host, into
    the integers the token engine holds (norm weights, lower bounds, BitLinear constants,
    tables); the embeddings stay on the host, one row per token (:func:`embed_fixed`)."""

    def __init__(self, model: HGRNBitModel, cfg: FixedConfig | None = None) -> None:
        self.model = model
        self.cfg = cfg = cfg or FixedConfig()
        c = model.config
        d, eps = c.hidden_size, c.rms_norm_eps
        self.arith = NormBitLinear(cfg.bitlinear)

        def norm(name: str, x_frac: int) -> FixedNorm:
            v, e = to_block_float(model.norms[name], cfg.norm_width)
            eps_q = round(eps * d * 4.0 ** x_frac)
            return FixedNorm(v, e, eps_q, sqrt_mantissa(d, cfg.scale_bits))

        self.norms: dict[str, FixedNorm] = {}
        for n in range(c.num_hidden_layers):
            p = f"model.layers.{n}."
            self.norms[p + "attn_norm"] = norm(p + "attn_norm", cfg.res_frac)
            self.norms[p + "attn.g_norm"] = norm(p + "attn.g_norm", cfg.act_frac)
            self.norms[p + "mlp_norm"] = norm(p + "mlp_norm", cfg.res_frac)
        self.norms["model.norm"] = norm("model.norm", cfg.res_frac)
        lbs = (model.lower_bounds if model.lower_bounds is not None
               else np.zeros((c.num_hidden_layers, d)))
        gate = cfg.gate
        self.lb = [_host_round(lbs[n] if n > 0 else np.zeros(d), gate)
                   for n in range(c.num_hidden_layers)]
        self.one_minus_lb = [cfg.one - lb for lb in self.lb]
        q_max = cfg.bitlinear.q_max
        self.bitlinears: dict[str, FixedBitLinear] = {}
        for name, w in model.bitlinears.items():
            v, e_w = self.arith.norm_weight(w.norm)
            k = w.codes.shape[1]
            const = _float_mantissa(math.sqrt(k) / (q_max * w.scale) * 2.0 ** -e_w,
                                    cfg.scale_bits)
            self.bitlinears[name] = FixedBitLinear(name, w.codes, v, const)

    def init_state(self) -> list[np.ndarray]:
        """The recurrent state: one zero ``state`` vector per layer."""
        c = self.model.config
        return [np.zeros(c.hidden_size, dtype=np.int64) for _ in range(c.num_hidden_layers)]

    def logits_float(self, logits: np.ndarray) -> np.ndarray:
        """The host's float64 logits from the engine's ``res`` integers (exact)."""
        return np.ldexp(logits.astype(np.float64), -self.cfg.res_frac)


def embed_fixed(fm: FixedModel, token: int) -> np.ndarray:
    """Host side: the embedding row of ``token`` in ``res`` (round half to even,
    saturate)."""
    return _host_round(fm.model.embed(token), fm.cfg.res)


#: the BitLinear unit: (input mantissas m, norm weight mantissas v, codes) -> (acc, D, E)
Device = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, int, int]]


@dataclass(frozen=True)
class FixedStep:
    """One token's results: the logits (``res`` integers), the argmax, the new state."""

    logits: np.ndarray
    argmax: int
    state: list[np.ndarray]


def fixed_token_step(fm: FixedModel, token: int, state: list[np.ndarray],
                     device: Device | None = None) -> FixedStep:
    """One token, integers only after :func:`embed_fixed` (the op sequence the engine's
    program runs). ``device`` evaluates each BitLinear on the unit (default: the golden
    :meth:`NormBitLinear.device`). ``state`` is not modified.

    Per layer ``n`` (F = act_frac, Fs = state_frac, G = gate_frac)::

        h  = vec_rmsnorm(x, res_frac, attn_norm)                        act
        i, f, g = rescale(BitLinear(h)) for i_proj, f_proj, g_proj      act
        sg = vec_sigmoid(f, F)                                          gate
        f  = vec_add(lb[n], vec_mul(1 - lb[n], sg, G, gate), gate)      (lb[0] = 0)
        omf = vec_sub(2**G, f, gate)                                    1 - f
        si = vec_silu(i, F)                                             act
        s  = vec_fma2(f, s, si, omf, Fs - F, G, state)                  the recurrence
        gn = vec_rmsnorm(g, F, g_norm)                                  act
        o  = vec_mul(gn, vec_silu(s, Fs), F, act)
        x  = vec_add(x, rescale_res(BitLinear(o)), res)                 o_proj
        h  = vec_rmsnorm(x, res_frac, mlp_norm)
        y  = rescale(BitLinear(h)) for gate_proj                        act, 2I
        u  = vec_mul(vec_silu(y[:I], F), y[I:], F, act)
        x  = vec_add(x, rescale_res(BitLinear(u)), res)                 down_proj

    then ``logits = rescale_res(BitLinear(vec_rmsnorm(x, res_frac, norm)))`` and
    ``vec_argmax``. ``rescale(...)`` is :func:`sc_rescale` + :func:`vec_mul` of the
    accumulator into ``act`` (``rescale_res``: into ``res``)."""
    cfg, model = fm.cfg, fm.model
    c = model.config
    inter = c.intermediate
    dev = device or fm.arith.device
    act, res, gate, st = cfg.act, cfg.res, cfg.gate, cfg.state
    big_f, fs, big_g = cfg.act_frac, cfg.state_frac, cfg.gate_frac

    def norm(x: np.ndarray, x_frac: int, name: str) -> np.ndarray:
        nw = fm.norms[name]
        return vec_rmsnorm(x, x_frac, nw.v, nw.e, nw.eps_q, nw.sqrtk, cfg)

    def bitlinear(name: str, m: np.ndarray, out: Fmt) -> np.ndarray:
        w = fm.bitlinears[name]
        acc, scale, exp = dev(m, w.v, w.codes)
        g, shift = sc_rescale(scale, exp, w.const, out.frac, cfg)
        return vec_mul(acc, g, shift, out)

    x = embed_fixed(fm, token)
    new_state = []
    for n in range(c.num_hidden_layers):
        p = f"model.layers.{n}."
        h = norm(x, cfg.res_frac, p + "attn_norm")
        i = bitlinear(p + "attn.i_proj", h, act)
        f = bitlinear(p + "attn.f_proj", h, act)
        g = bitlinear(p + "attn.g_proj", h, act)
        sg = vec_sigmoid(f, big_f, cfg)
        fg = vec_add(fm.lb[n], vec_mul(fm.one_minus_lb[n], sg, big_g, gate), gate)
        omf = vec_sub(cfg.one, fg, gate)
        si = vec_silu(i, big_f, cfg)
        s = vec_fma2(fg, state[n], si, omf, fs - big_f, big_g, st)
        new_state.append(s)
        gn = norm(g, big_f, p + "attn.g_norm")
        o = vec_mul(gn, vec_silu(s, fs, cfg), big_f, act)
        x = vec_add(x, bitlinear(p + "attn.o_proj", o, res), res)
        h = norm(x, cfg.res_frac, p + "mlp_norm")
        y = bitlinear(p + "mlp.gate_proj", h, act)
        u = vec_mul(vec_silu(y[:inter], big_f, cfg), y[inter:], big_f, act)
        x = vec_add(x, bitlinear(p + "mlp.down_proj", u, res), res)
    h = norm(x, cfg.res_frac, "model.norm")
    logits = bitlinear("lm_head", h, res)
    return FixedStep(logits, vec_argmax(logits), new_state)
