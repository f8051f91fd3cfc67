"""Co-simulation of the engine's vector unit on Icarus and Verilator (cocotb)."""

import pytest

from mmfree.spec import VectorUnitSpec

from . import cosim_report

SIMS = ["icarus", "verilator"]
# (lanes, width, max_dim, max_align, act_width, act_frac, gate_frac, table_bits,
# table_range_log2): a lane count that is no power of two with narrow formats, small tables
# and a partial last group (default run); one lane (no reduction tree) with the contract's
# formats on a 64-interval table; the contract's defaults on 8 lanes (under -m slow, the
# default suite's time budget); and a table range of 2 on 2 lanes, where the sigmoid's last
# interval still rises, so the value above the range depends on the clamped fraction
CONFIGS = [(3, 12, 10, 4, 10, 6, 8, 4, 3), (1, 18, 5, 8, 16, 11, 16, 6, 4),
           (8, 24, 40, 8, 16, 11, 16, 10, 4), (2, 12, 10, 4, 10, 6, 8, 4, 1)]


# the small configuration on Icarus in the default run (about 20 s); on Verilator (about 2 min,
# most of it the build) under -m slow with the others (the default suite's time budget)
RUNS = [pytest.param(sim, cfg, marks=(pytest.mark.slow,) if (sim == "verilator" or i) else (),
                     id=f"{sim}-{'-'.join(map(str, cfg))}")
        for i, cfg in enumerate(CONFIGS) for sim in SIMS]


@pytest.mark.cosim
@pytest.mark.parametrize("sim, cfg", RUNS)
def test_vector_unit_cosim(sim, cfg, seed):
    r = cosim_report(VectorUnitSpec(*cfg), sim, seed)
    assert r["mismatches"] == 0 and r["commands"] >= 100 and r["outputs"] > 200, r
    assert r["cycle_checks"] >= 60 and r["cycle_mismatches"] == 0, r
    assert set(r["tests"]) == {"ops", "back_to_back", "stalls", "reset"}, r["tests"]
