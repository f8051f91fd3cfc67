"""Self-test of a ternary core: pattern generator -> core -> independent checker."""

from __future__ import annotations

from amaranth import Module, Shape, signed
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ...golden.selftest import DEFAULT_SEED, check_seed
from ...spec import TernaryCoreSpec, check_int
from ..ternary_core import TernaryCore
from .checker import MAX_SELFTEST_LANES, RESULTS_WIDTH, SelfTestChecker
from .pattern import PatternGenerator, beat_layout

__all__ = ["SelfTest", "default_timeout"]


def default_timeout(lanes: int, groups: int) -> int:
    """Cycles without a result after which the self-test fails: far above the longest
    legitimate gap (the checker needs ``groups * (lanes + 1)`` cycles per row)."""
    return max(1024, 8 * groups * (lanes + 1))


class SelfTest(wiring.Component):
    """Runs a :class:`~mmfree.hdl.TernaryCore` on pseudo-random data and checks every result.

    Dataflow: a :class:`~mmfree.hdl.selftest.pattern.PatternGenerator` makes beats (``lanes``
    weight codes + ``lanes`` activations, rows of ``groups`` beats). Each beat goes to the
    core's ``w``/``x`` streams and, in the same transfer, into a FIFO of ``fifo_depth`` beats
    that feeds a :class:`~mmfree.hdl.selftest.checker.SelfTestChecker`. The checker
    recomputes each row sequentially and compares it with the core's ``y``. The core runs up
    to ``fifo_depth`` beats ahead of the checker and then waits; its ``y`` is held back
    until the checker has the expected value, so the core's stall paths are exercised too.

    Error injection: while ``inject`` is high, bit 0 of the core's result is inverted on its
    way to the checker, so the next result compared is wrong and ``failed`` latches.

    Ports (all registered by the checker; see it for their timing): ``inject`` (in),
    ``passed``, ``failed``, ``mismatch``, ``timed_out``, ``results`` (32 bits),
    ``first_got``, ``first_expected`` (out). Throughput: one row per about
    ``groups * (lanes + 1)`` cycles, the checker's pace. ``rst`` restarts the whole test.
    """

    def __init__(self, lanes: int = 8, act_width: int = 8, acc_width: int = 32,
                 groups: int = 4, pass_after: int = 1000, fifo_depth: int = 8,
                 timeout: int | None = None, seed: int = DEFAULT_SEED,
                 tree_levels_per_stage: int = 0) -> None:
        TernaryCoreSpec(lanes=lanes, act_width=act_width, acc_width=acc_width).validate()
        self.lanes = check_int("lanes", lanes, 1, MAX_SELFTEST_LANES)
        self.act_width, self.acc_width = act_width, acc_width
        self.groups = check_int("groups", groups, 1, 1 << 16)
        self.pass_after = pass_after
        self.fifo_depth = check_int("fifo_depth", fifo_depth, 1, 512)
        self.timeout = check_int("timeout", default_timeout(lanes, groups) if timeout is None
                                 else timeout, 2, 1 << 30)
        check_int("pass_after", pass_after, 1, (1 << RESULTS_WIDTH) - 1)
        self.seed = check_seed(seed)
        self.tree_levels_per_stage = check_int("tree_levels_per_stage", tree_levels_per_stage,
                                               0, 10)
        super().__init__({
            "inject": In(1),
            "passed": Out(1),
            "failed": Out(1),
            "mismatch": Out(1),
            "timed_out": Out(1),
            "results": Out(RESULTS_WIDTH),
            "first_got": Out(signed(acc_width)),
            "first_expected": Out(signed(acc_width)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.gen = gen = PatternGenerator(self.lanes, self.act_width, self.groups,
                                                  self.seed)
        m.submodules.core = core = TernaryCore(self.lanes, self.act_width, self.acc_width,
                                               self.tree_levels_per_stage)
        m.submodules.checker = chk = SelfTestChecker(self.lanes, self.act_width,
                                                     self.acc_width, self.pass_after,
                                                     self.timeout)
        m.submodules.beats = beats = fifo.SyncFIFOBuffered(
            width=Shape.cast(beat_layout(self.lanes, self.act_width)).width,
            depth=self.fifo_depth)

        # Fork: a beat transfers when both the core and the FIFO take it.
        src = gen.beat
        fire = src.valid & core.w.ready & beats.w_rdy  # core.w.ready implies x.valid
        m.d.comb += [
            core.w.valid.eq(src.valid & beats.w_rdy),
            core.x.valid.eq(src.valid & beats.w_rdy),
            core.w.payload.eq(src.payload.w),
            core.x.payload.eq(src.payload.x),
            beats.w_data.eq(src.payload),
            beats.w_en.eq(fire),
            src.ready.eq(core.w.ready & beats.w_rdy),
            chk.beat.valid.eq(beats.r_rdy),
            chk.beat.payload.eq(beats.r_data),
            beats.r_en.eq(chk.beat.ready),
            chk.y.valid.eq(core.y.valid),
            chk.y.payload.eq(core.y.payload ^ self.inject),
            core.y.ready.eq(chk.y.ready),
        ]
        for name in ("passed", "failed", "mismatch", "timed_out", "results", "first_got",
                     "first_expected"):
            m.d.comb += getattr(self, name).eq(getattr(chk, name))
        return m
