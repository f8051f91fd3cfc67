"""cocotb testbench modules, loaded by the simulator through ``cocotb_tools.runner``."""
