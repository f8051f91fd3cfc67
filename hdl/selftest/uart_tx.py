"""A transmit-only UART (8 data bits, no parity, 1 stop bit) for status lines."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...spec import check_int

__all__ = ["UartTx", "uart_divisor"]


def uart_divisor(clock_hz: int, baud: int) -> int:
    """Clock cycles per bit, rounded; raises if the rate error exceeds 2 %."""
    div = round(clock_hz / baud)
    if div < 2 or abs(clock_hz / div - baud) / baud > 0.02:
        raise ValueError(f"{baud} baud is not reachable from {clock_hz} Hz within 2 %")
    return div


class UartTx(wiring.Component):
    """Sends each byte of ``data`` on ``tx``: a start bit (0), the 8 data bits least
    significant first, and a stop bit (1), each ``divisor`` clock cycles long.

    Ports: ``data`` (in stream, 8 bits), ``tx`` (out, idles high). Timing: ``data.ready`` is
    high while idle; a byte transfers and its start bit begins on the next cycle, and the
    next byte can transfer in the last cycle of the stop bit, so back-to-back bytes take
    exactly ``10 * divisor`` cycles each. ``tx`` is a register (no glitches on the pin).
    """

    def __init__(self, divisor: int) -> None:
        self.divisor = check_int("divisor", divisor, 2, 1 << 24)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        shift = Signal(10, init=0x3FF)  # bits still to send, the next in bit 0
        bits_left = Signal(range(11))
        count = Signal(range(self.divisor))
        m.d.comb += self.data.ready.eq((bits_left == 0)
                                       | ((bits_left == 1) & (count == self.divisor - 1)))
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [shift.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                         bits_left.eq(10), count.eq(0), self.tx.eq(0)]
        with m.Elif(bits_left != 0):
            with m.If(count == self.divisor - 1):
                m.d.sync += [count.eq(0), bits_left.eq(bits_left - 1),
                             shift.eq(Cat(shift[1:], Const(1, 1))),
                             self.tx.eq(shift[1])]  # 1 after the stop bit: shift fills with 1s
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m

