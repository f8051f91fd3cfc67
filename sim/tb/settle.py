"""cocotb testbench for the Icarus time-0 settle check (see mmfree.flow.toolchain).

The DUT's output comes from an ``always @*`` block whose only input is a register that never
changes. ``$MMFREE_TB_CONFIG`` says whether the output is expected to be settled (1/0) or
still unknown (the bug) one nanosecond after time 0.
"""

import json
import os

import cocotb
from cocotb.triggers import Timer


@cocotb.test()
async def test_time0_settle(dut):
    expect_settled = json.loads(os.environ["MMFREE_TB_CONFIG"])["expect_settled"]
    dut.data_in.value = 0
    dut.rst.value = 0
    dut.clk.value = 0
    await Timer(1, unit="ns")
    value = dut.data_out.value
    dut._log.info("data_out at 1 ns: %s", value)
    assert value.is_resolvable == expect_settled, f"data_out = {value}"
    if expect_settled:
        assert int(value) == 7
