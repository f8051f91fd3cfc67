"""The board self-test design (installed as ``mmfree.hdl.selftest``)."""
