"""Measured switching activity and resources of the units, for logic power and the fit check.

``bench/activity.py`` simulates each unit (the ternary core, the int8 tensor core) with
random operands on Icarus, counts the toggles of its nets (``alpha``: toggles per net bit per
cycle) and synthesises it with Yosys for ECP5 (LUT4-equivalents, flip-flops, multipliers);
it writes ``data/activity.json``. From those:

- **Logic energy** of a busy cycle of ``n`` units is ``alpha * n * LUT4 * E_toggle`` plus,
  for multipliers, ``alpha * n * multipliers * E_dsp``, with the energies of the device's
  family (:mod:`mmfree.model.devices`). Idle units draw no dynamic power (clock gating is
  assumed; the clock tree is not modelled).
- **Resources** scale the measured unit: the ternary core per lane (measured at 16 lanes),
  the tensor core per array.

The element-wise unit is not built yet (the vector unit of issue 13); its per-lane
resources here are assumed, and its energy is the cited per-operation figure of the
hardware configuration (``e_elementwise_pj``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .config import Q

__all__ = [
    "BENCH",
    "DATA",
    "EW_LANE_FFS",
    "EW_LANE_LUTS",
    "EW_LANE_MULTS",
    "ActivityMissing",
    "UnitData",
    "coefficients",
    "measured",
    "tensor_cycle_j",
    "ternary_cycle_j",
    "unit",
]

DATA = Path(__file__).parent.parent / "data" / "activity.json"
BENCH = "bench/activity.py"

#: element-wise lane (fixed-point multiply-add with table-based sigmoid/SiLU): the fit check's
#: resources per lane, measured on the vector unit
_VECTOR_UNIT_4 = ("mmfree synth vector-unit --target ecp5-85k --freq 150 --lanes 4 --width 18 "
                  "--max-dim 512 (2026-12-02, after the sixth round of timing work; placed "
                  "and routed, 129.6 MHz): the whole 4-lane unit, its command control "
                  "and output queues included, / 4 lanes")
EW_LANE_LUTS = Q(1465, "measured", _VECTOR_UNIT_4 + "; TRELLIS_COMB 5859")
EW_LANE_FFS = Q(1009, "measured", _VECTOR_UNIT_4 + "; TRELLIS_FF 4036")
EW_LANE_MULTS = Q(4, "measured", _VECTOR_UNIT_4 + "; MULT18X18D 16 (two products, the "
                                                   "square and the interpolation per lane)")


class ActivityMissing(RuntimeError):
    """``data/activity.json`` is missing or lacks a unit: run ``bench/activity.py``."""


@cache
def measured() -> dict:
    """The measured data of ``bench/activity.py``."""
    if not DATA.exists():
        raise ActivityMissing(f"{DATA} is missing: run {BENCH}")
    return json.loads(DATA.read_text())


@dataclass(frozen=True)
class UnitData:
    """One unit's measurement, per lane (ternary core) or per array (tensor core)."""

    alpha: Q
    luts: Q
    ffs: Q
    multipliers: Q


@cache
def unit(name: str) -> UnitData:
    """``ternary-core`` (per lane) or ``tensor-core`` (per array)."""
    units = measured().get("units", {})
    if name not in units:
        raise ActivityMissing(f"{DATA} has no '{name}' measurement: run {BENCH}")
    u = units[name]
    syn = u["synthesis"]
    per = u["lanes"] if name == "ternary-core" else 1
    what = f"{u['lanes']}-lane TernaryCore" if name == "ternary-core" else "int8 TensorCore"
    cells = ", ".join(f"{k} {v}" for k, v in sorted(syn["cells"].items()))
    alpha = Q(u["alpha"], "measured",
              f"{BENCH}: {u['toggles']} toggles of {u['net_bits']} net bits over "
              f"{u['cycles']} cycles, {what} on Icarus, {u['stimulus']}")
    how = f"{BENCH}: {syn['tool']} of the {what} ({cells})"
    per_note = f", / {per} lanes" if per > 1 else ""
    return UnitData(alpha,
                    Q(syn["lut4_equivalents"] / per, "measured",
                      f"{how}; LUT4 + 2 x CCU2C{per_note}"),
                    Q(syn["flip_flops"] / per, "measured", f"{how}; TRELLIS_FF{per_note}"),
                    Q(syn["multipliers"] / per, "measured", f"{how}; MULT18X18D{per_note}"))


def coefficients() -> dict[str, dict[str, object]]:
    """The activity and resource coefficients, keyed by name, as ``{value, unit, source,
    note}``."""
    t, a = unit("ternary-core"), unit("tensor-core")
    return {
        "alpha_ternary": t.alpha.entry("toggles per net bit per cycle"),
        "luts_per_ternary_lane": t.luts.entry("LUT4-equivalents"),
        "ffs_per_ternary_lane": t.ffs.entry("flip-flops"),
        "alpha_tensor": a.alpha.entry("toggles per net bit per cycle"),
        "luts_per_tensor_array": a.luts.entry("LUT4-equivalents"),
        "ffs_per_tensor_array": a.ffs.entry("flip-flops"),
        "multipliers_per_tensor_array": a.multipliers.entry("18x18 multipliers"),
        "luts_per_elementwise_lane": EW_LANE_LUTS.entry("LUT4-equivalents"),
        "ffs_per_elementwise_lane": EW_LANE_FFS.entry("flip-flops"),
        "multipliers_per_elementwise_lane": EW_LANE_MULTS.entry("18x18 multipliers"),
    }


def ternary_cycle_j(lanes: object, cores: object, e_toggle_pj: float) -> object:
    """Energy of one busy cycle of ``cores`` ternary cores of ``lanes`` lanes (J)."""
    t = unit("ternary-core")
    return t.alpha.value * t.luts.value * lanes * cores * e_toggle_pj * 1e-12


def tensor_cycle_j(arrays: object, e_toggle_pj: float, e_dsp_pj: float) -> object:
    """Energy of one busy cycle of ``arrays`` int8 tensor-core arrays (J)."""
    a = unit("tensor-core")
    return (a.alpha.value * arrays * (a.luts.value * e_toggle_pj
                                      + a.multipliers.value * e_dsp_pj) * 1e-12)
