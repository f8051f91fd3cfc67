"""The board self-test design (installed as ``mmfree.hdl.selftest``): a pattern generator
feeds a ternary core, an independent sequential checker compares every result, and the board
top level shows the verdict on LEDs and a UART status line.

:class:`SelfTest` (generator, core, checker), :class:`PatternGenerator`,
:class:`SelfTestChecker`, :class:`UartTx`, and :class:`SelfTestBoard`, the top level for a
board described by :class:`BoardIO` (the reference boards and their flow:
:mod:`mmfree.flow.boards`, :mod:`mmfree.flow.board_build`).
"""

from .board_top import BoardIO, Pin, SelfTestBoard, status_line
from .checker import SelfTestChecker
from .pattern import PatternGenerator, beat_layout
from .selftest import SelfTest
from .uart_tx import UartTx, uart_divisor

__all__ = ["BoardIO", "PatternGenerator", "Pin", "SelfTest", "SelfTestBoard", "SelfTestChecker",
           "UartTx", "beat_layout", "status_line", "uart_divisor"]
