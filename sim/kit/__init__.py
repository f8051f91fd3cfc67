"""The testbench kit: everything the cocotb testbenches in :mod:`mmfree.sim.tb` share.

* :mod:`.payload`: :class:`~.payload.Codec`, stream payloads encoded and decoded from the
  hardware's ``amaranth.lib.data`` layouts (no hand-written bit offsets).
* :mod:`.streams`: :class:`~.streams.StreamSource`, :class:`~.streams.StreamSink` and
  :class:`~.streams.StreamMonitor` for ``lib.stream`` ports: they handle the DUT's reset
  themselves, take pause generators for valid/ready patterns (as cocotbext-axi does), record
  the cycle of every transfer, and ``await sink.recv()``.
* :mod:`.bench`: :class:`~.bench.Bench` (clock, reset, seeded generators, drivers with the
  unit's layouts, checks) and :class:`~.bench.Report` (outputs, mismatches and cycle counts,
  written for the runner).
"""

from .bench import PERIOD_NS, Bench, Report, component_of, config, flat, progress
from .payload import Codec, port_codecs
from .streams import StreamMonitor, StreamSink, StreamSource, random_pauses

__all__ = ["PERIOD_NS", "Bench", "Codec", "Report", "StreamMonitor", "StreamSink",
           "StreamSource", "component_of", "config", "flat", "port_codecs", "progress",
           "random_pauses"]
