"""Activity-based dynamic power of the ternary cores.

``P = alpha * R * E_toggle * f`` where ``alpha`` is the average toggle probability per net
bit per cycle measured in an RTL simulation of a ternary core (``bench/activity.py``, data in
``data/activity.json``), ``R`` the LUT4 + flip-flop count of the configured cores scaled from
the same core's Yosys synthesis (per lane), ``E_toggle`` the energy of one LUT or flip-flop
output toggle with its local routing (assumed) and ``f`` the clock.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from .config import HardwareConfig, Q

__all__ = ["DATA", "E_TOGGLE_PJ", "measured", "ternary_core_power_w"]

DATA = Path(__file__).parent.parent / "data" / "activity.json"
E_TOGGLE_PJ = Q(1.0, "assumed", "energy per LUT/FF output toggle incl. local routing, "
                "order of magnitude of vendor power-estimator figures")


@cache
def measured() -> dict | None:
    """The measured activity data, or None if ``bench/activity.py`` has not been run."""
    return json.loads(DATA.read_text()) if DATA.exists() else None


def ternary_core_power_w(hw: HardwareConfig, busy: float = 1.0) -> tuple[float, dict[str, str]]:
    """Activity-based dynamic power of ``hw``'s ternary cores while ``busy`` (0..1) of the
    time; returns ``(watts, provenance)`` (0 W and a note if no measurement exists)."""
    data = measured()
    if data is None:
        return 0.0, {"activity": "not measured: run bench/activity.py"}
    syn = data["synthesis"]
    per_lane = (syn["lut4_equivalents"] + syn["flip_flops"]) / data["lanes"]
    resources = per_lane * hw.lanes * hw.ternary_cores
    watts = (data["alpha"] * resources * E_TOGGLE_PJ.value * 1e-12 * hw.clock_mhz.value * 1e6
             * busy)
    prov = {
        "alpha": f"measured: {data['alpha']:.3f} toggles per net bit per cycle, RTL simulation "
                 f"of a {data['lanes']}-lane TernaryCore over {data['cycles']} cycles",
        "resources": f"measured: {per_lane:.1f} LUT4+FF per lane, {syn['tool']}",
        "E_toggle": E_TOGGLE_PJ.tag(),
    }
    return watts, prov
