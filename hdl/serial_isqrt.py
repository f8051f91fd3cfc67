"""Bit-serial integer square root: one root bit per cycle (non-restoring)."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_int
from ._arith import signed_sum

__all__ = ["SerialIsqrt"]


class SerialIsqrt(wiring.Component):
    """``root = floor(sqrt(radicand))`` for an unsigned ``radicand_width``-bit radicand, by the
    digit-by-digit method, non-restoring: two radicand bits in, one root bit out per cycle.

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
        root = Signal(n + 2)  # top two bits stay 0
        # non-restoring: the remainder may go negative (down to -(2 root + 1)); a step
        # subtracts 4 root + 1 from 4 rem + pair while rem >= 0 and adds 4 root + 3 while
        # rem < 0, so it is one carry chain whose add/subtract select shares the chain's
        # LUTs, and the root bit is the result's sign: the restoring method's root bits
        rem = Signal(signed(n + 3))
        count = Signal(range(n + 1))
        busy = Signal()  # a flip-flop equal to count != 0 (no compare on the busy path)
        cur = Signal(signed(n + 5))
        trial = Signal(signed(n + 5))  # as wide as cur: the step's operands match
        neg = rem[-1]
        m.d.comb += [
            cur.eq(Cat(rad[-2:], rem)),
            trial.eq(Cat(Const(1, 1), neg, root)),
            self.root.eq(root[:n]),
            self.busy.eq(busy),
        ]
        step = signed_sum(m, cur, trial, ~neg, n + 5, "isqrt_step")
        with m.If(busy):
            m.d.sync += [count.eq(count - 1), busy.eq(count[1:].any() | ~count[0]),
                         rad.eq(Cat(Const(0, 2), rad[:-2])), rem.eq(step[:n + 3]),
                         root.eq(Cat(~step[-1], root[:n - 1]))]
        with m.Elif(self.start):
            m.d.sync += [rad.eq(self.radicand), root.eq(0), rem.eq(0), count.eq(n),
                         busy.eq(1)]
        return m
