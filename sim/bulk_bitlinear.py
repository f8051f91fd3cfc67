"""BitLinear products on the bulk harness: weights resident, one segment per product.

:class:`BulkBitLinear` is the session object a host loop (the tiny model of ``mmfree
cosim``, ``mmfree run --backend rtl``) calls inside a cocotb test: every weight matrix is
written once into the ``w`` beat memory of the bulk wrapper (:mod:`mmfree.sim.bulk`); a
product then writes only its input vector's few ``x`` beats, plays one segment (one
``await``; the simulator runs the whole product on its own) and reads back the row sums, the
scale and the cycle count in bulk::

    session = BulkBitLinear(dut, spec)
    await session.start()
    session.add("lm_head", w_q)                       # once per matrix (or preload(...))
    acc, d, e, cycles = await session.product(m_vec, v_vec, "lm_head")

The unit must be built with a ``w`` memory of at least :func:`weight_depth` beats
(``mmfree.sim.bulk.run_unit(..., depths=session_depths(spec, shapes))``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np

from ..golden.ternary import encode_codes
from ..spec import BitLinearUnitSpec
from .kit.bench import component_of
from .kit.bulk import BulkHarness, SegmentResult

__all__ = ["MIN_WEIGHT_DEPTH", "BulkBitLinear", "session_depths", "weight_beats",
           "weight_depth"]

MIN_WEIGHT_DEPTH = 16384  #: lane groups of weights a session's build holds at least


def weight_beats(spec: BitLinearUnitSpec, w_q: np.ndarray) -> tuple[dict, int]:
    """The ``w`` beat values of ternary matrix ``w_q`` (M x K): row by row, lane group by
    lane group, a partial last group padded with zero codes; ``last`` on each row's last
    group, ``final`` on the matrix's last group."""
    n = spec.lanes
    m, k = w_q.shape
    g = -(-k // n)
    codes = np.zeros((m, g * n), dtype=np.int64)
    codes[:, :k] = encode_codes(w_q)
    last = np.tile((np.arange(g) == g - 1).astype(np.int64), m)
    final = np.zeros(m * g, dtype=np.int64)
    final[-1] = 1
    return {"codes": codes.reshape(m * g, n), "last": last, "final": final}, m * g


def x_beats(spec: BitLinearUnitSpec, m_vec: np.ndarray, v_vec: np.ndarray
            ) -> tuple[dict, int]:
    """The ``x`` beat values of one input vector (mantissas ``m_vec``) and its RMSNorm
    weights ``v_vec``, zero-padded to whole groups."""
    n = spec.lanes
    k = len(m_vec)
    g = -(-k // n)
    m = np.zeros(g * n, dtype=np.int64)
    m[:k] = m_vec
    v = np.zeros(g * n, dtype=np.int64)
    v[:k] = v_vec
    return {"data": m.reshape(g, n), "weight": v.reshape(g, n),
            "last": (np.arange(g) == g - 1).astype(np.int64)}, g


def weight_depth(spec: BitLinearUnitSpec, shapes: Iterable[tuple[int, int]]) -> int:
    """The ``w`` memory depth (a power of two) that holds matrices of ``shapes`` (M, K),
    at least :data:`MIN_WEIGHT_DEPTH` so that models of different sizes share a build."""
    total = sum(m * -(-k // spec.lanes) for m, k in shapes)
    depth = MIN_WEIGHT_DEPTH
    while depth < total:
        depth *= 2
    return depth


def session_depths(spec: BitLinearUnitSpec, shapes: Iterable[tuple[int, int]]
                   ) -> dict[str, int]:
    """Bulk wrapper memory depths for a session with matrices of ``shapes``."""
    groups = -(-spec.max_dim // spec.lanes)
    x = 16
    while x < groups:
        x *= 2
    return {"w": weight_depth(spec, shapes), "x": x}


class BulkBitLinear:
    """A BitLinear unit in the bulk wrapper, driven one product at a time (see the module
    docstring). ``stall`` gives the streams' stall probabilities (bubbles on ``x``/``w``,
    back-pressure on ``y``/``scale``); with none, every product's cycle count equals
    :meth:`BitLinearUnitSpec.cycles`."""

    def __init__(self, dut: Any, spec: BitLinearUnitSpec, depths: dict[str, int],
                 clock: str = "hdl", stall: dict[str, float] | None = None,
                 seed: int = 1) -> None:
        self.spec = spec
        self.harness = BulkHarness(dut, component_of(spec), depths, clock)
        self.matrices: dict[Hashable, tuple[int, int, int, int]] = {}  # key: base, beats, m, k
        self._top = 0
        self.stall = stall
        self._seed = seed
        self._calls = 0
        self.last: SegmentResult | None = None  #: the last product's segment

    async def start(self) -> None:
        """Start the clock, write the (empty) memories and reset the unit once."""
        await self.harness.start()
        self._reset = 4

    def add(self, key: Hashable, w_q: np.ndarray) -> None:
        """Make matrix ``w_q`` resident under ``key`` (written into the ``w`` memory once)."""
        if key in self.matrices:
            raise ValueError(f"matrix {key!r} is already resident")
        value, beats = weight_beats(self.spec, np.asarray(w_q))
        h = self.harness
        h.load("w", h.encode("w", value, beats), at=self._top)
        self.matrices[key] = (self._top, beats, *np.shape(w_q))
        self._top += beats

    def preload(self, matrices: dict[Hashable, np.ndarray]) -> None:
        """:meth:`add` every matrix of a mapping."""
        for key, w_q in matrices.items():
            self.add(key, w_q)

    async def product(self, m_vec: np.ndarray, v_vec: np.ndarray, key: Hashable
                      ) -> tuple[np.ndarray, int, int, int]:
        """``W_q`` (resident under ``key``) times the normalised, quantised ``m_vec`` (RMSNorm
        weights ``v_vec``): returns the row sums, ``D``, ``E`` and the cycles from the first
        ``x`` transfer to the last ``y`` transfer (the shape of
        :class:`mmfree.sim.tb.model_host.ProductDriver`, with a resident matrix's key in place
        of its codes). Raises ``RuntimeError`` if the unit misbehaves (wrong number of
        outputs, x/z, a timeout, a reset-contract violation); the caller checks the values."""
        k = self.matrices[key][3]
        if len(m_vec) != k:
            raise ValueError(f"matrix {key!r} takes {k} inputs, the vector has {len(m_vec)}")
        xv, g = x_beats(self.spec, np.asarray(m_vec), np.asarray(v_vec))
        res = await self.product_beats(xv, g, key)
        out = res.captures["scale"].values()
        return (res.captures["y"].values(), int(out["scale"][0]), int(out["exp"][0]),
                self.cycles(res))

    async def product_beats(self, x_value: dict, groups: int, key: Hashable
                            ) -> SegmentResult:
        """One product from raw ``x`` beat values (``groups`` beats, as
        :class:`~mmfree.sim.kit.bulk.BulkCodec` takes them: any unit's input layout) and the
        matrix resident under ``key``; every output stream's capture is in the result (``y``
        with one transfer per row, every other output stream with one: ``scale``, an
        exponent ...). Raises ``RuntimeError`` as :meth:`product` does."""
        base, beats, m, _ = self.matrices[key]
        h = self.harness
        h.load("x", h.encode("x", x_value, groups))
        self._calls += 1
        expect = {n: (m if n == "y" else 1) for n in h.sinks}
        res = await h.segment(sources={"x": (0, groups), "w": (base, beats)}, expect=expect,
                              stall=self.stall, seed=self._seed + self._calls,
                              pre_reset=self._reset, drain=2)
        self._reset = 0
        self.last = res
        wrong = {n: len(c) for n, c in res.captures.items() if len(c) != expect[n]}
        unknown = [n for n, c in res.captures.items() if c.unknown.any()]
        if res.timed_out or res.violations or wrong or unknown:
            raise RuntimeError(f"product {key!r}: transfers {wrong or 'as expected'} (expected "
                               f"{expect}), x/z on {unknown or 'none'}, timed out "
                               f"{res.timed_out}, {res.violations} reset-contract violations")
        return res

    @staticmethod
    def cycles(res: SegmentResult) -> int:
        """A product's cycles: first ``x`` transfer to last ``y`` transfer, inclusive."""
        return int(res.captures["y"].cycles[-1] - res.first["x"] + 1)
