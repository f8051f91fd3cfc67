"""Run cocotb testbenches against the generated Verilog, on Icarus Verilog or Verilator.

Builds are cached: the build folder is named by a hash of the Verilog text, the simulator and
its build arguments, so a design change gets a fresh build and an unchanged one is reused.
Folders live under ``$MMFREE_BUILD_DIR`` (default ``./sim_build``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amaranth.lib import wiring
from cocotb_tools.runner import Icarus, Verilator, get_results, get_runner

from ..flow import toolchain
from ..flow.generate import to_verilog
from ..flow.progress import Ticker
from ..spec import UnitSpec

__all__ = ["CLOCK_PERIOD_NS", "TIMESCALE", "WAVES", "CosimResult", "build_root", "run",
           "run_unit"]

TIMESCALE = ("1ns", "1ps")
CLOCK_PERIOD_NS = 10
#: The waveform file of a run with ``waves``, on either simulator: FST (GTKWave and Surfer
#: open it; far smaller than VCD). ``waves="vcd"`` asks Icarus for ``waves.vcd`` instead
#: (what the switching-activity counter reads).
WAVES = "waves.fst"


def _build_args(simulator: str) -> list[str]:
    if simulator == "icarus":
        return list(toolchain.ICARUS_BUILD_ARGS)
    # No waivers: Verilator's default warnings stay fatal for the generated code. The
    # -Wall style classes it does trigger are justified in docs/lint.md (`mmfree lint`).
    return []


class _IcarusDump(Icarus):
    """Icarus runner that lets vvp write the waveforms of :func:`_dump_module` in format
    ``fmt`` (``"fst"`` or ``"vcd"``).

    cocotb (2.1, pinned) starts vvp with ``-none`` unless its own SystemVerilog dump module
    is used; this asks for the format wanted instead.
    """

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.fmt = fmt

    def _test_command(self) -> list:
        return [[(f"-{self.fmt}" if arg in ("-none", "-fst", "-vcd") else arg) for arg in cmd]
                for cmd in super()._test_command()]


class _VerilatorPortsOnly(Verilator):
    """Verilator runner that does not make every signal public (``--public-flat-rw``).

    cocotb asks for it so a testbench can reach any signal, and it costs Verilator most of
    its optimisations. The bulk harness's wrapper touches only its own ports, which it marks
    public itself (``/*verilator public_flat_rw*/``), so its builds leave the flag out.
    """

    def _build_command(self) -> list:
        return [[arg for arg in cmd if arg != "--public-flat-rw"]
                for cmd in super()._build_command()]


def _dump_module(top: str, file: str) -> str:
    """A Verilog-2005 module that dumps every signal of ``top`` to ``file``."""
    return (f"module mmfree_vcd_dump;\n  initial begin\n    $dumpfile(\"{file}\");\n"
            f"    $dumpvars(0, {top});\n  end\nendmodule\n")


def _show_tail(log: Path, lines: int = 80) -> None:
    """Print the end of a simulator log (pytest shows it with the failure)."""
    if log.exists():
        text = log.read_text(errors="replace").splitlines()
        print(f"--- last {min(lines, len(text))} lines of {log} ---")
        print("\n".join(text[-lines:]))


def build_root() -> Path:
    """Where simulator builds go: ``$MMFREE_BUILD_DIR`` or ``./sim_build``."""
    return Path(os.environ.get("MMFREE_BUILD_DIR", "sim_build")).resolve()


class _ProgressWatcher:
    """Polls a JSON-lines file from a background thread; calls back once per new line."""

    def __init__(self, path: Path, callback: Callable[[dict], None]) -> None:
        self.path, self.callback, self.seen = path, callback, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        if not self.path.exists():
            return
        text = self.path.read_text()
        lines = text.splitlines()
        complete = lines if text.endswith("\n") else lines[:-1]  # a line still being written
        for line in complete[self.seen:]:
            self.callback(json.loads(line))
        self.seen = len(complete)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._poll()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()


@dataclass(frozen=True)
class CosimResult:
    """Outcome of one testbench run."""

    simulator: str
    tests: int
    failed: int
    report: dict  #: what the testbench wrote to ``$MMFREE_TB_REPORT`` (may be empty)
    build_dir: Path
    run_dir: Path  #: logs and waveforms; removed after a passing run without waveforms



def _build(build_dir: Path, unit_top: str, top: str, text: str, wrapper: object,
           wrap_text: str, vcd_dump: bool, dump_text: str, fmt: str, simulator: str,
           args: list[str], waves: bool, ticker: object) -> object:
    """Write the sources into ``build_dir`` and build them; returns the runner."""
    source = build_dir / f"{unit_top}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    sources = [source]
    if wrapper is not None:
        wrap_source = build_dir / f"{top}.v"
        if not wrap_source.exists() or wrap_source.read_text() != wrap_text:
            wrap_source.write_text(wrap_text)
        sources.append(wrap_source)
    if vcd_dump:
        dump = build_dir / "mmfree_vcd_dump.v"
        dump.write_text(dump_text)
        sources.append(dump)
        args += ["-s", "mmfree_vcd_dump"]

    if vcd_dump:
        runner = _IcarusDump(fmt)
    elif wrapper is not None and simulator == "verilator":
        runner = _VerilatorPortsOnly()
    else:
        runner = get_runner(simulator)
    try:
        with Ticker(f"{simulator}: building {top}", ticker):
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                         build_args=args, timescale=TIMESCALE,
                         waves=waves and not vcd_dump, log_file=build_dir / "build.log")
    except BaseException:
        _show_tail(build_dir / "build.log")
        raise
    return runner


def run(component: wiring.Component, top: str, simulator: str, test_module: str, *,
        config: dict, seed: int, testcase: str | None = None, waves: bool | str = False,
        root: Path | None = None, build_args: list[str] | None = None,
        extra_build_args: list[str] | None = None, wrapper: tuple[str, str] | None = None,
        plusargs: list[str] | None = None,
        progress: Callable[[dict], None] | None = None,
        ticker: bool = False) -> CosimResult:
    """Generate ``component``'s Verilog as module ``top``, build it, run ``test_module``.

    The simulator's output goes to ``sim.log`` in the run folder; its tail is printed when a
    test fails.

    ``config`` reaches the testbench as JSON in ``$MMFREE_TB_CONFIG``; ``seed`` seeds
    cocotb's random generator (and so the testbench's stimulus). ``build_args`` replaces the
    simulator's default build arguments (for experiments); ``extra_build_args`` are added to
    them (e.g. Verilator coverage). ``wrapper`` is ``(module, Verilog text)`` of a top level
    that instantiates ``top`` (the bulk harness, :mod:`mmfree.sim.bulk`): it is compiled with
    the unit and becomes the simulation's top. ``plusargs`` go to the simulation (e.g.
    ``+verilator+coverage+file+PATH``). ``progress`` is called with each
    JSON line the testbench appends to ``$MMFREE_TB_PROGRESS`` while it runs. With ``ticker``
    the build and the run show their progress on standard error
    (:class:`mmfree.flow.progress.Ticker`). Under pytest a
    failing testbench raises; otherwise the counts come back in the result.

    ``waves`` writes the run's waveforms to :data:`WAVES` (``waves.fst``) in the run folder
    on either simulator (Verilator: ``--trace-fst``); ``waves="vcd"`` writes ``waves.vcd``
    (Icarus only).
    """
    if waves not in (False, True, "fst", "vcd") or (waves == "vcd" and simulator != "icarus"):
        raise ValueError(f"waves: True, 'fst' or (Icarus) 'vcd', got {waves!r}")
    fmt = "vcd" if waves == "vcd" else "fst"
    waves = bool(waves)
    sim = toolchain.find(simulator)
    toolchain.apply_env(sim.env)
    text = to_verilog(component, top)
    args = _build_args(simulator) if build_args is None else list(build_args)
    args += list(extra_build_args or [])
    unit_top = top
    wrap_text = ""
    if wrapper is not None:
        top, wrap_text = wrapper
    # Icarus waveforms: cocotb's dump module is SystemVerilog, which the Verilog-2005 build
    # cannot read, so a Verilog-2005 dump module of our own is compiled in instead.
    vcd_dump = waves and simulator == "icarus"
    dump_text = _dump_module(top, f"waves.{fmt}") if vcd_dump else ""
    test_args: list[str] = []
    if waves and simulator == "verilator":
        toolchain.check_fst_headers()
        args += ["--trace-fst"]
        test_args = ["--trace-file", WAVES]
    digest = hashlib.sha256("\0".join([text, simulator, *args, dump_text, wrap_text]
                                      ).encode()).hexdigest()[:16]
    build_dir = (root or build_root()) / simulator / f"{top}-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    # One builder at a time per folder: parallel test workers (pytest-xdist, Dask) that build
    # the same design wait for the first and then find its build up to date.
    lock = open(build_dir / ".build.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        runner = _build(build_dir, unit_top, top, text, wrapper, wrap_text, vcd_dump,
                        dump_text, fmt, simulator, args, waves, ticker)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    name = testcase or "all"
    test_dir = build_dir / f"run-{name}-{os.getpid()}"
    report_path = test_dir / "report.json"
    test_dir.mkdir(parents=True, exist_ok=True)
    report_path.unlink(missing_ok=True)
    progress_path = test_dir / "progress.jsonl"
    progress_path.unlink(missing_ok=True)
    env = {"MMFREE_TB_CONFIG": json.dumps(config), "MMFREE_TB_REPORT": str(report_path),
           "MMFREE_TB_PROGRESS": str(progress_path)}
    log = test_dir / "sim.log"
    watcher = _ProgressWatcher(progress_path, progress) if progress else None
    try:
        with Ticker(f"{simulator}: running the testbench", ticker):
            results = runner.test(test_module=test_module, hdl_toplevel=top, testcase=testcase,
                                  seed=seed, extra_env=env, build_dir=build_dir,
                                  test_dir=test_dir, waves=waves and not vcd_dump,
                                  timescale=TIMESCALE, log_file=log,
                                  test_args=test_args, plusargs=list(plusargs or []))
        tests, failed = get_results(results)
    except BaseException:
        _show_tail(log)
        raise
    finally:
        if watcher:
            watcher.stop()
    if failed:
        _show_tail(log)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if not failed and not waves:
        shutil.rmtree(test_dir, ignore_errors=True)  # keep only failing runs' logs
    return CosimResult(simulator, tests, failed, report, build_dir, test_dir)


def run_unit(spec: UnitSpec, simulator: str, *, seed: int, top: str | None = None,
             extra: dict | None = None, testcase: str | None = None,
             waves: bool | str = False,
             progress: Callable[[dict], None] | None = None,
             ticker: bool = False) -> CosimResult:
    """:func:`run` for the unit ``spec`` describes: its component (``mmfree.hdl.build``), its
    testbench (``spec.testbench``), its parameters as the testbench configuration (plus
    ``extra``), top module ``top`` (default :meth:`~mmfree.spec.UnitSpec.top_name`)."""
    from ..hdl import build
    return run(build(spec), top or spec.top_name(), simulator, spec.testbench,
               config={**spec.params(), **(extra or {})}, seed=seed, testcase=testcase,
               waves=waves, progress=progress, ticker=ticker)
