"""Command-line options built from the unit specs, and the simulator choice.

A unit's options (``--lanes``, ``--acc-width``, ``--unsigned`` ...) come from its spec's
parameters (:meth:`mmfree.spec.UnitSpec.parameters`): flag, type, choices, default and help
text (what it is, its limits, its default) are written once, in the spec.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from ..spec import UNITS, UnitSpec
from .errors import UsageError

__all__ = ["add_sim_option", "add_unit_options", "add_unit_subparsers", "simulators",
           "unit_spec"]


def add_unit_options(parser: argparse.ArgumentParser, cls: type[UnitSpec],
                     only: Iterable[str] | None = None, title: str | None = None) -> None:
    """Add an option for every parameter of ``cls`` (or those named in ``only``)."""
    group = parser.add_argument_group(title or f"{cls.name} parameters")
    keep = set(only) if only is not None else None
    for name, default, p in cls.parameters():
        if keep is not None and name not in keep:
            continue
        flag = p.flag or "--" + name.replace("_", "-")
        help_text = cls.describe(name)
        if isinstance(default, bool):
            action = "store_false" if p.negate else "store_true"
            group.add_argument(flag, dest=name, action=action, default=default,
                               help=help_text)
        elif p.choices is not None:
            group.add_argument(flag, dest=name, choices=p.choices, default=default,
                               help=help_text)
        else:
            group.add_argument(flag, dest=name, type=type(default), default=default,
                               metavar="N", help=help_text)


def unit_spec(cls: type[UnitSpec], args: argparse.Namespace, **fixed: object) -> UnitSpec:
    """The validated spec from the options :func:`add_unit_options` added (``fixed``
    overrides); a bad value is a :class:`~.errors.UsageError` naming the parameter."""
    names = [n for n, _, _ in cls.parameters() if hasattr(args, n) or n in fixed]
    try:
        return cls(**{n: getattr(args, n) for n in names if n not in fixed}, **fixed).validate()
    except (TypeError, ValueError) as e:
        raise UsageError(f"invalid {cls.name} parameter: {e}") from None


def add_unit_subparsers(parent: argparse.ArgumentParser, command: str,
                        extra: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """One sub-parser per unit of :data:`mmfree.spec.UNITS` under ``command`` (``args.unit``
    names it), each with the options ``extra`` adds and the unit's parameters."""
    units = parent.add_subparsers(dest="unit", required=True, metavar="UNIT", title="units")
    for cls in UNITS.values():
        p = units.add_parser(cls.name, help=cls.summary,
                             description=f"{command} for the {cls.summary}.")
        if extra is not None:
            extra(p)
        add_unit_options(p, cls)


def add_sim_option(parser: argparse.ArgumentParser) -> None:
    """``--sim``: one of the simulators :mod:`mmfree.flow.toolchain` knows, or both."""
    from ..flow.toolchain import SIMULATORS
    parser.add_argument("--sim", choices=[*SIMULATORS, "both"], default="both",
                        help=f"simulator: {', '.join(SIMULATORS)} or both (default both)")


def simulators(choice: str) -> list[str]:
    """The simulators ``--sim`` selects."""
    from ..flow.toolchain import SIMULATORS
    return list(SIMULATORS) if choice == "both" else [choice]
