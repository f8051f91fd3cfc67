"""cocotb testbench: BitLinearUnit (front end with the RMSNorm weight, ternary core).

Configuration from ``$MMFREE_TB_CONFIG`` (JSON): the unit's parameters
(:class:`mmfree.spec.BitLinearUnitSpec`) and, for :func:`test_model`, ``model``: the
checkpoint folder, the prompt ids, the number of new tokens, the sampling settings and the
end-of-sequence id. Every row sum and every ``(D, E)`` is compared with
:meth:`mmfree.golden.quantiser.NormBitLinear.device` and every product's cycle count with
:meth:`BitLinearUnitSpec.cycles`; the summary goes to ``$MMFREE_TB_REPORT``, per-token
progress (JSON lines) to ``$MMFREE_TB_PROGRESS``. Seeds come from cocotb's
``COCOTB_RANDOM_SEED`` (logged).

:class:`Unit` is the per-beat driver the model run (:func:`mmfree.sim.tb.model_host.run_model`)
uses: ``await unit.product(m, v, codes)`` returns ``(row sums, D, E, cycles)`` for one
BitLinear; the bulk testbench (:mod:`mmfree.sim.tb.bitlinear_bulk`) runs the same model with
the weights resident in its replay memory.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from mmfree.golden.quantiser import NormBitLinear
from mmfree.golden.ternary import encode_codes
from mmfree.sim.kit import Bench, Report
from mmfree.sim.tb.model_host import run_model
from mmfree.spec import BitLinearUnitSpec

REPORT = Report(products=0)
SPEC: BitLinearUnitSpec = REPORT.spec(BitLinearUnitSpec)
N, MAX_DIM = SPEC.lanes, SPEC.max_dim
ARITH = NormBitLinear(SPEC.fmt, SPEC.acc_width)
LO, HI = -(1 << (SPEC.in_width - 1)), (1 << (SPEC.in_width - 1)) - 1
WLO, WHI = -(1 << (SPEC.weight_width - 1)), (1 << (SPEC.weight_width - 1)) - 1


class Unit:
    """The bench, the ``x``/``w`` sources and the ``y``/``scale`` sinks of the unit: the
    per-beat :class:`~mmfree.sim.tb.model_host.ProductDriver`."""

    def __init__(self, dut, name: str,
                 stall: tuple[float, float, float, float] = (0, 0, 0, 0)) -> None:
        self.tb = Bench(dut, REPORT, SPEC)
        _, self.rng = self.tb.rngs(name)
        self.x, self.w = self.tb.source("x", stall[0]), self.tb.source("w", stall[1])
        self.y, self.scale = self.tb.sink("y", stall[2]), self.tb.sink("scale", stall[3])

    @staticmethod
    def beats(m: np.ndarray, v: np.ndarray, codes: np.ndarray
              ) -> tuple[list[dict], list[dict]]:
        """Input and weight beats for ternary ``codes`` (M x K, values -1/0/1); a partial
        final group is padded with zero inputs, zero weights and zero codes."""
        k = len(m)
        g = -(-k // N)
        pad = g * N - k
        mv = np.concatenate([m, np.zeros(pad, dtype=np.int64)])
        vv = np.concatenate([v, np.zeros(pad, dtype=np.int64)])
        enc = np.concatenate([encode_codes(codes), np.zeros((codes.shape[0], pad), np.int64)],
                             axis=1)
        xb = [{"data": mv[i * N:(i + 1) * N], "weight": vv[i * N:(i + 1) * N],
               "last": int(i == g - 1)} for i in range(g)]
        rows = codes.shape[0]
        wb = [{"codes": enc[r, i * N:(i + 1) * N], "last": int(i == g - 1),
               "final": int(i == g - 1 and r == rows - 1)}
              for r in range(rows) for i in range(g)]
        return xb, wb

    async def product(self, m: np.ndarray, v: np.ndarray, codes: np.ndarray
                      ) -> tuple[list[int], int, int, int]:
        """Run one product; returns (row sums, D, E, cycles from the first ``x`` transfer
        to the last ``y`` transfer). Only its own outputs are received."""
        xb, wb = self.beats(m, v, codes)
        self.x.sent_cycles.clear()
        self.y.clear()
        self.scale.clear()
        self.x.send(xb)
        self.w.send(wb)
        acc = [await self.y.recv() for _ in range(codes.shape[0])]
        scale = await self.scale.recv()
        return (acc, scale["scale"], scale["exp"],
                self.y.cycles[len(acc) - 1] - self.x.sent_cycles[0] + 1)

    def check(self, label: str, m: np.ndarray, v: np.ndarray, codes: np.ndarray,
              acc: list[int], scale: int, exp: int, cycles: int | None = None) -> int:
        """Compare the row sums, ``D`` and ``E`` with the golden model (and the cycles with
        the formula); returns the mismatches."""
        want_acc, want_scale, want_exp = ARITH.device(m, v, codes.astype(np.int8))
        REPORT["products"] += 1
        bad = REPORT.compare(self.tb.log, label, [*acc, scale, exp],
                             [*want_acc, want_scale, want_exp])
        if cycles is not None:
            rows, k = codes.shape
            bad += REPORT.check_cycles(self.tb.log, label, cycles, SPEC.cycles(rows, k),
                                       record=[rows, k])
        return bad


def _vector(rng: np.random.Generator, k: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    m, v = rng.integers(LO, HI + 1, k), rng.integers(WLO, WHI + 1, k)
    if kind == "zero":
        return np.zeros(k, dtype=np.int64), v
    if kind == "zero_weight":
        return m, np.zeros(k, dtype=np.int64)
    if kind == "extreme":  # the most negative mantissas: the largest products
        return rng.choice([LO, HI, LO + 1, 0], k), rng.choice([WLO, WHI], k)
    if kind == "tiny":  # |p| <= 1: the largest left shift
        return rng.integers(-1, 2, k), rng.integers(-1, 2, k)
    return m, v


@cocotb.test()
async def test_products(dut):
    """Random and corner vectors and shapes (K = 1, partial groups, max_dim); exact cycles."""
    unit = Unit(dut, "products")
    rng = unit.rng
    await unit.tb.start()
    kinds = ["random", "zero", "zero_weight", "extreme", "tiny"]
    shapes = [(1, 1), (3, N), (2, MAX_DIM), (5, max(1, N // 2 + 1)), (4, 2 * N + 1)]
    shapes += [(int(rng.integers(1, 9)), int(rng.integers(1, MAX_DIM + 1))) for _ in range(5)]
    bad = 0
    for i, (rows, k) in enumerate(shapes):
        for kind in (kinds if i < 2 else [kinds[i % len(kinds)]]):
            m, v = _vector(rng, k, kind)
            codes = rng.integers(-1, 2, (rows, k))
            acc, scale, exp, cycles = await unit.product(m, v, codes)
            bad += unit.check(f"{kind} {rows}x{k}", m, v, codes, acc, scale, exp, cycles)
    bad += await unit.tb.flag("error", 0, "well-formed products")
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_stalls(dut):
    """Random bubbles on both inputs and back-pressure on both outputs: results unchanged."""
    unit = Unit(dut, "stalls", (0.3, 0.4, 0.5, 0.6))
    rng = unit.rng
    await unit.tb.start()
    bad = 0
    for _ in range(5):
        rows, k = int(rng.integers(1, 6)), int(rng.integers(1, MAX_DIM + 1))
        (m, v), codes = _vector(rng, k, "random"), rng.integers(-1, 2, (rows, k))
        acc, scale, exp, _ = await unit.product(m, v, codes)
        bad += unit.check(f"stalled {rows}x{k}", m, v, codes, acc, scale, exp)
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset at random points of a product (loading, quantising, running), with both inputs
    offered in reset; the next product is exact, and no outputs leak from the interrupted
    one."""
    unit = Unit(dut, "reset")
    tb, rng = unit.tb, unit.rng
    await tb.start()
    bad = 0
    for _ in range(4):
        rows, k = int(rng.integers(2, 6)), int(rng.integers(N + 1, MAX_DIM + 1))
        xb, wb = unit.beats(*_vector(rng, k, "random"), rng.integers(-1, 2, (rows, k)))
        unit.x.send(xb)
        unit.w.send(wb)
        await ClockCycles(dut.clk, int(rng.integers(1, SPEC.cycles(rows, k))))
        await tb.reset(int(rng.integers(1, 4)), offer=[unit.x, unit.w])
        (m, v), codes = _vector(rng, k, "random"), rng.integers(-1, 2, (rows, k))
        acc, scale, exp, _ = await unit.product(m, v, codes)
        await ClockCycles(dut.clk, SPEC.latency + 2)
        # no output leaked from the interrupted product, none came twice
        if len(unit.y) != rows or len(unit.scale) != 1:
            tb.log.error("after reset: %d row sums and %d scales, expected %d and 1",
                         len(unit.y), len(unit.scale), rows)
            bad += 1
        bad += unit.check("after reset", m, v, codes, acc, scale, exp)
        bad += await tb.flag("error", 0, "a product after reset")
        await RisingEdge(dut.clk)
    bad += tb.reset_violations()
    REPORT.write()
    assert bad == 0


@cocotb.test()
async def test_error_flag(dut):
    """A weight row shorter than the vector raises the sticky error; reset clears it."""
    unit = Unit(dut, "error_flag")
    tb, rng = unit.tb, unit.rng
    await tb.start()
    k = 2 * N
    (m, v), codes = _vector(rng, k, "random"), rng.integers(-1, 2, (2, k))
    xb, wb = unit.beats(m, v, codes)
    wb[0]["last"] = 1  # 'last' on the first group of a two-group row
    unit.x.send(xb)
    unit.w.send(wb)
    await ClockCycles(dut.clk, SPEC.cycles(2, k) + 5)
    bad = await tb.flag("error", 1, "a short weight row")
    await RisingEdge(dut.clk)
    await tb.reset()
    bad += await tb.flag("error", 0, "reset")
    REPORT.write()
    assert bad == 0


@cocotb.test(skip="model" not in REPORT["config"])
async def test_model(dut):
    """HGRN-Bit with every BitLinear on the RTL; the host does the rest."""
    unit = Unit(dut, "model")
    await unit.tb.start()
    bad = await run_model(unit, REPORT["config"]["model"], REPORT, ARITH)
    REPORT.write()
    assert bad == 0
