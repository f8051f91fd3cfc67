"""cocotb testbench: VectorUnit (the engine's lane-parallel element-wise unit).

Configuration from ``$MMFREE_TB_CONFIG`` (JSON): the unit's parameters
(:class:`mmfree.spec.VectorUnitSpec`). Every ``y`` group and ``s`` beat is compared with
the fixed-point contract's function of its op (:func:`golden`, on
:mod:`mmfree.golden.hgrn_fixed`), and
every command run alone with the streams keeping up against
:meth:`VectorUnitSpec.cycles`; the summary goes to ``$MMFREE_TB_REPORT``. Seeds come from
cocotb's ``COCOTB_RANDOM_SEED`` (logged).

:class:`Vector` is the driver: ``await vec.run(op, a, b, c, d, args)`` returns the result and the
cycles of one command.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from mmfree.golden import hgrn_fixed as fx
from mmfree.sim.kit import Bench, Report
from mmfree.spec import VecOp, VectorUnitSpec

REPORT = Report(commands=0)
SPEC: VectorUnitSpec = REPORT.spec(VectorUnitSpec)
N, W, MAX_DIM = SPEC.lanes, SPEC.width, SPEC.max_dim
LO, HI = -(1 << (W - 1)), (1 << (W - 1)) - 1
FIXED = SPEC.fixed()
XFRACS = [x for x in (SPEC.act_frac, FIXED.state_frac, SPEC.act_frac + 1)
          if x <= W - SPEC.table_range_log2 + min(6, SPEC.table_bits - 1)]


def golden(op: VecOp, a, b, c, d, args: dict) -> object:
    """The contract's result of one command (``args``: the keywords of
    :meth:`VectorUnitSpec.command`)."""
    shift, align = args.get("shift", 0), args.get("align", 0)
    fmt = fx.Fmt(args.get("ow", W), 0, "half_up")
    if op == VecOp.MUL:
        return fx.vec_mul(a, b, shift, fmt)
    if op == VecOp.MULS:
        return fx.vec_mul(a, args.get("scalar", 0), shift, fmt)
    if op == VecOp.ADD:
        return fx.requantise(a + b, shift, fmt)  # vec_add at shift 0
    if op == VecOp.SUB:
        return fx.requantise(a - b, shift, fmt)  # vec_sub at shift 0
    if op == VecOp.RSUBI:
        return fx.requantise(args.get("scalar", 0) - a, shift, fmt)
    if op == VecOp.FMA2:
        return fx.vec_fma2(a, b, c, d, align, shift, fmt)
    if op == VecOp.SIGMOID:
        return fx.vec_sigmoid(a, args["xfrac"], FIXED)
    if op == VecOp.SILU:
        return fx.vec_silu(a, args["xfrac"], FIXED)
    if op == VecOp.SUMSQ:
        return fx.vec_sumsq(a), 0
    i = fx.vec_argmax(a)
    return int(a[i]), i


class Vector:
    """The bench, the ``cmd``/``a``/``b`` sources and the ``y``/``s`` sinks."""

    def __init__(self, dut, name: str, stall: tuple[float, ...] = (0, 0, 0, 0, 0)) -> None:
        self.tb = Bench(dut, REPORT, SPEC)
        _, self.rng = self.tb.rngs(name)
        self.cmd, self.a, self.b, self.c, self.d = (
            self.tb.source(p, s) for p, s in zip(("cmd", "a", "b", "c", "d"),
                                                 (stall[0], *[stall[1]] * 2, *[stall[2]] * 2),
                                                 strict=True))
        self.y, self.s = self.tb.sink("y", stall[3]), self.tb.sink("s", stall[4])
        self.ny = self.ns = 0  # outputs read so far (indices into the sinks' cycles)

    def clear(self) -> None:
        """Forget the outputs received so far (after a reset)."""
        self.y.clear()
        self.s.clear()
        self.ny = self.ns = 0

    @staticmethod
    def groups(v: np.ndarray) -> list[np.ndarray]:
        """Lane groups of ``v``, the last padded with the most negative value (which must
        not matter: reductions ignore the lanes past ``count``)."""
        g = -(-len(v) // N)
        p = np.full(g * N, LO, dtype=np.int64)
        p[:len(v)] = v
        return [p[i * N:(i + 1) * N] for i in range(g)]

    def issue(self, op: VecOp, a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray,
              args: dict) -> None:
        """Queue one command and its operands on the sources."""
        self.cmd.send([SPEC.command(op, len(a), **args)])
        self.a.send(self.groups(a))
        if op.uses_b:
            self.b.send(self.groups(b))
        if op.uses_cd:
            self.c.send(self.groups(c))
            self.d.send(self.groups(d))

    async def result(self, op: VecOp, count: int) -> tuple[object, int]:
        """The next command's result (a vector, or ``(value, index)``) and the cycle of its
        last output transfer."""
        if op.is_reduction:
            beat = await self.s.recv()
            self.ns += 1
            index = int(beat["group"]) * N + int(beat["lane"])
            return (int(beat["value"]), index), self.s.cycles[self.ns - 1]
        groups = [await self.y.recv() for _ in range(SPEC.groups(count))]
        self.ny += len(groups)
        return np.concatenate(groups)[:count], self.y.cycles[self.ny - 1]

    async def run(self, op: VecOp, a, b, c, d, args: dict) -> tuple[object, int]:
        """One command alone; returns its result and the cycles from its first operand
        transfer to its last output transfer."""
        first = len(self.a.sent_cycles)
        self.issue(op, a, b, c, d, args)
        out, end = await self.result(op, len(a))
        return out, end - self.a.sent_cycles[first] + 1

    def check(self, label: str, op: VecOp, a, b, c, d, args: dict, got,
              cycles: int | None = None) -> int:
        """Compare with the golden model (and the cycles with the spec); the mismatches."""
        want = golden(op, a, b, c, d, args)
        REPORT["commands"] += 1
        bad = REPORT.compare(self.tb.log, label, list(got) if op.is_reduction else [got],
                             list(want) if op.is_reduction else [want])
        if cycles is not None:
            bad += REPORT.check_cycles(self.tb.log, label, cycles, SPEC.cycles(op, len(a)),
                                       record=[op.name, len(a)])
        return bad


def operands(rng: np.random.Generator, op: VecOp, count: int, kind: str
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """``a``, ``b``, ``c``, ``d`` and the command's keywords of one random or corner kind."""
    a, b, c, d = (rng.integers(LO, HI + 1, count) for _ in range(4))
    args = {"shift": int(rng.integers(-W, 2 * W + 1)), "ow": int(rng.integers(2, W + 1)),
            "scalar": int(rng.integers(LO, HI + 1)),
            "align": int(rng.integers(0, SPEC.max_align + 1))}
    if kind == "extreme":  # saturation both ways, the largest products
        a, b, c, d = (rng.choice([LO, HI], count) for _ in range(4))
        args.update(scalar=int(rng.choice([LO, HI])), shift=int(rng.choice([0, -1, -W])),
                    ow=W)
    elif kind == "maxshift":
        args.update(shift=2 * W + SPEC.max_align, align=SPEC.max_align)
    elif kind == "ties":  # equal maxima (the lowest index wins), rounding ties (shift 1)
        a, b, c, d = (rng.integers(-2, 3, count) for _ in range(4))
        args.update(scalar=1, shift=1)
    elif kind == "zero":
        a = np.zeros(count, np.int64)
        args.update(scalar=0, shift=0)
    elif kind == "negative":  # every element negative: the argmax is not a padding lane
        a = rng.integers(LO, 0, count)
    elif kind == "contract":  # the widths and shifts a token uses
        args.update(ow=min(W, int(rng.choice([16, 18, 20]))),
                    shift=int(rng.choice([11, 16])))
        a = rng.integers(-(1 << 15), 1 << 15, count).clip(LO, HI)
    elif kind == "tiny":  # -1, 0, 1 shifted left by ow or more: only 0 fits, -1 saturates
        a, b, c, d = (rng.integers(-1, 2, count) for _ in range(4))
        ow = int(rng.integers(2, 6))
        args.update(scalar=int(rng.integers(-1, 2)), ow=ow, shift=-int(rng.integers(ow, W + 1)))
    if op.is_table:
        if kind == "extreme":  # beyond +-R: both ends, the SiLU asymptotes
            a = rng.choice([LO, HI, 0], count)
        elif kind in ("random", "contract"):  # mostly inside +-R
            a = rng.integers(-(1 << 16), 1 << 16, count).clip(LO, HI)
        args = {"xfrac": XFRACS[int(rng.integers(len(XFRACS)))]}
    elif op in (VecOp.ADD, VecOp.SUB, VecOp.RSUBI) and kind not in ("maxshift", "tiny"):
        args["shift"] = 0 if kind != "random" else args["shift"]
    return a, b, c, d, args


KINDS = ["random", "extreme", "maxshift", "ties", "zero", "negative", "contract", "tiny"]


@cocotb.test()
async def test_ops(dut):
    """Every op at lengths 1, one group, a partial group, ``max_dim`` and random ones, on
    random and corner operands: exact results and cycle counts."""
    vec = Vector(dut, "ops")
    rng = vec.rng
    await vec.tb.start()
    lengths = [1, N, min(MAX_DIM, N + 1), MAX_DIM, int(rng.integers(1, MAX_DIM + 1))]
    bad = 0
    for op in VecOp:
        for i, count in enumerate(lengths):
            for kind in (KINDS if i < 2 else [KINDS[(i + op) % len(KINDS)]]):
                a, b, c, d, args = operands(rng, op, count, kind)
                got, cycles = await vec.run(op, a, b, c, d, args)
                bad += vec.check(f"{op.name} {kind} n={count} {args}", op, a, b, c, d, args,
                                 got, cycles)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_back_to_back(dut):
    """Commands queued back to back (the next command waits for the previous one's last
    operand): every result exact, in order; the total cycles as the spec's gap says."""
    vec = Vector(dut, "back_to_back")
    rng = vec.rng
    await vec.tb.start()
    cmds = []
    for _ in range(12):
        op = VecOp(int(rng.choice([int(o) for o in VecOp])))
        count = int(rng.integers(1, min(MAX_DIM, 4 * N) + 1))
        cmds.append((op, *operands(rng, op, count, KINDS[int(rng.integers(len(KINDS)))])))
    for op, a, b, c, d, args in cmds:
        vec.issue(op, a, b, c, d, args)
    bad = 0
    for op, a, b, c, d, args in cmds:
        got, _ = await vec.result(op, len(a))
        bad += vec.check(f"queued {op.name} n={len(a)}", op, a, b, c, d, args, got)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_stalls(dut):
    """Random bubbles on ``cmd``, ``a``, ``b`` and back-pressure on ``y`` and ``s``."""
    vec = Vector(dut, "stalls", (0.3, 0.4, 0.4, 0.5, 0.6))
    rng = vec.rng
    await vec.tb.start()
    bad = 0
    for i in range(16):
        op = list(VecOp)[i % len(VecOp)]
        count = int(rng.integers(1, MAX_DIM + 1))
        a, b, c, d, args = operands(rng, op, count, KINDS[i % len(KINDS)])
        got, _ = await vec.run(op, a, b, c, d, args)
        bad += vec.check(f"stalled {op.name} n={count}", op, a, b, c, d, args, got)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset in the middle of a command, with ``cmd``, ``a`` and ``b`` offered in reset;
    the next command is exact and nothing of the interrupted one comes out."""
    vec = Vector(dut, "reset")
    tb, rng = vec.tb, vec.rng
    await tb.start()
    bad = 0
    for i in range(6):
        op = [VecOp.FMA2, VecOp.SUMSQ, VecOp.SILU][i % 3]
        count = int(rng.integers(N + 1, max(N + 2, MAX_DIM + 1)))
        vec.issue(op, *operands(rng, op, count, "random"))
        await ClockCycles(dut.clk, int(rng.integers(1, SPEC.cycles(op, count) + 1)))
        await tb.reset(int(rng.integers(1, 4)), offer=[vec.cmd, vec.a, vec.b, vec.c, vec.d])
        vec.clear()
        op = [VecOp.ADD, VecOp.ARGMAX, VecOp.SIGMOID][i % 3]
        a, b, c, d, args = operands(rng, op, count, "random")
        got, cycles = await vec.run(op, a, b, c, d, args)
        bad += vec.check(f"after reset {op.name}", op, a, b, c, d, args, got, cycles)
        await ClockCycles(dut.clk, SPEC.reduce_latency + 3)
        extra = len(vec.y) - (0 if op.is_reduction else SPEC.groups(count)) + len(vec.s) - (
            1 if op.is_reduction else 0)
        if extra:
            tb.log.error("after reset: %d outputs more than the command's", extra)
            bad += 1
        await RisingEdge(dut.clk)
    bad += tb.reset_violations()
    REPORT.write()
    assert bad == 0
