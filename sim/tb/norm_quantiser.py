"""cocotb testbench: NormQuantiser (the BitLinear front end with the RMSNorm weight).

Configuration from ``$MMFREE_TB_CONFIG`` (JSON): the unit's parameters
(:class:`mmfree.spec.NormQuantiserSpec`). Every int8 output and every ``(D, E)`` is compared
with :func:`mmfree.golden.quantiser.quantise_weighted`, and every no-stall vector's cycle
count with :meth:`NormQuantiserSpec.vector_cycles`; the summary goes to
``$MMFREE_TB_REPORT``. Seeds come from cocotb's ``COCOTB_RANDOM_SEED`` (logged).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from mmfree.golden.quantiser import quantise_weighted
from mmfree.sim.kit import Bench, Report
from mmfree.spec import NormQuantiserSpec

REPORT = Report(vectors=0)
SPEC: NormQuantiserSpec = REPORT.spec(NormQuantiserSpec)
N, MAX_DIM, FMT = SPEC.lanes, SPEC.max_dim, SPEC.fmt
LO, HI = -(1 << (SPEC.in_width - 1)), (1 << (SPEC.in_width - 1)) - 1
WLO, WHI = -(1 << (SPEC.weight_width - 1)), (1 << (SPEC.weight_width - 1)) - 1
MAX_GROUPS = -(-MAX_DIM // N)


class Quantiser:
    """The bench, the ``x`` source and the ``q``/``scale`` sinks."""

    def __init__(self, dut, name: str, stall: tuple[float, float, float] = (0, 0, 0)) -> None:
        self.tb = Bench(dut, REPORT, SPEC)
        _, self.rng = self.tb.rngs(name)
        self.x = self.tb.source("x", stall[0])
        self.q, self.scale = self.tb.sink("q", stall[1]), self.tb.sink("scale", stall[2])

    @staticmethod
    def beats(m: np.ndarray, v: np.ndarray, last: bool = True) -> list[dict]:
        """Input beats; a partial final group is padded with zero inputs and random weights
        (which must not matter)."""
        g = -(-len(m) // N)
        pad = g * N - len(m)
        mp = np.concatenate([m, np.zeros(pad, dtype=np.int64)])
        vp = np.concatenate([v, np.random.default_rng(len(m)).integers(WLO, WHI + 1, pad)])
        return [{"data": mp[i * N:(i + 1) * N], "weight": vp[i * N:(i + 1) * N],
                 "last": int(last and i == g - 1)} for i in range(g)]

    async def vector(self, m: np.ndarray, v: np.ndarray, last: bool = True
                     ) -> tuple[np.ndarray, dict, int]:
        """Quantise one vector; returns (q, {scale, exp}, cycles from the first ``x``
        transfer to the last ``q`` transfer). Only its own outputs are received."""
        beats = self.beats(m, v, last)
        self.x.sent_cycles.clear()
        self.q.clear()
        self.scale.clear()
        self.x.send(beats)
        scale = await self.scale.recv()
        groups = []
        while True:
            beat = await self.q.recv()
            groups.append(beat["data"])
            if beat["last"]:
                break
        q = np.concatenate(groups)
        return q, scale, self.q.cycles[len(groups) - 1] - self.x.sent_cycles[0] + 1

    def check(self, label: str, m: np.ndarray, v: np.ndarray, q: np.ndarray, scale: dict,
              cycles: int | None = None) -> int:
        """Compare q (the padding lanes must be 0), D and E with the golden model, and the
        cycles with the formula; returns the mismatches."""
        want = quantise_weighted(m, v, FMT)
        g = -(-len(m) // N)
        want_q = np.concatenate([want.q, np.zeros(g * N - len(m), dtype=np.int64)])
        REPORT["vectors"] += 1
        bad = REPORT.compare(self.tb.log, label, [q, scale["scale"], scale["exp"]],
                             [want_q, want.scale, want.exp])
        if cycles is not None:
            bad += REPORT.check_cycles(self.tb.log, label, cycles, SPEC.vector_cycles(g),
                                       record=[len(m), g])
        return bad


def vector(rng: np.random.Generator, k: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Input and norm weight mantissas of one corner or random kind."""
    rand_m, rand_v = rng.integers(LO, HI + 1, k), rng.integers(WLO, WHI + 1, k)
    if kind == "zero":  # all-zero input: q = 0, D = 0, E = 0
        return np.zeros(k, dtype=np.int64), rand_v
    if kind == "zero_weight":  # A = 0 with N > 0
        return rand_m, np.zeros(k, dtype=np.int64)
    if kind == "extreme":  # the most negative mantissas: the largest |p|, a right shift
        return rng.choice([LO, HI, LO + 1], k), rng.choice([WLO, WHI], k)
    if kind == "tiny":  # |p| <= 1: the largest left shift, R and r at their largest
        return rng.integers(-1, 2, k), rng.integers(-1, 2, k)
    if kind == "single":
        m, v = np.zeros(k, dtype=np.int64), rand_v
        m[rng.integers(k)] = rng.choice([LO, HI, 1, -1])
        return m, v
    if kind == "ties":  # small products: exact rounding ties occur
        return rng.integers(-3, 4, k), rng.integers(-2, 3, k)
    if kind == "wide":  # large inputs, small weights (and the converse)
        return rand_m, rng.integers(-2, 3, k)
    return rand_m, rand_v


KINDS = ["random", "zero", "zero_weight", "extreme", "tiny", "single", "ties", "wide"]


@cocotb.test()
async def test_vectors(dut):
    """Random and corner vectors (K = 1, partial groups, max_dim; shifts left and right,
    all-zero input, zero weights, extremes); exact outputs and cycle counts."""
    qt = Quantiser(dut, "vectors")
    rng = qt.rng
    await qt.tb.start()
    lengths = [1, N, MAX_DIM, max(1, N // 2 + 1), min(MAX_DIM, 2 * N + 1)]
    lengths += [int(rng.integers(1, MAX_DIM + 1)) for _ in range(6)]
    bad = 0
    for i, k in enumerate(lengths):
        for kind in (KINDS if i < 3 else [KINDS[i % len(KINDS)], "random"]):
            m, v = vector(rng, k, kind)
            q, scale, cycles = await qt.vector(m, v)
            bad += qt.check(f"{kind} K={k}", m, v, q, scale, cycles)
    bad += await qt.tb.flag("truncated", 0, "well-formed vectors")
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_stalls(dut):
    """Random bubbles on ``x`` and back-pressure on ``q`` and ``scale``: results unchanged."""
    qt = Quantiser(dut, "stalls", (0.3, 0.5, 0.6))
    rng = qt.rng
    await qt.tb.start()
    bad = 0
    for i in range(8):
        k = int(rng.integers(1, MAX_DIM + 1))
        m, v = vector(rng, k, KINDS[i % len(KINDS)])
        q, scale, _ = await qt.vector(m, v)
        bad += qt.check(f"stalled K={k}", m, v, q, scale)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset at random points (loading, dividing, quantising), with ``x`` offered in reset;
    the next vector is exact and nothing leaks from the interrupted one."""
    qt = Quantiser(dut, "reset")
    tb, rng = qt.tb, qt.rng
    await tb.start()
    bad = 0
    for _ in range(5):
        k = int(rng.integers(1, MAX_DIM + 1))
        g = -(-k // N)
        qt.x.send(qt.beats(*vector(rng, k, "random")))
        await ClockCycles(dut.clk, int(rng.integers(1, SPEC.vector_cycles(g) + 1)))
        await tb.reset(int(rng.integers(1, 4)), offer=[qt.x])
        m, v = vector(rng, k, "random")
        q, scale, _ = await qt.vector(m, v)
        await ClockCycles(dut.clk, SPEC.QUANT_STAGES + 3)
        if len(qt.q) != g or len(qt.scale) != 1:
            tb.log.error("after reset: %d q groups and %d scales, expected %d and 1",
                         len(qt.q), len(qt.scale), g)
            bad += 1
        bad += qt.check("after reset", m, v, q, scale)
        await RisingEdge(dut.clk)
    bad += tb.reset_violations()
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_truncated(dut):
    """A vector without ``last`` is ended at ``max_dim``: its outputs are those of the
    truncated vector, ``truncated`` is set, and reset clears it."""
    qt = Quantiser(dut, "truncated")
    tb, rng = qt.tb, qt.rng
    await tb.start()
    k = MAX_GROUPS * N
    m, v = vector(rng, k, "random")
    q, scale, cycles = await qt.vector(m, v, last=False)
    bad = qt.check("truncated", m, v, q, scale, cycles)
    bad += await tb.flag("truncated", 1, "a vector without last")
    await RisingEdge(dut.clk)
    await tb.reset()
    bad += await tb.flag("truncated", 0, "reset")
    REPORT.write()
    assert bad == 0
