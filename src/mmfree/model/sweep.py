"""Design-space sweep: lanes x cores x clock x DRAM bandwidth x batch, vectorised.

The grid is evaluated with the same formulas as :func:`mmfree.model.system.project`
(:func:`mmfree.model.system.run_step` on numpy arrays), in chunks so that a progress bar can
advance. The Pareto front keeps the points that no other point beats on both tokens/s
(higher) and power (lower); with measured LUT counts a second front trades tokens/s
against LUTs.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .config import HardwareConfig, ModelConfig, Workload
from .system import hw_arrays, run_step

__all__ = ["AXES", "SweepResult", "grid", "progress_bar", "sweep"]

AXES = ("lanes", "cores", "clock_mhz", "dram_gbps", "batch")


@dataclass
class SweepResult:
    """Every design point and its figures; arrays of equal length."""

    points: dict[str, np.ndarray]  #: axis -> value per point
    tokens_per_s: np.ndarray
    power_w: np.ndarray
    luts: np.ndarray | None
    binding: np.ndarray

    def pareto(self, cost: np.ndarray) -> np.ndarray:
        """Indices of the points not dominated in (tokens/s up, ``cost`` down)."""
        order = np.lexsort((-self.tokens_per_s, cost))  # cheapest first, then fastest
        best = -np.inf
        keep = []
        for i in order:
            if self.tokens_per_s[i] > best:
                keep.append(i)
                best = self.tokens_per_s[i]
        return np.array(keep, dtype=int)

    def rows(self, idx: Sequence[int]) -> list[dict[str, object]]:
        out = []
        for i in idx:
            row = {a: float(self.points[a][i]) for a in AXES}
            row.update(tokens_per_s=float(self.tokens_per_s[i]),
                       power_w=float(self.power_w[i]), binding=str(self.binding[i]))
            if self.luts is not None:
                row["luts"] = float(self.luts[i])
            out.append(row)
        return out


def grid(**axes: Sequence[float]) -> dict[str, np.ndarray]:
    """The full grid over the given axes (each a list of values)."""
    missing = [a for a in AXES if a not in axes]
    if missing:
        raise ValueError(f"missing sweep axes: {', '.join(missing)}")
    combos = np.array(list(itertools.product(*(axes[a] for a in AXES))), dtype=float)
    return {a: combos[:, i] for i, a in enumerate(AXES)}


def sweep(model: ModelConfig, hw: HardwareConfig, points: dict[str, np.ndarray],
          workload: Workload, chunk: int = 4096,
          progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Decode tokens/s and power of every point (DRAM as one channel of ``dram_gbps``)."""
    if not (model.kind == "mmfree" or model.ternary_linear):
        raise ValueError("the sweep explores ternary-core designs; pick a MatMul-free model")
    n = len(points["lanes"])
    tps = np.empty(n)
    power = np.empty(n)
    binding = np.empty(n, dtype=object)
    h = replace(hw, dram_channels=1)
    context = workload.prompt + workload.generate // 2
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        batch = points["batch"][sl].astype(np.int64)
        arrays = hw_arrays(h, lanes=points["lanes"][sl].astype(np.int64),
                           ternary_cores=points["cores"][sl].astype(np.int64),
                           clock_mhz=points["clock_mhz"][sl], dram_channels=1,
                           dram_gbps=points["dram_gbps"][sl])
        step = run_step(model, h, arrays, vectors=batch, context=context, sequences=batch,
                        lm_head_vectors=batch)
        tps[sl] = batch / step.time_s
        power[sl] = sum(np.asarray(v) for v in step.energy_j.values()) / step.time_s
        binding[sl] = step.binding
        if progress is not None:
            progress(sl.stop, n)
    luts = None
    if hw.luts_per_ternary_lane is not None:
        luts = points["cores"] * points["lanes"] * hw.luts_per_ternary_lane.value
    return SweepResult(points, tps, power, luts, binding)


def progress_bar(done: int, total: int, width: int = 40) -> None:
    """A text progress bar on standard error (a terminal only: no ``\r`` in logs)."""
    if not sys.stderr.isatty():
        return
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} points")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()
