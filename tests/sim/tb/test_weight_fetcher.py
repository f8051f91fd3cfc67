"""Co-simulation of the weight fetcher against cocotbext-axi's AXI RAM (Icarus, Verilator)."""

import pytest

from mmfree.spec import WeightFetcherSpec

from . import cosim_report

# (spec parameters, memory latency, memory rate n/d): a DDR4-like channel (latency 30
# cycles, 7 beats in 10) with 2-bit codes on a 64-bit port; an HBM-like one (latency 60, 9
# in 10) with packed groups (lanes 20: 4 bytes) on a 256-bit port; a narrow port whose groups
# span beats (64 lanes: 128 bits on 32) with one burst in flight and short bursts.
DDR4 = ({}, 30, [7, 10])
HBM = ({"lanes": 20, "packed": True, "data_width": 256, "max_burst": 8, "outstanding": 8},
       60, [9, 10])
NARROW = ({"lanes": 64, "data_width": 32, "max_burst": 4, "outstanding": 1,
           "fifo_depth": 8}, 12, [1, 2])
# The default run: Icarus; Verilator (its build costs a minute or more) under -m slow.
RUNS = [pytest.param("icarus", *DDR4, id="icarus-ddr4"),
        pytest.param("verilator", *HBM, id="verilator-hbm", marks=pytest.mark.slow),
        pytest.param("icarus", *NARROW, id="icarus-narrow", marks=pytest.mark.slow),
        pytest.param("icarus", *HBM, id="icarus-hbm", marks=pytest.mark.slow),
        pytest.param("verilator", *DDR4, id="verilator-ddr4", marks=pytest.mark.slow)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim,params,latency,rate", RUNS)
def test_weight_fetcher_cosim(sim, params, latency, rate, seed):
    spec = WeightFetcherSpec(**params).validate()
    r = cosim_report(spec, sim, seed, extra={"mem_latency": latency, "mem_rate": rate})
    assert r["mismatches"] == 0 and r["groups"] > 150, r
    assert r["axi_errors"] == 0 and r["axi_checks"] > 20, r
    # bursts overlapped (up to the limit) and never more than the limit
    assert min(spec.outstanding, 2) <= r["max_outstanding"] <= spec.outstanding, r
    assert r["resets"] == 3
    assert len(r["cycle_table"]) == 3
    for n, measured, predicted in r["cycle_table"]:
        print(f"{n} groups: {measured} cycles, formula {predicted:.1f}")
        assert abs(predicted - measured) <= 0.02 * measured + 1, (n, measured, predicted)
