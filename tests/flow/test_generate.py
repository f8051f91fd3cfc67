"""Verilog generation: deterministic, path-free, lint-clean; the CLI around it."""

import json
import subprocess
import sys

import pytest

from mmfree.cli import main
from mmfree.flow.generate import to_verilog
from mmfree.flow.lint import lint
from mmfree.hdl import build
from mmfree.spec import TernaryCoreSpec

from ..conftest import require_simulator


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


def test_cli_generate_writes_verilog_and_ports(tmp_path, capsys):
    assert main(["generate", "ternary-core", "--lanes", "12", "--acc-width", "24",
                 "-o", str(tmp_path / "a"), "--name", "core12"]) == 0
    assert main(["generate", "ternary-core", "--lanes", "12", "--acc-width", "24",
                 "-o", str(tmp_path / "b"), "--name", "core12"]) == 0
    va, vb = (tmp_path / d / "core12.v" for d in "ab")
    assert va.read_bytes() == vb.read_bytes()
    assert "module core12(" in va.read_text()
    desc = json.loads((tmp_path / "a" / "core12.json").read_text())
    ports = {p["name"]: p for p in desc["ports"]}
    assert ports["w__payload"]["width"] == 2 * 12 + 1
    assert ports["x__payload"]["width"] == 8 * 12
    assert ports["y__payload"] == {"name": "y__payload", "direction": "output", "width": 24}
    assert desc["latency"] == 3
    assert "M * ceil(K / 12) + 3" in (tmp_path / "a" / "core12.md").read_text()
    assert desc["cycles"] == "M * ceil(K / 12) + 3 for an M x K product"


@pytest.mark.parametrize("argv,message", [
    (["generate", "ternary-core", "--lanes", "0", "-o", "x"], "lanes must be in 1..1024"),
    (["generate", "ternary-core", "--acc-width", "8", "-o", "x"], "acc_width must be in 9..64"),
])
def test_cli_rejects_bad_parameters(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)


@pytest.mark.parametrize("command", [[], ["generate"], ["lint"], ["cosim-unit"], ["demo"],
                                     ["doctor"], ["generate", "tensor-core"],
                                     ["cosim-unit", "tensor-core"],
                                     ["generate", "sparse-decode"],
                                     ["lint", "sparse-tensor-core"], ["cosim"],
                                     ["generate", "bitlinear-unit"]])
def test_help_explains_every_command(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "usage: mmfree" in text and len(text.splitlines()) > 4


@pytest.mark.parametrize("params", [
    {"lanes": 1}, {"lanes": 7, "packed": True}, {"lanes": 16}, {"lanes": 1, "packed": True},
    {"lanes": 64, "acc_width": 20}, {"lanes": 256, "acc_width": 12, "packed": True},
    {"lanes": 3, "act_width": 2, "acc_width": 3},
])
def test_lint_wall_only_documented_waivers(params):
    require_simulator("verilator")
    result = lint(to_verilog(build(TernaryCoreSpec(**params)), "top"), "top")
    assert result.ok, result.summary()
    assert result.waived, "expected the documented Amaranth/Yosys warning classes"


@pytest.mark.parametrize("params", [
    {}, {"accumulate": True}, {"width": 4, "is_signed": False, "acc_width": 9},
    {"width": 16, "accumulate": True}, {"width": 32, "acc_width": 64},
    {"accumulate": True, "dsp_pipeline": True},
])
def test_tensor_core_lint_wall(params):
    _lint_ok("TensorCore", params)


@pytest.mark.parametrize("cls,params", [
    ("SparseDecode", {}), ("SparseDecode", {"mode": "select", "accumulate": True}),
    ("SparseDecode", {"width": 4, "is_signed": False, "acc_width": 9}),
    ("SparseTensorCore", {"accumulate": True}),
    ("SparseTensorCore", {"width": 16, "acc_width": 40}),
    ("SparseTensorCore", {"accumulate": True, "dsp_pipeline": True}),
])
def test_sparse_units_lint_wall(cls, params):
    _lint_ok(cls, params)


def _lint_ok(cls, params):
    from mmfree.hdl import sparse_decode, tensor_core
    require_simulator("verilator")
    component = getattr(tensor_core if cls == "TensorCore" else sparse_decode, cls)(**params)
    result = lint(to_verilog(component, "top"), "top")
    assert result.ok, result.summary()




@pytest.mark.parametrize("params", [
    {}, {"lanes": 1, "max_dim": 16}, {"lanes": 5, "max_dim": 50, "in_width": 12,
                                      "recip_frac": 16, "rsqrt_frac": 20, "acc_width": 24,
                                      "tree_levels_per_stage": 1},
    {"lanes": 4, "max_dim": 40, "in_width": 6, "recip_frac": 5, "rsqrt_frac": 7,
     "acc_width": 12},
])
def test_bitlinear_unit_lint_wall(params):
    from mmfree.hdl.bitlinear_unit import BitLinearUnit
    require_simulator("verilator")
    result = lint(to_verilog(BitLinearUnit(**params), "top"), "top")
    assert result.ok, result.summary()
