"""Design-space exploration: a grid of a unit's parameters through synthesis and
place-and-route on a Dask cluster (``mmfree explore``).

Every grid point is one task (:func:`run_point`: generate the Verilog, then
:func:`~mmfree.flow.synth.run_flow`: Yosys, nextpnr, timing) on a worker
(:mod:`mmfree.flow.cluster`). Results are content-addressed by the flow's cache key (the
Verilog, the target, the clock, the tool versions and :data:`~mmfree.flow.synth.FLOW_VERSION`):

* a worker finds a point in its own cache (``$MMFREE_CACHE``; shared by a local cluster) and
  does not run the tools again;
* the client stores every result it receives in its own cache and tells the workers which
  keys it has, so a rerun computes only what is missing even when the workers' caches are
  not shared (a worker that died took nothing with it: every finished point is already on
  the client, and its unfinished ones are run again elsewhere).

:func:`explore` writes ``results.csv`` (one row per point, :data:`COLUMNS`) after every
finished point, whole or not at all, and :func:`plot` draws Fmax and LUTs against each swept
parameter.
"""

from __future__ import annotations

import csv
import itertools
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..spec import UNITS, UnitSpec
from .cluster import JobFailed, Progress, connect, run_jobs
from .synth import FlowReport, cached_report, flow_key, run_flow, store_report, xilinx_luts
from .targets import TARGETS
from .toolchain import cache_dir

__all__ = ["COLUMNS", "Offer", "Point", "explore", "parse_grid", "plot", "points", "read_results",
           "resource_columns", "run_point"]

#: The columns of ``results.csv`` after ``unit`` and its parameters (see docs/explore.md)
COLUMNS = ("target", "freq_mhz", "registered_ports", "top", "LUT4", "LUT4_eq", "LUT6", "FF",
           "CCU2C", "DSP", "BRAM", "COMB", "fmax_mhz", "met", "fits", "critical_path",
           "seconds", "cached", "problem", "key")

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Point:
    """One design point: a unit with its parameters on a target at a clock goal."""

    unit: str
    params: tuple[tuple[str, Any], ...]  #: every parameter of the unit, in spec order
    target: str
    freq_mhz: float
    registered_ports: bool = False

    def spec(self) -> UnitSpec:
        return UNITS[self.unit](**dict(self.params)).validate()

    def label(self, names: Sequence[str] | None = None) -> str:
        """``lanes=4 tree_levels_per_stage=1`` (the parameters ``names``, default all)."""
        keep = set(names) if names is not None else None
        return " ".join(f"{k}={_text(v)}" for k, v in self.params
                        if keep is None or k in keep)


def _text(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def _value(cls: type[UnitSpec], name: str, text: str) -> Any:
    default = {n: d for n, d, _ in cls.parameters()}[name]
    choices = {n: p.choices for n, _, p in cls.parameters()}[name]
    if isinstance(default, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"--grid {name}: {text!r} is not a truth value (0/1, true/false)")
    if choices is not None:
        if text not in choices:
            raise ValueError(f"--grid {name}: {text!r} is not one of {', '.join(choices)}")
        return text
    try:
        return type(default)(text)
    except ValueError:
        raise ValueError(f"--grid {name}: {text!r} is not a {type(default).__name__}"
                         ) from None


def parse_grid(unit: str, grid: str) -> dict[str, list[Any]]:
    """``"lanes=4,8,16 tree_levels_per_stage=0,1"`` -> ``{"lanes": [4, 8, 16], ...}`` for
    ``unit`` (parameter names as in the spec or with dashes, as on the command line).
    Raises ``ValueError`` naming the bad part."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}")
    cls = UNITS[unit]
    names = [n for n, _, _ in cls.parameters()]
    axes: dict[str, list[Any]] = {}
    for part in grid.replace(";", " ").split():
        name, eq, values = part.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not values.strip(","):
            raise ValueError(f"--grid: {part!r} is not NAME=V1,V2,...")
        if name not in names:
            raise ValueError(f"--grid: {unit} has no parameter {name!r}; it has "
                             f"{', '.join(names)}")
        if name in axes:
            raise ValueError(f"--grid: {name} is given twice")
        vals = [_value(cls, name, v.strip()) for v in values.split(",") if v.strip()]
        axes[name] = list(dict.fromkeys(vals))  # in the order given, no repeats
    return axes


def points(unit: str, axes: dict[str, list[Any]], target: str, freq_mhz: float,
           registered_ports: bool = False, fixed: dict[str, Any] | None = None
           ) -> list[Point]:
    """Every combination of ``axes`` (the other parameters at ``fixed`` or their defaults),
    each validated: ``ValueError`` names the first invalid point."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if not 0 < freq_mhz < 2000:
        raise ValueError(f"--freq must be above 0 and below 2000 MHz, got {freq_mhz:g}")
    if registered_ports and not TARGETS[target].out_of_context:
        raise ValueError("--registered-ports is for the ECP5 targets (out of context)")
    cls = UNITS[unit]
    out = []
    for combo in itertools.product(*axes.values()):
        chosen = {**(fixed or {}), **dict(zip(axes, combo, strict=True))}
        try:
            spec = cls(**chosen).validate()
        except (TypeError, ValueError) as e:
            where = " ".join(f"{k}={_text(v)}" for k, v in chosen.items())
            raise ValueError(f"grid point {where}: {e}") from None
        out.append(Point(unit, tuple(spec.params().items()), target, float(freq_mhz),
                         registered_ports))
    return out


@dataclass(frozen=True)
class Offer:
    """What the client tells every task: the flow keys whose results it has, and whether
    cached results may be used at all."""

    known: frozenset[str] = frozenset()
    use_cache: bool = True


def run_point(point: Point, offer: Offer = Offer()) -> dict[str, Any]:
    """One task: generate ``point``'s Verilog, and unless its flow key is in
    ``offer.known`` (the client has the result), synthesise, place and route it (or take it
    from this worker's cache). Returns ``{"key", "report" (a dict, or None when known),
    "host", "pid"}``."""
    from ..hdl import build
    from .generate import to_verilog
    spec = point.spec()
    top = spec.top_name()
    verilog = to_verilog(build(spec), top)
    key = flow_key(verilog, point.target, point.freq_mhz, point.registered_ports)
    out: dict[str, Any] = {"key": key, "report": None, "host": socket.gethostname(),
                           "pid": os.getpid()}
    if not (offer.use_cache and key in offer.known):
        report = run_flow(lambda: build(spec), top, point.target, point.freq_mhz,
                          registered_ports=point.registered_ports, verilog=verilog,
                          use_cache=offer.use_cache)
        out["report"] = asdict(report)
    return out


def resource_columns(report: FlowReport) -> dict[str, Any]:
    """The resource columns of ``results.csv`` from a flow report, by the target's family:
    ECP5 LUT4/CCU2C/TRELLIS_FF/MULT18X18D/DP16KD, iCE40 SB_LUT4/SB_CARRY/SB_DFF*/SB_MAC16/
    SB_RAM40_4K, Xilinx LUT1-6 (LUT6 column)/CARRY4/FD*/DSP48E1/RAMB*; ``LUT4_eq`` =
    LUT4 + 2 x CCU2C on ECP5 (as the cycle model's activity data counts them), the LUT4s on
    iCE40; ``COMB`` nextpnr's placed TRELLIS_COMB or ICESTORM_LC."""
    c = report.cells
    family = TARGETS[report.target].family.name
    row: dict[str, Any] = dict.fromkeys(("LUT4", "LUT4_eq", "LUT6", "FF", "CCU2C", "DSP",
                                         "BRAM", "COMB"), "")
    if family == "ecp5":
        row.update(LUT4=c.get("LUT4", 0), CCU2C=c.get("CCU2C", 0),
                   LUT4_eq=c.get("LUT4", 0) + 2 * c.get("CCU2C", 0),
                   FF=c.get("TRELLIS_FF", 0), DSP=c.get("MULT18X18D", 0),
                   BRAM=c.get("DP16KD", 0))
    elif family == "ice40":
        row.update(LUT4=c.get("SB_LUT4", 0), LUT4_eq=c.get("SB_LUT4", 0),
                   CCU2C=c.get("SB_CARRY", 0),
                   FF=sum(n for k, n in c.items() if k.startswith("SB_DFF")),
                   DSP=c.get("SB_MAC16", 0), BRAM=c.get("SB_RAM40_4K", 0))
    else:
        row.update(LUT6=xilinx_luts(c), CCU2C=c.get("CARRY4", 0),
                   FF=sum(n for k, n in c.items() if k.startswith("FD")),
                   DSP=sum(n for k, n in c.items() if k.startswith("DSP48")),
                   BRAM=sum(n for k, n in c.items() if k.startswith("RAMB")))
    for kind in ("TRELLIS_COMB", "ICESTORM_LC"):
        if kind in report.utilization:
            row["COMB"] = report.utilization[kind][0]
    return row


def _row(point: Point, report: FlowReport | None, key: str, error: str = "") -> dict[str, Any]:
    row: dict[str, Any] = {"unit": point.unit, **{k: _text(v) for k, v in point.params}}
    row.update(dict.fromkeys(COLUMNS, ""))
    row.update(target=point.target, freq_mhz=f"{point.freq_mhz:g}",
               registered_ports=int(point.registered_ports), key=key)
    if report is None:
        row.update(fits=0, met=0, problem=error)
        return row
    fmax = report.fmax_mhz
    row.update(resource_columns(report), top=report.top,
               fmax_mhz="" if fmax is None else f"{fmax:.2f}",
               met="" if fmax is None else int(fmax >= point.freq_mhz),
               fits=int(report.fits),
               critical_path=" -> ".join(report.critical_path) if report.critical_path else "",
               seconds=f"{report.seconds:.1f}", cached=int(report.cached),
               problem=report.problem)
    return row


def _report(data: dict[str, Any]) -> FlowReport:
    data = dict(data)
    data["utilization"] = {k: tuple(v) for k, v in data["utilization"].items()}
    data["critical_path"] = tuple(data["critical_path"]) if data["critical_path"] else None
    data["path_steps"] = [tuple(s) for s in data.get("path_steps", [])]
    return FlowReport(**data)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` whole (a temporary file renamed over it)."""
    fields = list(dict.fromkeys(k for r in rows for k in r)) if rows else list(COLUMNS)
    fields.sort(key=lambda k: k in COLUMNS)  # parameters (of every unit) first
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _note(row: dict[str, Any], label: str) -> str:
    if row["problem"] and not row["fmax_mhz"]:
        return f"{label}: {row['problem'][:80]}"
    timing = f"{row['fmax_mhz']} MHz" if row["fmax_mhz"] else "no timing"
    return (f"{label}: {timing}, {row['LUT4'] or row['LUT6']} LUTs"
            + (" (cached)" if row["cached"] == 1 else f" ({row['seconds']} s)"))


def explore(pts: Sequence[Point], out_dir: Path, *, workers: int | None = None,
            scheduler: str | None = None, progress: bool = True, use_cache: bool = True,
            on_result: Callable[[dict[str, Any], Any], None] | None = None,
            client: Any = None) -> list[dict[str, Any]]:
    """Run every point of ``pts`` on a cluster (:func:`mmfree.flow.cluster.connect`) and
    write ``out_dir/results.csv``; return its rows, in the order of ``pts``.

    ``results.csv`` is rewritten after every finished point (rows of the points done so
    far). ``on_result(row, client)`` is called as each point finishes. With ``use_cache``
    false nothing cached is used (the workers run every point). ``client``: run on this
    :class:`distributed.Client` instead of connecting to ``workers``/``scheduler``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "results.csv"
    swept = _swept(pts)
    offer = Offer(frozenset(p.stem for p in cache_dir("synth").glob("*.json"))
                  if use_cache else frozenset(), use_cache)
    rows: list[dict[str, Any] | None] = [None] * len(pts)
    bar = Progress(len(pts), "explore", progress)

    with _client(client, workers, scheduler) as client:
        def finished(i: int, result: Any) -> None:
            point = pts[i]
            if isinstance(result, JobFailed):
                row = _row(point, None, "", f"task failed: {result}")
            else:
                key = result["key"]
                if result["report"] is None:
                    report = cached_report(key)
                else:
                    report = _report(result["report"])
                    if not report.cached or cached_report(key) is None:
                        store_report(key, report)
                if report is None:  # the client's cache lost it meanwhile
                    row = _row(point, None, key, "cached result disappeared; run again")
                else:
                    row = _row(point, report, key)
            rows[i] = row
            _write_csv(csv_path, [r for r in rows if r is not None])
            bar.advance(_note(row, point.label(swept)))
            if on_result is not None:
                on_result(row, client)

        try:
            run_jobs(client, run_point, pts, name="explore", shared=offer, on_result=finished)
        finally:
            bar.close()
    return [r for r in rows if r is not None]


@contextmanager
def _client(client: Any, workers: int | None, scheduler: str | None) -> Iterator[Any]:
    if client is not None:
        yield client
    else:
        with connect(workers, scheduler) as own:
            yield own


def _swept(pts: Sequence[Point]) -> list[str]:
    """The parameters that take more than one value among ``pts``."""
    names = dict.fromkeys(name for p in pts for name, _ in p.params)
    return [name for name in names if len({dict(p.params).get(name) for p in pts}) > 1]


def read_results(path: Path) -> list[dict[str, str]]:
    """The rows of an explore ``results.csv``; ``ValueError`` if it is not one."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    if not rows or not {"fmax_mhz", "LUT4_eq", "key"} <= set(rows[0]):
        raise ValueError(f"{path} is not an explore results.csv (no rows, or no fmax_mhz, "
                         "LUT4_eq and key columns)")
    return rows


def plot(rows: Sequence[dict[str, Any]], out_dir: Path, swept: Sequence[str]) -> list[Path]:
    """For each parameter in ``swept``: ``out_dir/plot-NAME.png``, Fmax and LUTs against it,
    one line per combination of the other swept parameters. Returns the files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    done = [r for r in rows if r.get("fits") in (1, "1")]
    lut_col = "LUT6" if done and str(done[0].get("LUT6", "")) != "" else "LUT4_eq"
    for name in swept:
        others = [n for n in swept if n != name]
        fig, (ax_f, ax_l) = plt.subplots(1, 2, figsize=(10, 4))
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in done:
            groups.setdefault(" ".join(f"{o}={r[o]}" for o in others) or "all", []).append(r)
        xs_all = list(dict.fromkeys(str(r[name]) for r in rows))
        numeric = all(_is_number(x) for x in xs_all)
        for label, grp in groups.items():
            grp = sorted(grp, key=lambda r: float(r[name]) if numeric else xs_all.index(
                str(r[name])))
            xs = [float(r[name]) if numeric else xs_all.index(str(r[name])) for r in grp]
            fmax = [float(r["fmax_mhz"]) if r["fmax_mhz"] != "" else float("nan") for r in grp]
            luts = [float(r[lut_col]) for r in grp]
            ax_f.plot(xs, fmax, "o-", label=label)
            ax_l.plot(xs, luts, "o-", label=label)
        for ax, what in ((ax_f, "Fmax (MHz)"), (ax_l, lut_col.replace("_eq", "-equivalents"))):
            ax.set_xlabel(name)
            ax.set_ylabel(what)
            ax.grid(True, alpha=0.3)
            if numeric and len(xs_all) > 2 and min(float(x) for x in xs_all) > 0 and \
                    max(float(x) for x in xs_all) / min(float(x) for x in xs_all) >= 8:
                ax.set_xscale("log", base=2)
            if not numeric:
                ax.set_xticks(range(len(xs_all)), xs_all)
        if len(groups) > 1:
            ax_l.legend(fontsize="small")
        target = rows[0]["target"] if rows else ""
        fig.suptitle(f"{target}: Fmax and LUTs against {name}")
        fig.tight_layout()
        path = out_dir / f"plot-{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
