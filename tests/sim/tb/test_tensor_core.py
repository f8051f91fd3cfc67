"""Co-simulation of the generated tensor-core Verilog on Icarus and Verilator (cocotb)."""

import pytest

from mmfree.spec import TensorCoreSpec

from . import cosim_report

# (width, is_signed, acc_width, accumulate, dsp_pipeline): int8 in both modes, int4 signed
# with a 10-bit accumulator and int4 unsigned with a 12-bit one (so tiles and GEMMs overflow
# and wrap), int16 plain (products of 2**30: tiles wrap at 32 bits), and int8 accumulating
# with every product registered twice (latency 4).
CONFIGS = [(8, True, 32, False, False), (8, True, 32, True, False), (4, True, 10, False, False),
           (4, False, 12, True, False), (16, True, 32, False, False), (8, True, 32, True, True)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("width,is_signed,acc,accumulate,dsp", CONFIGS, ids=lambda v: str(v))
def test_tensor_core_cosim(sim, width, is_signed, acc, accumulate, dsp, seed):
    spec = TensorCoreSpec(width=width, is_signed=is_signed, acc_width=acc,
                          accumulate=accumulate, dsp_pipeline=dsp)
    r = cosim_report(spec, sim, seed)
    assert r["mismatches"] == 0 and r["outputs"] >= 16 * 100, r
    assert r["cycle_mismatches"] == 0 and r["cycle_checks"] >= (20 if accumulate else 6), r
    assert r["overflow_cases"]
    assert (r["gemms"] > 0) == accumulate
    assert r["accepted_while_held"] > 0, "the output-stall test did not run"
