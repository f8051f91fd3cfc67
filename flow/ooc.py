"""A pin-light wrapper for place-and-route of a unit on small packages (iCE40 has no
out-of-context mode, and a unit's wide stream ports exceed any package's pins)."""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PinWrapper", "RegisteredPorts"]


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


class RegisteredPorts(wiring.Component):
    """``unit`` with a flip-flop on every port, for in-context timing out of context.

    Out of context, nextpnr times only paths between registers: a path from a top-level
    input (or to a top-level output) is not timed, so logic between a unit's input port and
    its first register, such as the tensor core's multipliers, would not count. Here every
    input of ``unit`` is driven by a register loaded from a top-level port of the same name,
    and every output is captured in a register that drives a top-level port, as a
    surrounding design would do. Every path into and out of the unit is then timed from and
    to a flip-flop; the wrapper adds no logic of its own. (The handshakes are delayed by a
    cycle, so this is for timing and resources only, not for simulation.)
    """

    def __init__(self, unit: wiring.Component) -> None:
        self.unit = unit
        self._ports = [("__".join(str(p) for p in path), member.flow, Value.cast(value))
                       for path, member, value in unit.signature.flatten(unit)]
        super().__init__({name: (In if flow == wiring.In else Out)(len(value))
                          for name, flow, value in self._ports})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.unit = self.unit
        for name, flow, value in self._ports:
            port = getattr(self, name)
            if flow == wiring.In:
                m.d.sync += value.eq(port)  # the unit's input comes from a flip-flop
            else:
                m.d.sync += port.eq(value)
        return m
