"""The cycle model's unit functions against cycles measured on the RTL (20+ shapes each)."""

import numpy as np
import pytest

from mmfree.model.config import PRESETS, Workload, builtin_model, hardware_from_dict
from mmfree.model.cycles import sparse_gemm_cycles, tensor_gemm_cycles, ternary_matvec_cycles
from mmfree.model.system import project
from mmfree.sim import cosim
from mmfree.spec import SparseTensorCoreSpec, TensorCoreSpec, TernaryCoreSpec

from ..conftest import require_simulator

SHAPES = 22


@pytest.mark.cosim
@pytest.mark.parametrize("packed,pipe", [(False, 0), (True, 2),
                                         pytest.param(True, 0, marks=pytest.mark.slow),
                                         pytest.param(False, 1, marks=pytest.mark.slow)])
def test_ternary_matvec_cycles_equal_rtl(packed, pipe, seed):
    require_simulator("verilator")
    rng = np.random.default_rng(seed)
    lanes = 7 if packed else 16
    listed = [[int(rng.integers(1, 9)), int(rng.integers(1, 8 * lanes))] for _ in range(SHAPES)]
    spec = TernaryCoreSpec(lanes=lanes, acc_width=16 if packed else 32, packed=packed,
                           tree_levels_per_stage=pipe)
    res = cosim.run_unit(spec, "verilator", seed=seed, extra={"listed": listed},
                         testcase="test_listed_products")
    assert res.failed == 0 and len(res.report["listed"]) == SHAPES
    for m, k, measured in res.report["listed"]:
        assert ternary_matvec_cycles(m, k, lanes, packed, pipe) == measured, (m, k, seed)


@pytest.mark.cosim
@pytest.mark.parametrize("sparse,dsp", [(False, True), (True, False),
                                        pytest.param(False, False, marks=pytest.mark.slow)])
def test_tensor_gemm_cycles_equal_rtl(sparse, dsp, seed):
    require_simulator("verilator")
    rng = np.random.default_rng(seed)
    listed = [[int(v) for v in rng.integers(1, 24, 3)] for _ in range(SHAPES)]
    spec = (SparseTensorCoreSpec if sparse else TensorCoreSpec)(accumulate=True,
                                                                 dsp_pipeline=dsp)
    model = sparse_gemm_cycles if sparse else tensor_gemm_cycles
    res = cosim.run_unit(spec, "verilator", seed=seed, extra={"listed": listed},
                         testcase="test_listed_gemms")
    assert res.failed == 0 and len(res.report["listed"]) == SHAPES
    for m, k, n, measured in res.report["listed"]:
        assert model(m, k, n, dsp) == measured, (m, k, n, seed)


def test_pipelining_options_reach_the_projection():
    """The hardware options ``tree_levels_per_stage`` and ``dsp_pipeline`` (TOML keys of
    [hardware]) change exactly the latencies of the units they pipeline."""
    over = {"preset": "ecp5-85k", "product_model": "analytical", "lanes": 256}
    base = hardware_from_dict(over)
    tree = hardware_from_dict({**over, "tree_levels_per_stage": 1})
    assert tree.tree_levels_per_stage == 1 and not tree.dsp_pipeline
    mm = builtin_model("370M")

    def cycles(hw, model):
        return {op.name: int(np.sum(op.cycles)) for op in project(model, hw, Workload()).decode.ops}

    plain, piped = cycles(base, mm), cycles(tree, mm)
    # 256 lanes: 8 tree levels, one register stage each -> latency 3 + 7 (+1 packed) per row
    # block; the product of every ternary operation gets 7 cycles more per call
    extra = {k: piped[k] - plain[k] for k in plain}
    assert extra["GLU down_proj"] == 7 and extra["element-wise"] == 0
    # the preset's fetched products (80 lanes: 7 levels): 6 cycles more per call, and the
    # engine's element-wise cycles do not change
    fetched, fetched_tree = (cycles(PRESETS["ecp5-85k"], mm),
                             cycles(hardware_from_dict({"preset": "ecp5-85k",
                                                        "tree_levels_per_stage": 1}), mm))
    assert fetched_tree["GLU down_proj"] - fetched["GLU down_proj"] == 6
    assert fetched_tree["element-wise (engine program)"] == fetched[
        "element-wise (engine program)"]
    dsp = hardware_from_dict({**over, "dsp_pipeline": True})
    tf = builtin_model("transformer-370M")
    t_plain, t_dsp = cycles(base, tf), cycles(dsp, tf)
    assert all(t_dsp[k] >= t_plain[k] for k in t_plain)
    assert t_dsp["MLP down"] - t_plain["MLP down"] == 1
    assert cycles(dsp, mm) == plain  # no tensor arrays in a MatMul-free model's decode
