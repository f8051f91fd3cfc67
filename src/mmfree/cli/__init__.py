"""The ``mmfree`` command line.

One module per group of commands, each with ``add_parser(subparsers)`` and
``run(args) -> int``: :mod:`.units` (generate, lint, cosim-unit, synth), :mod:`mmfree.lm`
(run, and its alias cosim: run --backend rtl), :mod:`.demo`, :mod:`.model` (project,
compare, sweep), :mod:`.explore` (explore, regress), :mod:`.doctor`, :mod:`.board`,
:mod:`.fusesoc`. :func:`main` runs the chosen command through :func:`.errors.run_command`,
the one place where expected errors become a one-line ``mmfree: ...`` message and an exit
code (0 done and every check met, 1 a check failed, 2 bad input or a missing tool).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from .. import lm
from . import board, demo, doctor, explore, fusesoc, model, units
from .errors import CHECK_FAILED, run_command
from .options import HelpFormatter

__all__ = ["COMMANDS", "build_parser", "main"]

#: The command modules, in the order ``mmfree --help`` lists their commands.
COMMANDS = (units, lm, demo, model, explore, doctor, board, fusesoc)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; ``args.command`` names the command, ``args.module`` the
    module that runs it."""
    p = argparse.ArgumentParser(
        prog="mmfree", formatter_class=HelpFormatter,
        description="MatMul-free LM hardware: generate Verilog for the project's units, lint "
                    "it, and co-simulate it against bit-exact numpy golden models.",
        epilog="Run 'mmfree COMMAND --help' for a command's options. Exit codes: 0 done and "
               "every check met, 1 a check failed, 2 bad input or a missing tool.")
    p.add_argument("--version", action="version", version=f"mmfree {_version()}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        before = set(sub.choices)
        module.add_parser(sub)
        for name in set(sub.choices) - before:
            sub.choices[name].set_defaults(module=module)
            sub.choices[name].formatter_class = HelpFormatter
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("mmfree")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmfree`` command.

    A closed standard output (``mmfree project ... | head -1``) ends the command quietly
    with exit 1: it could not finish, but nothing is wrong with the input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fusesoc"] and not {"-h", "--help"} & set(argv[1:2]):
        # everything after the command is FuseSoC's, options included
        args = argparse.Namespace(command="fusesoc", module=fusesoc, args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    # Amaranth warns about components built only for their port layouts (a spec's
    # description, a sized unit): nothing a user can act on.
    warnings.filterwarnings("ignore", message=".* created but never used")
    try:
        status = run_command(args.module.run, args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python would report the pipe again when it flushes at exit: point stdout at
        # /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return CHECK_FAILED


if __name__ == "__main__":
    sys.exit(main())
