"""Co-simulation of the 2:4 sparse decode unit and the sparse tensor core (cocotb)."""

import pytest

from mmfree.sim import cosim
from mmfree.spec import SparseDecodeSpec, SparseTensorCoreSpec, TensorCoreSpec

from ...conftest import require_simulator
from . import cosim_report

SIMS = ["icarus", "verilator"]
DECODE = [("expand", 8, True, 32, False), ("select", 8, True, 32, True),
          ("expand", 4, False, 12, False)]
SPARSE = [(8, True, 32, True, False), (4, False, 12, False, False), (8, True, 32, True, True)]
# Logical GEMMs for the dense-vs-sparse comparison (K a multiple of 8 and not).
LISTED = [[16, 64, 16], [32, 128, 32], [9, 30, 7], [4, 8, 4]]


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("mode,width,is_signed,acc,accumulate", DECODE, ids=lambda v: str(v))
def test_sparse_decode_cosim(sim, mode, width, is_signed, acc, accumulate, seed):
    spec = SparseDecodeSpec(mode=mode, width=width, is_signed=is_signed, acc_width=acc,
                            accumulate=accumulate)
    r = cosim_report(spec, sim, seed)
    assert r["mismatches"] == 0 and r["cycle_mismatches"] == 0 and r["cycle_checks"] >= 18, r
    assert r["codes_checked"] == list(range(16))


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("width,is_signed,acc,accumulate,dsp", SPARSE, ids=lambda v: str(v))
def test_sparse_tensor_core_cosim(sim, width, is_signed, acc, accumulate, dsp, seed):
    spec = SparseTensorCoreSpec(width=width, is_signed=is_signed, acc_width=acc,
                                accumulate=accumulate, dsp_pipeline=dsp)
    r = cosim_report(spec, sim, seed)
    assert r["mismatches"] == 0 and r["cycle_mismatches"] == 0, r
    assert r["codes_checked"] == list(range(16))
    assert (r["gemms"] > 0) == accumulate
    assert r["accepted_while_held"] > 0, "the output-stall test did not run"


@pytest.mark.cosim
def test_sparse_speedup_over_dense_on_the_same_gemms(seed):
    """The same logical GEMMs (A pruned 2:4) on the dense and the sparse RTL: measured cycles
    equal each unit's formula; the speed-up approaches 2 as K grows."""
    require_simulator("verilator")
    dense_spec = TensorCoreSpec(accumulate=True)
    sparse_spec = SparseTensorCoreSpec(accumulate=True)
    dense, sparse = (cosim.run_unit(spec, "verilator", seed=seed, extra={"listed": LISTED},
                                    testcase="test_listed_gemms")
                     for spec in (dense_spec, sparse_spec))
    assert dense.failed == 0 and sparse.failed == 0
    rows = []
    for (m, k, n, dc), (_, _, _, sc) in zip(dense.report["listed"], sparse.report["listed"],
                                            strict=True):
        assert dc == dense_spec.gemm_cycles(m, k, n)
        assert sc == sparse_spec.gemm_cycles(m, k, n)
        rows.append((m, k, n, dc, sc, dc / sc))
        print(f"{m}x{k}x{n}: dense {dc} cycles, sparse {sc} cycles, speed-up {dc / sc:.2f}x")
    assert rows[1][5] > 1.9  # 32x128x32: 2051 / 1028
