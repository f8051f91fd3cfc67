"""mmfree: MatMul-free LM hardware in Amaranth, with golden models and co-simulation.

Subpackages, bottom up (docs/architecture.md): :mod:`mmfree.golden` (numpy references),
:mod:`mmfree.spec` (unit specs: parameters, limits, timing), :mod:`mmfree.hdl` (Amaranth
components), :mod:`mmfree.flow` (Verilog, lint, tools, synthesis, boards), :mod:`mmfree.sim`
(cocotb runner, testbench kit, testbenches), :mod:`mmfree.model` (cycle model) and
:mod:`mmfree.cli` (the ``mmfree`` command).
"""

__version__ = "0.1.0"
