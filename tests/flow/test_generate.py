"""Verilog generation: deterministic and path-free, in this process and in a fresh one."""

import subprocess
import sys

from mmfree.flow.generate import to_verilog
from mmfree.hdl import build
from mmfree.spec import TernaryCoreSpec


def test_verilog_is_deterministic_and_path_free(tmp_path):
    a = to_verilog(build(TernaryCoreSpec(lanes=7, packed=True)), "t")
    b = to_verilog(build(TernaryCoreSpec(lanes=7, packed=True)), "t")
    assert a == b
    assert "src =" not in a and "/work" not in a and "/home" not in a and str(tmp_path) not in a
    # in a fresh interpreter too (no hidden process state, e.g. name counters)
    code = ("from mmfree.flow.generate import to_verilog; from mmfree.hdl import build;"
            "from mmfree.spec import TernaryCoreSpec;"
            "print(to_verilog(build(TernaryCoreSpec(lanes=7, packed=True)), 't'), end='')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert out == a
