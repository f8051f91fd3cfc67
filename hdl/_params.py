"""Constructor parameter checks shared by the components."""

from __future__ import annotations


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """Return ``value`` if it is an int in ``lo..hi``; otherwise raise naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return value
