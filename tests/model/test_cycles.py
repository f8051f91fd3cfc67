"""The cycle model's unit functions against cycles measured on the RTL (20+ shapes each)."""

import numpy as np
import pytest

from mmfree.hdl import build
from mmfree.hdl.sparse_decode import SparseTensorCore
from mmfree.hdl.tensor_core import TensorCore
from mmfree.model.cycles import sparse_gemm_cycles, tensor_gemm_cycles, ternary_matvec_cycles
from mmfree.sim import cosim
from mmfree.spec import TernaryCoreSpec

from ..conftest import require_simulator

SHAPES = 22


@pytest.mark.cosim
@pytest.mark.parametrize("packed,pipe", [(False, 0), (True, 0), (False, 1), (True, 2)])
def test_ternary_matvec_cycles_equal_rtl(packed, pipe, seed):
    require_simulator("verilator")
    rng = np.random.default_rng(seed)
    lanes = 7 if packed else 16
    listed = [[int(rng.integers(1, 9)), int(rng.integers(1, 8 * lanes))] for _ in range(SHAPES)]
    params = {"lanes": lanes, "act_width": 8, "acc_width": 16 if packed else 32,
              "packed": packed, "tree_levels_per_stage": pipe}
    top = (f"tc_l{lanes}_x8_a{params['acc_width']}{'_p' if packed else ''}"
           f"{f'_t{pipe}' if pipe else ''}")
    res = cosim.run(build(TernaryCoreSpec(**params)), top, "verilator",
                    "mmfree.sim.tb.ternary_core", config={**params, "listed": listed}, seed=seed,
                    testcase="test_listed_products")
    assert res.failed == 0 and len(res.report["listed"]) == SHAPES
    for m, k, measured in res.report["listed"]:
        assert ternary_matvec_cycles(m, k, lanes, packed, pipe) == measured, (m, k, seed)


@pytest.mark.cosim
@pytest.mark.parametrize("sparse,dsp", [(False, False), (True, False), (False, True)])
def test_tensor_gemm_cycles_equal_rtl(sparse, dsp, seed):
    require_simulator("verilator")
    rng = np.random.default_rng(seed)
    listed = [[int(v) for v in rng.integers(1, 24, 3)] for _ in range(SHAPES)]
    params = {"width": 8, "is_signed": True, "acc_width": 32, "accumulate": True,
              "dsp_pipeline": dsp}
    cls, top, tb, model = (
        (SparseTensorCore, "stensor_81_a32_acc", "mmfree.sim.tb.sparse_tensor",
         sparse_gemm_cycles) if sparse else
        (TensorCore, "tensor_s8_a32_acc", "mmfree.sim.tb.tensor_core", tensor_gemm_cycles))
    top += "_dp" if dsp else ""
    res = cosim.run(cls(**params), top, "verilator", tb, config={**params, "listed": listed},
                    seed=seed, testcase="test_listed_gemms")
    assert res.failed == 0 and len(res.report["listed"]) == SHAPES
    for m, k, n, measured in res.report["listed"]:
        assert model(m, k, n, dsp) == measured, (m, k, n, seed)
