"""Serial divider: one quotient bit per cycle (non-restoring)."""

from __future__ import annotations

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_int
from ._arith import signed_sum

__all__ = ["SerialDivider"]


class SerialDivider(wiring.Component):
    """``quotient = floor(dividend / divisor)`` for unsigned operands, by non-restoring
    division: the partial remainder may go negative, and each step adds or subtracts the
    divisor by its sign, so a step is one carry chain whose add/subtract select shares the
    chain's LUTs and nothing waits on the chain's result (a restoring step selects the
    remainder by the subtraction's sign, a fan-out after the chain). The quotient bits are
    the restoring division's: a step's result is the restoring remainder when it is not
    negative and that remainder minus the divisor when it is.

    Ports: ``start`` in (pulse), ``dividend`` in (``dividend_width`` bits), ``divisor`` in
    (``divisor_width`` bits), ``high`` in (``divisor_width`` bits, default 0), ``busy`` out,
    ``quotient`` out (``dividend_width`` bits).

    ``high`` extends the dividend above its ``dividend_width`` bits: the quotient is
    ``floor((high * 2**dividend_width + dividend) / divisor)``, exact while
    ``high < divisor`` (its bits are the remainder the division starts from, so a wide
    dividend whose top part is known to be below the divisor costs only the quotient's bits
    in cycles).

    Timing: the operands are taken in the cycle ``start`` is high while ``busy`` is low;
    ``busy`` is then high for exactly ``dividend_width`` cycles (one quotient bit each, most
    significant first) and ``quotient`` is valid from the cycle ``busy`` falls until the next
    start. A zero divisor gives an all-ones quotient (as restoring division does), as
    :func:`mmfree.golden.quantiser.divide` defines. Synchronous reset stops a division.
    """

    def __init__(self, dividend_width: int, divisor_width: int) -> None:
        self.dividend_width = check_int("dividend_width", dividend_width, 1, 256)
        self.divisor_width = check_int("divisor_width", divisor_width, 1, 256)
        super().__init__({
            "start": In(1),
            "dividend": In(dividend_width),
            "divisor": In(divisor_width),
            "high": In(divisor_width),
            "busy": Out(1),
            "quotient": Out(dividend_width),
        })

    @property
    def cycles(self) -> int:
        """Cycles ``busy`` stays high per division."""
        return self.dividend_width

    def elaborate(self, platform: object) -> Module:
        m = Module()
        nw, dw = self.dividend_width, self.divisor_width
        divisor = Signal(signed(dw + 2))  # zero-extended: the step's operands match
        rem = Signal(signed(dw + 1))  # in [-divisor, divisor) (the quotient bit: rem >= 0)
        bits = Signal(nw)  # dividend bits shift out at the top, quotient bits in at the bottom
        count = Signal(range(nw + 1))
        busy = Signal()  # a flip-flop equal to count != 0 (no compare on the busy path)
        zero = Signal()  # a zero divisor: every quotient bit is 1, as restoring division has
        trial = Signal(signed(dw + 2))
        m.d.comb += [
            trial.eq(Cat(bits[-1], rem)),
            self.quotient.eq(bits),
            self.busy.eq(busy),
        ]
        # 2 rem + bit - divisor while rem >= 0, 2 rem + bit + divisor while rem < 0
        step = signed_sum(m, trial, divisor, ~rem[-1], dw + 2, "div_step")
        with m.If(busy):
            m.d.sync += [count.eq(count - 1), busy.eq(count[1:].any() | ~count[0]),
                         rem.eq(step[:dw + 1]), bits.eq(Cat(~step[-1] | zero, bits[:-1]))]
        with m.Elif(self.start):
            m.d.sync += [divisor.eq(self.divisor), rem.eq(self.high),
                         bits.eq(self.dividend), zero.eq(~self.divisor.any()),
                         count.eq(nw), busy.eq(1)]
        return m
