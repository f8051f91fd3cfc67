"""Simulator tool-chain discovery and cocotb co-simulation (installed as ``mmfree.sim``)."""
