"""Bulk cocotb testbench: TensorCore on the bulk harness (:mod:`mmfree.sim.bulk`).

Configuration (``$MMFREE_TB_CONFIG``): the unit's parameters
(:class:`mmfree.spec.TensorCoreSpec`), ``transactions`` (input tiles, default 20000),
``bulk_depths``. :func:`test_regression` streams random tiles (random operands with a share
of extremes and zero tiles; in accumulate mode random chains of 1 to 6 K-steps, ``first`` on
the first, ``last`` on the last) in segments: stall-free (every result's cycle stamp is the
transfer cycle of the beat that completes it + ``latency``, so each segment takes
:meth:`TensorCoreSpec.cycles`), randomly stalled on both streams, or reset at a random cycle
with the input offered in reset. Expected results are ``sum(A_k @ B_k) + C`` wrapped to
``acc_width`` bits, vectorised, and every segment's first chains are also checked against
:func:`mmfree.golden.tensor_core.mac_tile` (the contract) one by one. Seed logged and in the
report (replay: the same ``COCOTB_RANDOM_SEED``).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from mmfree.golden.tensor_core import mac_tile, operand_range
from mmfree.sim.kit import Report, component_of
from mmfree.sim.kit.bench import progress
from mmfree.sim.kit.bulk import BulkHarness, play, segment_mode
from mmfree.spec import TensorCoreSpec

REPORT = Report(transactions=0, chains=0, segments=0, resets=0, stalled_segments=0,
                violations=0, timeouts=0, golden_checked=0)
SPEC: TensorCoreSpec = REPORT.spec(TensorCoreSpec)
CFG = REPORT["config"]
W, SIGNED, ACC, ACCUM = SPEC.width, SPEC.is_signed, SPEC.acc_width, SPEC.accumulate
LO, HI = operand_range(W, SIGNED)
CLO, CHI = -(1 << (ACC - 1)), (1 << (ACC - 1)) - 1
DEPTHS = {k: int(v) for k, v in CFG.get("bulk_depths", {}).items()}
#: int64 holds every sum exactly (|a*b| < 2**(2W), 4 * 6 products, C < 2**(ACC-1))
EXACT64 = 2 * W + 5 < 62 and ACC <= 62


def operands(rng: np.random.Generator, t: int, lo: int, hi: int) -> np.ndarray:
    """``t`` random 4 x 4 tiles in ``lo..hi``: a tenth at the extremes, a few all zero."""
    v = rng.integers(lo, hi, (t, 4, 4), endpoint=True, dtype=np.int64)
    ext = rng.random(t) < 0.1
    v[ext] = rng.choice([lo, hi], (int(ext.sum()), 4, 4))
    v[rng.random(t) < 0.02] = 0
    return v


def wrap(v: np.ndarray) -> np.ndarray:
    m = 1 << ACC
    if EXACT64:
        return ((v + (m >> 1)) % m) - (m >> 1)
    return np.array([((int(x) + (m >> 1)) % m) - (m >> 1) for x in v.ravel()],
                    dtype=np.int64).reshape(v.shape)


class Batch:
    """Tiles of one segment: beat values, expected results, the beat completing each."""

    def __init__(self, rng: np.random.Generator, beats: int) -> None:
        if ACCUM:
            lengths = []
            while sum(lengths) < beats:
                lengths.append(int(rng.integers(1, 7)))
            lengths[-1] -= sum(lengths) - beats
            lengths = [n for n in lengths if n]
        else:
            lengths = [1] * beats
        self.beats = beats
        a = operands(rng, beats, LO, HI)
        b = operands(rng, beats, LO, HI)
        c = operands(rng, beats, CLO, CHI)
        ends = np.cumsum(lengths) - 1
        starts = ends - np.asarray(lengths) + 1
        first = np.zeros(beats, dtype=np.int64)
        last = np.zeros(beats, dtype=np.int64)
        first[starts] = 1
        last[ends] = 1
        self.value = {"a": a.reshape(beats, 16), "b": b.reshape(beats, 16),
                      "c": c.reshape(beats, 16)}
        if ACCUM:
            self.value.update(first=first, last=last)
        if EXACT64:
            prod = np.einsum("tij,tjk->tik", a, b)
            sums = np.add.reduceat(prod, starts, axis=0) + c[starts]
        else:
            ao, bo = a.astype(object), b.astype(object)
            prod = np.array([ao[t] @ bo[t] for t in range(beats)], dtype=object)
            sums = np.array([sum(prod[s:e + 1]) + c[s].astype(object)
                             for s, e in zip(starts, ends, strict=True)], dtype=object)
        self.expect = wrap(sums).reshape(len(lengths), 16)
        self.due = ends
        self.chains = (a, b, c, starts, ends)

    def golden_check(self, log, count: int = 8) -> int:
        """The first ``count`` chains step by step through :func:`mac_tile`."""
        a, b, c, starts, ends = self.chains
        bad = 0
        for j in range(min(count, len(starts))):
            acc = c[starts[j]]
            for t in range(starts[j], ends[j] + 1):
                acc = mac_tile(a[t], b[t], acc, W, SIGNED, ACC)
            if not np.array_equal(acc.ravel(), self.expect[j]):
                log.error("vectorised expectation differs from mac_tile at chain %d", j)
                bad += 1
        REPORT["golden_checked"] += min(count, len(starts))
        return bad


@cocotb.test()
async def test_regression(dut):
    """Random tiles (and accumulate chains) in segments: stall-free with every cycle stamp
    checked, stalled, and reset mid-stream; every result checked."""
    seed = cocotb.RANDOM_SEED
    REPORT["tests"]["test_regression"] = seed
    dut._log.info("test_regression: seed %d (%s)", seed, SPEC.params())
    rng = np.random.default_rng(seed)
    h = BulkHarness(dut, component_of(SPEC), DEPTHS, CFG.get("bulk_clock", "hdl"))
    await h.start()
    target = int(CFG.get("transactions", 20000))
    depth = h.depths["i"]
    bad = seg = 0
    t0 = time.perf_counter()
    while REPORT["transactions"] < target:
        beats = int(min(depth, max(1, target - REPORT["transactions"]),
                        rng.integers(depth // 4, depth + 1), max(64, target // 6)))
        batch = Batch(rng, beats)
        bad += batch.golden_check(dut._log)
        mode = segment_mode(rng, seg)
        stall = None
        if mode != "clean":
            stall = {"i": rng.uniform(0, 0.6), "d": rng.uniform(0, 0.7)}
            REPORT["stalled_segments"] += 1
        reset_at = int(rng.integers(1, beats + SPEC.latency + 2)) if mode == "reset" else 0
        label = f"segment {seg} ({mode})"
        b, res = await play(h, REPORT, dut._log, label,
                            beats={"i": (batch.value, beats)}, expect={"d": batch.expect},
                            due={"d": batch.due}, latency=SPEC.latency, stall=stall,
                            reset_at=reset_at, pre_reset=3 if seg == 0 else 0,
                            seed=int(rng.integers(1 << 31)), drain=SPEC.latency + 3,
                            transactions="transactions")
        bad += b
        cap = res.captures["d"]
        if mode == "clean" and len(cap):
            took = int(cap.cycles[-1] - res.first["i"] + 1)
            REPORT["cycle_checks"] += 1
            if took != int(SPEC.cycles(beats)):
                dut._log.error("%s: took %d cycles, the formula says %d", label, took,
                               SPEC.cycles(beats))
                REPORT["cycle_mismatches"] += 1
                bad += 1
        if not reset_at:
            REPORT["chains"] += len(batch.expect)
        seg += 1
        progress({"transactions": REPORT["transactions"], "target": target,
                  "mismatches": REPORT["mismatches"]})
    REPORT.update(cycles=h.cycles, wall_s=time.perf_counter() - t0, sim_wall_s=h.wall_s)
    REPORT["cycles_per_s"] = h.cycles / max(REPORT["wall_s"], 1e-9)
    REPORT.write()
    assert bad == 0, f"{bad} mismatches (outputs, cycle stamps or reset contract)"
