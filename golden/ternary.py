"""Bit-exact reference for ternary weights: codes, 1.6-bit packing and the matrix-vector product.

Everything here defines the arithmetic the RTL must reproduce exactly.

**Weight code (2 bits per weight, sign-magnitude).** Bit 0 says "non-zero", bit 1 says
"negative":

======  ========  ===========================================================
code    weight    note
======  ========  ===========================================================
0b00    0
0b01    +1
0b11    -1        (so valid codes read as 2-bit two's complement too)
0b10    0         "negative zero": never produced by :func:`encode_codes`;
                  accepted and treated as 0 by the hardware and by
                  :func:`decode_codes`, because the magnitude bit is clear.
======  ========  ===========================================================

**Packing (5 trits per byte, 1.6 bits per weight).** Weight ``t`` in {-1, 0, +1} becomes the
base-3 digit ``d = t + 1`` in {0, 1, 2}; the 5 weights ``t[5j .. 5j+4]`` become byte
``j = sum(d[5j+i] * 3**i)``, the first weight in the least significant digit. Bytes are in
0..242. A weight count that is not a multiple of 5 is padded with zero weights (digit 1).
Bytes 243..255 are invalid: :func:`unpack_trits` decodes each such byte to five zero weights
and reports it, exactly as the hardware unpacker does (which also raises a sticky error flag).

**Matrix-vector product.** ``y[m] = sum_k W[m, k] * x[k]`` with signed ``act_width``-bit
activations, computed exactly and then wrapped to a signed ``acc_width``-bit two's complement
result (the accumulator wraps; it never saturates). Because wrapping is modular, wrapping
the exact sum once equals wrapping after every addition, which is what the RTL does. The
sum cannot wrap while ``K <= max_exact_k(act_width, acc_width)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["CODE_MINUS", "CODE_NEG_ZERO", "CODE_PLUS", "CODE_ZERO", "MAX_VALID_BYTE",
           "TRITS_PER_BYTE", "check_activations", "check_ternary", "decode_codes", "encode_codes",
           "max_exact_k", "pack_trits", "ternary_matvec", "trit_byte_table", "unpack_trits", "wrap"]

CODE_ZERO = 0b00
CODE_PLUS = 0b01
CODE_MINUS = 0b11
CODE_NEG_ZERO = 0b10
TRITS_PER_BYTE = 5
MAX_VALID_BYTE = 3**TRITS_PER_BYTE - 1  # 242


def _as_int(a: npt.ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def check_ternary(w: npt.ArrayLike) -> np.ndarray:
    """Return ``w`` as int64, raising ``ValueError`` unless every element is -1, 0 or +1."""
    arr = _as_int(w, "ternary weights")
    bad = (arr < -1) | (arr > 1)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"ternary weights must be in {{-1, 0, +1}}; found {arr[idx]} at {idx}")
    return arr


def encode_codes(w: npt.ArrayLike) -> np.ndarray:
    """Map ternary weights to 2-bit codes (0 -> 0b00, +1 -> 0b01, -1 -> 0b11), as uint8."""
    arr = check_ternary(w)
    return np.where(arr == 0, CODE_ZERO, np.where(arr > 0, CODE_PLUS, CODE_MINUS)).astype(np.uint8)


def decode_codes(codes: npt.ArrayLike) -> np.ndarray:
    """Map 2-bit codes to weights; 0b10 ("negative zero") decodes to 0 like the hardware."""
    c = _as_int(codes, "codes")
    if ((c < 0) | (c > 3)).any():
        raise ValueError("codes must be 2-bit values 0..3")
    mag = c & 1
    neg = (c >> 1) & 1
    return (mag * (1 - 2 * neg)).astype(np.int64)


def pack_trits(w: npt.ArrayLike) -> np.ndarray:
    """Pack a 1-D ternary vector into ``ceil(len/5)`` bytes (uint8), padding with zero weights."""
    arr = check_ternary(w)
    if arr.ndim != 1:
        raise ValueError(f"pack_trits takes a 1-D vector, got shape {arr.shape}")
    n_bytes = -(-arr.size // TRITS_PER_BYTE)
    digits = np.ones(n_bytes * TRITS_PER_BYTE, dtype=np.int64)
    digits[: arr.size] = arr + 1
    digits = digits.reshape(n_bytes, TRITS_PER_BYTE)
    weights = 3 ** np.arange(TRITS_PER_BYTE, dtype=np.int64)
    return (digits @ weights).astype(np.uint8)


def unpack_trits(packed: npt.ArrayLike, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Unpack ``count`` weights from packed bytes.

    Returns ``(weights, invalid)`` where ``invalid`` is a boolean array, one entry per byte,
    true for bytes above 242; such a byte decodes to five zero weights. Raises ``ValueError``
    if ``count`` needs more bytes than given.
    """
    b = _as_int(packed, "packed bytes")
    if b.ndim != 1:
        raise ValueError(f"unpack_trits takes a 1-D byte vector, got shape {b.shape}")
    if ((b < 0) | (b > 255)).any():
        raise ValueError("packed bytes must be in 0..255")
    if count < 0 or -(-count // TRITS_PER_BYTE) > b.size:
        raise ValueError(f"{count} weights need {-(-count // TRITS_PER_BYTE)} bytes, got {b.size}")
    invalid = b > MAX_VALID_BYTE
    digits = (b[:, None] // 3 ** np.arange(TRITS_PER_BYTE)) % 3
    digits[invalid] = 1
    return (digits.reshape(-1)[:count] - 1).astype(np.int64), invalid


def trit_byte_table() -> list[int]:
    """The 256-entry decode table of the hardware unpacker.

    Entry ``b`` holds five 2-bit codes (code of trit ``i`` in bits ``2i+1..2i``); invalid bytes
    (> 242) map to five zero codes.
    """
    table = []
    for b in range(256):
        w, _ = unpack_trits(np.array([b]), TRITS_PER_BYTE)
        table.append(sum(int(c) << (2 * i) for i, c in enumerate(encode_codes(w))))
    return table


def wrap(value: npt.ArrayLike, width: int) -> np.ndarray:
    """Wrap integers to signed ``width``-bit two's complement (``width`` <= 64)."""
    if not 1 <= width <= 64:
        raise ValueError(f"width must be in 1..64, got {width}")
    v = _as_int(value, "value")
    if width == 64:
        return v  # int64 arithmetic already wraps at 64 bits
    m = np.int64(1) << width
    half = np.int64(1) << (width - 1)
    return ((v + half) % m) - half


def check_activations(x: npt.ArrayLike, act_width: int) -> np.ndarray:
    """Return ``x`` as int64, raising ``ValueError`` if any value does not fit ``act_width``."""
    arr = _as_int(x, "activations")
    lo, hi = -(1 << (act_width - 1)), (1 << (act_width - 1)) - 1
    if ((arr < lo) | (arr > hi)).any():
        raise ValueError(f"activations must fit signed {act_width} bits ({lo}..{hi})")
    return arr


def max_exact_k(act_width: int = 8, acc_width: int = 32) -> int:
    """Largest K for which no ternary product of ``act_width``-bit activations can wrap.

    The extreme sums are ``K * 2**(act_width-1)`` (all -1 weights on the most negative
    activation) and its negation; the positive one must not exceed ``2**(acc_width-1) - 1``.
    """
    return ((1 << (acc_width - 1)) - 1) // (1 << (act_width - 1))


def ternary_matvec(
    w: npt.ArrayLike, x: npt.ArrayLike, act_width: int = 8, acc_width: int = 32
) -> np.ndarray:
    """``y = W @ x`` for ternary ``W`` (M x K) and signed ``act_width``-bit ``x`` (K).

    The exact integer sum is wrapped to signed ``acc_width`` bits, as the core's accumulator
    does. Returns int64 of shape (M,).
    """
    wa = check_ternary(w)
    xa = check_activations(x, act_width)
    if wa.ndim != 2 or xa.ndim != 1 or wa.shape[1] != xa.shape[0]:
        raise ValueError(f"shapes do not chain: W {wa.shape}, x {xa.shape}")
    # Exact: |sum| <= K * 2**15 fits int64 for any K numpy can hold.
    return wrap(wa @ xa, acc_width)
