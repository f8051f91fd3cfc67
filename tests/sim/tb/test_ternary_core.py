"""Co-simulation of the generated ternary-core Verilog on Icarus and Verilator (cocotb)."""

import pytest

from mmfree.golden.ternary import max_exact_k
from mmfree.spec import TernaryCoreSpec

from . import cosim_report

# (lanes, act_width, acc_width, packed): single lane, a lane count that is no power of two
# with packed weights (partial last byte), a mid size, a wide core, and the extreme widths
# (2-bit activations into a 3-bit accumulator: the adder tree is capped at the accumulator
# width; 16-bit activations). The narrow accumulators let the corner test reach the longest
# exact sum (max_exact_k) and one term past it.
CONFIGS = [(1, 8, 16, False, 0), (7, 8, 16, True, 0), (16, 8, 32, False, 0),
           (64, 8, 20, False, 0), (5, 2, 3, False, 0), (9, 16, 17, True, 0),
           # the adder tree registered every level / every second level (latency 6 / 4)
           (16, 8, 32, False, 1), (7, 8, 16, True, 2)]
SIMS = ["icarus", "verilator"]
# every configuration on every simulator, except the single lane on Verilator: that one runs
# as a subprocess on a stock PATH in tests/cli/test_stock_machine.py
RUNS = [pytest.param(sim, *cfg, id=f"{sim}-{cfg}") for cfg in CONFIGS for sim in SIMS
        if (sim, cfg) != ("verilator", CONFIGS[0])]


@pytest.mark.cosim
@pytest.mark.parametrize("sim,lanes,act,acc,packed,pipe", RUNS)
def test_ternary_core_cosim(sim, lanes, act, acc, packed, pipe, seed):
    spec = TernaryCoreSpec(lanes=lanes, act_width=act, acc_width=acc, packed=packed,
                           tree_levels_per_stage=pipe)
    r = cosim_report(spec, sim, seed)
    assert r["mismatches"] == 0 and r["outputs"] > 50, r
    assert r["cycle_checks"] >= 15 and r["cycle_mismatches"] == 0, r
    assert r["max_k_reached"] == (max_exact_k(act, acc) <= 4096)
    assert r.get("error_flag_checked", False) == packed
    assert r["accepted_while_held"], "the output-stall test did not run"


@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("lanes,act,acc,packed", [(1024, 8, 32, False), (256, 8, 12, True)],
                         ids=lambda v: str(v))
def test_ternary_core_cosim_wide(sim, lanes, act, acc, packed, seed):
    """The widest core and a wide packed one with a tiny accumulator (max K = 15)."""
    test_ternary_core_cosim(sim, lanes, act, acc, packed, 0, seed)
