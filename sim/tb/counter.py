"""cocotb bench for the toggle-counting test: run the counter for a number of cycles."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge


@cocotb.test()
async def run(dut):
    cycles = json.loads(os.environ["MMFREE_TB_CONFIG"])["cycles"]
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.en.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    dut.en.value = 1
    await ClockCycles(dut.clk, cycles)
