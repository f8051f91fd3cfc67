"""Bulk cocotb testbench: TernaryCore / PackedTernaryCore on the bulk harness.

The unit runs inside its generated bulk wrapper (:mod:`mmfree.sim.bulk`); streams are
prepared in numpy and played by the simulator segment by segment
(:class:`mmfree.sim.kit.bulk.BulkHarness`), with no Python per cycle.

Configuration (``$MMFREE_TB_CONFIG``): the unit's parameters, ``transactions`` (weight
beats to stream, default 20000), ``bulk_depths``; for :func:`test_bench` ``beats``;
``inject`` (tests of the harness) corrupts one expected row and one expected cycle stamp of
the first segment, which must then fail.
``test_regression``: random products (random shapes around the lane count, random zero
density, corner vectors) cut into segments; each segment is stall-free (every output's cycle
stamp checked against the pipeline's timing: a row's result transfers ``latency`` cycles
after its last lane group, so the segment takes :meth:`TernaryCoreSpec.cycles`), randomly
stalled on every stream, or interrupted by a reset at a random cycle with the inputs offered
in reset (what came out before it must be a prefix of the expected rows; nothing may leak
after it). Every output is compared with :func:`mmfree.golden.ternary.ternary_matvec`. The
seed is logged and in the report (replay: the same ``COCOTB_RANDOM_SEED``).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from mmfree.golden.ternary import encode_codes, pack_trits, ternary_matvec
from mmfree.sim.kit import Report, component_of
from mmfree.sim.kit.bench import progress
from mmfree.sim.kit.bulk import BulkHarness, play, segment_mode
from mmfree.spec import TernaryCoreSpec

REPORT = Report(products=0, transactions=0, segments=0, resets=0, stalled_segments=0,
                violations=0, timeouts=0)
SPEC: TernaryCoreSpec = REPORT.spec(TernaryCoreSpec)
CFG = REPORT["config"]
N, AW, ACC = SPEC.lanes, SPEC.act_width, SPEC.acc_width
AMIN, AMAX = -(1 << (AW - 1)), (1 << (AW - 1)) - 1
DEPTHS = {k: int(v) for k, v in CFG.get("bulk_depths", {}).items()}


def harness(dut) -> BulkHarness:
    return BulkHarness(dut, component_of(SPEC), DEPTHS, CFG.get("bulk_clock", "hdl"))


def stream_for(rng: np.random.Generator, w: np.ndarray, x: np.ndarray
               ) -> tuple[dict, np.ndarray]:
    """``w`` and ``x`` beat values of one product ``W @ x``, row by row, lane group by lane
    group; lanes past K get zero weights and random activations (which must not matter)."""
    m, k = w.shape
    g = -(-k // N)
    wp = np.zeros((m, g * N), dtype=np.int64)
    wp[:, :k] = w
    xp = rng.integers(AMIN, AMAX + 1, (m, g * N))
    xp[:, :k] = x
    last = np.tile((np.arange(g) == g - 1).astype(np.int64), m)
    wg = wp.reshape(m * g, N)
    if SPEC.packed:
        wv = {"packed": pack_rows(wg), "last": last}
    else:
        wv = {"codes": encode_codes(wg), "last": last}
    return wv, xp.reshape(m * g, N)


def pack_rows(wg: np.ndarray) -> np.ndarray:
    """:func:`mmfree.golden.ternary.pack_trits` of every row (5 trits a byte, base 3 of
    ``w + 1``, lowest trit first; zero weights pad the last byte), vectorised; the first
    row is checked against the golden function."""
    rows, n = wg.shape
    nb = -(-n // 5)
    digits = np.ones((rows, nb * 5), dtype=np.int64)
    digits[:, :n] = wg + 1
    packed = digits.reshape(rows, nb, 5) @ (3 ** np.arange(5, dtype=np.int64))
    if rows and not np.array_equal(packed[0], pack_trits(wg[0])):
        raise AssertionError("vectorised packing differs from pack_trits")
    return packed


def random_product(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    kind = rng.integers(10)
    if kind == 0:  # a corner K
        k = int(rng.choice([1, N, N + 1, max(1, N - 1), 3 * N + 2]))
    else:
        k = int(rng.integers(1, 6 * N + 2))
    m = int(rng.integers(1, 33))
    p0 = rng.uniform(0.0, 0.9)
    w = rng.choice([-1, 0, 1], size=(m, k), p=[(1 - p0) / 2, p0, (1 - p0) / 2])
    xk = rng.integers(4)
    if xk == 0:  # extremes
        x = rng.choice([AMIN, AMAX, 0, -1, 1], k)
    elif xk == 1 and rng.integers(4) == 0:
        x = np.zeros(k, dtype=np.int64)
    else:
        x = rng.integers(AMIN, AMAX + 1, k)
    return w, x


class Batch:
    """Products packed into one segment: beats, expected rows, each row's last beat."""

    def __init__(self) -> None:
        self.w: list[dict] = []
        self.x: list[np.ndarray] = []
        self.expect: list[np.ndarray] = []
        self.row_end: list[np.ndarray] = []
        self.beats = 0
        self.products = 0

    def add(self, rng: np.random.Generator, w: np.ndarray, x: np.ndarray) -> None:
        wv, xv = stream_for(rng, w, x)
        g = -(-w.shape[1] // N)
        self.w.append(wv)
        self.x.append(xv)
        self.expect.append(ternary_matvec(w, x, AW, ACC))
        self.row_end.append(self.beats + g * np.arange(1, w.shape[0] + 1) - 1)
        self.beats += len(xv)
        self.products += 1

    def values(self) -> tuple[dict, np.ndarray]:
        wv = {key: np.concatenate([b[key] for b in self.w]) for key in self.w[0]}
        return wv, np.concatenate(self.x)


async def run_batch(h: BulkHarness, batch: Batch, log, label: str, *, seed: int,
                    stall: dict | None = None, reset_at: int = 0, pre_reset: int = 0) -> int:
    """Play one batch as a segment; every output checked, and stall-free every cycle stamp
    (a row's result transfers ``latency`` cycles after its last lane group) and the
    segment's cycle count (:meth:`TernaryCoreSpec.cycles`, its lane groups counted as
    one-group rows); returns the problems found."""
    wv, xv = batch.values()
    bad, res = await play(h, REPORT, log, label,
                          beats={"w": (wv, batch.beats), "x": (xv, batch.beats)},
                          expect={"y": np.concatenate(batch.expect)},
                          due={"y": np.concatenate(batch.row_end)}, latency=SPEC.latency,
                          stall=stall, reset_at=reset_at, pre_reset=pre_reset, seed=seed,
                          drain=SPEC.latency + 3, transactions="transactions")
    if not reset_at:
        REPORT["products"] += batch.products
    cap = res.captures["y"]
    if not stall and not reset_at and len(cap):
        took = int(cap.cycles[-1] - res.first["w"] + 1)
        want = int(SPEC.cycles(batch.beats, N))
        REPORT["cycle_checks"] += 1
        if took != want:
            log.error("%s: took %d cycles, the formula says %d", label, took, want)
            REPORT["cycle_mismatches"] += 1
            bad += 1
    return bad


@cocotb.test()
async def test_regression(dut):
    """Random products in segments: stall-free (cycle stamps checked), stalled, and reset
    mid-stream; every output checked."""
    seed = cocotb.RANDOM_SEED
    REPORT["tests"]["test_regression"] = seed
    dut._log.info("test_regression: seed %d (%s)", seed, SPEC.params())
    rng = np.random.default_rng(seed)
    h = harness(dut)
    await h.start()
    target = int(CFG.get("transactions", 20000))
    depth = min(h.depths.values())
    bad = 0
    seg = 0
    t0 = time.perf_counter()
    pending: tuple[np.ndarray, np.ndarray] | None = None
    while REPORT["transactions"] < target:
        batch = Batch()
        budget = min(depth, max(64 * N, target // 6))
        while True:
            w, x = pending or random_product(rng)
            pending = None
            g = -(-w.shape[1] // N)
            if batch.products and batch.beats + w.shape[0] * g > budget:
                pending = (w, x)
                break
            if w.shape[0] * g > depth:
                continue
            batch.add(rng, w, x)
        if seg == 0 and CFG.get("inject"):  # prove the checks can fail: one wrong row,
            batch.expect[0][0] += 1  # one output expected a cycle later
            batch.row_end[0][0] += 1
        mode = segment_mode(rng, seg)
        stall = None
        if mode != "clean":
            stall = {"w": rng.uniform(0, 0.6), "x": rng.uniform(0, 0.6),
                     "y": rng.uniform(0, 0.7)}
            REPORT["stalled_segments"] += 1
        reset_at = int(rng.integers(1, batch.beats + SPEC.latency + 2)) if mode == "reset" else 0
        bad += await run_batch(h, batch, dut._log, f"segment {seg} ({mode})",
                               seed=int(rng.integers(1 << 31)), stall=stall,
                               reset_at=reset_at, pre_reset=3 if seg == 0 else 0)
        seg += 1
        progress({"transactions": REPORT["transactions"], "target": target,
                  "mismatches": REPORT["mismatches"]})
    REPORT.update(cycles=h.cycles, wall_s=time.perf_counter() - t0, sim_wall_s=h.wall_s)
    REPORT["cycles_per_s"] = h.cycles / max(REPORT["wall_s"], 1e-9)
    REPORT.write()
    assert bad == 0, f"{bad} mismatches (outputs, cycle stamps or reset contract)"


@cocotb.test(skip="beats" not in CFG)
async def test_bench(dut):
    """The throughput stream of :mod:`mmfree.sim.tb.ternary_bench` (same seed, same
    stream), stall-free, on the bulk harness: wall time from the first cycle to the last
    output, every output and cycle stamp checked."""
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    beats = int(CFG["beats"])
    groups = 4
    m = max(1, beats // groups)
    k = groups * N
    w = rng.integers(-1, 2, (m, k))
    x = rng.integers(-128, 128, k)
    h = harness(dut)
    depth = min(h.depths.values())
    rows_per = max(1, depth // groups)
    t0 = time.perf_counter()
    await h.start()
    bad = 0
    for lo in range(0, m, rows_per):
        batch = Batch()
        batch.add(rng, w[lo:lo + rows_per], x)
        bad += await run_batch(h, batch, dut._log, f"rows {lo}..", seed=lo + 1,
                               pre_reset=2 if lo == 0 else 0)
    wall = time.perf_counter() - t0
    REPORT.update(cycles=h.cycles, wall_s=wall, cycles_per_s=h.cycles / wall,
                  sim_wall_s=h.wall_s)
    REPORT.write()
    assert bad == 0
