"""Stream payloads as integers, encoded and decoded from the hardware's own data layouts.

A :class:`Codec` is compiled from a port's Amaranth shape (an ``amaranth.lib.data`` layout,
or a plain ``signed``/``unsigned`` shape): field offsets, element widths and signedness all
come from the layout, so a testbench never writes a bit offset. It produces exactly what
``layout.const(value).as_bits()`` produces (``tests/sim/test_kit.py`` checks every unit's
ports against it), but fast: arrays of integers are packed and unpacked with numpy, a
1024-lane beat in tens of microseconds instead of milliseconds.

Values: a struct is a mapping of its field names (every field given), an array a sequence of
exactly its length (numpy arrays welcome), a plain shape an ``int``. Values outside a field's
range raise ``ValueError`` naming the field. Decoding gives a dict, a numpy ``int64`` array
(``object`` for elements wider than 62 bits) or an ``int``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

__all__ = ["Codec", "port_codecs"]

_SMALL = 32  #: arrays up to this length are packed by a Python loop


class Codec:
    """Encoder/decoder of one shape's values to and from its bit pattern (an ``int``)."""

    def __init__(self, shape: Any, name: str = "payload") -> None:
        self.shape, self.name = shape, name
        self.width = Shape.cast(shape).width
        self._mask = (1 << self.width) - 1
        self._scalar_int = not isinstance(shape, data.Layout)
        if isinstance(shape, data.StructLayout):
            self._fields = [(fname, f.offset, Codec(f.shape, f"{name}.{fname}"))
                            for fname, f in shape]
        elif isinstance(shape, data.ArrayLayout):
            self.length = shape.length
            self._elem = Codec(shape.elem_shape, f"{name}[]")
        elif isinstance(shape, data.Layout):
            raise TypeError(f"{name}: layout {shape!r} is not supported")
        else:
            s = Shape.cast(shape)
            self.signed = s.signed
            self.lo = -(1 << (s.width - 1)) if s.signed else 0
            self.hi = (1 << (s.width - 1)) - 1 if s.signed else self._mask

    # --- encoding ---------------------------------------------------------------------------

    def encode(self, value: Any) -> int:
        """The bit pattern of ``value`` (see the module docstring)."""
        if isinstance(self.shape, data.StructLayout):
            if not isinstance(value, Mapping):
                raise TypeError(f"{self.name}: expected a mapping of "
                                f"{', '.join(n for n, _, _ in self._fields)}")
            extra = set(value) - {n for n, _, _ in self._fields}
            if extra:
                raise ValueError(f"{self.name}: no field {', '.join(sorted(extra))}")
            out = 0
            for fname, offset, codec in self._fields:
                if fname not in value:
                    raise ValueError(f"{self.name}: field {fname} missing")
                out |= codec.encode(value[fname]) << offset
            return out
        if isinstance(self.shape, data.ArrayLayout):
            return self._encode_array(value)
        v = int(value)
        if not self.lo <= v <= self.hi:
            raise ValueError(f"{self.name}: {v} outside {self.lo}..{self.hi}")
        return v & self._mask

    def _encode_array(self, value: Any) -> int:
        elem, n = self._elem, self.length
        if len(value) != n:
            raise ValueError(f"{self.name}: expected {n} elements, got {len(value)}")
        w = elem.width
        if not elem._scalar_int or w > 64:
            out = 0
            for i, v in enumerate(value):
                out |= elem.encode(v) << (i * w)
            return out
        if n <= _SMALL:  # a Python loop beats numpy's call overhead
            out, mask, lo, hi = 0, elem._mask, elem.lo, elem.hi
            for i, x in enumerate(value):
                x = int(x)
                if not lo <= x <= hi:
                    raise ValueError(f"{elem.name}: {x} outside {lo}..{hi}")
                out |= (x & mask) << (i * w)
            return out
        v = np.asarray(value)
        if n and (int(v.min()) < elem.lo or int(v.max()) > elem.hi):
            bad = next(int(x) for x in v.ravel() if not elem.lo <= int(x) <= elem.hi)
            raise ValueError(f"{elem.name}: {bad} outside {elem.lo}..{elem.hi}")
        if w in (8, 16, 32, 64):  # whole bytes: numpy writes the two's complement itself
            dtype = f"<{'i' if elem.signed else 'u'}{w // 8}"
            return int.from_bytes(v.astype(dtype).tobytes(), "little")
        if 8 % w == 0:  # 1, 2 or 4 bits: several elements per byte
            per = 8 // w
            u = np.zeros(-(-n // per) * per, dtype=np.int64)
            u[:n] = v.astype(np.int64) & elem._mask
            packed = (u.reshape(-1, per) << (w * np.arange(per))).sum(axis=1).astype(np.uint8)
            return int.from_bytes(packed.tobytes(), "little")
        out, mask = 0, elem._mask
        for i, x in enumerate(v.tolist()):
            out |= (x & mask) << (i * w)
        return out

    # --- decoding ---------------------------------------------------------------------------

    def decode(self, bits: int) -> Any:
        """The value whose bit pattern is ``bits`` (the low :attr:`width` bits)."""
        bits = int(bits) & self._mask
        if isinstance(self.shape, data.StructLayout):
            return {fname: codec.decode(bits >> offset)
                    for fname, offset, codec in self._fields}
        if isinstance(self.shape, data.ArrayLayout):
            return self._decode_array(bits)
        if self.signed and bits >> (self.width - 1):
            return bits - (1 << self.width)
        return bits

    def _decode_array(self, bits: int) -> Any:
        elem, n = self._elem, self.length
        w = elem.width
        if not elem._scalar_int or w > 62:
            items = [elem.decode(bits >> (i * w)) for i in range(n)]
            return np.array(items, dtype=object) if elem._scalar_int else items
        if n <= _SMALL:
            mask, top = elem._mask, 1 << (w - 1)
            values = [(bits >> (i * w)) & mask for i in range(n)]
            if elem.signed:
                values = [v - (v & top) * 2 for v in values]
            return np.array(values, dtype=np.int64)
        raw = bits.to_bytes(-(-n * w // 8) or 1, "little")
        if w in (8, 16, 32):
            dtype = f"<{'i' if elem.signed else 'u'}{w // 8}"
            return np.frombuffer(raw, dtype=dtype)[:n].astype(np.int64)
        if 8 % w == 0:
            per = 8 // w
            b = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
            values = ((b[:, None] >> (w * np.arange(per))) & elem._mask).ravel()[:n]
        else:
            mask = elem._mask
            values = np.array([(bits >> (i * w)) & mask for i in range(n)], dtype=np.int64)
        if elem.signed:
            values = values - ((values >> (w - 1)) << w)
        return values


def port_codecs(component: wiring.Component) -> dict[str, Codec]:
    """A :class:`Codec` for the payload of every stream port of ``component`` (by port name),
    and for every plain port (``error``, ``passed`` ...), taken from its signature."""
    out = {}
    for name, member in component.signature.members.items():
        if member.is_signature and "payload" in member.signature.members:
            out[name] = Codec(member.signature.members["payload"].shape, f"{name}.payload")
        elif member.is_port:
            out[name] = Codec(member.shape, name)
    return out
