"""Timing with the machine's cores to itself, while other cells convert in parallel.

Every convcheck worker on a machine (any run, any CONVCHECK_HOME: they share one lock file) holds a
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
import tempfile
import time
from pathlib import Path
from typing import Iterator

_MACHINE: dict[Path, "QuietCores"] = {}


def machine_cores() -> "QuietCores":
    """This process's hold on this machine's cores (one object per process: flock holds belong to an open
    file, so a second object in the same process would wait on its own shared hold).

    The lock files live in the machine's temporary folder, not under CONVCHECK_HOME: runs with other
    homes (a test suite's, another user's) share the same cores. CONVCHECK_LOCK_DIR moves them."""
    folder = Path(os.environ.get("CONVCHECK_LOCK_DIR") or tempfile.gettempdir()) / "convcheck-locks"
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
        #: Why the cores cannot be coordinated here (None: they are).
        self.unavailable: str | None = None
        #: Inside exclusive(): whether the hold was granted (False: lock files unavailable, or the wait
        #: passed max_wait_s).
        self.held_alone = False
        self.max_wait_s = float(os.environ.get("CONVCHECK_CORES_MAX_WAIT_S", "1800"))

    def _open(self) -> tuple[int, int] | None:
        """The two lock files, open; None where they cannot be made (a folder another user owns): the
        timings then go on uncoordinated, as they did before this existed, rather than fail the cell."""
        if self.unavailable:
            return None
        if self._cores is None or self._turnstile is None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(OSError):
                    os.chmod(self.folder, 0o1777)  # every user's runs share the machine's cores
                self._cores = _open_shared(self.folder / "cores.lock")
                self._turnstile = _open_shared(self.folder / "cores.turnstile")
            except OSError as exc:
                self.unavailable = f"{self.folder}: {exc.strerror or exc}"
                return None
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
        hold, that hold is given up for the timing and taken back after it.

        The wait is bounded (`max_wait_s`, default the default cell timeout): a worker stuck in a stage
        past that is one its own run has given up on, or an orphan nobody will stop, and must not stall
        every run on the machine. Past it the timing runs beside it and `held_alone` is False."""
        was_shared = self._shared
        if was_shared:
            self._release()
        fds = self._open()
        self.held_alone = False
        waited = 0.0
        if fds is not None:
            cores, turnstile = fds
            started = time.perf_counter()
            deadline = started + self.max_wait_s
            got_turnstile = _flock_until(turnstile, deadline)  # new shared holds wait behind this one from here on
            try:
                self.held_alone = got_turnstile and _flock_until(cores, deadline)  # the others' stages end
            finally:
                if got_turnstile:
                    fcntl.flock(turnstile, fcntl.LOCK_UN)
            waited = time.perf_counter() - started
        try:
            yield waited
        finally:
            if self.held_alone:
                fcntl.flock(cores, fcntl.LOCK_UN)
            if was_shared:
                self._take_shared()

    def let_timers_in(self) -> None:
        """Between stages of a shared hold: a worker waiting to time gets the cores before the next stage."""
        if self._shared:
            self._release()
            self._take_shared()

    def _take_shared(self) -> None:
        fds = self._open()
        if fds is None:
            return
        cores, turnstile = fds
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


def _open_shared(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)  # the umask must not lock other users out
    return fd


def _flock_until(fd: int, deadline: float) -> bool:
    """An exclusive flock on fd, polled until `deadline` (flock itself cannot time out)."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.perf_counter() >= deadline:
                return False
            time.sleep(0.02)
