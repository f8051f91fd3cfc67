"""Reference boards for the self-test: ports, pin files, clocks and the signals' roles.

Every board's pins live in a pin file under ``constraints/`` whose header names the board
and the public document the locations come from; the port names here are the ones in that
file. Only the self-test's signals become ports; the pin files list more of each board.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..hdl.selftest.board_top import BoardIO, Pin

__all__ = ["BOARDS", "Board", "Pin", "constraints_dir"]


@dataclass(frozen=True, kw_only=True)
class Board(BoardIO):
    """A reference board: its part, pin file and tools (:data:`~mmfree.flow.targets.FAMILIES`),
    and (:class:`~mmfree.hdl.selftest.board_top.BoardIO`) its ports, clock and the self-test's
    use of its pins."""

    name: str
    title: str
    family: str  #: a key of :data:`mmfree.flow.targets.FAMILIES`
    part: str
    pin_file: str  #: file name under constraints/
    pnr_args: tuple[str, ...] = ()  #: nextpnr device arguments; empty: no open PnR
    notes: str = ""

    def pin_path(self) -> Path:
        return constraints_dir() / self.pin_file


def constraints_dir() -> Path:
    """The repository's ``constraints/`` folder (mmfree is installed from its checkout)."""
    path = Path(__file__).resolve().parents[1] / "constraints"
    if not path.is_dir():
        raise FileNotFoundError(f"constraints folder not found at {path}: mmfree board needs "
                                "the repository checkout (pip install -e .)")
    return path


BOARDS: dict[str, Board] = {b.name: b for b in [
    Board(
        name="ulx3s-85f", title="Radiona ULX3S, ECP5-85F", family="ecp5",
        part="LFE5U-85F-6BG381C", pin_file="ulx3s_85f.lpf",
        clock="clk_25mhz", clock_hz=25_000_000,
        ports=(("clk_25mhz", "in", 1), ("led", "out", 8), ("btn", "in", 7),
               ("ftdi_rxd", "out", 1), ("wifi_gpio0", "out", 1)),
        heartbeat=Pin("led", 0), passed=Pin("led", 1), failed=Pin("led", 2),
        inject=Pin("btn", 1), restart=Pin("btn", 2), uart_tx=Pin("ftdi_rxd"),
        tie_high=(Pin("wifi_gpio0"),),
        pnr_args=("--85k", "--package", "CABGA381", "--speed", "6"),
        lanes=16,
        notes="wifi_gpio0 is held high so that a fitted ESP32 does not start its boot loader",
    ),
    Board(
        name="icebreaker", title="1BitSquared iCEBreaker, iCE40UP5K-SG48", family="ice40",
        part="iCE40UP5K-SG48", pin_file="icebreaker.pcf",
        clock="clk12", clock_hz=12_000_000,
        ports=(("clk12", "in", 1), ("led_r_n", "out", 1), ("led_g_n", "out", 1),
               ("led1", "out", 1), ("btn_n", "in", 1), ("tx", "out", 1)),
        heartbeat=Pin("led1"), passed=Pin("led_g_n", active_low=True),
        failed=Pin("led_r_n", active_low=True), inject=Pin("btn_n", active_low=True),
        uart_tx=Pin("tx"),
        pnr_args=("--up5k", "--package", "sg48"),
        lanes=8,
        notes="the heartbeat LED is LED1 of the snap-off PMOD section; restart with the "
              "CRESET button",
    ),
    Board(
        name="arty-a7-35t", title="Digilent Arty A7-35T, Artix-7", family="xilinx",
        part="XC7A35TICSG324-1L", pin_file="arty_a7_35t.xdc",
        clock="clk100mhz", clock_hz=100_000_000,
        ports=(("clk100mhz", "in", 1), ("led", "out", 4), ("btn", "in", 4),
               ("ck_rst", "in", 1), ("uart_rxd_out", "out", 1)),
        heartbeat=Pin("led", 0), passed=Pin("led", 1), failed=Pin("led", 2),
        inject=Pin("btn", 0), restart=Pin("ck_rst", active_low=True),
        uart_tx=Pin("uart_rxd_out"),
        lanes=16, tree_levels_per_stage=1,
        notes="no open place-and-route for 7-series here: Yosys resource counts only; "
              "build the bitstream with Vivado and the same XDC",
    ),
]}
