"""Deterministic Verilog generation and port descriptions for the project's units."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from ..hdl import build
from ..spec import UnitSpec

__all__ = ["Port", "describe", "ports", "to_verilog", "write_unit"]


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


def describe(spec: UnitSpec, component: wiring.Component, name: str) -> str:
    """A short Markdown description: parameters, ports, latency, cycle formula."""
    doc = (type(component).__doc__ or "").strip().splitlines()[0]
    lines = [f"# {name}", "", doc, "", "## Parameters", ""]
    lines += [f"- `{k}` = {v}" for k, v in spec.params().items()]
    lines += ["", "## Ports", "", "| port | dir | width |", "|---|---|---|"]
    lines += [f"| `{p.name}` | {p.direction} | {p.width} |" for p in ports(component)]
    lines += ["", "## Timing", "", f"- latency: {spec.latency} cycles",
              f"- cycles: {spec.cycle_formula()} (first input transfer to last output "
              "transfer, inclusive, with the streams keeping up)"]
    lines += ["", f"Full contract: the docstring of `{type(component).__module__}."
              f"{type(component).__qualname__}`.", ""]
    return "\n".join(lines)


def write_unit(spec: UnitSpec, out_dir: Path, name: str | None = None) -> list[Path]:
    """Write ``NAME.v``, ``NAME.md`` and ``NAME.json`` (ports, parameters, latency, cycle
    formula) of the unit ``spec`` describes into ``out_dir`` (created if missing); ``name``
    defaults to :meth:`~mmfree.spec.UnitSpec.top_name`. Returns the three paths."""
    name = name or spec.top_name()
    component = build(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path, md_path, js_path = (out_dir / f"{name}{ext}" for ext in (".v", ".md", ".json"))
    v_path.write_text(to_verilog(component, name))
    md_path.write_text(describe(spec, component, name))
    js_path.write_text(json.dumps({
        "module": name,
        "parameters": spec.params(),
        "latency": spec.latency,
        "cycles": spec.cycle_formula(),
        "ports": [p.__dict__ for p in ports(component)],
    }, indent=2) + "\n")
    return [v_path, md_path, js_path]
