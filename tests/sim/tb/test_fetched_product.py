"""Co-simulation of C ternary cores fed over C AXI ports (cocotbext-axi RAMs)."""

import pytest

from mmfree.spec import FetchedProductSpec

from . import cosim_report

# (parameters, memory latency, rate n/d): 2 cores x 16 lanes with 2-bit codes on 64-bit
# DDR4-like ports; 3 cores with packed weights (20 lanes, 4 bytes a group) on 32-bit
# HBM-like ports with one burst in flight (memory-bound).
SMALL = ({}, 30, [7, 10])
PACKED = ({"cores": 3, "lanes": 20, "packed": True, "data_width": 32, "max_burst": 8,
           "outstanding": 1, "fifo_depth": 16, "max_dim": 160}, 60, [9, 10])
RUNS = [pytest.param("icarus", *SMALL, id="icarus-2x16"),
        pytest.param("verilator", *PACKED, id="verilator-3x20-packed",
                     marks=pytest.mark.slow),
        pytest.param("icarus", *PACKED, id="icarus-3x20-packed", marks=pytest.mark.slow)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim,params,latency,rate", RUNS)
def test_fetched_product_cosim(sim, params, latency, rate, seed):
    spec = FetchedProductSpec(**params).validate()
    r = cosim_report(spec, sim, seed, extra={"mem_latency": latency, "mem_rate": rate})
    assert r["mismatches"] == 0 and r["products"] > 60, r
    assert r["resets"] == 1
    assert len(r["cycle_table"]) == 2
    for m, k, measured, predicted, _ in r["cycle_table"]:
        print(f"{m}x{k}: {measured} cycles, formula {predicted:.1f}")
        assert abs(predicted - measured) <= 0.02 * measured, (m, k, measured, predicted)
