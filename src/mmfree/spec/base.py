"""The base of every unit specification: parameters with limits and help, validation, and the
integer helpers the cycle formulas are written with.

A unit specification is a frozen dataclass whose fields are the unit's parameters (the
keyword arguments of its Amaranth constructor). Each field is declared with :func:`param`:
its default, a one-line help text, and its limits (whole numbers), its choices (text) or
nothing (a flag). :meth:`UnitSpec.validate` checks every field against them and raises
``TypeError``/``ValueError`` naming the parameter. Nothing here knows the command line or
Amaranth: the CLI builds its options from :meth:`UnitSpec.parameters`, the hardware builds
itself from :meth:`UnitSpec.kwargs` (``mmfree.hdl.build``), the testbenches read
:meth:`UnitSpec.from_config`, and the cycle model evaluates :attr:`UnitSpec.latency` and
the ``cycles`` methods, whose formulas also accept numpy arrays for the numeric fields (one
evaluation for many design points).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

import numpy as np

__all__ = ["Bound", "Param", "UnitSpec", "at_least", "ceil_div", "ceil_log2", "check_int",
           "param"]


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """Return ``value`` if it is an int in ``lo..hi``; otherwise raise naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool; otherwise raise naming the parameter."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def ceil_div(a: Any, b: Any) -> Any:
    """``ceil(a / b)`` for whole numbers (ints or numpy integer arrays)."""
    return -(-a // b)


def ceil_log2(n: Any) -> Any:
    """``ceil(log2(n))`` for ``n >= 1``: the levels of a balanced binary tree over ``n``
    values (ints or numpy integer arrays)."""
    if isinstance(n, int | np.integer):
        return (int(n) - 1).bit_length()
    arr = np.asarray(n, dtype=np.int64)
    return np.vectorize(lambda v: (int(v) - 1).bit_length(), otypes=[np.int64])(arr)


def at_least(a: Any, lo: int) -> Any:
    """``max(a, lo)`` for ints or numpy arrays."""
    return max(a, lo) if isinstance(a, int | np.integer) else np.maximum(a, lo)


@dataclass(frozen=True)
class Bound:
    """A limit that depends on other parameters: ``value(spec)``, described as ``text``."""

    value: Callable[[Any], int]
    text: str


@dataclass(frozen=True)
class Param:
    """What a parameter is (the metadata of a :func:`param` field)."""

    help: str
    lo: int | Bound | None = None
    hi: int | Bound | None = None
    choices: tuple[str, ...] | None = None
    flag: str | None = None  #: command-line flag, default ``--name-with-dashes``
    negate: bool = False  #: the flag sets the parameter to False (``--unsigned``)

    def limit_text(self) -> str:
        """The allowed values, as text: ``1..1024``, ``act-width + 1..64``, ``expand, select``."""
        if self.choices:
            return ", ".join(self.choices)
        if self.lo is None and self.hi is None:
            return ""
        def text(b: int | Bound | None) -> str:
            return b.text if isinstance(b, Bound) else str(b)
        return f"{text(self.lo)}..{text(self.hi)}"


def param(default: Any, help: str, *, lo: int | Bound | None = None,
          hi: int | Bound | None = None, choices: tuple[str, ...] | None = None,
          flag: str | None = None, negate: bool = False) -> Any:
    """A unit parameter: a dataclass field with its default and :class:`Param` metadata."""
    return field(default=default, metadata={"param": Param(help, lo, hi, choices, flag, negate)})


@dataclass(frozen=True)
class UnitSpec:
    """One unit's parameters, their limits, its naming and its timing.

    Subclasses set the class attributes and declare their parameters with :func:`param`,
    in the order of the hardware constructor's keywords.
    """

    name: ClassVar[str]  #: the unit's name on the command line, e.g. ``ternary-core``
    summary: ClassVar[str]  #: one line: what it computes
    component: ClassVar[str]  #: dotted path of the Amaranth component class
    testbench: ClassVar[str]  #: dotted path of the cocotb test module

    # --- parameters -----------------------------------------------------------------------

    @classmethod
    def parameters(cls) -> list[tuple[str, Any, Param]]:
        """``(name, default, Param)`` of every parameter, in declaration order."""
        return [(f.name, f.default, f.metadata["param"]) for f in fields(cls)]

    @classmethod
    def limits(cls, name: str) -> tuple[int, int]:
        """The fixed limits ``(lo, hi)`` of integer parameter ``name``."""
        p = dict((n, p) for n, _, p in cls.parameters())[name]
        if not isinstance(p.lo, int) or not isinstance(p.hi, int):
            raise ValueError(f"{name} has no fixed limits")
        return p.lo, p.hi

    @classmethod
    def describe(cls, name: str) -> str:
        """Help text of parameter ``name``: what it is, its limits, its default."""
        default = {n: d for n, d, _ in cls.parameters()}[name]
        p = {n: p for n, _, p in cls.parameters()}[name]
        limits = "" if p.choices else p.limit_text()  # argparse lists the choices itself
        if isinstance(default, bool):
            shown = ("on" if default else "off") if not p.negate else (
                "off" if default else "on")
            return f"{p.help} (default {shown})"
        return f"{p.help}{', ' + limits if limits else ''} (default {default})"

    def validate(self) -> Self:
        """Check every parameter in declaration order; return ``self``.

        Raises ``TypeError`` (wrong type) or ``ValueError`` (out of range), naming the
        parameter."""
        for name, default, p in self.parameters():
            value = getattr(self, name)
            if isinstance(default, bool):
                check_bool(name, value)
            elif p.choices is not None:
                if value not in p.choices:
                    raise ValueError(f"{name} must be one of {', '.join(p.choices)}, "
                                     f"got {value!r}")
            elif isinstance(default, int):
                lo = p.lo.value(self) if isinstance(p.lo, Bound) else p.lo
                hi = p.hi.value(self) if isinstance(p.hi, Bound) else p.hi
                check_int(name, value, lo, hi)
        self._check()
        return self

    def _check(self) -> None:
        """Checks beyond the per-parameter limits (subclasses)."""

    def params(self) -> dict[str, Any]:
        """Every parameter, name -> value, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the component's constructor (default: every parameter)."""
        return self.params()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """A spec from the parameters found in ``config`` (other keys are ignored; missing
        parameters take their defaults)."""
        return cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    # --- naming and timing ----------------------------------------------------------------

    def top_name(self) -> str:
        """The default Verilog top module name, derived from the parameters."""
        raise NotImplementedError

    @property
    def latency(self) -> int:
        """Cycles from the input transfer that completes a result to its output transfer."""
        raise NotImplementedError

    def cycle_formula(self) -> str:
        """The unit's cycle count(s), as text (``NAME.md``, ``NAME.json``)."""
        raise NotImplementedError
