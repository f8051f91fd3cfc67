"""Verilog generation: deterministic and path-free, in this process and in a fresh one."""

import json
import subprocess
import sys

import pytest

from mmfree.flow.generate import to_verilog, write_unit
from mmfree.hdl import build
from mmfree.spec import UNITS, TernaryCoreSpec


def test_verilog_is_deterministic_and_path_free(tmp_path):
    a = to_verilog(build(TernaryCoreSpec(lanes=7, packed=True)), "t")
    b = to_verilog(build(TernaryCoreSpec(lanes=7, packed=True)), "t")
    assert a == b
    assert "src =" not in a and "/work" not in a and "/home" not in a and str(tmp_path) not in a
    # in a fresh interpreter too (no hidden process state, e.g. name counters)
    code = ("from mmfree.flow.generate import to_verilog; from mmfree.hdl import build;"
            "from mmfree.spec import TernaryCoreSpec;"
            "print(to_verilog(build(TernaryCoreSpec(lanes=7, packed=True)), 't'), end='')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert out == a


def _random_value(layout, rng):
    """A random value for ``layout`` as ``Layout.const`` takes it (dicts and lists)."""
    from amaranth.hdl import Shape
    from amaranth.lib import data
    if isinstance(layout, data.ArrayLayout):
        return [_random_value(layout.elem_shape, rng) for _ in range(layout.length)]
    if isinstance(layout, data.Layout):
        return {name: _random_value(f.shape, rng) for name, f in layout}
    shape = Shape.cast(layout)
    lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed \
        else (0, 1 << shape.width)
    return int(rng.integers(lo, hi))


def _lookup(value, name, i):
    """The element of a nested value that field ``name`` (``a.b``, ``codes[i]``, ``[i]``)
    with index ``i`` names."""
    for part in name.split("."):
        key, _, index = part.partition("[")
        if key:
            value = value[key]
        if index:
            value = value[i if index == "i]" else int(index[:-1])]
    return value


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_described_payload_fields_match_the_layouts(unit, tmp_path):
    """NAME.json's field -> bit ranges place every field where the hardware's layout does:
    a random payload built by ``Layout.const`` decodes back through the described ranges."""
    import numpy as np
    from amaranth.lib import data

    from mmfree.flow.generate import ports
    from mmfree.hdl import build
    rng = np.random.default_rng(11)
    spec = UNITS[unit]()
    component = build(spec)
    component._MustUse__used = True  # only its signature is read here (no Amaranth warning)
    paths = write_unit(spec, tmp_path)
    described = {p["name"]: p for p in json.loads(paths[2].read_text())["ports"]}
    layouts = {"__".join(map(str, path)): value.shape()
               for path, _, value in component.signature.flatten(component)
               if isinstance(value, data.View)}
    assert layouts, "no stream payload layouts found"
    for name, layout in layouts.items():
        fields = described[name]["fields"]
        assert sum(f["width"] * f["count"] for f in fields) == layout.size
        value = _random_value(layout, rng)
        bits = layout.const(value).as_bits()
        for f in fields:
            for i in range(f["count"]):
                lo = f["offset"] + f["stride"] * i
                raw = (bits >> lo) & ((1 << f["width"]) - 1)
                if f["signed"] and raw >> (f["width"] - 1):
                    raw -= 1 << f["width"]
                assert raw == _lookup(value, f["field"], i), (unit, name, f["field"], i)
    md = paths[1].read_text()
    assert "## Payload fields" in md
    for name in layouts:
        assert f"| `{name}` | `" in md
    assert all(p.fields for p in ports(component) if p.name in layouts)
