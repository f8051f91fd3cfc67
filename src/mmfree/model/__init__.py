"""Cycle, latency and power model of the MatMul-free LM on this project's units.

:mod:`.cycles` exact unit cycle counts (the specs' formulas, RTL-checked), :mod:`.config`
inputs with provenance, :mod:`.system` the projection, :mod:`.report` outputs and the
comparison, :mod:`.sweep` the design-space sweep, :mod:`.activity` the activity-based power
estimate.
"""
