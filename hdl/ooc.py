"""A pin-light wrapper for place-and-route of a unit on small packages (iCE40 has no
out-of-context mode, and a unit's wide stream ports exceed any package's pins)."""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class PinWrapper(wiring.Component):
    """Drives every input of ``unit`` from a shift register fed by the ``din`` pin and
    reduces every output, registered, to the ``dout`` pin (XOR of all output bits).

    All logic of the unit stays observable, so synthesis keeps it; paths inside the unit are
    the ones it has standalone, and the wrapper adds only register-to-register paths of one
    LUT (shift) or a balanced XOR tree (registered at its root).
    """

    def __init__(self, unit: wiring.Component) -> None:
        self.unit = unit
        super().__init__({"din": In(1), "dout": Out(1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.unit = unit = self.unit
        ins, outs = [], []
        for _path, member, value in unit.signature.flatten(unit):
            (ins if member.flow == wiring.In else outs).append(Value.cast(value))
        width = sum(len(v) for v in ins)
        shift = Signal(max(width, 1))
        m.d.sync += shift.eq(Cat(self.din, shift[:-1]))
        offset = 0
        for v in ins:
            m.d.comb += v.eq(shift[offset:offset + len(v)])
            offset += len(v)
        captured = Signal(sum(len(v) for v in outs))
        m.d.sync += captured.eq(Cat(*outs))
        m.d.sync += self.dout.eq(captured.xor())
        return m
