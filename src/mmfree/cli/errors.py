"""One exit-code convention and one place where expected errors become one-line messages.

Every command returns (and ``mmfree`` exits with):

* :data:`OK` (0): done, and every check it makes was met;
* :data:`CHECK_FAILED` (1): a check failed (a mismatch, timing, lint findings, a tool that
  failed on a valid design);
* :data:`BAD_INPUT` (2): bad input (an argument, a file) or a missing tool; nothing was done.

Commands report bad input by raising :class:`UsageError` with a message that names the
argument. :func:`run_command` turns it, and the library's own expected errors listed in
:func:`expected_errors`, into one line on standard error, ``mmfree: <message>``, and the
exit code: never a traceback. (argparse's own usage errors exit with 2 as well.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

__all__ = ["BAD_INPUT", "CHECK_FAILED", "OK", "UsageError", "expected_errors", "run_command"]

OK, CHECK_FAILED, BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user; the message names the argument (exit :data:`BAD_INPUT`)."""


def expected_errors() -> dict[type[BaseException], int]:
    """The exceptions that are an expected outcome of a command, and their exit codes.

    Everything else is a bug and keeps its traceback. Imported lazily, so that ``mmfree
    --help`` stays fast.
    """
    from ..flow.synth import SynthesisError
    from ..flow.toolchain import ToolMissing
    from ..model.config import ConfigError
    return {UsageError: BAD_INPUT, ToolMissing: BAD_INPUT, ConfigError: BAD_INPUT,
            SynthesisError: CHECK_FAILED}


def run_command(command: Callable[[argparse.Namespace], int | None],
                args: argparse.Namespace) -> int:
    """Run ``command(args)``; return its exit code, or print an expected error as one line
    ``mmfree: ...`` and return its code (:func:`expected_errors`)."""
    try:
        return int(command(args) or OK)
    except Exception as e:
        codes = expected_errors()
        for kind, code in codes.items():
            if isinstance(e, kind):
                message = str(e).strip().replace("\n", " ")
                print(f"mmfree: {message}", file=sys.stderr)
                return code
        raise
