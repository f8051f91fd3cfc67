"""Deterministic Verilog generation and port descriptions for the project's units."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from ..hdl.packed_ternary_core import PackedTernaryCore
from ..hdl.ternary_core import TernaryCore


@dataclass(frozen=True)
class Port:
    """One top-level Verilog port."""

    name: str
    direction: str  # "input" or "output"
    width: int


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog for ``component`` with top module ``name``.

    Byte-identical across runs and machines: no ``src`` attributes (which would hold this
    machine's paths) and no timestamps; the only header is the Yosys version line.
    """
    return verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)


def ports(component: wiring.Component) -> list[Port]:
    """The Verilog ports of ``component`` (as Amaranth names them), clock and reset first."""
    result = [Port("clk", "input", 1), Port("rst", "input", 1)]
    for path, member, value in component.signature.flatten(component):
        result.append(Port(
            "__".join(str(p) for p in path),
            "input" if member.flow == wiring.In else "output",
            len(Value.cast(value))))
    return result


def ternary_core(lanes: int = 16, act_width: int = 8, acc_width: int = 32,
                 packed: bool = False,
                 tree_levels_per_stage: int = 0) -> TernaryCore | PackedTernaryCore:
    """Build the ternary core, optionally with the packed-weight unpacker in front."""
    cls = PackedTernaryCore if packed else TernaryCore
    return cls(lanes=lanes, act_width=act_width, acc_width=acc_width,
               tree_levels_per_stage=tree_levels_per_stage)


def _latency(component: wiring.Component) -> int:
    latency = getattr(component, "latency", None)
    return component.LATENCY if latency is None else latency


def describe(component: wiring.Component, name: str, params: dict[str, object]) -> str:
    """A short Markdown description: parameters, ports, latency, cycle formula."""
    doc = (type(component).__doc__ or "").strip().splitlines()[0]
    lines = [f"# {name}", "", doc, "", "## Parameters", ""]
    lines += [f"- `{k}` = {v}" for k, v in params.items()]
    lines += ["", "## Ports", "", "| port | dir | width |", "|---|---|---|"]
    lines += [f"| `{p.name}` | {p.direction} | {p.width} |" for p in ports(component)]
    latency = _latency(component)
    lines += ["", "## Timing", "", f"- latency: {latency} cycles",
              f"- cycles: {component.cycle_formula()} (first input transfer to last output "
              "transfer, inclusive, with the streams keeping up)"]
    lines += ["", f"Full contract: the docstring of `{type(component).__module__}."
              f"{type(component).__qualname__}`.", ""]
    return "\n".join(lines)


def write_unit(component: wiring.Component, name: str, params: dict[str, object],
               out_dir: Path) -> list[Path]:
    """Write ``name.v``, ``name.md`` and ``name.json`` (ports and parameters) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path, md_path, js_path = (out_dir / f"{name}{ext}" for ext in (".v", ".md", ".json"))
    v_path.write_text(to_verilog(component, name))
    md_path.write_text(describe(component, name, params))
    js_path.write_text(json.dumps({
        "module": name,
        "parameters": params,
        "latency": _latency(component),
        "cycles": component.cycle_formula(),
        "ports": [p.__dict__ for p in ports(component)],
    }, indent=2) + "\n")
    return [v_path, md_path, js_path]
