"""cocotb testbench: BitLinearUnit (fused RMSNorm + absmax quantiser, ternary core).

Configuration from ``$MMFREE_TB_CONFIG`` (JSON): the unit's parameters (lanes, max_dim,
in_width, recip_frac, rsqrt_frac, acc_width, tree_levels_per_stage) and, for
``test_tiny_model``, ``model`` (d, layers, vocab, inter, seed or weights path), ``prompt``
(token list) and ``n_new``. Every row sum and every scale ``D`` is compared with
:class:`mmfree.golden.quantiser.FixedBitLinear`; the summary goes to ``$MMFREE_TB_REPORT``,
per-token progress (JSON lines) to ``$MMFREE_TB_PROGRESS``. Seeds come from cocotb's
``COCOTB_RANDOM_SEED`` (logged).
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from mmfree.golden.quantiser import FixedBitLinear
from mmfree.golden.ternary import encode_codes
from mmfree.golden.tiny_model import Greedy, TinyConfig, TinyModel, load_weights, token_step
from mmfree.model.cycles import bitlinear_unit_cycles
from mmfree.sim.stream import StreamSink, StreamSource, pack, to_signed

CFG = json.loads(os.environ.get("MMFREE_TB_CONFIG", "{}"))
N = int(CFG.get("lanes", 16))
MAX_DIM = int(CFG.get("max_dim", 1024))
ARITH = FixedBitLinear(int(CFG.get("in_width", 16)), int(CFG.get("recip_frac", 24)),
                       int(CFG.get("rsqrt_frac", 32)), int(CFG.get("acc_width", 32)))
PIPE = int(CFG.get("tree_levels_per_stage", 0))
PERIOD = 10
REPORT: dict = {"config": CFG, "products": 0, "outputs": 0, "mismatches": 0,
                "cycle_checks": 0, "cycle_mismatches": 0, "tests": {}}
LO, HI = -(1 << (ARITH.in_width - 1)), (1 << (ARITH.in_width - 1)) - 1


def _write_report() -> None:
    path = os.environ.get("MMFREE_TB_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(REPORT, f, indent=1)


def expected_cycles(m: int, k: int) -> int:
    """The cycle model's count (:func:`mmfree.model.cycles.bitlinear_unit_cycles`)."""
    return int(bitlinear_unit_cycles(m, k, N, ARITH.recip_frac, ARITH.rsqrt_frac, PIPE))


class BitLinearDriver:
    """Clock, reset, the ``x``/``w`` sources and the ``y``/``scale`` sinks of the unit."""

    def __init__(self, dut, rng: random.Random,
                 stall: tuple[float, float, float, float] = (0, 0, 0, 0)) -> None:
        self.dut, self.rng = dut, rng
        dut.rst.value = 1
        self.x = StreamSource(dut, "x", dut.clk, PERIOD, rng, stall[0])
        self.w = StreamSource(dut, "w", dut.clk, PERIOD, rng, stall[1])
        self.y = StreamSink(dut, "y", dut.clk, PERIOD, rng, stall[2])
        self.scale = StreamSink(dut, "scale", dut.clk, PERIOD, rng, stall[3])
        self.ends = (self.x, self.w, self.y, self.scale)

    async def start(self) -> None:
        Clock(self.dut.clk, PERIOD, unit="ns").start()
        await self.reset()

    async def reset(self, cycles: int = 2) -> None:
        """Stop the drivers, pulse reset, restart with empty queues."""
        for end in self.ends:
            end.stop()
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        for end in self.ends:
            end.start()

    @staticmethod
    def beats(m_vec: np.ndarray, w_q: np.ndarray) -> tuple[list[int], list[int]]:
        """Input and weight beats; a partial final group is padded with zeros (x) and zero
        codes (w)."""
        k = len(m_vec)
        g = -(-k // N)
        pad = g * N - k
        mv = np.concatenate([m_vec, np.zeros(pad, dtype=np.int64)])
        codes = np.concatenate([encode_codes(w_q), np.zeros((w_q.shape[0], pad), np.int64)],
                               axis=1)
        xw = ARITH.in_width
        xb = [pack(mv[i * N:(i + 1) * N], xw) | (int(i == g - 1) << (N * xw)) for i in range(g)]
        rows = w_q.shape[0]
        wb = [pack(codes[r, i * N:(i + 1) * N], 2) | (int(i == g - 1) << (2 * N))
              | (int(i == g - 1 and r == rows - 1) << (2 * N + 1))
              for r in range(rows) for i in range(g)]
        return xb, wb

    async def product(self, m_vec: np.ndarray, w_q: np.ndarray) -> tuple[list[int], int, int]:
        """Run one product; returns (row sums, D, cycles from first x to last y)."""
        xb, wb = self.beats(m_vec, w_q)
        x0, y0, s0 = len(self.x.sent_cycles), len(self.y.received), len(self.scale.received)
        self.x.send(xb)
        self.w.send(wb)
        rows = w_q.shape[0]
        while len(self.y.received) < y0 + rows or len(self.scale.received) < s0 + 1:
            await RisingEdge(self.dut.clk)
        acc = [to_signed(v, ARITH.acc_width) for v in self.y.received[y0:]]
        cycles = self.y.cycles[-1] - self.x.sent_cycles[x0] + 1
        return acc, self.scale.received[s0], cycles

    def check(self, label: str, m_vec: np.ndarray, w_q: np.ndarray, acc: list[int],
              scale: int) -> bool:
        want_acc, want_scale = ARITH.device(m_vec, w_q)
        REPORT["products"] += 1
        REPORT["outputs"] += len(acc) + 1
        bad = int(np.sum(np.asarray(acc) != want_acc)) + int(scale != want_scale)
        if bad:
            REPORT["mismatches"] += bad
            self.dut._log.error("%s: %d mismatches (D %d, want %d)", label, bad, scale,
                                want_scale)
        return not bad


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


async def _start(dut, stall=(0, 0, 0, 0)) -> tuple[BitLinearDriver, np.random.Generator]:
    seed = random.getrandbits(32)
    dut._log.info("stimulus seed %d (COCOTB_RANDOM_SEED replays it)", seed)
    drv = BitLinearDriver(dut, random.Random(seed), stall)
    await drv.start()
    return drv, np.random.default_rng(seed)


@cocotb.test()
async def test_products(dut):
    """Random and corner vectors and shapes (K = 1, partial groups, max_dim); exact cycles."""
    drv, rng = await _start(dut)
    kinds = ["random", "zero", "extreme", "tiny", "single"]
    shapes = [(1, 1), (3, N), (2, MAX_DIM), (5, max(1, N // 2 + 1)), (4, 2 * N + 1)]
    shapes += [(int(rng.integers(1, 9)), int(rng.integers(1, MAX_DIM + 1))) for _ in range(6)]
    for i, (m, k) in enumerate(shapes):
        for kind in (kinds if i < 2 else [kinds[i % len(kinds)]]):
            vec = _vector(rng, k, kind)
            w_q = rng.integers(-1, 2, (m, k))
            acc, scale, cycles = await drv.product(vec, w_q)
            drv.check(f"{kind} {m}x{k}", vec, w_q, acc, scale)
            REPORT["cycle_checks"] += 1
            if cycles != expected_cycles(m, k):
                REPORT["cycle_mismatches"] += 1
                dut._log.error("%dx%d: %d cycles, formula %d", m, k, cycles,
                               expected_cycles(m, k))
    assert int(dut.error.value) == 0
    REPORT["tests"]["products"] = True
    _write_report()
    assert REPORT["mismatches"] == 0 and REPORT["cycle_mismatches"] == 0


@cocotb.test()
async def test_stalls(dut):
    """Random bubbles on both inputs and back-pressure on both outputs: results unchanged."""
    drv, rng = await _start(dut, (0.3, 0.4, 0.5, 0.6))
    for _ in range(6):
        m, k = int(rng.integers(1, 6)), int(rng.integers(1, MAX_DIM + 1))
        vec, w_q = _vector(rng, k, "random"), rng.integers(-1, 2, (m, k))
        acc, scale, _ = await drv.product(vec, w_q)
        assert drv.check(f"stalled {m}x{k}", vec, w_q, acc, scale)
    REPORT["tests"]["stalls"] = True
    _write_report()


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset at random points of a product (loading, quantising, running); the next product
    is exact, and no outputs leak from the interrupted one."""
    drv, rng = await _start(dut)
    for _ in range(4):
        m, k = int(rng.integers(2, 6)), int(rng.integers(N + 1, MAX_DIM + 1))
        xb, wb = drv.beats(_vector(rng, k, "random"), rng.integers(-1, 2, (m, k)))
        drv.x.send(xb)
        drv.w.send(wb)
        await ClockCycles(dut.clk, int(rng.integers(1, expected_cycles(m, k))))
        await drv.reset(int(rng.integers(1, 4)))
        n_y, n_s = len(drv.y.received), len(drv.scale.received)
        vec, w_q = _vector(rng, k, "random"), rng.integers(-1, 2, (m, k))
        acc, scale, _ = await drv.product(vec, w_q)
        assert len(drv.y.received) == n_y + m and len(drv.scale.received) == n_s + 1
        assert drv.check("after reset", vec, w_q, acc, scale)
        assert int(dut.error.value) == 0
    REPORT["tests"]["reset"] = True
    _write_report()


@cocotb.test()
async def test_error_flag(dut):
    """A weight row shorter than the vector raises the sticky error; reset clears it."""
    drv, rng = await _start(dut)
    k = 2 * N
    vec, w_q = _vector(rng, k, "random"), rng.integers(-1, 2, (2, k))
    xb, wb = drv.beats(vec, w_q)
    wb[0] |= 1 << (2 * N)  # 'last' on the first group of a two-group row
    drv.x.send(xb)
    drv.w.send(wb)
    await ClockCycles(dut.clk, expected_cycles(2, k) + 5)
    assert int(dut.error.value) == 1
    await drv.reset()
    assert int(dut.error.value) == 0
    REPORT["tests"]["error_flag"] = True
    _write_report()


def _progress(entry: dict) -> None:
    path = os.environ.get("MMFREE_TB_PROGRESS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


@cocotb.test(skip="model" not in CFG)
async def test_tiny_model(dut):
    """The tiny MatMul-free LM with every BitLinear on the RTL; the host does the rest."""
    spec = CFG["model"]
    if "weights" in spec:
        model = load_weights(spec["weights"])
    else:
        model = TinyModel.random(TinyConfig(int(spec["d"]), int(spec["layers"]),
                                            int(spec["vocab"]), int(spec.get("inter", 0))),
                                 int(spec["seed"]))
    drv, _ = await _start(dut)
    greedy = Greedy(CFG["prompt"], int(CFG["n_new"]))
    state = model.init_state()
    steps: list[dict] = []
    while not greedy.done:
        t0 = time.perf_counter()
        calls: list[dict] = []
        gen = token_step(model, greedy.next_token(), state)
        call = next(gen)
        while True:
            m_vec = ARITH.mantissas(call.x)
            acc, scale, cycles = await drv.product(m_vec, call.matrix.w_q)
            drv.check(call.name, m_vec, call.matrix.w_q, acc, scale)
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
        _progress({k: v for k, v in step.items() if k != "calls"}
                  | {"generated": len(greedy.result.tokens), "n_new": greedy.n_new,
                     "mismatches": REPORT["mismatches"]})
    REPORT["model"] = {"tokens": greedy.result.tokens, "steps": steps,
                       "logits": [[float(v) for v in lg] for lg in greedy.result.logits]}
    REPORT["tests"]["tiny_model"] = True
    _write_report()
    assert REPORT["mismatches"] == 0
