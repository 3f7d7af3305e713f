"""Timing with the machine's cores to itself, while other cells convert in parallel.

Every convcheck worker on a machine (any run: they share one lock file under CONVCHECK_HOME) holds a
*shared* hold on the cores while it works on a cell — importing, converting, running for parity,
comparing — and trades it for an *exclusive* hold while it times: the latency loop, the batch sweep,
the variants, the LoadGen scenarios. An exclusive hold is granted only once no other worker holds
the cores, so no latency figure is measured beside another cell's conversion, and with `--jobs 2`
the two workers convert side by side but time one at a time.

The locks are flock(2) locks on two files, released by the kernel when a worker dies (a killed
worker never leaves the cores held). A worker that wants to time first takes a turnstile, which
every worker passes before a shared hold: while one waits for the others to finish their current
stage, no new shared hold starts, so a timer is not starved by workers taking turns converting.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

_MACHINE: dict[Path, "QuietCores"] = {}


def machine_cores() -> "QuietCores":
    """This process's hold on this machine's cores (one object per process: flock holds belong to an open
    file, so a second object in the same process would wait on its own shared hold)."""
    from convcheck.paths import home

    folder = home() / "locks"
    if folder not in _MACHINE:
        _MACHINE[folder] = QuietCores(folder)
    return _MACHINE[folder]


class QuietCores:
    """The cores of this machine, shared by converting workers, held alone by a timing one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cores: int | None = None  # fd of the main lock file, open while a hold is taken
        self._turnstile: int | None = None
        self._shared = False
        #: Seconds this worker spent waiting for exclusive holds (recorded on the cell that waited).
        self.waited_s = 0.0

    def _open(self) -> tuple[int, int]:
        if self._cores is None or self._turnstile is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._cores = os.open(self.folder / "cores.lock", os.O_RDWR | os.O_CREAT, 0o666)
            self._turnstile = os.open(self.folder / "cores.turnstile", os.O_RDWR | os.O_CREAT, 0o666)
        return self._cores, self._turnstile

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the cores with other converting workers (a cell's untimed work)."""
        self._take_shared()
        try:
            yield
        finally:
            self._release()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[float]:
        """Hold the cores alone for a timing; yields the seconds spent waiting for them. Inside a shared
        hold, that hold is given up for the timing and taken back after it."""
        was_shared = self._shared
        if was_shared:
            self._release()
        cores, turnstile = self._open()
        started = time.perf_counter()
        fcntl.flock(turnstile, fcntl.LOCK_EX)  # new shared holds wait behind this one from here on
        try:
            fcntl.flock(cores, fcntl.LOCK_EX)  # the other workers' current stages end
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        waited = time.perf_counter() - started
        self.waited_s += waited
        try:
            yield waited
        finally:
            fcntl.flock(cores, fcntl.LOCK_UN)
            if was_shared:
                self._take_shared()

    def let_timers_in(self) -> None:
        """Between stages of a shared hold: a worker waiting to time gets the cores before the next stage."""
        if self._shared:
            self._release()
            self._take_shared()

    def _take_shared(self) -> None:
        cores, turnstile = self._open()
        fcntl.flock(turnstile, fcntl.LOCK_EX)  # waits while a timer is queued
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        fcntl.flock(cores, fcntl.LOCK_SH)
        self._shared = True

    def _release(self) -> None:
        if self._cores is not None:
            fcntl.flock(self._cores, fcntl.LOCK_UN)
        self._shared = False

    def close(self) -> None:
        for fd in (self._cores, self._turnstile):
            if fd is not None:
                os.close(fd)
        self._cores = self._turnstile = None
        self._shared = False
