"""cocotb testbench: BitLinearUnit (fused RMSNorm + absmax quantiser, ternary core).

Configuration from ``$MMFREE_TB_CONFIG`` (JSON): the unit's parameters
(:class:`mmfree.spec.BitLinearUnitSpec`) and, for ``test_tiny_model``, ``model`` (d,
layers, vocab, inter, seed or weights path), ``prompt`` (token list) and ``n_new``. Every
row sum and every scale ``D`` is compared with :class:`mmfree.golden.quantiser.FixedBitLinear`
and every product's cycle count with :meth:`BitLinearUnitSpec.cycles`; the summary goes to
``$MMFREE_TB_REPORT``, per-token progress (JSON lines) to ``$MMFREE_TB_PROGRESS``. Seeds come
from cocotb's ``COCOTB_RANDOM_SEED`` (logged).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from mmfree.golden.quantiser import FixedBitLinear
from mmfree.golden.ternary import encode_codes
from mmfree.golden.tiny_model import Greedy, TinyConfig, TinyModel, load_weights, token_step
from mmfree.sim.kit import Bench, Report, progress
from mmfree.spec import BitLinearUnitSpec

REPORT = Report(products=0)
SPEC: BitLinearUnitSpec = REPORT.spec(BitLinearUnitSpec)
N, MAX_DIM = SPEC.lanes, SPEC.max_dim
ARITH = FixedBitLinear(SPEC.in_width, SPEC.recip_frac, SPEC.rsqrt_frac, SPEC.acc_width)
LO, HI = -(1 << (ARITH.in_width - 1)), (1 << (ARITH.in_width - 1)) - 1


class Unit:
    """The bench, the ``x``/``w`` sources and the ``y``/``scale`` sinks of the unit."""

    def __init__(self, dut, name: str,
                 stall: tuple[float, float, float, float] = (0, 0, 0, 0)) -> None:
        self.tb = Bench(dut, REPORT, SPEC)
        _, self.rng = self.tb.rngs(name)
        self.x, self.w = self.tb.source("x", stall[0]), self.tb.source("w", stall[1])
        self.y, self.scale = self.tb.sink("y", stall[2]), self.tb.sink("scale", stall[3])

    @staticmethod
    def beats(m_vec: np.ndarray, w_q: np.ndarray) -> tuple[list[dict], list[dict]]:
        """Input and weight beats; a partial final group is padded with zeros (x) and zero
        codes (w)."""
        k = len(m_vec)
        g = -(-k // N)
        pad = g * N - k
        mv = np.concatenate([m_vec, np.zeros(pad, dtype=np.int64)])
        codes = np.concatenate([encode_codes(w_q), np.zeros((w_q.shape[0], pad), np.int64)],
                               axis=1)
        xb = [{"data": mv[i * N:(i + 1) * N], "last": int(i == g - 1)} for i in range(g)]
        rows = w_q.shape[0]
        wb = [{"codes": codes[r, i * N:(i + 1) * N], "last": int(i == g - 1),
               "final": int(i == g - 1 and r == rows - 1)}
              for r in range(rows) for i in range(g)]
        return xb, wb

    async def product(self, m_vec: np.ndarray, w_q: np.ndarray) -> tuple[list[int], int, int]:
        """Run one product; returns (row sums, D, cycles from first x to last y). Only its
        own outputs are received (``y`` and ``scale`` start empty)."""
        xb, wb = self.beats(m_vec, w_q)
        self.x.sent_cycles.clear()
        self.y.clear()
        self.scale.clear()
        self.x.send(xb)
        self.w.send(wb)
        acc = [await self.y.recv() for _ in range(w_q.shape[0])]
        scale = await self.scale.recv()
        return acc, scale, self.y.cycles[len(acc) - 1] - self.x.sent_cycles[0] + 1

    def check(self, label: str, m_vec: np.ndarray, w_q: np.ndarray, acc: list[int],
              scale: int, cycles: int | None = None) -> int:
        """Compare the row sums and ``D`` with the golden model (and the cycles with the
        formula); returns the mismatches."""
        want_acc, want_scale = ARITH.device(m_vec, w_q)
        REPORT["products"] += 1
        bad = REPORT.compare(self.tb.log, label, [*acc, scale], [*want_acc, want_scale])
        if cycles is not None:
            m, k = w_q.shape
            bad += REPORT.check_cycles(self.tb.log, label, cycles, SPEC.cycles(m, k),
                                       record=[m, k])
        return bad


def _vector(rng: np.random.Generator, k: int, kind: str) -> np.ndarray:
    if kind == "zero":
        return np.zeros(k, dtype=np.int64)
    if kind == "extreme":  # the most negative mantissa and its neighbours: A = 2**(w-1)
        return rng.choice([LO, HI, LO + 1, 0], k)
    if kind == "tiny":  # A and N small: R and r at their largest
        return rng.integers(-1, 2, k)
    if kind == "single":
        v = np.zeros(k, dtype=np.int64)
        v[rng.integers(k)] = rng.choice([LO, HI, 1, -1])
        return v
    return rng.integers(LO, HI + 1, k)


@cocotb.test()
async def test_products(dut):
    """Random and corner vectors and shapes (K = 1, partial groups, max_dim); exact cycles."""
    unit = Unit(dut, "products")
    rng = unit.rng
    await unit.tb.start()
    kinds = ["random", "zero", "extreme", "tiny", "single"]
    shapes = [(1, 1), (3, N), (2, MAX_DIM), (5, max(1, N // 2 + 1)), (4, 2 * N + 1)]
    shapes += [(int(rng.integers(1, 9)), int(rng.integers(1, MAX_DIM + 1))) for _ in range(6)]
    bad = 0
    for i, (m, k) in enumerate(shapes):
        for kind in (kinds if i < 2 else [kinds[i % len(kinds)]]):
            vec = _vector(rng, k, kind)
            w_q = rng.integers(-1, 2, (m, k))
            acc, scale, cycles = await unit.product(vec, w_q)
            bad += unit.check(f"{kind} {m}x{k}", vec, w_q, acc, scale, cycles)
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
    for _ in range(6):
        m, k = int(rng.integers(1, 6)), int(rng.integers(1, MAX_DIM + 1))
        vec, w_q = _vector(rng, k, "random"), rng.integers(-1, 2, (m, k))
        acc, scale, _ = await unit.product(vec, w_q)
        bad += unit.check(f"stalled {m}x{k}", vec, w_q, acc, scale)
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
        m, k = int(rng.integers(2, 6)), int(rng.integers(N + 1, MAX_DIM + 1))
        xb, wb = unit.beats(_vector(rng, k, "random"), rng.integers(-1, 2, (m, k)))
        unit.x.send(xb)
        unit.w.send(wb)
        await ClockCycles(dut.clk, int(rng.integers(1, SPEC.cycles(m, k))))
        await tb.reset(int(rng.integers(1, 4)), offer=[unit.x, unit.w])
        vec, w_q = _vector(rng, k, "random"), rng.integers(-1, 2, (m, k))
        acc, scale, _ = await unit.product(vec, w_q)
        await ClockCycles(dut.clk, SPEC.latency + 2)
        # no output leaked from the interrupted product, none came twice
        assert len(unit.y) == m and len(unit.scale) == 1
        bad += unit.check("after reset", vec, w_q, acc, scale)
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
    vec, w_q = _vector(rng, k, "random"), rng.integers(-1, 2, (2, k))
    xb, wb = unit.beats(vec, w_q)
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
async def test_tiny_model(dut):
    """The tiny MatMul-free LM with every BitLinear on the RTL; the host does the rest."""
    cfg = REPORT["config"]
    spec = cfg["model"]
    if "weights" in spec:
        model = load_weights(spec["weights"])
    else:
        model = TinyModel.random(TinyConfig(int(spec["d"]), int(spec["layers"]),
                                            int(spec["vocab"]), int(spec.get("inter", 0))),
                                 int(spec["seed"]))
    unit = Unit(dut, "tiny_model")
    await unit.tb.start()
    greedy = Greedy(cfg["prompt"], int(cfg["n_new"]))
    state = model.init_state()
    steps: list[dict] = []
    bad = 0
    while not greedy.done:
        t0 = time.perf_counter()
        calls: list[dict] = []
        gen = token_step(model, greedy.next_token(), state)
        call = next(gen)
        while True:
            m_vec = ARITH.mantissas(call.x)
            acc, scale, cycles = await unit.product(m_vec, call.matrix.w_q)
            bad += unit.check(call.name, m_vec, call.matrix.w_q, acc, scale)
            calls.append({"name": call.name, "m": call.matrix.w_q.shape[0], "k": len(m_vec),
                          "cycles": cycles})
            y = ARITH.rescale(acc, scale, len(m_vec), call.matrix.row_scales)
            try:
                call = gen.send(y)
            except StopIteration as stop:
                logits, state = stop.value
                break
        before = len(greedy.result.tokens)
        greedy.observe(logits)
        step = {"step": len(steps), "cycles": sum(c["cycles"] for c in calls),
                "wall_s": time.perf_counter() - t0, "calls": calls,
                "token": greedy.result.tokens[-1] if len(greedy.result.tokens) > before
                else None}
        steps.append(step)
        progress({k: v for k, v in step.items() if k != "calls"}
                 | {"generated": len(greedy.result.tokens), "n_new": greedy.n_new,
                    "mismatches": REPORT["mismatches"]})
    REPORT["model"] = {"tokens": greedy.result.tokens, "steps": steps,
                       "logits": [[float(v) for v in lg] for lg in greedy.result.logits]}
    REPORT.write()
    assert bad == 0
