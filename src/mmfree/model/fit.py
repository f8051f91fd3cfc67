"""Does a design fit its board? Memory capacity and device resources.

- **Memory**: the model's stored weights (at the hardware's weight format), the fp16
  embedding table (once if the lm_head is tied to it), the recurrent state (MatMul-free) or
  the int8 KV cache at the full context (Transformer++), and the activations of a step must
  fit the board's DRAM; the on-chip weight SRAM must fit the device's block RAM.
- **Device**: LUT4-equivalents and flip-flops of the units the model uses (ternary cores for
  ternary projections, tensor arrays for int8 projections and attention or a tied lm_head,
  the element-wise unit always), from the measured synthesis of each unit
  (:mod:`mmfree.model.activity`), must stay within ``max_utilisation`` of the device's; hard
  multipliers and block RAM within the device's.

Every function takes numpy arrays for the design parameters, so the sweep checks thousands
of points at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import activity
from .config import HardwareConfig, ModelConfig, Workload

__all__ = [
    "FP16_BYTES",
    "INT8_BITS",
    "KV_BYTES",
    "SPARSE_BITS_PER_WEIGHT",
    "FitRow",
    "check",
    "design_resources",
    "fits",
    "linear_bits",
    "memory_bytes",
    "uses",
    "warnings",
]

FP16_BYTES = 2  #: embeddings and recurrent state are kept in fp16 (assumed)
KV_BYTES = 1  #: Transformer++ KV cache entries in int8 (assumed)
INT8_BITS = 8
SPARSE_BITS_PER_WEIGHT = 5.0  #: 2:4 int8: half the values (4 bits) + 2-bit index per kept


@dataclass(frozen=True)
class FitRow:
    """One checked resource."""

    resource: str
    need: float
    available: float
    unit: str

    @property
    def ok(self) -> bool:
        return self.need <= self.available * (1 + 1e-12)

    def text(self) -> str:
        fmt = (lambda v: f"{v / 2**30:.3g} GiB") if self.unit == "bytes" else (
            lambda v: f"{v:,.0f} {self.unit}")
        share = self.need / self.available if self.available else float("inf")
        return (f"{self.resource}: needs {fmt(self.need)}, has {fmt(self.available)} "
                f"({share:.0%})")


def linear_bits(model: ModelConfig, hw: HardwareConfig) -> float:
    """Bits per stored weight of the model's projections on ``hw``."""
    if model.ternary:
        return hw.weight_bits
    return SPARSE_BITS_PER_WEIGHT if hw.tensor_sparse else INT8_BITS


def memory_bytes(model: ModelConfig, hw: HardwareConfig, batch: object,
                 context: object) -> dict[str, object]:
    """DRAM footprint by part: weights, embeddings, state or KV cache, activations."""
    bits = linear_bits(model, hw)
    blocks = model.layers * model.weights_per_layer * bits / 8
    table = model.vocab * model.d * FP16_BYTES
    lm_head = 0.0 if model.tie_embeddings else model.vocab * model.d * bits / 8
    b = np.asarray(batch)
    if model.kind == "mmfree":
        state = b * model.layers * model.d * FP16_BYTES
        name = "recurrent state"
    else:
        state = b * model.layers * 2 * model.kv_dim * KV_BYTES * np.asarray(context)
        name = "KV cache"
    acts = b * (4 * model.d + 2 * model.inter + model.vocab) * FP16_BYTES
    return {"weights": blocks + lm_head, "embeddings": table, name: state, "activations": acts}


def uses(model: ModelConfig) -> dict[str, bool]:
    """Which units the model runs on."""
    return {"ternary": model.ternary,
            "tensor": model.kind == "transformer" or model.tie_embeddings,
            "elementwise": True}


def design_resources(model: ModelConfig, hw: HardwareConfig, lanes: object, cores: object,
                     arrays: object, ew_lanes: object) -> dict[str, object]:
    """LUT4-equivalents, flip-flops and multipliers of the units ``model`` uses."""
    u = uses(model)
    t, a = activity.unit("ternary-core"), activity.unit("tensor-core")
    n_t = np.asarray(lanes) * np.asarray(cores) if u["ternary"] else 0
    n_a = np.asarray(arrays) if u["tensor"] else 0
    ew = np.asarray(ew_lanes)
    return {
        "LUT4-equivalents": n_t * t.luts.value + n_a * a.luts.value
        + ew * activity.EW_LANE_LUTS.value,
        "flip-flops": n_t * t.ffs.value + n_a * a.ffs.value + ew * activity.EW_LANE_FFS.value,
        "multipliers": n_t * t.multipliers.value + n_a * a.multipliers.value
        + ew * activity.EW_LANE_MULTS.value,
    }


def check(model: ModelConfig, hw: HardwareConfig, workload: Workload) -> list[FitRow]:
    """Every checked resource of ``model`` on ``hw`` for ``workload`` (scalar design)."""
    ctx = workload.prompt + workload.generate
    mem = memory_bytes(model, hw, workload.batch, ctx)
    rows = [FitRow("DRAM capacity (" + ", ".join(f"{k} {float(v) / 2**30:.3g} GiB"
                                                 for k, v in mem.items()) + ")",
                   float(sum(np.asarray(v) for v in mem.values())),
                   hw.dram_capacity_gib * 2**30, "bytes"),
            FitRow("on-chip SRAM", hw.sram_mib * 2**20 * 8, hw.dev.bram_bits.value, "bits")]
    res = design_resources(model, hw, hw.lanes, hw.ternary_cores, hw.tensor_arrays,
                           hw.elementwise_per_cycle.value)
    for key, measured in (("LUT4-equivalents", hw.measured_luts),
                          ("flip-flops", hw.measured_ffs),
                          ("multipliers", hw.measured_multipliers)):
        if measured is not None:  # a measured build's placed resources
            res[key] = measured.value
    limit = hw.max_utilisation.value
    dev = hw.dev
    rows += [FitRow(f"LUT4-equivalents (<= {limit:.0%} of the device)",
                    float(res["LUT4-equivalents"]), dev.luts.value * limit, "LUT4"),
             FitRow(f"flip-flops (<= {limit:.0%} of the device)", float(res["flip-flops"]),
                    dev.ffs.value * limit, "FF"),
             FitRow("hard multipliers", float(res["multipliers"]), dev.multipliers.value,
                    "multipliers")]
    return rows


def fits(model: ModelConfig, hw: HardwareConfig, points: dict[str, object],
         batch: object, context: int, luts: object = None) -> object:
    """Whether each design point (arrays ``lanes``, ``cores``) fits: the sweep's check.
    ``luts``: the points' LUT4-equivalents (measured designs) instead of the units'
    per-lane figures."""
    mem = memory_bytes(model, hw, batch, context)
    total = sum(np.asarray(v, dtype=float) for v in mem.values())
    res = design_resources(model, hw, points["lanes"], points["cores"], hw.tensor_arrays,
                           hw.elementwise_per_cycle.value)
    limit = hw.max_utilisation.value
    dev = hw.dev
    ok = (total <= hw.dram_capacity_gib * 2**30) & (
        hw.sram_mib * 2**20 * 8 <= dev.bram_bits.value)
    ok = ok & ((res["LUT4-equivalents"] if luts is None else np.asarray(luts))
               <= dev.luts.value * limit)
    ok = ok & (res["flip-flops"] <= dev.ffs.value * limit)
    return ok & (res["multipliers"] <= dev.multipliers.value)


def warnings(model: ModelConfig, hw: HardwareConfig, workload: Workload) -> list[str]:
    """One line per resource that does not fit."""
    return [f"{model.name} does not fit {hw.name} ({hw.dev.part}): {r.text()}"
            for r in check(model, hw, workload) if not r.ok]
