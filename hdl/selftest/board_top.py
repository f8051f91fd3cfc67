"""Board top level of the self-test: clock and power-on reset, buttons, LEDs, UART line."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockDomain, ClockSignal, Const, Module, Mux, ResetSignal, Signal
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from .selftest import SelfTest
from .uart_tx import UartTx, uart_divisor

__all__ = ["LINE_LENGTH", "POR_CYCLES", "STATUS_WORDS", "BoardIO", "Pin", "SelfTestBoard",
           "status_line"]

@dataclass(frozen=True)
class Pin:
    """One board signal: a port of the top level (or one bit of a vector port)."""

    port: str
    index: int | None = None  #: bit of a vector port, None for a 1-bit port
    active_low: bool = False

    def describe(self) -> str:
        bit = f"[{self.index}]" if self.index is not None else ""
        return f"{self.port}{bit}{' (active low)' if self.active_low else ''}"


@dataclass(frozen=True, kw_only=True)
class BoardIO:
    """What the self-test top level needs to know of a board: its clock, its ports and the
    role of each pin it uses, and the size of the self-test on it. (The board's part, pin
    file and tools are the flow's: :class:`mmfree.flow.boards.Board`.)"""

    clock: str  #: clock input port
    clock_hz: int
    ports: tuple[tuple[str, str, int], ...]  #: (name, "in"/"out", width)
    heartbeat: Pin
    passed: Pin
    failed: Pin
    inject: Pin
    uart_tx: Pin
    restart: Pin | None = None
    tie_high: tuple[Pin, ...] = ()  #: outputs held at 1 (board housekeeping)
    lanes: int = 8
    groups: int = 4
    tree_levels_per_stage: int = 0

    @property
    def clock_mhz(self) -> float:
        return self.clock_hz / 1e6


#: The status line's words, 4 characters each.
STATUS_WORDS = {"wait": b"WAIT", "pass": b"PASS", "fail": b"FAIL"}
LINE_LENGTH = 15  #: "PASS 0000ABCD\r\n"
POR_CYCLES = 16


def status_line(status: str, results: int) -> bytes:
    """The UART line the board sends: a status word, the result count in hex, CR LF."""
    return STATUS_WORDS[status] + b" " + f"{results & 0xFFFF_FFFF:08X}".encode() + b"\r\n"


class SelfTestBoard(wiring.Component):
    """The :class:`~mmfree.hdl.selftest.SelfTest` on a board: the ports are the board's
    pins as its pin file names them (:class:`BoardIO`; the reference boards are
    :data:`mmfree.flow.boards.BOARDS`).

    * Clock: the board's oscillator drives the ``sync`` domain directly (no PLL).
    * Reset: a power-on reset holds the self-test in reset for the first 16 cycles; the
      board's restart button (if it has one) resets it again while pressed.
    * Inputs: the inject button (synchronised by two flip-flops) inverts the LSB of every
      result while pressed, so the check fails (:class:`~mmfree.hdl.selftest.SelfTest`);
      with ``inject_error`` the bitstream injects from the start (a failing demonstration).
    * LEDs: ``heartbeat`` blinks at ``heartbeat_hz`` (on for half a period) whenever the
      clock runs; ``passed`` lights once ``pass_after`` results matched; ``failed`` lights
      on the first mismatch or when results stop (a timeout); they latch until reset.
    * UART (8N1, ``baud``): at each heartbeat's rising edge, one :func:`status_line`:
      ``WAIT``, ``PASS`` or ``FAIL``, a space, the number of results checked (8 hex digits),
      CR LF.

    ``heartbeat_cycles`` and ``divisor`` override the derived half-period and UART divisor
    (for simulation).
    """

    def __init__(self, board: BoardIO, *, inject_error: bool = False, pass_after: int = 1000,
                 heartbeat_hz: float = 1.0, baud: int = 115200,
                 heartbeat_cycles: int | None = None, divisor: int | None = None) -> None:
        self.board = board
        self.inject_error = inject_error
        self.heartbeat_cycles = heartbeat_cycles or max(1, round(board.clock_hz / heartbeat_hz
                                                                 / 2))
        self.divisor = divisor or uart_divisor(board.clock_hz, baud)
        if self.divisor * 10 * LINE_LENGTH >= 2 * self.heartbeat_cycles:
            raise ValueError("a status line does not fit into one heartbeat period")
        self.selftest = SelfTest(lanes=board.lanes, groups=board.groups, pass_after=pass_after,
                                 tree_levels_per_stage=board.tree_levels_per_stage)
        super().__init__({name: (In if d == "in" else Out)(width)
                          for name, d, width in board.ports})

    def _pin(self, pin: Pin) -> Value:
        port = getattr(self, pin.port)
        return port if pin.index is None else port[pin.index]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        b = self.board
        clk = getattr(self, b.clock)
        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("por").eq(clk)]

        def button(pin: Pin, name: str) -> Signal:
            raw, sync = Signal(name=f"{name}_raw"), Signal(name=name)
            m.d.comb += raw.eq(self._pin(pin) ^ pin.active_low)
            m.submodules[f"{name}_sync"] = FFSynchronizer(raw, sync, o_domain="por")
            return sync

        por = Signal(range(POR_CYCLES), init=0)
        with m.If(por != POR_CYCLES - 1):
            m.d.por += por.eq(por + 1)
        restart = button(b.restart, "restart") if b.restart else Const(0, 1)
        m.d.comb += ResetSignal("sync").eq((por != POR_CYCLES - 1) | restart)

        m.submodules.selftest = st = self.selftest
        m.d.comb += st.inject.eq(button(b.inject, "inject") | self.inject_error)

        # Heartbeat: runs in the reset-less domain, so it blinks even during a restart.
        count = Signal(range(self.heartbeat_cycles))
        beat = Signal()
        with m.If(count == self.heartbeat_cycles - 1):
            m.d.por += [count.eq(0), beat.eq(~beat)]
        with m.Else():
            m.d.por += count.eq(count + 1)
        line_start = Signal()
        m.d.comb += line_start.eq((count == self.heartbeat_cycles - 1) & ~beat)

        # LEDs: every output bit not driven below stays at its inactive level.
        levels: dict[str, list[Value]] = {}
        for name, d, width in b.ports:
            if d == "out":
                levels[name] = [Const(0, 1)] * width
        roles = [(b.heartbeat, beat), (b.passed, st.passed), (b.failed, st.failed),
                 *((p, Const(1, 1)) for p in b.tie_high)]
        for pin, value in roles:
            levels[pin.port][pin.index or 0] = value ^ pin.active_low
        uart = self._status_uart(m, st, line_start)
        levels[b.uart_tx.port][b.uart_tx.index or 0] = uart
        for name, bits in levels.items():
            for i, bit in enumerate(bits):
                m.d.comb += getattr(self, name)[i].eq(bit)
        return m

    def _status_uart(self, m: Module, st: SelfTest, start: Value) -> Value:
        """The status line sequencer and UART; returns the TX line."""
        m.submodules.uart = uart = UartTx(self.divisor)
        index = Signal(range(LINE_LENGTH + 1), init=LINE_LENGTH)  # LINE_LENGTH: idle
        word = Signal(2)  # 0 wait, 1 pass, 2 fail: latched at the line's start
        results = Signal(32)
        with m.If(start & (index == LINE_LENGTH)):
            m.d.sync += [index.eq(0), results.eq(st.results),
                         word.eq(Mux(st.failed, 2, Mux(st.passed, 1, 0)))]
        with m.Elif(uart.data.valid & uart.data.ready):
            m.d.sync += index.eq(index + 1)
        char = Signal(8)
        nibbles = [results[4 * (7 - i):4 * (8 - i)] for i in range(8)]
        with m.Switch(index):
            for i in range(4):
                with m.Case(i):
                    m.d.comb += char.eq(Mux(word == 2, STATUS_WORDS["fail"][i],
                                            Mux(word == 1, STATUS_WORDS["pass"][i],
                                                STATUS_WORDS["wait"][i])))
            with m.Case(4):
                m.d.comb += char.eq(ord(" "))
            for i in range(8):
                with m.Case(5 + i):
                    nib = nibbles[i]
                    m.d.comb += char.eq(Mux(nib < 10, ord("0") + nib, ord("A") - 10 + nib))
            with m.Case(13):
                m.d.comb += char.eq(ord("\r"))
            with m.Case(14):
                m.d.comb += char.eq(ord("\n"))
        m.d.comb += [uart.data.valid.eq(index != LINE_LENGTH), uart.data.payload.eq(char)]
        return uart.tx
