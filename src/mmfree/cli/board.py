"""``mmfree board``: self-test bitstreams for the reference boards."""

from __future__ import annotations

import argparse

from .errors import CHECK_FAILED, OK, UsageError
from .options import check_output_dir

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mmfree board``."""
    from ..flow.boards import BOARDS
    b = sub.add_parser(
        "board", help="self-test bitstream for a reference board (ECP5, iCE40; Artix-7 "
                      "synthesis only)",
        description="Build the self-test top level (LFSR pattern generator -> ternary core -> "
                    "independent checker -> LEDs and a UART status line) for BOARD with its "
                    "pin file from constraints/: Yosys, nextpnr against the board's clock, "
                    "then ecppack (.bit) or icepack (.bin). Writes the Verilog, the pin file, "
                    "the bitstream and a resource/Fmax summary. Artix-7: synthesis and "
                    "resource counts only (no open place-and-route). Cached like mmfree synth. "
                    "Exit 1 if timing fails. Boards: " + "; ".join(
                        f"{k} ({v.title})" for k, v in BOARDS.items()))
    b.add_argument("board", choices=sorted(BOARDS), metavar="BOARD",
                   help=", ".join(sorted(BOARDS)))
    b.add_argument("-o", "--output", help="output folder, created if missing (default "
                                          "out/board/BOARD)")
    b.add_argument("--inject-error", action="store_true",
                   help="build a bitstream that corrupts every result (demonstrates FAIL)")
    b.add_argument("--pass-after", type=int, default=1000,
                   help="results that must match before the pass LED lights (default 1000)")
    b.add_argument("--no-cache", action="store_true", help="ignore cached results")
    b.add_argument("--quiet", action="store_true", help="no progress indication")


def run(args: argparse.Namespace) -> int:
    from ..flow.board_build import build_board
    from ..flow.boards import BOARDS
    board = BOARDS[args.board]
    if args.pass_after < 1:
        raise UsageError(f"--pass-after must be at least 1, got {args.pass_after}")
    out = check_output_dir("-o/--output", args.output or f"out/board/{board.name}")
    try:
        report = build_board(board, out, inject_error=args.inject_error,
                             pass_after=args.pass_after, progress=not args.quiet,
                             use_cache=not args.no_cache)
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None
    print(report.summary().rstrip())
    print(f"written to {out}/" + (" [cached]" if report.cached else
                                  f" [{report.seconds:.0f} s]"))
    return OK if report.met is not False else CHECK_FAILED
