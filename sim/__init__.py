"""Co-simulation (installed as ``mmfree.sim``): the cocotb runner (:mod:`.cosim`), the
testbench kit (:mod:`.kit`), the testbenches (:mod:`.tb`), the tiny model on the RTL
(:mod:`.model_cosim`) and switching activity from waveforms (:mod:`.activity`)."""
