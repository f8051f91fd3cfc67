"""Design-space sweep: lanes x cores x clock x DRAM bandwidth x batch, vectorised.

The grid is evaluated with the same formulas as :func:`mmfree.model.system.project`
(:func:`mmfree.model.system.run_step` on numpy arrays), in chunks so that a progress bar can
advance. Each point's DRAM technology follows its bandwidth
(:func:`mmfree.model.devices.dram_for_bandwidth`: the board's own technology while it
reaches that far, then DDR3, DDR4, HBM2, HBM2e), and with it the energy per bit; the board's
other figures (device, static power, board extras) stay the preset's. Each point is checked
against the device's resources and the board's DRAM capacity (:func:`mmfree.model.fit.fits`).
The Pareto fronts keep, among the points that fit, those that no other point beats on both
tokens/s (higher) and power (lower), or tokens/s and LUT4-equivalents.

With :class:`MeasuredCores` (the rows of an ``mmfree explore`` results file of the ternary
core) the ternary cores' LUT4-equivalents and clock come from those synthesis and
place-and-route runs instead of the per-lane coefficient: at each point, among the measured
core designs with its lane count whose Fmax reaches its clock, the one with the fewest
LUT4-equivalents is used; a point whose clock no measured design reaches does not fit. (The
dynamic power still uses the measured activity per lane, :mod:`mmfree.model.activity`.)
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import fit
from .config import HardwareConfig, ModelConfig, Q, Workload
from .devices import DRAM_TECHS, dram_for_bandwidth
from .system import hw_arrays, run_step

__all__ = ["AXES", "MeasuredCores", "SweepResult", "grid", "progress_bar", "sweep"]

AXES = ("lanes", "cores", "clock_mhz", "dram_gbps", "batch")


@dataclass
class SweepResult:
    """Every design point and its figures; arrays of equal length."""

    points: dict[str, np.ndarray]  #: axis -> value per point
    tokens_per_s: np.ndarray
    power_w: np.ndarray
    luts: np.ndarray  #: LUT4-equivalents of the design's units (measured per unit)
    binding: np.ndarray
    dram_tech: np.ndarray  #: DRAM technology of each point
    dram_pj_per_bit: np.ndarray
    fits: np.ndarray  #: the point fits the device and the board's DRAM
    #: with :class:`MeasuredCores`: the chosen core design's Fmax and parameters per point
    core_fmax_mhz: np.ndarray | None = None
    core_design: np.ndarray | None = None

    def pareto(self, cost: np.ndarray) -> np.ndarray:
        """Indices of the fitting points not dominated in (tokens/s up, ``cost`` down)."""
        order = np.lexsort((-self.tokens_per_s, cost))  # cheapest first, then fastest
        best = -np.inf
        keep = []
        for i in order:
            if self.fits[i] and self.tokens_per_s[i] > best:
                keep.append(i)
                best = self.tokens_per_s[i]
        return np.array(keep, dtype=int)

    def rows(self, idx: Sequence[int]) -> list[dict[str, object]]:
        out = []
        for i in idx:
            row: dict[str, object] = {a: float(self.points[a][i]) for a in AXES}
            row.update(tokens_per_s=float(self.tokens_per_s[i]),
                       power_w=float(self.power_w[i]), binding=str(self.binding[i]),
                       dram_tech=str(self.dram_tech[i]),
                       dram_pj_per_bit=float(self.dram_pj_per_bit[i]),
                       luts=float(self.luts[i]), fits=bool(self.fits[i]))
            if self.core_fmax_mhz is not None and self.core_design is not None:
                row.update(core_fmax_mhz=float(self.core_fmax_mhz[i]),
                           core_design=str(self.core_design[i]))
            out.append(row)
        return out


@dataclass(frozen=True)
class MeasuredCores:
    """Measured ternary-core designs (``mmfree explore`` rows): per design its lane count,
    LUT4-equivalents (LUT4 + 2 x CCU2C), Fmax and a label of its parameters."""

    lanes: np.ndarray
    luts: np.ndarray
    fmax_mhz: np.ndarray
    design: np.ndarray  #: e.g. ``"lanes=16 tree_levels_per_stage=1"``
    source: str = ""  #: where they were measured (file, target)

    def choose(self, lanes: np.ndarray, clock_mhz: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per point: the LUT4-equivalents, Fmax and label of the cheapest measured design
        with ``lanes`` lanes that reaches ``clock_mhz``, and whether one does (else the
        fastest design with those lanes)."""
        missing = sorted(set(np.unique(lanes).tolist()) - set(self.lanes.tolist()))
        if missing:
            raise ValueError("lanes " + ", ".join(f"{v:g}" for v in missing) + " not "
                             "measured (the explore results have lanes "
                             + ", ".join(f"{v:g}" for v in sorted(set(self.lanes.tolist())))
                             + ")")
        n = len(lanes)
        luts, fmax = np.empty(n), np.empty(n)
        design, ok = np.empty(n, dtype=object), np.empty(n, dtype=bool)
        for lane_count, clock in {(float(a), float(b)) for a, b in zip(lanes, clock_mhz,
                                                                         strict=True)}:
            at = (lanes == lane_count) & (clock_mhz == clock)
            mine = np.flatnonzero(self.lanes == lane_count)
            meeting = mine[self.fmax_mhz[mine] >= clock]
            pick = (meeting[np.argmin(self.luts[meeting])] if len(meeting)
                    else mine[np.argmax(self.fmax_mhz[mine])])
            luts[at], fmax[at], design[at] = self.luts[pick], self.fmax_mhz[pick], \
                self.design[pick]
            ok[at] = len(meeting) > 0
        return luts, fmax, design, ok


def grid(**axes: Sequence[float]) -> dict[str, np.ndarray]:
    """The full grid over the given axes (each a list of values)."""
    missing = [a for a in AXES if a not in axes]
    if missing:
        raise ValueError(f"missing sweep axes: {', '.join(missing)}")
    combos = np.array(list(itertools.product(*(axes[a] for a in AXES))), dtype=float)
    return {a: combos[:, i] for i, a in enumerate(AXES)}


def sweep_hardware(hw: HardwareConfig, gbps: float) -> HardwareConfig:
    """The board of a sweep point with ``gbps`` of peak DRAM bandwidth (one channel): its
    DRAM technology follows the bandwidth, with that technology's energy per bit (an
    explicit ``dram_pj_per_bit`` holds for the board's own technology only) and its idle
    power per GB/s. The sweep uses the analytical product model (``product_model =
    "analytical"``: ternary-core cycles and a DRAM roofline) on every point: the validated
    fetched-product model takes one design point at a time (docs/cycle-model.md)."""
    tech = dram_for_bandwidth(gbps, hw.dram_tech)
    rate = DRAM_TECHS[tech].background_mw_per_gbps
    return replace(hw, dram_channels=1, dram_tech=tech, product_model="analytical",
                   dram_gbps_per_channel=Q(gbps, "assumed", "sweep point"),
                   dram_pj_per_bit=hw.dram_pj_per_bit if tech == hw.dram_tech else None,
                   dram_background_w=Q(rate.value * gbps / 1e3, rate.source,
                                       f"{rate.value:.3g} mW per GB/s x {gbps:g} GB/s: "
                                       f"{rate.note}"))


def sweep(model: ModelConfig, hw: HardwareConfig, points: dict[str, np.ndarray],
          workload: Workload, chunk: int = 4096,
          progress: Callable[[int, int], None] | None = None,
          measured: MeasuredCores | None = None) -> SweepResult:
    """Decode tokens/s, power and fit of every point (DRAM as one channel of ``dram_gbps``);
    with ``measured``, the ternary cores' LUTs and clock limit from those designs."""
    if not model.ternary:
        raise ValueError("the sweep explores ternary-core designs; pick a MatMul-free model")
    n = len(points["lanes"])
    tps = np.empty(n)
    power = np.empty(n)
    binding = np.empty(n, dtype=object)
    context = workload.prompt + workload.generate // 2
    boards = {g: sweep_hardware(hw, g) for g in np.unique(points["dram_gbps"])}
    tech = np.array([boards[g].dram_tech for g in points["dram_gbps"]], dtype=object)
    pj = np.array([boards[g].dram_pj.value for g in points["dram_gbps"]])
    background = np.array([boards[g].dram_background_w.value for g in points["dram_gbps"]])
    h = boards[points["dram_gbps"][0]] if n else hw
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        batch = points["batch"][sl].astype(np.int64)
        arrays = hw_arrays(h, lanes=points["lanes"][sl].astype(np.int64),
                           ternary_cores=points["cores"][sl].astype(np.int64),
                           clock_mhz=points["clock_mhz"][sl], dram_channels=1,
                           dram_gbps=points["dram_gbps"][sl], dram_pj_per_bit=pj[sl],
                           dram_background_w=background[sl])
        step = run_step(model, h, arrays, vectors=batch, context=context, sequences=batch,
                        lm_head_vectors=batch)
        tps[sl] = batch / step.time_s
        power[sl] = sum(np.asarray(v) for v in step.energy_j.values()) / step.time_s
        binding[sl] = step.binding
        if progress is not None:
            progress(sl.stop, n)
    res = fit.design_resources(model, hw, points["lanes"], points["cores"], hw.tensor_arrays,
                               hw.elementwise_per_cycle.value)
    luts = np.asarray(res["LUT4-equivalents"], dtype=float)
    core_fmax = core_design = None
    timing = np.ones(n, dtype=bool)
    if measured is not None:
        core_luts, core_fmax, core_design, timing = measured.choose(points["lanes"],
                                                                    points["clock_mhz"])
        per_lane = fit.design_resources(model, hw, points["lanes"], points["cores"], 0, 0)
        luts = luts - per_lane["LUT4-equivalents"] + points["cores"] * core_luts
    ok = fit.fits(model, hw, points, points["batch"], workload.prompt + workload.generate,
                  luts=luts if measured is not None else None)
    return SweepResult(points, tps, power, luts, binding, tech, pj,
                       np.asarray(ok, dtype=bool) & timing, core_fmax, core_design)


def progress_bar(done: int, total: int, width: int = 40) -> None:
    """A text progress bar on standard error (a terminal only: no ``\r`` in logs)."""
    if not sys.stderr.isatty():
        return
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} points")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()
