"""Progress of the long tool runs, on standard error (tqdm).

On a terminal a tool run shows one line that counts the seconds (``label ... 12s``) and
is replaced by ``label done in N s`` at the end. Anywhere else (a log file, CI, a pipe)
nothing is redrawn: one line when the run starts and one when it ends, so a log holds no
carriage returns.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["Ticker"]


def _interactive(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Ticker:
    """Shows that ``label`` is running, with the seconds it has taken, while the ``with``
    block runs (nothing at all if ``enabled`` is false)."""

    def __init__(self, label: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.label, self.enabled = label, enabled
        self.stream = stream if stream is not None else sys.stderr
        self._stop = threading.Event()
        self._bar: tqdm | None = None
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            assert self._bar is not None
            self._bar.refresh()

    def __enter__(self) -> Ticker:
        self._t0 = time.monotonic()
        if not self.enabled:
            return self
        if _interactive(self.stream):
            self._bar = tqdm(desc=f"  {self.label}", bar_format="{desc} ... {elapsed}",
                             file=self.stream, leave=False)
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        else:
            print(f"  {self.label} ...", file=self.stream, flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if not self.enabled:
            return
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()
        state = "failed after" if exc and exc[0] is not None else "done in"
        print(f"  {self.label} {state} {time.monotonic() - self._t0:.0f} s", file=self.stream,
              flush=True)

