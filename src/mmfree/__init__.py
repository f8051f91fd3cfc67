"""mmfree: MatMul-free LM hardware in Amaranth, with golden models and co-simulation.

Subpackages: :mod:`mmfree.hdl` (Amaranth components), :mod:`mmfree.golden` (numpy
references), :mod:`mmfree.sim` (simulator tool-chain and cocotb testbenches).
"""

__version__ = "0.1.0"
