"""Bulk cocotb testbench: BitLinearUnit on the bulk harness (:mod:`mmfree.sim.bulk`).

Configuration (``$MMFREE_TB_CONFIG``): the unit's parameters
(:class:`mmfree.spec.BitLinearUnitSpec`), ``bulk_depths``, and

* for :func:`test_regression`: ``transactions`` (weight beats, default 20000). Random and
  corner vectors (zero, extremes, tiny, single non-zero) and shapes (K = 1, partial groups,
  ``max_dim``) in segments: one product alone and stall-free (its cycle count checked
  against :meth:`BitLinearUnitSpec.cycles`), several products back to back with random
  stalls on all four streams, or a reset at a random cycle of a product with both inputs
  offered in reset (what came out must be a prefix of the expected outputs, nothing may
  leak after it, and the sticky ``error`` flag stays low). Every row sum and every ``D`` is
  compared with :meth:`mmfree.golden.quantiser.FixedBitLinear.device`.

* for :func:`test_model`: ``model`` as :mod:`mmfree.sim.tb.bitlinear` takes it
  (``mmfree run --backend rtl``, the default bulk harness): every matrix of the checkpoint
  resident in the ``w`` memory, one segment per product.

Seeds are logged and in the report (replay: the same ``COCOTB_RANDOM_SEED``).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from mmfree.golden.quantiser import NormBitLinear
from mmfree.sim.bulk_bitlinear import BulkBitLinear, weight_beats, x_beats
from mmfree.sim.kit import Report, component_of
from mmfree.sim.kit.bench import progress
from mmfree.sim.kit.bulk import BulkHarness, play, segment_mode
from mmfree.sim.tb.model_host import ResidentProducts, run_model
from mmfree.spec import BitLinearUnitSpec

REPORT = Report(products=0, transactions=0, segments=0, resets=0, stalled_segments=0,
                violations=0, timeouts=0)
SPEC: BitLinearUnitSpec = REPORT.spec(BitLinearUnitSpec)
CFG = REPORT["config"]
N, MAX_DIM = SPEC.lanes, SPEC.max_dim
ARITH = NormBitLinear(SPEC.fmt, SPEC.acc_width)
LO, HI = -(1 << (SPEC.in_width - 1)), (1 << (SPEC.in_width - 1)) - 1
WLO, WHI = -(1 << (SPEC.weight_width - 1)), (1 << (SPEC.weight_width - 1)) - 1
DEPTHS = {k: int(v) for k, v in CFG.get("bulk_depths", {}).items()}
CLOCK = CFG.get("bulk_clock", "hdl")


def vector(rng: np.random.Generator, k: int) -> np.ndarray:
    kind = rng.integers(10)
    if kind == 0:
        return np.zeros(k, dtype=np.int64)
    if kind == 1:  # the most negative mantissa and its neighbours
        return rng.choice([LO, HI, LO + 1, 0], k)
    if kind == 2:  # A and N small: R and r at their largest
        return rng.integers(-1, 2, k)
    if kind == 3:
        v = np.zeros(k, dtype=np.int64)
        v[rng.integers(k)] = rng.choice([LO, HI, 1, -1])
        return v
    return rng.integers(LO, HI + 1, k)


def shape(rng: np.random.Generator) -> tuple[int, int]:
    kind = rng.integers(8)
    if kind == 0:
        k = int(rng.choice([1, N, max(1, N // 2 + 1), 2 * N + 1, MAX_DIM]))
    else:
        k = int(rng.integers(1, MAX_DIM + 1))
    return int(rng.integers(1, 17)), k


@cocotb.test()
async def test_regression(dut):
    """Random products in segments: alone and stall-free (cycles checked), back to back
    with stalls, reset mid-product; every row sum and scale checked."""
    seed = cocotb.RANDOM_SEED
    REPORT["tests"]["test_regression"] = seed
    dut._log.info("test_regression: seed %d (%s)", seed, SPEC.params())
    rng = np.random.default_rng(seed)
    h = BulkHarness(dut, component_of(SPEC), DEPTHS, CLOCK)
    await h.start()
    target = int(CFG.get("transactions", 20000))
    bad = seg = 0
    t0 = time.perf_counter()
    while REPORT["transactions"] < target:
        mode = segment_mode(rng, seg)
        xs, ws, ys, ds = [], [], [], []
        nx = nw = 0
        products = 1 if mode == "clean" else int(rng.integers(2, 9))
        for _ in range(products):
            m, k = shape(rng)
            g = -(-k // N)
            if nx + g > h.depths["x"] or nw + m * g > h.depths["w"]:
                break
            vec, w_q = vector(rng, k), rng.integers(-1, 2, (m, k))
            v = rng.integers(WLO, WHI + 1, k)
            if rng.integers(8) == 0:
                v[rng.random(k) < 0.5] = 0
            xs.append(x_beats(SPEC, vec, v)[0])
            ws.append(weight_beats(SPEC, w_q)[0])
            acc, scale, exp = ARITH.device(vec, v, w_q.astype(np.int8))
            ys.append(np.asarray(acc))
            ds.append((scale, exp))
            nx += g
            nw += m * g
        xv = {key: np.concatenate([b[key] for b in xs]) for key in xs[0]}
        wv = {key: np.concatenate([b[key] for b in ws]) for key in ws[0]}
        stall = None
        if mode != "clean":
            stall = {p: rng.uniform(0, 0.6) for p in ("x", "w", "y", "scale")}
            REPORT["stalled_segments"] += 1
        label = f"segment {seg} ({mode}, {len(ys)} products)"
        reset_at = int(rng.integers(1, nx + nw + 2 * SPEC.overhead)) if mode == "reset" else 0
        b, res = await play(h, REPORT, dut._log, label,
                            beats={"w": (wv, nw), "x": (xv, nx)},
                            expect={"y": np.concatenate(ys), "scale": {
                                name: np.array([d[j] for d in ds], dtype=np.int64)
                                for j, name in enumerate(("scale", "exp"))}},
                            stall=stall, reset_at=reset_at, pre_reset=3 if seg == 0 else 0,
                            seed=int(rng.integers(1 << 31)), drain=SPEC.latency + 3,
                            transactions="transactions")
        bad += b
        if res.plain.get("error"):
            dut._log.error("%s: the error flag is set", label)
            bad += 1
        if not reset_at:
            REPORT["products"] += len(ys)
        if mode == "clean":
            y = res.captures["y"]
            m, k = len(ys[0]), int(xs[0]["data"].size)  # K rounded up to groups: same G
            want = int(SPEC.cycles(m, k))
            took = int(y.cycles[-1] - res.first["x"] + 1) if len(y) else -1
            REPORT["cycle_checks"] += 1
            if took != want:
                dut._log.error("%s: took %d cycles, the formula says %d", label, took, want)
                REPORT["cycle_mismatches"] += 1
                bad += 1
        seg += 1
        progress({"transactions": REPORT["transactions"], "target": target,
                  "mismatches": REPORT["mismatches"]})
    REPORT.update(cycles=h.cycles, wall_s=time.perf_counter() - t0, sim_wall_s=h.wall_s)
    REPORT["cycles_per_s"] = h.cycles / max(REPORT["wall_s"], 1e-9)
    REPORT.write()
    assert bad == 0, f"{bad} mismatches (outputs, cycle counts, reset contract)"


@cocotb.test(skip="model" not in CFG)
async def test_model(dut):
    """HGRN-Bit with every BitLinear on the RTL, the weights resident in the replay memory
    (written once), one segment per product, no stalls: each product's cycle count is the
    formula's; the host does the rest (:func:`mmfree.sim.tb.model_host.run_model`)."""
    from mmfree.checkpoint import open_checkpoint

    cfg = CFG["model"]
    REPORT["tests"]["test_model"] = cocotb.RANDOM_SEED
    model = open_checkpoint(cfg["checkpoint"]).load_model()
    session = BulkBitLinear(dut, SPEC, DEPTHS, CLOCK)
    await session.start()
    driver = ResidentProducts(session)
    driver.load(model.bitlinears)
    bad = await run_model(driver, cfg, REPORT, ARITH, model=model)
    REPORT.update(cycles=session.harness.cycles, sim_wall_s=session.harness.wall_s)
    REPORT.write()
    assert bad == 0
