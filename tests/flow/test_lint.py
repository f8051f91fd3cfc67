"""Verilator -Wall lint of every unit's generated Verilog: only the documented waivers
(docs/lint.md)."""

import pytest

from mmfree.flow.generate import to_verilog
from mmfree.flow.lint import lint
from mmfree.hdl import build
from mmfree.spec import UNITS, TernaryCoreSpec

from ..conftest import require_simulator


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_every_unit_lints_clean_with_its_defaults(unit):
    """Every unit of the registry, as ``mmfree generate UNIT`` writes it (a new unit gets
    this check without an edit here)."""
    require_simulator("verilator")
    spec = UNITS[unit]()
    result = lint(to_verilog(build(spec), spec.top_name()), spec.top_name())
    assert result.ok, result.summary()


@pytest.mark.parametrize("params", [
    {"lanes": 1}, {"lanes": 7, "packed": True}, {"lanes": 1, "packed": True},
    {"lanes": 64, "acc_width": 20}, {"lanes": 256, "acc_width": 12, "packed": True},
    {"lanes": 3, "act_width": 2, "acc_width": 3},
])
def test_lint_wall_only_documented_waivers(params):
    require_simulator("verilator")
    result = lint(to_verilog(build(TernaryCoreSpec(**params)), "top"), "top")
    assert result.ok, result.summary()
    assert result.waived, "expected the documented Amaranth/Yosys warning classes"


@pytest.mark.parametrize("params", [
    {"accumulate": True}, {"width": 4, "is_signed": False, "acc_width": 9},
    {"width": 16, "accumulate": True}, {"width": 32, "acc_width": 64},
    {"accumulate": True, "dsp_pipeline": True},
])
def test_tensor_core_lint_wall(params):
    _lint_ok("TensorCore", params)


@pytest.mark.parametrize("cls,params", [
    ("SparseDecode", {"mode": "select", "accumulate": True}),
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
    {"lanes": 1, "max_dim": 16}, {"lanes": 5, "max_dim": 50, "in_width": 12,
                                      "weight_width": 10, "mant_bits": 20, "acc_width": 24,
                                      "tree_levels_per_stage": 1},
    {"lanes": 4, "max_dim": 40, "in_width": 6, "weight_width": 5, "mant_bits": 9,
     "acc_width": 12, "tree_levels_per_stage": 0},
])
def test_bitlinear_unit_lint_wall(params):
    from mmfree.hdl.bitlinear_unit import BitLinearUnit
    require_simulator("verilator")
    result = lint(to_verilog(BitLinearUnit(**params), "top"), "top")
    assert result.ok, result.summary()
