"""Bit-serial integer square root: one root bit per cycle."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_int

__all__ = ["SerialIsqrt"]


class SerialIsqrt(wiring.Component):
    """``root = floor(sqrt(radicand))`` for an unsigned ``radicand_width``-bit radicand, by the
    digit-by-digit (restoring) method: two radicand bits in, one root bit out per cycle.

    Ports: ``start`` in (pulse), ``radicand`` in, ``busy`` out, ``root`` out
    (``ceil(radicand_width / 2)`` bits).

    Timing: the radicand is taken in the cycle ``start`` is high while ``busy`` is low;
    ``busy`` is then high for exactly ``ceil(radicand_width / 2)`` cycles and ``root`` is
    valid from the cycle ``busy`` falls until the next start. Synchronous reset stops it.
    """

    def __init__(self, radicand_width: int) -> None:
        self.radicand_width = check_int("radicand_width", radicand_width, 1, 256)
        self.root_width = -(-radicand_width // 2)
        super().__init__({
            "start": In(1),
            "radicand": In(radicand_width),
            "busy": Out(1),
            "root": Out(self.root_width),
        })

    @property
    def cycles(self) -> int:
        """Cycles ``busy`` stays high per root."""
        return self.root_width

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n = self.root_width
        rad = Signal(2 * n)  # radicand bit pairs shift out at the top
        root = Signal(n + 2)  # top two bits stay 0; the width matches the trial's operands
        rem = Signal(n + 2)  # the remainder never exceeds 2 * root
        count = Signal(range(n + 1))
        busy = Signal()  # a flip-flop equal to count != 0 (no compare on the busy path)
        cur = Signal(n + 4)
        trial = Signal(n + 4)  # as wide as cur: the subtraction's operands match
        m.d.comb += [
            cur.eq(Cat(rad[-2:], rem)),
            trial.eq(Cat(Const(1, 2), root)),
            self.root.eq(root[:n]),
            self.busy.eq(busy),
        ]
        diff = cur - trial  # top bit (n + 4) set: the trial exceeded the remainder
        with m.If(busy):
            m.d.sync += [count.eq(count - 1), busy.eq(count[1:].any() | ~count[0]),
                         rad.eq(Cat(Const(0, 2), rad[:-2]))]
            with m.If(~diff[-1]):
                m.d.sync += [rem.eq(diff[:n + 2]), root.eq(Cat(1, root[:n - 1]))]
            with m.Else():
                m.d.sync += [rem.eq(cur[:n + 2]), root.eq(Cat(0, root[:n - 1]))]
        with m.Elif(self.start):
            m.d.sync += [rad.eq(self.radicand), root.eq(0), rem.eq(0), count.eq(n),
                         busy.eq(1)]
        return m
