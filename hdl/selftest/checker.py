"""Checker of the board self-test: an independent, sequential reference for a ternary core."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...spec import TernaryCoreSpec, check_int
from .pattern import beat_layout

__all__ = ["MAX_SELFTEST_LANES", "RESULTS_WIDTH", "SelfTestChecker"]

RESULTS_WIDTH = 32
MAX_SELFTEST_LANES = 64  #: the checker shifts a beat's lanes through one per cycle


class SelfTestChecker(wiring.Component):
    """Recomputes every row result of a ternary core one lane per cycle and compares it with
    the core's output; latches pass/fail.

    The reference shares no logic with the core: it takes the beats the core was given (on
    ``beat``), shifts each beat's lanes through one at a time, decodes the 2-bit code with a
    case statement (``01`` adds ``x``, ``11`` subtracts it, ``00`` and ``10`` add nothing)
    into a signed ``acc_width``-bit accumulator that wraps, and on a beat with ``w.last`` makes
    the row's expected result. It is bit-exact with
    :func:`mmfree.golden.selftest.row_results` (and so with
    :func:`mmfree.golden.ternary.ternary_matvec`).

    Ports:

    * ``beat`` (in stream, :func:`~mmfree.hdl.selftest.pattern.beat_layout`): the beats, in
      the order the core received them.
    * ``y`` (in stream, signed ``acc_width``): the core's results; ``y.ready`` is high
      exactly while an expected result is waiting, and every transfer is compared.
    * ``results`` (out, 32 bits): results compared so far (saturates at ``2**32 - 1``).
    * ``mismatch`` (out): sticky; a result differed from the expected one.
      ``first_got``/``first_expected`` (out) hold the first such pair.
    * ``timed_out`` (out): sticky; no result arrived for ``timeout`` cycles (a stuck unit).
    * ``failed`` = ``mismatch | timed_out``; ``passed`` = at least ``pass_after`` results
      and not ``failed``. Once failed, the checker never passes again until reset.

    Timing: a beat takes ``lanes`` cycles plus one to load, so the checker accepts one beat
    every ``lanes + 1`` cycles. The flags and counters are registers, updated the cycle after
    the transfer that changes them. ``rst`` (synchronous) clears everything.
    """

    def __init__(self, lanes: int = 8, act_width: int = 8, acc_width: int = 32,
                 pass_after: int = 1000, timeout: int = 4096) -> None:
        TernaryCoreSpec(lanes=lanes, act_width=act_width, acc_width=acc_width).validate()
        self.lanes = check_int("lanes", lanes, 1, MAX_SELFTEST_LANES)
        self.act_width, self.acc_width = act_width, acc_width
        self.pass_after = check_int("pass_after", pass_after, 1, (1 << RESULTS_WIDTH) - 1)
        self.timeout = check_int("timeout", timeout, 2, 1 << 30)
        super().__init__({
            "beat": In(stream.Signature(beat_layout(lanes, act_width))),
            "y": In(stream.Signature(signed(acc_width))),
            "results": Out(RESULTS_WIDTH),
            "mismatch": Out(1),
            "timed_out": Out(1),
            "failed": Out(1),
            "passed": Out(1),
            "first_got": Out(signed(acc_width)),
            "first_expected": Out(signed(acc_width)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n, aw, acc_w = self.lanes, self.act_width, self.acc_width

        busy = Signal()
        lane = Signal(range(n))
        codes = Signal(2 * n)
        acts = Signal(aw * n)
        last = Signal()
        acc = Signal(signed(acc_w))
        term = Signal(signed(acc_w))
        total = Signal(signed(acc_w))
        expected = Signal(signed(acc_w))
        exp_valid = Signal()

        x0 = acts[:aw].as_signed()
        with m.Switch(codes[:2]):
            with m.Case(0b01):
                m.d.comb += term.eq(x0)
            with m.Case(0b11):
                m.d.comb += term.eq(-x0)
            with m.Default():
                m.d.comb += term.eq(0)
        m.d.comb += total.eq(acc + term)  # truncated to acc_width: wraps

        y_fire = self.y.valid & self.y.ready
        final = lane == n - 1
        # The row's result cannot be written while the previous one still waits.
        blocked = final & last & exp_valid & ~y_fire
        m.d.comb += [self.beat.ready.eq(~busy), self.y.ready.eq(exp_valid)]

        with m.If(y_fire):
            m.d.sync += exp_valid.eq(0)
        with m.If(self.beat.valid & self.beat.ready):
            m.d.sync += [busy.eq(1), lane.eq(0), codes.eq(self.beat.payload.w.codes),
                         acts.eq(self.beat.payload.x), last.eq(self.beat.payload.w.last)]
        with m.Elif(busy & ~blocked):
            m.d.sync += [codes.eq(codes >> 2), acts.eq(acts >> aw), lane.eq(lane + 1),
                         acc.eq(total)]
            with m.If(final):
                m.d.sync += [busy.eq(0), lane.eq(0)]
                with m.If(last):
                    m.d.sync += [expected.eq(total), exp_valid.eq(1), acc.eq(0)]

        # Comparison, counters and the sticky flags.
        idle = Signal(range(self.timeout + 1))
        with m.If(y_fire):
            m.d.sync += [idle.eq(0),
                         self.results.eq(Mux(self.results.all(), self.results,
                                             self.results + 1))]
            with m.If(self.y.payload != expected):
                m.d.sync += self.mismatch.eq(1)
                with m.If(~self.mismatch):
                    m.d.sync += [self.first_got.eq(self.y.payload),
                                 self.first_expected.eq(expected)]
        with m.Elif(idle == self.timeout):
            m.d.sync += self.timed_out.eq(1)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)
        m.d.comb += [
            self.failed.eq(self.mismatch | self.timed_out),
            self.passed.eq((self.results >= self.pass_after) & ~self.failed),
        ]
        return m
