"""Unit specs: validation naming the parameter, defaults, names, and formulas that give the
same numbers for one design point and for arrays of them."""

import subprocess
import sys

import numpy as np
import pytest

from mmfree.spec import (
    UNITS,
    BitLinearUnitSpec,
    NormQuantiserSpec,
    SparseDecodeSpec,
    SparseTensorCoreSpec,
    TensorCoreSpec,
    TernaryCoreSpec,
    spec_for,
)


def test_the_spec_layer_imports_neither_amaranth_nor_the_command_line():
    code = ("import sys, mmfree.spec, mmfree.model.cycles; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'amaranth' "
            "or m.startswith('mmfree.cli') or m.startswith('argparse')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("cls", list(UNITS.values()))
def test_defaults_validate_and_name_the_unit(cls):
    spec = cls().validate()
    assert spec.top_name().startswith("mmfree_") and spec.top_name().isidentifier()
    assert spec.latency >= 1 and str(spec.latency) in spec.cycle_formula()
    assert list(spec.params()) == [n for n, _, _ in cls.parameters()]
    assert cls.from_config({**spec.params(), "listed": [1]}) == spec
    for name, default, p in cls.parameters():
        assert (p.help and f"default {default}" in cls.describe(name)) or isinstance(default,
                                                                                  bool)


@pytest.mark.parametrize("unit,params,message", [
    ("ternary-core", {"lanes": 0}, "lanes must be in 1..1024, got 0"),
    ("ternary-core", {"lanes": 2.0}, "lanes must be an integer"),
    ("ternary-core", {"acc_width": 8}, "acc_width must be in 9..64, got 8"),
    ("ternary-core", {"act_width": 4, "acc_width": 4}, "acc_width must be in 5..64"),
    ("ternary-core", {"packed": 1}, "packed must be True or False"),
    ("tensor-core", {"width": 8, "is_signed": False, "acc_width": 16},
     "acc_width must be in 17..64"),
    ("sparse-decode", {"mode": "dense"}, "mode must be one of expand, select"),
    ("bitlinear-unit", {"lanes": 32, "max_dim": 16}, "max_dim must be in 32..65536"),
    ("bitlinear-unit", {"acc_width": 8}, "acc_width must be in 9..64"),
])
def test_validation_names_the_parameter(unit, params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        spec_for(unit, **params)


def test_unknown_unit():
    with pytest.raises(ValueError, match="unknown unit 'fp16-core'"):
        spec_for("fp16-core")


def test_latencies_and_cycles():
    assert TernaryCoreSpec().latency == 3 and TernaryCoreSpec(packed=True).latency == 4
    # the tree registered every level: 2 + ceil(log2 16) stages
    assert TernaryCoreSpec(tree_levels_per_stage=1).latency == 6
    assert TernaryCoreSpec(lanes=7, packed=True, tree_levels_per_stage=2).latency == 5
    assert TernaryCoreSpec(lanes=1, tree_levels_per_stage=3).latency == 3
    assert TernaryCoreSpec(lanes=12).cycles(5, 25) == 5 * 3 + 3
    assert TensorCoreSpec().gemm_cycles(5, 9, 7) == 2 * 3 * 2 + 3
    assert TensorCoreSpec(dsp_pipeline=True).cycles(10) == 14
    assert SparseTensorCoreSpec().gemm_cycles(32, 128, 32) == 8 * 8 * (128 // 8) + 4
    assert SparseTensorCoreSpec(dsp_pipeline=True).latency == 5
    assert SparseDecodeSpec().cycles(7) == 8
    # 8 + 2 x 4 max-tree stages, 4, 1 + (2P - 1), 1 + P, 3 at 16 lanes and P = 17
    assert NormQuantiserSpec().overhead == BitLinearUnitSpec().overhead == 16 + 4 + 34 + 18 + 3
    assert NormQuantiserSpec(lanes=1, mant_bits=9).overhead == 8 + 4 + 18 + 10 + 3
    assert NormQuantiserSpec().vector_cycles(8) == 16 + 75 + 9
    # the core's tree registered every 2 levels: latency 2 + 2 stages
    assert BitLinearUnitSpec().cycles(384, 128) == 2 * 8 + 75 + 9 + 384 * 8 + 4


def test_formulas_take_arrays_of_design_points():
    lanes = np.array([1, 2, 3, 16, 17, 1024])
    for t in (0, 1, 2):
        spec = TernaryCoreSpec(lanes=lanes, packed=True, tree_levels_per_stage=t)
        scalar = [TernaryCoreSpec(lanes=int(n), packed=True, tree_levels_per_stage=t)
                  for n in lanes]
        assert list(spec.cycles(7, 1000)) == [s.cycles(7, 1000) for s in scalar]
    bl = BitLinearUnitSpec(lanes=lanes).cycles(np.array([3, 4]).reshape(2, 1), 100)
    assert bl.shape == (2, 6)
    assert bl[1, 3] == BitLinearUnitSpec(lanes=16).cycles(4, 100)
