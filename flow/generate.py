"""Deterministic Verilog generation and port descriptions for the project's units."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape, Value
from amaranth.lib import data, wiring

from ..hdl import build
from ..spec import UnitSpec

__all__ = ["Field", "Port", "describe", "payload_fields", "ports", "to_verilog", "write_unit"]


@dataclass(frozen=True)
class Field:
    """A field of a port's payload layout, at bits ``offset + stride*i`` ..
    ``offset + stride*i + width - 1`` for element ``i`` of ``count`` (one element: a plain
    field, ``count`` 1, ``stride`` 0)."""

    field: str  #: ``codes`` or ``a.b`` (an array of ``count`` elements: ``codes[i]``)
    offset: int
    width: int
    signed: bool
    count: int = 1
    stride: int = 0

    def bits(self) -> str:
        """The bit range as Verilog writes it, ``[hi:lo]`` (``i`` for the element index)."""
        hi, lo = self.offset + self.width - 1, self.offset
        if self.count == 1:
            return f"[{hi}:{lo}]"
        term = "i" if self.stride == 1 else f"{self.stride}*i"
        return f"[{term}+{hi}:{term}+{lo}]" if lo else f"[{term}+{hi}:{term}]"


def payload_fields(layout: data.Layout, prefix: str = "", offset: int = 0) -> list[Field]:
    """The fields of ``layout`` (an ``amaranth.lib.data`` layout), flattened: arrays of
    plain elements stay one entry with a stride."""
    out: list[Field] = []
    if isinstance(layout, data.ArrayLayout):
        elem = layout.elem_shape
        if isinstance(elem, data.Layout):
            for i in range(layout.length):
                out += payload_fields(elem, f"{prefix}[{i}]", offset + i * elem.size)
        else:
            shape = Shape.cast(elem)
            if layout.length == 1:
                out.append(Field(f"{prefix}[0]", offset, shape.width, shape.signed))
            else:
                out.append(Field(f"{prefix}[i]", offset, shape.width, shape.signed,
                                 layout.length, shape.width))
        return out
    for name, f in layout:
        key = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(f.shape, data.Layout):
            out += payload_fields(f.shape, key, offset + f.offset)
        else:
            shape = Shape.cast(f.shape)
            out.append(Field(key, offset + f.offset, shape.width, shape.signed))
    return out


@dataclass(frozen=True)
class Port:
    """One top-level Verilog port; a stream payload lists the fields of its layout."""

    name: str
    direction: str  # "input" or "output"
    width: int
    fields: tuple[Field, ...] = ()

    def as_dict(self) -> dict:
        d = {"name": self.name, "direction": self.direction, "width": self.width}
        if self.fields:
            d["fields"] = [f.__dict__ | {"bits": f.bits()} for f in self.fields]
        return d


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
        shape = value.shape() if isinstance(value, data.View) else None
        result.append(Port(
            "__".join(str(p) for p in path),
            "input" if member.flow == wiring.In else "output",
            len(Value.cast(value)),
            tuple(payload_fields(shape)) if isinstance(shape, data.Layout) else ()))
    return result


def describe(spec: UnitSpec, component: wiring.Component, name: str) -> str:
    """A short Markdown description: parameters, ports, latency, cycle formula."""
    doc = (type(component).__doc__ or "").strip().splitlines()[0]
    lines = [f"# {name}", "", doc, "", "## Parameters", ""]
    lines += [f"- `{k}` = {v}" for k, v in spec.params().items()]
    lines += ["", "## Ports", "", "| port | dir | width |", "|---|---|---|"]
    lines += [f"| `{p.name}` | {p.direction} | {p.width} |" for p in ports(component)]
    laid_out = [p for p in ports(component) if p.fields]
    if laid_out:
        lines += ["", "## Payload fields", "",
                  "Bit ranges inside each payload port (bit 0 is the least significant; for "
                  "an array, element `i` is at the range given with its index).", "",
                  "| port | field | bits | elements | type |", "|---|---|---|---|---|"]
        lines += [f"| `{p.name}` | `{f.field}` | `{f.bits()}` | "
                  f"{f.count if f.count > 1 else '-'} | "
                  f"{'signed' if f.signed else 'unsigned'} {f.width} |"
                  for p in laid_out for f in p.fields]
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
        "ports": [p.as_dict() for p in ports(component)],
    }, indent=2) + "\n")
    return [v_path, md_path, js_path]
