"""The tool flow (installed as ``mmfree.flow``): everything that turns the hardware into files
and runs tools on them.

* :mod:`.generate`: deterministic Verilog and port descriptions of a unit;
* :mod:`.lint`: ``verilator --lint-only -Wall`` with the documented waivers;
* :mod:`.toolchain`: finding the simulators and the YoWASP tools, running them;
* :mod:`.targets`: the one table of device families and parts;
* :mod:`.synth`: synthesis, place-and-route and timing of a unit (``mmfree synth``), with
  :mod:`.ecp5_dsp` (registers into the ECP5 DSP blocks) and :mod:`.ooc` (out-of-context
  wrappers);
* :mod:`.boards` and :mod:`.board_build`: the reference boards and their self-test
  bitstreams (``mmfree board``);
* :mod:`.progress`: progress of long tool runs;
* :mod:`.cluster` and :mod:`.explore`: jobs on a Dask cluster, and grids of design points
  through the flow (``mmfree explore``; ``mmfree regress`` is :mod:`mmfree.sim.regress`).
"""
