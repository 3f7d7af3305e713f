"""Executors: where planned cells run.

- `inline`: in this process, one after another (debugging: a breakpoint stops where you expect).
- `local` (the default): in worker processes. A converter that segfaults, hangs or eats memory
  takes down its worker, not the run: the cell becomes `crashed` (with the signal), `timeout` or
  `oom`, the worker is replaced, and the rest of the matrix goes on.

Work is handed out by model and source format: the cells of one (model, source) pair go to one
worker in plan order, so the worker computes the reference outputs once and shares the ONNX export
between ORT, OpenVINO, TVM and TensorRT (CellRunner's in-process sharing). Workers stay warm: a
worker that finished its group takes the next one, preferring a group of the same framework family
(`import tensorflow` is paid once per worker, not per cell). With `--jobs N`, N workers run at once.

Limits are per cell: a wall-clock timeout, and a resident-memory limit the parent enforces by
polling the worker's RSS (an address-space rlimit would break TensorFlow and TVM, which reserve far
more virtual memory than they touch). A worker the kernel's OOM killer takes is `oom` too.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Callable, Iterator

from convcheck.errors import ConvcheckError
from convcheck.failures import first_line
from convcheck.types import Status

if TYPE_CHECKING:
    from convcheck.matrix import PlannedCell
    from convcheck.pipeline import CellRunner, RunSettings

EXECUTORS = ("local", "inline", "ray")
#: How often the parent looks at its workers' memory and clocks.
POLL_SECONDS = 0.2


@dataclass
class Limits:
    """Per cell. `memory_mb` None: 80% of the machine's memory shared among the jobs."""

    timeout_s: float = 1800.0  # an untuned TVM ResNet-50 cell takes ~3 min here; a hang never ends
    memory_mb: float | None = None

    def memory_for(self, jobs: int) -> float:
        if self.memory_mb is not None:
            return self.memory_mb
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
        return 0.8 * total / max(jobs, 1)


def default_jobs() -> int:
    """What this machine can take: every runtime already uses all physical cores for one inference,
    so parallel cells only pay where cores outnumber two per job, and each job needs ~4 GiB."""
    from convcheck.environment import physical_cores

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min(physical_cores() // 2, int(memory_gib // 4)))


def run_planned(runner: "CellRunner", planned: "PlannedCell") -> dict[str, Any]:
    """One cell, the same in every executor: run it, or record why it cannot run here (and what the
    machine can still check about it)."""
    from convcheck.pipeline import skipped_cell
    from convcheck.routes import availability

    avail = availability(planned.route, planned.target.device)
    if avail.available:
        return runner.run(planned.spec, planned.route, planned.target)
    cell = skipped_cell(planned.spec.name, planned.route, planned.target, runner.settings.size,
                        avail.status, avail.reason, avail.hint)
    try:
        runner.precheck(planned.spec, planned.route, planned.target, cell)
    except Exception as exc:  # noqa: BLE001 - a static check must never take the cell down
        cell["precheck"] = {"error": first_line(exc)}
    return cell


def failed_cell(planned: "PlannedCell", size: str, status: Status, message: str) -> dict[str, Any]:
    """The cell of a worker that died on it."""
    from convcheck.pipeline import new_cell

    cell = new_cell(planned.spec.name, planned.route, planned.target, size)
    cell["status"] = status.value
    cell["error"] = {"kind": status.value, "message": message, "stage": "worker", "op": None}
    return cell


Done = Callable[[int, dict[str, Any]], None]


class InlineExecutor:
    def __init__(self, settings: "RunSettings") -> None:
        from convcheck.pipeline import CellRunner

        self.runner = CellRunner(settings)

    def run(self, cells: list["PlannedCell"], on_start: Callable[[int], None]) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, planned in enumerate(cells):
            on_start(index)
            yield index, run_planned(self.runner, planned)


# -- local: worker processes --------------------------------------------------------------------------
def _worker_main(conn: Connection, settings: "RunSettings", registries: dict[str, dict[str, object]]) -> None:
    """A worker: receives (index, planned cell), answers (index, cell), until told to stop."""
    from convcheck import registry
    from convcheck.pipeline import CellRunner

    for kind, entries in registries.items():
        getattr(registry, kind).adopt(entries)
    # The parent handles Ctrl-C; a worker must not die of it mid-cell and leave a half artifact.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    runner = CellRunner(settings)
    while True:
        message = conn.recv()
        if message is None:
            return
        index, planned = message
        conn.send((index, run_planned(runner, planned)))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    family: str = ""
    group: deque = field(default_factory=deque)  # (index, planned) still to send, in order
    current: tuple[int, Any] | None = None
    started: float = 0.0
    killed_for: Status | None = None


def family_of(planned: "PlannedCell") -> str:
    """Which framework a cell's worker will have imported: its source's (torch, keras, onnx...)."""
    return planned.route.source.value


class LocalExecutor:
    def __init__(self, settings: "RunSettings", jobs: int | None = None, limits: Limits | None = None) -> None:
        from convcheck import registry

        self.settings = settings
        self.jobs = jobs or default_jobs()
        self.limits = limits or Limits()
        self.memory_mb = self.limits.memory_for(self.jobs)
        self.registries = {kind: getattr(registry, kind).portable() for kind in ("converters", "runtimes", "models")}
        # spawn: a fresh interpreter per worker. Forking a parent that has threads (rich's progress
        # bar) or an imported framework can deadlock the child.
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []

    def _start(self) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker_main, args=(child, self.settings, self.registries),
                                       daemon=True, name="convcheck-worker")
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self.workers.append(worker)
        return worker

    def run(self, cells: list["PlannedCell"], on_start: Callable[[int], None]) -> Iterator[tuple[int, dict[str, Any]]]:
        groups: dict[tuple[str, str], deque] = {}
        for index, planned in enumerate(cells):
            groups.setdefault((planned.spec.name, family_of(planned)), deque()).append((index, planned))
        pending = deque(groups.values())
        try:
            while pending or any(w.current for w in self.workers):
                self._assign(pending, on_start)
                busy = [w for w in self.workers if w.current]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL_SECONDS)
                for worker in busy:
                    result, carry_on = self._collect(worker, worker.conn in ready or worker.process.sentinel in ready)
                    if result is not None:
                        yield result
                    if carry_on is not None:
                        self._send_next(carry_on, on_start)
        finally:
            self.shutdown()

    def _assign(self, pending: deque, on_start: Callable[[int], None]) -> None:
        """Give waiting groups to idle workers (same family first), starting workers up to `jobs`."""
        while pending:
            idle = [w for w in self.workers if not w.current and not w.group]
            if not idle and len(self.workers) >= self.jobs:
                return
            family = family_of(pending[0][0][1])
            worker = next((w for w in idle if w.family == family), None)
            if worker is None and len(self.workers) < self.jobs:
                worker = self._start()
            if worker is None:  # idle workers of another family only: retire one for a fresh one
                self._stop(idle[0])
                worker = self._start()
            worker.family = family
            worker.group = pending.popleft()
            self._send_next(worker, on_start)

    def _send_next(self, worker: _Worker, on_start: Callable[[int], None]) -> None:
        worker.current = None
        if not worker.group:
            return
        index, planned = worker.group.popleft()
        on_start(index)
        worker.current = (index, planned)
        worker.started = time.monotonic()
        worker.conn.send((index, planned))

    def _collect(self, worker: _Worker, ready: bool) -> tuple[tuple[int, dict[str, Any]] | None, _Worker | None]:
        """(the finished cell or None while still working, the worker that goes on with the group).

        A finished cell is the worker's answer, or the cell its death or a limit cost."""
        index, planned = worker.current  # type: ignore[misc]
        if ready and worker.conn.poll():
            try:
                got_index, cell = worker.conn.recv()
                if got_index == index:
                    return (index, cell), worker
            except (EOFError, OSError):
                pass  # it died while answering: judged below
        status, message = self._verdict(worker)
        if status is None:
            return None, None
        return (index, failed_cell(planned, self.settings.size, status, message)), self._replace(worker)

    def _verdict(self, worker: _Worker) -> tuple[Status | None, str]:
        process = worker.process
        if not process.is_alive():
            process.join(timeout=1)
            code = process.exitcode
            if code is not None and code < 0:
                name = signal.Signals(-code).name
                if -code == signal.SIGKILL:  # nobody here sent it: the kernel's OOM killer, almost always
                    return Status.OOM, f"the worker was killed by {name} (the system ran out of memory)"
                return Status.CRASHED, f"the worker died of {name} (a segfault or abort in native code)"
            return Status.CRASHED, f"the worker exited with status {code} mid-cell"
        elapsed = time.monotonic() - worker.started
        if elapsed > self.limits.timeout_s:
            return Status.TIMEOUT, f"no result after {self.limits.timeout_s:g} s (--timeout); the worker was stopped"
        rss = _rss_mb(process.pid)
        if rss is not None and rss > self.memory_mb:
            return Status.OOM, (f"the worker's resident memory reached {rss:.0f} MiB, over the "
                                f"{self.memory_mb:.0f} MiB limit (--memory-limit); the worker was stopped")
        return None, ""

    def _replace(self, worker: _Worker) -> _Worker | None:
        """Kill a dead or over-limit worker; a fresh one takes the rest of its group."""
        group, family = worker.group, worker.family
        self._kill(worker)
        if not group:
            return None
        fresh = self._start()
        fresh.family, fresh.group = family, group
        return fresh

    def _kill(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        self.workers.remove(worker)

    def _stop(self, worker: _Worker) -> None:
        try:
            worker.conn.send(None)
            worker.process.join(timeout=10)
        except (OSError, BrokenPipeError):
            pass
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)
        worker.conn.close()
        self.workers.remove(worker)

    def shutdown(self) -> None:
        for worker in list(self.workers):
            if worker.current:
                self._kill(worker)  # interrupted mid-cell: its half-done cell is not kept
            else:
                self._stop(worker)


def _rss_mb(pid: int) -> float | None:
    """A process's resident memory with its children's (TVM and polygraphy start subprocesses)."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            continue
    return total or None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []


def make_executor(name: str, settings: "RunSettings", jobs: int | None, limits: Limits,
                  ray_address: str | None = None) -> Any:
    if name == "inline":
        return InlineExecutor(settings)
    if name == "local":
        return LocalExecutor(settings, jobs, limits)
    if name == "ray":
        from convcheck.ray_executor import RayExecutor

        return RayExecutor(settings, ray_address, limits)
    raise ConvcheckError(f"unknown --executor {name!r}: use {' or '.join(EXECUTORS)}")
