"""FuseSoC accepts the mmfree core: its generator runs and edalize lints the result."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmfree.flow import toolchain
from mmfree.flow.generate import to_verilog
from mmfree.hdl import build
from mmfree.spec import TernaryCoreSpec

from ..conftest import require_simulator

ROOT = Path(__file__).resolve().parents[2]


def test_fusesoc_generates_and_lints_the_example_core(tmp_path):
    require_simulator("verilator")
    fusesoc = shutil.which("fusesoc", path=str(Path(sys.executable).parent))
    if fusesoc is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs fusesoc (pip install -e '.[dev]')")
        pytest.skip("FUSESOC MISSING: pip install fusesoc")
    env = {**os.environ, **toolchain.verilator_env()}
    # the generator runs under `python3` from PATH: this environment's
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    proc = subprocess.run([fusesoc, "--cores-root", str(ROOT / "fusesoc"), "run", "--target",
                           "lint", "mmfree:examples:ternary_core"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    generated = list(tmp_path.glob("build/*/lint-verilator/src/*/mmfree_ternary64.v"))
    assert len(generated) == 1
    want = to_verilog(build(TernaryCoreSpec(lanes=64, tree_levels_per_stage=1)), "mmfree_ternary64")
    assert generated[0].read_text() == want
