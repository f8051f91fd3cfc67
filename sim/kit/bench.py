# amaranth: UnusedElaboratable=no
"""What every cocotb testbench of a unit needs: its configuration and spec, seeded random
generators, the clock and reset, stream drivers with the port layouts, result and
cycle-count checks, and the report.

A testbench module makes one :class:`Report` (shared by its tests: the runner reads it back
from ``$MMFREE_TB_REPORT``) and, in each test, one :class:`Bench`::

    REPORT = Report(products=0)
    SPEC = REPORT.spec(TernaryCoreSpec)

    @cocotb.test()
    async def test_x(dut):
        tb = Bench(dut, REPORT, SPEC)
        rng, np_rng = tb.rngs("test_x")
        w, x, y = tb.source("w"), tb.source("x"), tb.sink("y")
        await tb.start()
        ...
        REPORT.write()

The payload layouts come from the component the spec builds (``mmfree.hdl.build``'s class),
so beats are written as values (``{"codes": [...], "last": 1}``), never as bit offsets.
"""

from __future__ import annotations

import importlib
import json
import os
import random
from collections.abc import Iterable, Sequence
from typing import Any

import cocotb
import numpy as np
from amaranth.lib import wiring
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from ...spec import UnitSpec
from .payload import Codec, port_codecs
from .streams import StreamMonitor, StreamSink, StreamSource, random_pauses

__all__ = ["PERIOD_NS", "Bench", "Report", "component_of", "config", "flat", "progress"]

PERIOD_NS = 10


def config() -> dict[str, Any]:
    """The testbench configuration the runner passed (``$MMFREE_TB_CONFIG``, JSON)."""
    return json.loads(os.environ.get("MMFREE_TB_CONFIG", "{}"))


def progress(entry: dict) -> None:
    """Append one JSON line to ``$MMFREE_TB_PROGRESS`` (the runner relays it while the
    simulation runs)."""
    path = os.environ.get("MMFREE_TB_PROGRESS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def component_of(spec: UnitSpec) -> wiring.Component:
    """The unit's component, built only to read its port layouts (never elaborated)."""
    module, _, cls = spec.component.rpartition(".")
    return getattr(importlib.import_module(module), cls)(**spec.kwargs())


class Report(dict):
    """The testbench's summary, written to ``$MMFREE_TB_REPORT``: the configuration, the
    seed of each test (``tests``), outputs compared and mismatches, cycle counts checked and
    wrong, and whatever else the testbench records."""

    def __init__(self, **extra: Any) -> None:
        super().__init__(config=config(), outputs=0, mismatches=0, cycle_checks=0,
                         cycle_mismatches=0, tests={}, **extra)

    def spec(self, cls: type[UnitSpec]) -> Any:
        """The unit's spec from the configuration, validated."""
        return cls.from_config(self["config"]).validate()

    def write(self) -> None:
        path = os.environ.get("MMFREE_TB_REPORT")
        if path:
            with open(path, "w") as f:
                json.dump(self, f, indent=1, default=_jsonable)

    def compare(self, log: Any, label: str, got: Sequence[Any], expect: Sequence[Any],
                count: str | None = None) -> int:
        """Compare outputs element by element (numpy arrays or ints); count them and their
        mismatches (a missing or extra output counts as one); return the mismatches."""
        bad = 0
        expect = _inject_fault(expect)
        if len(got) != len(expect):
            log.error("%s: expected %d outputs, got %d", label, len(expect), len(got))
            bad += abs(len(expect) - len(got))
        got = [flat(g) for g in got]
        for t, (g, e) in enumerate(zip(got, expect, strict=False)):
            e = flat(e)
            wrong = int(np.sum(g != e)) if g.shape == e.shape else max(g.size, e.size)
            bad += wrong
            if wrong and bad <= 40:
                log.error("%s: output %d: got\n%s\nexpected\n%s", label, t, g, e)
        if count:
            self[count] += len(got)
        self["outputs"] += sum(int(g.size) for g in got)
        self["mismatches"] += bad
        return bad

    def check_cycles(self, log: Any, label: str, measured: int, want: int,
                     record: list | None = None) -> int:
        """Count a cycle check; return 1 (and log) if ``measured`` differs from ``want``.
        ``record`` (e.g. ``[m, k]``) goes into ``cycles`` with both counts."""
        self["cycle_checks"] += 1
        self.setdefault("cycles", []).append([*(record or [label]), measured, want])
        if measured != want:
            self["cycle_mismatches"] += 1
            log.error("%s: took %d cycles, the formula says %d", label, measured, want)
            return 1
        return 0


def _inject_fault(expect: Sequence[Any]) -> Sequence[Any]:
    """A deliberately wrong golden model, for testing that regressions find faults:
    with ``$MMFREE_TB_INJECT_FAULT=P`` (an integer > 1) every expected output value that is
    a multiple of P gets its lowest bit flipped, so a run fails exactly when its random
    stimulus produces such a value. Unset (always, outside those tests): unchanged."""
    period = int(os.environ.get("MMFREE_TB_INJECT_FAULT", "0") or 0)
    if period < 2:
        return expect
    out = []
    for e in expect:
        e = flat(e).copy()
        e[e % period == 0] ^= 1
        out.append(e)
    return out


def flat(value: Any) -> np.ndarray:
    """A decoded payload as one flat integer array: a struct's fields in layout order, an
    array's elements, or the one integer."""
    if isinstance(value, dict):
        return np.concatenate([flat(v) for v in value.values()])
    if isinstance(value, list | tuple):
        return np.concatenate([flat(v) for v in value]) if value else np.zeros(0, np.int64)
    return np.ravel(np.asarray(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {value!r}")


class Bench:
    """One test's view of the DUT: clock and reset, drivers, seeds, checks.

    ``component`` (default: built from ``spec``) supplies the port layouts; it is never
    elaborated.
    """

    def __init__(self, dut: SimHandleBase, report: Report, spec: UnitSpec | None = None, *,
                 component: wiring.Component | None = None, period_ns: float = PERIOD_NS
                 ) -> None:
        self.dut, self.report, self.spec, self.period = dut, report, spec, period_ns
        self.log = dut._log
        if component is None and spec is not None:
            component = component_of(spec)
        self.codecs: dict[str, Codec] = port_codecs(component) if component else {}
        self.sources: list[StreamSource] = []
        self.sinks: list[StreamSink] = []
        self.rng = random.Random(cocotb.RANDOM_SEED)
        dut.rst.value = 1

    def rngs(self, name: str, details: str = "") -> tuple[random.Random, np.random.Generator]:
        """Random generators seeded from cocotb's seed (``COCOTB_RANDOM_SEED`` replays the
        test); logs the seed and records it under ``tests``."""
        seed = cocotb.RANDOM_SEED
        what = details or (", ".join(f"{k}={v}" for k, v in self.spec.params().items())
                           if self.spec else "")
        self.log.info("%s: seed %d (%s)", name, seed, what)
        self.report["tests"][name] = seed
        self.rng = random.Random(seed)
        return self.rng, np.random.default_rng(seed)

    def pauses(self, probability: float) -> Iterable[bool] | None:
        """A random pause pattern from this bench's generator (``None`` for 0)."""
        return random_pauses(self.rng, probability) if probability else None

    def source(self, port: str, stall: float = 0.0) -> StreamSource:
        """A driver for input stream ``port`` with a random bubble before a beat at
        probability ``stall``."""
        s = StreamSource(self.dut, port, codec=self.codecs.get(port), period_ns=self.period,
                         pause=self.pauses(stall))
        self.sources.append(s)
        return s

    def sink(self, port: str, stall: float = 0.0) -> StreamSink:
        """A driver for output stream ``port``, not ready at probability ``stall``."""
        s = StreamSink(self.dut, port, codec=self.codecs.get(port), period_ns=self.period,
                       pause=self.pauses(stall))
        self.sinks.append(s)
        return s

    def monitor(self, port: str) -> StreamMonitor:
        """A passive monitor of stream ``port``."""
        return StreamMonitor(self.dut, port, codec=self.codecs.get(port), period_ns=self.period)

    def stall(self, *stalls: float) -> None:
        """Set the pause probabilities of the sources, then the sinks, in creation order."""
        for end, p in zip([*self.sources, *self.sinks], stalls, strict=True):
            end.set_pause_generator(self.pauses(p))

    def cycle(self) -> int:
        return round(get_sim_time("ns") / self.period)

    async def start(self, reset_cycles: int = 2) -> None:
        """Start the clock and hold the reset for ``reset_cycles`` cycles."""
        Clock(self.dut.clk, self.period, unit="ns").start()
        await ClockCycles(self.dut.clk, reset_cycles)
        self.dut.rst.value = 0

    async def reset(self, cycles: int = 2, offer: Sequence[StreamSource] = ()) -> None:
        """Assert the reset right after a clock edge for ``cycles`` cycles; the drivers drop
        what they hold. Each source in ``offer`` presents a beat in the first reset cycle,
        which the DUT must not accept (:attr:`StreamSource.accepted_in_reset`). Returns in
        the cycle after the release, once the outputs' reset state has been checked
        (:attr:`StreamSink.valid_after_reset`)."""
        self.dut.rst.value = 1
        for s in offer:
            s.hold(1)
        await RisingEdge(self.dut.clk)
        for s in offer:
            s.release()
        if cycles > 1:
            await ClockCycles(self.dut.clk, cycles - 1)
        self.dut.rst.value = 0
        await ReadOnly()
        await RisingEdge(self.dut.clk)

    def reset_violations(self) -> int:
        """Inputs accepted in reset plus outputs valid right after it, logged."""
        bad = 0
        for s in self.sources:
            if s.accepted_in_reset:
                self.log.error("%s accepted %d beats while reset was asserted", s.prefix,
                               s.accepted_in_reset)
                bad += s.accepted_in_reset
        for s in self.sinks:
            if s.valid_after_reset:
                self.log.error("%s was valid right after reset (%d times)", s.prefix,
                               s.valid_after_reset)
                bad += s.valid_after_reset
        return bad

    async def collect(self, sink: StreamSink, count: int, budget: int, drain: int) -> None:
        """Wait until ``sink`` holds ``count`` beats (at most ``budget`` cycles), then
        ``drain`` more cycles, so that an extra output shows up as one."""
        for _ in range(budget):
            if len(sink) >= count:
                break
            await RisingEdge(self.dut.clk)
        await ClockCycles(self.dut.clk, drain)

    async def stream(self, source: StreamSource, sink: StreamSink, beats: Sequence[Any],
                     expect: Sequence[Any], label: str, want_cycles: int | None = None,
                     latency: int = 0, count: str | None = None) -> int:
        """Send ``beats`` into ``source``, collect ``len(expect)`` outputs from ``sink`` (and
        ``latency + 2`` cycles more: nothing extra may come), compare them (see
        :meth:`Report.compare`); with ``want_cycles``, the cycles from the first input
        transfer to the last output transfer, inclusive, must equal it. Returns the
        mismatches."""
        source.sent_cycles.clear()
        sink.clear()
        source.send(beats)
        await self.collect(sink, len(expect), 50 * (len(beats) + latency) + 100, latency + 2)
        bad = self.report.compare(self.log, label, sink.values(), expect, count=count)
        if want_cycles is not None and len(sink):
            bad += self.report.check_cycles(
                self.log, label, sink.cycles[-1] - source.sent_cycles[0] + 1, want_cycles,
                record=[label, len(beats)])
        return bad

    async def stream_held(self, source: StreamSource, sink: StreamSink, beats: Sequence[Any],
                          expect: Sequence[Any], label: str, hold: int, latency: int = 0
                          ) -> tuple[int, int]:
        """:meth:`stream` with ``sink`` not ready for the first ``hold`` cycles; returns the
        mismatches and the number of beats ``source`` transferred while it was held."""
        sink.hold(0)
        task = cocotb.start_soon(self.stream(source, sink, beats, expect, label,
                                             latency=latency))
        await ClockCycles(self.dut.clk, hold)
        accepted = len(source.sent_cycles)
        sink.release()
        return await task, accepted

    async def interrupt(self, source: StreamSource, beats: Sequence[Any], label: str) -> int:
        """Start streaming ``beats``, then reset mid-stream (1 to 3 cycles after a first one
        in which ``source`` offers a beat); returns the problems seen: a sticky ``error``
        output (if the DUT has one) not cleared by the reset. (Inputs accepted in reset and
        outputs valid right after it are counted by the drivers: :meth:`reset_violations`.)
        """
        source.send(beats)
        await ClockCycles(self.dut.clk, self.rng.randint(2, max(2, len(beats))))
        await self.reset(1 + self.rng.randint(1, 3), offer=[source])
        bad = 0
        if hasattr(self.dut, "error"):
            bad = await self.flag("error", 0, f"{label}: the reset")
            await RisingEdge(self.dut.clk)
        return bad

    async def flag(self, name: str, expect: int, what: str) -> int:
        """Check a plain output (e.g. a sticky ``error`` flag) in the read-only phase;
        return 1 (and log) if it is not ``expect``."""
        await ReadOnly()
        got = int(getattr(self.dut, name).value)
        if got != expect:
            self.log.error("%s %d after %s, expected %d", name, got, what, expect)
            return 1
        return 0
