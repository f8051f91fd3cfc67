"""Command-line options built from the unit specs, and the simulator choice.

A unit's options (``--lanes``, ``--acc-width``, ``--unsigned`` ...) come from its spec's
parameters (:meth:`mmfree.spec.UnitSpec.parameters`): flag, type, choices, default and help
text (what it is, its limits, its default) are written once, in the spec.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ..spec import UNITS, UnitSpec
from .errors import UsageError

__all__ = ["RENAMED", "HelpFormatter", "add_renamed", "add_sim_option", "add_unit_options",
           "add_unit_subparsers", "check_output_dir", "check_output_file", "int_list",
           "simulators", "unit_spec", "write_output"]


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default: ``(default X)`` is added where the help
    text does not already say it (flags and options without a default get nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS)
                or action.option_strings == [] or isinstance(default, bool)):
            return text
        return f"{text} (default {default})".strip()


#: Old spellings of options, by command: ``(command, old) -> the new spelling``. They stay
#: accepted by the parser only to fail with one line that names the new spelling (exit 2).
RENAMED: dict[tuple[str, str], str] = {}


class _Renamed(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        parser.exit(2, f"mmfree: {option_string} was renamed: use {self.const}\n")


def add_renamed(parser: argparse.ArgumentParser, command: str, old: str, new: str) -> None:
    """Keep the old spelling ``old`` as an error that names ``new`` (hidden from help)."""
    RENAMED[(command, old)] = new
    parser.add_argument(old, action=_Renamed, nargs="?", const=new, help=argparse.SUPPRESS)


def int_list(option: str, text: str | None, lo: int, hi: int) -> list[int] | None:
    """Comma-separated whole numbers in ``lo..hi`` (``None`` stays ``None``); a bad list is a
    :class:`~.errors.UsageError` naming ``option``."""
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated whole numbers, got {text!r}"
                         ) from None
    bad = [v for v in values if not lo <= v <= hi]
    if bad:
        raise UsageError(f"{option}: every value must be in {lo}..{hi}, got {bad[0]}")
    return values


def check_output_dir(option: str, path: str | Path) -> Path:
    """Create output folder ``path`` (and its parents) before any work is done; a path that
    is a file or cannot be created or written is a :class:`~.errors.UsageError`."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{option} {path}: is an existing file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot create the folder: {e.strerror}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".mmfree-check."):
            pass
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write in the folder: {e.strerror}"
                         ) from None
    return out


def check_output_file(option: str, path: str | None) -> None:
    """Check, before any work is done, that output file ``path`` can be written (``-`` is
    standard output; ``None`` is no file): its folder exists and is writable and the path is
    not a folder."""
    if path is None or path == "-":
        return
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {parent} does not exist")
    try:  # what really happens when the file is written (os.access trusts root too much)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{out.name}."):
            pass
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write in {parent}: {e.strerror}") from None


def write_output(option: str, path: str, text: str) -> None:
    """Write ``text`` to file ``path`` (``-``: standard output), in full or not at all (a
    temporary file renamed into place); an error is a :class:`~.errors.UsageError` naming
    ``option``."""
    if path == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{option} {path}: cannot write: {e.strerror}") from None


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
        p = units.add_parser(cls.name, help=cls.summary, formatter_class=HelpFormatter,
                             description=f"{command} for the {cls.summary}.")
        if extra is not None:
            extra(p)
        add_unit_options(p, cls)


def add_sim_option(parser: argparse.ArgumentParser) -> None:
    """``--sim``: one of the simulators :mod:`mmfree.flow.toolchain` knows, or both."""
    from ..flow.toolchain import SIMULATORS
    parser.add_argument("--sim", choices=[*SIMULATORS, "both"], default="both",
                        help=f"simulator: {', '.join(SIMULATORS)} or both, one after the "
                             "other (default both)")


def simulators(choice: str) -> list[str]:
    """The simulators ``--sim`` selects."""
    from ..flow.toolchain import SIMULATORS
    return list(SIMULATORS) if choice == "both" else [choice]
