# amaranth: UnusedElaboratable=no
"""The bulk harness without a simulation: its vectorised codecs write exactly Amaranth's
bit patterns on every port of every unit (and read them back, through the hex files the
wrapper reads and writes); its wrapper is deterministic Verilog-2005 that Verilator lints
with its default warnings fatal."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

from mmfree.flow import toolchain
from mmfree.flow.generate import to_verilog
from mmfree.hdl import build
from mmfree.sim.bulk import stream_ports, wrapper_name, wrapper_verilog
from mmfree.sim.kit import component_of
from mmfree.sim.kit.bulk import BulkCodec, _hex_to_bits, bits_to_hex
from mmfree.spec import BitLinearUnitSpec, TensorCoreSpec, TernaryCoreSpec

from ..conftest import require_simulator
from .test_kit import COMPONENTS, random_value, reference_bits


def _columns(shape, values: list):
    """Per-beat values (as Amaranth takes them) as BulkCodec's column arrays."""
    if isinstance(shape, data.StructLayout):
        return {name: _columns(f.shape, [v[name] for v in values]) for name, f in shape}
    if isinstance(shape, data.ArrayLayout) and not isinstance(shape.elem_shape, data.Layout):
        return np.array(values, dtype=np.int64).reshape(len(values), shape.length)
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize("make", COMPONENTS[:-1], ids=range(len(COMPONENTS) - 1))
def test_bulk_codecs_match_amaranth_and_round_trip(make, seed):
    rng = random.Random(seed)
    comp = make()
    for name, member in comp.signature.members.items():
        if not (member.is_signature and "payload" in member.signature.members):
            continue
        shape = member.signature.members["payload"].shape
        if Shape.cast(shape).width > 62 * 64 or any(
                Shape.cast(f.shape).width > 62 for f in _leaves(shape)):
            continue
        beats = 7
        values = [random_value(shape, rng) for _ in range(beats)]
        codec = BulkCodec(shape)
        bits = codec.to_bits(_columns(shape, values), beats)
        text = bits_to_hex(bits).decode().split()
        assert [int(t, 16) for t in text] == [reference_bits(shape, v) for v in values], name
        rows = np.frombuffer(bits_to_hex(bits), np.uint8).reshape(beats, -1)[:, :-1]
        back, unknown = _hex_to_bits(rows, codec.width)
        assert (back == bits).all() and not unknown.any()
        again = codec.to_bits(codec.from_bits(back), beats)
        assert (again == bits).all(), name


def _leaves(shape):
    if isinstance(shape, data.StructLayout):
        for _, f in shape:
            yield from _leaves(f.shape)
    elif isinstance(shape, data.ArrayLayout):
        yield from _leaves(shape.elem_shape)
    else:
        yield type("Leaf", (), {"shape": shape})


def test_unknown_digits_are_flagged():
    rows = np.frombuffer(b"0f1x", np.uint8).reshape(1, 4)
    _, unknown = _hex_to_bits(rows, 16)
    assert unknown.tolist() == [True]


SPECS = [(TernaryCoreSpec(lanes=16), True), (TernaryCoreSpec(lanes=7, packed=True), False),
         (TensorCoreSpec(accumulate=True), False), (BitLinearUnitSpec(lanes=8, max_dim=64), True)]


@pytest.mark.parametrize("spec,lint", SPECS, ids=lambda s: getattr(s, "name", str(s)))
def test_wrapper_is_deterministic_and_lints(spec, lint: bool, tmp_path: Path):
    comp = component_of(spec)
    text = wrapper_verilog(comp, spec.top_name(), {"w": 256})
    assert text == wrapper_verilog(component_of(spec), spec.top_name(), {"w": 256})
    streams, plain = stream_ports(comp)
    for s in streams:
        assert f"bulk_{s.name}." in text
    assert [p[0] for p in plain] == [n for n, m in comp.signature.members.items()
                                     if not m.is_signature]
    if not lint:
        return
    require_simulator("verilator")
    sim = toolchain.find("verilator")
    (tmp_path / "unit.v").write_text(to_verilog(build(spec), spec.top_name()))
    (tmp_path / "wrap.v").write_text(text)
    proc = subprocess.run(["verilator", "--lint-only", "--timing", "--top-module",
                           wrapper_name(spec.top_name()), "unit.v", "wrap.v"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, **sim.env}, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
