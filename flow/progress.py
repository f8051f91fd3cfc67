"""Progress of the long tool runs, on standard error."""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["Ticker"]


class Ticker:
    """Prints ``label ... N s`` on standard error while a tool runs."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled, self._stop = label, enabled, threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            sys.stderr.write(f"\r  {self.label} ... {time.monotonic() - self._t0:4.0f} s")
            sys.stderr.flush()

    def __enter__(self) -> Ticker:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join()
            sys.stderr.write(f"\r  {self.label} done in {time.monotonic() - self._t0:.0f} s\n")
