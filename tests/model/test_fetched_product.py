"""The cycle model of C cores fed over AXI4 (``fetched_product_cycles``) against the RTL:
within 2 % on a compute-bound and a memory-bound configuration (the whole table of 14:
``bench/axi_system.py``)."""

import pytest

from mmfree.model.cycles import fetched_product_cycles, fetched_product_regime
from mmfree.sim import cosim
from mmfree.spec import FetchedProductSpec

from ..conftest import require_simulator

# (parameters, latency, rate n/d, M, K, memory-bound?)
CASES = [pytest.param({"data_width": 32}, 60, (9, 10), 64, 128, True, id="32-bit-hbm"),
         pytest.param({"outstanding": 2, "max_burst": 8}, 60, (1, 1), 64, 128, True,
                      id="2-outstanding", marks=pytest.mark.slow),
         pytest.param({"cores": 4}, 8, (1, 1), 128, 128, False, id="4-cores",
                      marks=pytest.mark.slow)]


@pytest.mark.cosim
@pytest.mark.parametrize("params,latency,rate,m,k,memory_bound", CASES)
def test_model_within_2_percent_of_rtl(params, latency, rate, m, k, memory_bound, seed):
    require_simulator("icarus")
    spec = FetchedProductSpec(**params).validate()
    res = cosim.run_unit(spec, "icarus", seed=seed, testcase="test_cycles",
                         extra={"mem_latency": latency, "mem_rate": list(rate),
                                "shapes": [[m, k]]})
    assert res.failed == 0 and res.report["mismatches"] == 0
    (_, _, measured, _, _), = res.report["cycle_table"]
    predicted = float(fetched_product_cycles(
        m, k, cores=spec.cores, lanes=spec.lanes, data_width=spec.data_width,
        mem_latency=latency, mem_rate=rate[0] / rate[1], outstanding=spec.outstanding,
        max_burst=spec.max_burst, fifo_depth=spec.fifo_depth))
    bound, _ = fetched_product_regime(k, lanes=spec.lanes, data_width=spec.data_width,
                                      mem_latency=latency, mem_rate=rate[0] / rate[1],
                                      outstanding=spec.outstanding,
                                      max_burst=spec.max_burst, fifo_depth=spec.fifo_depth,
                                      rows=spec.rows_per_core(m))
    print(f"seed {seed}: measured {measured}, model {predicted:.1f}")
    assert bool(bound) == memory_bound
    assert abs(predicted - measured) <= 0.02 * measured, (measured, predicted)
