"""Co-simulation (installed as ``mmfree.sim``): the cocotb runner (:mod:`.cosim`), the
testbench kit (:mod:`.kit`), the testbenches (:mod:`.tb`), HGRN-Bit with every BitLinear on
the RTL (:mod:`.lm_cosim`, ``mmfree run --backend rtl``) and switching activity from
waveforms (:mod:`.activity`)."""
