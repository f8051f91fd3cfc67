"""Bit-exact reference for the board self-test's pattern generator and its expected results.

**LFSR.** A 31-bit Fibonacci LFSR with the maximal-length polynomial ``x^31 + x^28 + 1``
(period ``2**31 - 1``). State bit ``i`` is the bit produced ``i + 1`` steps ago (bit 0 the
newest). Each step produces ``new = s[30] ^ s[27]`` and shifts it in at bit 0. The seed is
the initial state and must be non-zero.

**Beats.** Every beat of the self-test takes the next ``lanes * (2 + act_width)`` LFSR bits,
in the order produced: bits ``2i, 2i+1`` of the beat are lane ``i``'s weight code (first bit
the code's bit 0), then ``act_width`` bits per lane for the activations (lane 0 first, least
significant bit first, two's complement). All four 2-bit codes occur, so the self-test also
exercises the "negative zero" code ``0b10`` (weight 0). Every ``groups``-th beat ends a row
(``last``); a row's result is ``sum_k w[k] * x[k]`` over its ``groups * lanes`` terms,
wrapped to signed ``acc_width`` bits (:func:`mmfree.golden.ternary.ternary_matvec`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ternary import decode_codes, wrap

__all__ = ["DEFAULT_SEED", "LFSR_TAPS", "LFSR_WIDTH", "Beats", "beat_bits", "check_seed",
           "expected_results", "lfsr_bits", "pattern", "row_results"]

LFSR_WIDTH = 31
LFSR_TAPS = (30, 27)  #: state bits XORed into the new bit (x^31 + x^28 + 1)
DEFAULT_SEED = 0x1ACE_B00C


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is a valid (non-zero, 31-bit) LFSR state; else raise."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not 0 < seed < (1 << LFSR_WIDTH):
        raise ValueError(f"seed must be in 1..{(1 << LFSR_WIDTH) - 1}, got {seed}")
    return seed


def lfsr_bits(seed: int, count: int) -> tuple[np.ndarray, int]:
    """The next ``count`` bits of the LFSR from state ``seed``; returns ``(bits, new_state)``."""
    state = check_seed(seed)
    out = np.empty(count, dtype=np.int64)
    mask = (1 << LFSR_WIDTH) - 1
    for i in range(count):
        new = ((state >> LFSR_TAPS[0]) ^ (state >> LFSR_TAPS[1])) & 1
        state = ((state << 1) | new) & mask
        out[i] = new
    return out, state


def beat_bits(lanes: int, act_width: int) -> int:
    """LFSR bits consumed per beat: a 2-bit code and an activation per lane."""
    return lanes * (2 + act_width)


@dataclass(frozen=True)
class Beats:
    """``n`` beats of the pattern generator: per beat ``lanes`` codes and activations."""

    codes: np.ndarray  #: (n, lanes) 2-bit weight codes 0..3
    x: np.ndarray  #: (n, lanes) signed activations
    last: np.ndarray  #: (n,) 1 on a row's final beat
    state: int  #: LFSR state after the last beat


def pattern(lanes: int, act_width: int, groups: int, n: int,
            seed: int = DEFAULT_SEED) -> Beats:
    """The first ``n`` beats the self-test's pattern generator produces."""
    per = beat_bits(lanes, act_width)
    bits, state = lfsr_bits(seed, per * n)
    bits = bits.reshape(n, per)
    code_bits = bits[:, : 2 * lanes].reshape(n, lanes, 2)
    codes = code_bits[..., 0] | (code_bits[..., 1] << 1)
    act_bits = bits[:, 2 * lanes:].reshape(n, lanes, act_width)
    raw = (act_bits << np.arange(act_width)).sum(axis=2)
    x = wrap(raw, act_width)
    last = ((np.arange(n) % groups) == groups - 1).astype(np.int64)
    return Beats(codes, x, last, state)


def row_results(beats: Beats, acc_width: int) -> np.ndarray:
    """Expected result of every complete row in ``beats`` (signed ``acc_width`` bits)."""
    terms = (decode_codes(beats.codes) * beats.x).sum(axis=1)
    ends = np.flatnonzero(beats.last)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    sums = np.array([terms[s:e + 1].sum() for s, e in zip(starts, ends, strict=True)],
                    dtype=np.int64)
    return wrap(sums, acc_width)


def expected_results(lanes: int, act_width: int, acc_width: int, groups: int, rows: int,
                     seed: int = DEFAULT_SEED) -> np.ndarray:
    """The first ``rows`` results the self-test's checker expects."""
    return row_results(pattern(lanes, act_width, groups, rows * groups, seed), acc_width)
