"""Running many independent jobs on a Dask cluster (``dask.distributed``), with progress.

:func:`connect` gives a :class:`distributed.Client`: on an in-process local cluster of worker
*processes* (one thread each: every job runs tools that keep a core busy) by default, or on
a running scheduler (``tcp://HOST:PORT``) of a real cluster. :func:`run_jobs` submits one
task per job and hands back each result as it finishes, in completion order; a job whose
worker dies is re-run by the scheduler on another worker (up to ``allowed-failures`` deaths,
Dask's default 3), so every job still ends with a result or an error. :class:`Progress` is a
progress bar on a terminal (tqdm) and one line per finished job otherwise (logs, CI).

The workers need the same Python environment as the client (``mmfree`` installed, the
YoWASP tools, the simulators); see ``docs/explore.md``.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["ClusterError", "JobFailed", "Progress", "connect", "default_workers", "run_jobs"]


class ClusterError(RuntimeError):
    """The cluster cannot be started or reached (bad ``--scheduler``/``--workers``)."""


class JobFailed:
    """The outcome of a job that raised (or whose workers kept dying): the error, as text."""

    def __init__(self, error: BaseException) -> None:
        self.kind = type(error).__name__
        self.message = " ".join(str(error).split())[:400]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def default_workers() -> int:
    """Local workers by default: one per CPU core."""
    return max(1, os.cpu_count() or 1)


@contextmanager
def connect(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A :class:`distributed.Client`: on the scheduler at ``scheduler`` (``tcp://HOST:PORT``)
    or on a local cluster of ``workers`` processes (default :func:`default_workers`), closed
    (and the local cluster shut down) on exit."""
    from dask.distributed import Client, LocalCluster
    if scheduler is not None:
        if workers is not None:
            raise ClusterError("give --workers (a local cluster) or --scheduler, not both")
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ClusterError(f"--scheduler {scheduler}: cannot connect: "
                               f"{' '.join(str(e).split()) or type(e).__name__}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = default_workers() if workers is None else workers
    if n < 1:
        raise ClusterError(f"--workers must be at least 1, got {n}")
    # memory_limit=0: the tools run as child processes, the nanny need not police memory;
    # no dashboard (it would need bokeh and a free port)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           memory_limit=0, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


class Progress:
    """Progress of ``total`` jobs on ``stream`` (standard error): a tqdm bar on a terminal,
    one line per finished job otherwise; nothing when ``enabled`` is false."""

    def __init__(self, total: int, label: str, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=label, unit="job", file=self.stream,
                             dynamic_ncols=True)

    def advance(self, note: str) -> None:
        """One more job finished; ``note`` says what it gave."""
        self.done += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(note[:60], refresh=False)
            self._bar.update(1)
        else:
            print(f"{self.label}: {self.done}/{self.total} {note}", file=self.stream,
                  flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_jobs(client: Any, fn: Callable[..., Any], jobs: Sequence[Any], *,
             name: str, shared: Any = None,
             on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Run ``fn(job)`` (or ``fn(job, shared)``) for every job as one task each on ``client``'s
    workers; call ``on_result(index, result)`` in completion order; return the results in
    job order. A job that raised, or whose workers died too often, gives a
    :class:`JobFailed` instead of its result.

    ``shared`` is sent to every worker once (scattered) rather than with every task.
    """
    from dask.distributed import as_completed
    extra = []
    if shared is not None:
        extra = client.scatter([shared], broadcast=True, hash=False)  # one future
    run_id = uuid.uuid4().hex[:12]  # task keys are global on a shared scheduler
    futures = [client.submit(fn, job, *extra, key=f"{name}-{run_id}-{i}", pure=False)
               for i, job in enumerate(jobs)]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(jobs)
    try:
        for future in as_completed(futures):
            i = index[future.key]
            try:
                results[i] = future.result()
            except Exception as e:  # the job's own error, or KilledWorker
                results[i] = JobFailed(e)
            if on_result is not None:
                on_result(i, results[i])
    finally:
        for f in futures:
            f.release()
    return results
