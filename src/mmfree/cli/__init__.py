"""The ``mmfree`` command line.

One module per group of commands, each with ``add_parser(subparsers)`` and
``run(args) -> int``: :mod:`.units` (generate, lint, cosim-unit, synth), :mod:`.run`
(cosim), :mod:`mmfree.lm` (run), :mod:`.demo`, :mod:`.model` (project, compare, sweep),
:mod:`.explore` (explore, regress), :mod:`.doctor`, :mod:`.board`. :func:`main` runs the
chosen command through :func:`.errors.run_command`, the one place where expected errors
become a one-line ``mmfree: ...`` message and an exit code (0 done and every check met,
1 a check failed, 2 bad input or a missing tool).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import lm
from . import board, demo, doctor, explore, model, run, units
from .errors import run_command

__all__ = ["COMMANDS", "build_parser", "main"]

#: The command modules, in the order ``mmfree --help`` lists their commands.
COMMANDS = (units, run, lm, demo, model, explore, doctor, board)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; ``args.command`` names the command, ``args.module`` the
    module that runs it."""
    p = argparse.ArgumentParser(
        prog="mmfree",
        description="MatMul-free LM hardware: generate Verilog for the project's units, lint "
                    "it, and co-simulate it against bit-exact numpy golden models.",
        epilog="Run 'mmfree COMMAND --help' for a command's options. Exit codes: 0 done and "
               "every check met, 1 a check failed, 2 bad input or a missing tool.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        before = set(sub.choices)
        module.add_parser(sub)
        for name in set(sub.choices) - before:
            sub.choices[name].set_defaults(module=module)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmfree`` command."""
    args = build_parser().parse_args(argv)
    return run_command(args.module.run, args)


if __name__ == "__main__":
    sys.exit(main())
