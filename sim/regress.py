"""Random co-simulation regressions split into seeded chunks over a Dask cluster
(``mmfree regress``).

A regression of a unit is ``seeds`` chunks; chunk ``i`` runs the unit's whole cocotb
testbench (random, corner, stall and reset tests) on one simulator with seed
``base_seed + i``, as one task on a worker (:mod:`mmfree.flow.cluster`). Each chunk builds
and runs in its own folder (``ROOT/SIM/seed-S/``), so chunks on one machine never share a
build. The ternary core's random tests take ``random_products`` from the configuration, so a
regression's ``transactions`` (random products in all) are divided over its chunks; other
units run their testbench's own random tests once per seed.

A failing chunk is reported with its seed; ``mmfree regress UNIT --seed S --seeds 1`` (with
the same unit options, ``--sim`` and ``--transactions`` per chunk) replays it exactly.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..flow.cluster import JobFailed, Progress, connect, run_jobs
from ..spec import UNITS

__all__ = ["Chunk", "ChunkResult", "chunks", "regress", "run_chunk"]


@dataclass(frozen=True)
class Chunk:
    """One seeded run of a unit's testbench."""

    unit: str
    params: tuple[tuple[str, Any], ...]
    simulator: str
    seed: int
    random_products: int | None  #: random products per random test (units that take it)
    root: str  #: this chunk's own build folder


@dataclass
class ChunkResult:
    """What one chunk found."""

    chunk: Chunk
    tests: int = 0
    failed: int = 0
    outputs: int = 0
    mismatches: int = 0
    cycle_checks: int = 0
    cycle_mismatches: int = 0
    seconds: float = 0.0
    host: str = ""
    error: str = ""  #: the chunk could not build or run (or its workers kept dying)
    log_dir: str = ""

    @property
    def ok(self) -> bool:
        return not (self.error or self.failed or self.mismatches or self.cycle_mismatches
                    or not self.tests)


def chunks(unit: str, params: dict[str, Any], simulators: Sequence[str], seeds: int,
           base_seed: int, transactions: int | None, root: Path) -> list[Chunk]:
    """The chunks of a regression: ``seeds`` seeds from ``base_seed`` on each simulator,
    ``transactions`` random products divided over the seeds (at least 1 each)."""
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    if transactions is not None and transactions < 1:
        raise ValueError(f"--transactions must be at least 1, got {transactions}")
    per = None if transactions is None else max(1, -(-transactions // seeds))
    return [Chunk(unit, tuple(params.items()), sim, base_seed + i, per,
                  str(root / sim / f"seed-{base_seed + i}"))
            for sim in simulators for i in range(seeds)]


def run_chunk(chunk: Chunk) -> ChunkResult:
    """One task: build the unit's Verilog in the chunk's folder and run its testbench with
    the chunk's seed. A passing chunk's folder is removed; a failing one's keeps the logs."""
    import sys

    from ..hdl import build
    from . import cosim
    spec = UNITS[chunk.unit](**dict(chunk.params)).validate()
    extra = {} if chunk.random_products is None else {"random_products": chunk.random_products}
    root = Path(chunk.root)
    shutil.rmtree(root, ignore_errors=True)  # a chunk re-run after its worker died
    t0 = time.monotonic()
    res = ChunkResult(chunk, host=socket.gethostname())
    log = root / "chunk.log"
    root.mkdir(parents=True, exist_ok=True)
    # cocotb's runner exits instead of returning counts when it believes it runs under
    # pytest; a worker process spawned by a test inherits that variable
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    stdout = sys.stdout
    try:
        with open(log, "w") as out:
            sys.stdout = out  # the runner prints log tails of failures: keep them here
            try:
                r = cosim.run(build(spec), spec.top_name(), chunk.simulator, spec.testbench,
                              config={**spec.params(), **extra}, seed=chunk.seed,
                              root=root)
            finally:
                sys.stdout = stdout
    except (RuntimeError, SystemExit, OSError) as e:
        res.error = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        res.log_dir = str(root)
        res.seconds = time.monotonic() - t0
        return res
    rep = r.report
    res.tests, res.failed = r.tests, r.failed
    for name in ("outputs", "mismatches", "cycle_checks", "cycle_mismatches"):
        setattr(res, name, int(rep.get(name, 0)))
    res.seconds = time.monotonic() - t0
    if res.ok:
        shutil.rmtree(root, ignore_errors=True)
    else:
        res.log_dir = str(r.run_dir if r.run_dir.exists() else root)
    return res


def regress(jobs: Sequence[Chunk], *, workers: int | None = None,
            scheduler: str | None = None, progress: bool = True,
            on_result: Callable[[ChunkResult], None] | None = None) -> list[ChunkResult]:
    """Run every chunk on a cluster; return their results in chunk order (a chunk that
    could not run has ``error`` set)."""
    bar = Progress(len(jobs), "regress", progress)
    out: list[ChunkResult | None] = [None] * len(jobs)

    def finished(i: int, result: Any) -> None:
        if isinstance(result, JobFailed):
            result = ChunkResult(jobs[i], error=str(result))
        out[i] = result
        c = result.chunk
        verdict = "ok" if result.ok else "FAILED"
        bar.advance(f"{c.simulator} seed {c.seed}: {verdict}, {result.outputs} outputs")
        if on_result is not None:
            on_result(result)

    with connect(workers, scheduler) as client:
        try:
            run_jobs(client, run_chunk, jobs, name="regress", on_result=finished)
        finally:
            bar.close()
    return [r for r in out if r is not None]

