"""Switching activity from a VCD file: bit toggles per clock cycle of a design's nets.

Used for the activity-based power estimate of the cycle model: toggles counted in an RTL
simulation of a unit (``bench/activity.py``), combined with the unit's resource counts from
synthesis. Each VCD identifier is counted once (aliases share one), only 0/1 transitions
count (x and z do not), and the cycle count is taken from the rising edges of ``clk``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Toggles", "count_toggles"]


@dataclass(frozen=True)
class Toggles:
    """Activity of one simulation."""

    bits: int  #: net bits in the counted scope (each VCD identifier once)
    toggles: int  #: 0<->1 bit transitions of those nets
    cycles: int  #: rising edges of the clock

    @property
    def per_cycle(self) -> float:
        return self.toggles / max(self.cycles, 1)

    @property
    def alpha(self) -> float:
        """Average toggle probability per net bit per cycle."""
        return self.toggles / max(self.bits * self.cycles, 1)


def _flips(old: str, new: str) -> int:
    width = max(len(old), len(new))
    old, new = old.rjust(width, "0"), new.rjust(width, "0")
    return sum(1 for a, b in zip(old, new, strict=True) if a != b and a in "01" and b in "01")


def count_toggles(vcd: str | Path, scope: str | None = None, clock: str = "clk",
                  names: set[str] | None = None) -> Toggles:
    """Count the toggles of every net under module scope ``scope`` (default: all scopes
    except the top one, which is the testbench's), or only of the nets called ``names``,
    from the first rising clock edge on."""
    ids: dict[str, int] = {}  # identifier -> width, for counted nets
    clock_id = None
    stack: list[str] = []
    values: dict[str, str] = {}
    toggles = cycles = 0
    in_header = True
    with open(vcd) as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            if in_header:
                if tok[0] == "$scope":
                    stack.append(tok[2])
                elif tok[0] == "$upscope":
                    stack.pop()
                elif tok[0] == "$var":
                    width, ident, name = int(tok[2]), tok[3], tok[4]
                    inside = (scope in stack) if scope else len(stack) > 1
                    if inside and ident not in ids and (names is None or name in names):
                        ids[ident] = width
                    if name == clock and clock_id is None and inside:
                        clock_id = ident
                elif tok[0] == "$enddefinitions":
                    in_header = False
                continue
            head = tok[0]
            if head[0] == "#" or head[0] == "$":
                continue
            if head[0] in "bB":
                value, ident = head[1:], tok[1]
            else:
                value, ident = head[0], head[1:]
            if ident == clock_id and values.get(ident) == "0" and value == "1":
                cycles += 1
            if ident in ids and ident in values and cycles > 0:
                toggles += _flips(values[ident], value)
            values[ident] = value
    return Toggles(sum(ids.values()), toggles, cycles)
