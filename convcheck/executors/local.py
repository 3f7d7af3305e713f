"""`local` (the default): cells in worker processes on this machine.

A converter that segfaults, hangs or eats memory takes down its worker, not the run: the cell
becomes `crashed` (with the signal), `timeout` or `oom`, the worker is replaced, and the rest of the
matrix goes on. Workers stay warm: a worker that finished its group (convcheck.executors.base: one
model's cells of one framework family) takes the next waiting group of its family, wherever it is in
the queue (`import tensorflow` and the framework's first-call warm-up are paid once per worker, not per
model). With `--jobs N`, N workers run at once.

A worker's stdout and stderr (native libraries write banners and backtraces straight to the file
descriptors) go to a log file of its own, not the terminal: each cell gets the lines written while
it ran in its `log`, and a worker that dies leaves its last lines (a faulthandler traceback on a
segfault) in the cell it died on.

Limits are per cell: a wall-clock timeout, and a resident-memory limit the parent enforces by
polling the worker's RSS (an address-space rlimit would break TensorFlow and TVM, which reserve far
more virtual memory than they touch). A worker the kernel's OOM killer takes is `oom` too.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import signal
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Callable, Iterator

from convcheck.executors.base import (Executor, Finished, Limits, default_jobs, died_in, family_of, group_cells,
                                      portable_registries, split_downstream)
from convcheck.executors.worker import tail as _tail, worker_main
from convcheck.types import Status

if TYPE_CHECKING:
    from convcheck.plan import PlannedCell, RunSettings

#: How often the parent looks at its workers' memory and clocks.
POLL_SECONDS = 0.2


@dataclass
class _Worker:
    process: Any
    conn: Connection
    family: str = ""
    group: deque = field(default_factory=deque)  # (index, planned) still to send, in order
    current: tuple[int, Any] | None = None
    started: float = 0.0
    log_path: str = ""
    log_offset: int = 0  # where the current cell's output starts in the log file
    task: tuple[str, str] | None = None  # (stage task id, stage) the current cell is in
    env: Any = None  # the toolchain environment (convcheck.envs.Env) it runs in; None: this interpreter


class LocalExecutor(Executor):
    def __init__(self, settings: "RunSettings", jobs: int | None = None, limits: Limits | None = None,
                 address: str | None = None) -> None:
        super().__init__(settings, jobs or default_jobs(), limits, address)
        self.memory_mb = self.limits.memory_for(self.jobs)
        self.registries = portable_registries()
        # spawn: a fresh interpreter per worker. Forking a parent that has threads (rich's progress
        # bar) or an imported framework can deadlock the child.
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        #: Cells whose worker passed the memory limit that `jobs` workers share: computed again at the
        #: end, one worker at a time with the whole machine's limit, before any is called `oom`.
        self.alone: deque = deque()
        self.retried: dict[int, float] = {}  # index -> the shared limit it passed (MiB)

    def _start(self, env: Any = None) -> _Worker:
        """A fresh worker: a spawned copy of this interpreter, or the toolchain environment's interpreter."""
        fd, log_path = tempfile.mkstemp(prefix="convcheck-worker-", suffix=".log")
        os.close(fd)
        if env is not None:
            from convcheck.executors.env_worker import EnvProcess

            process: Any = EnvProcess(env.python, self.settings, self.registries, log_path)
            parent = process.start()
        else:
            parent, child = self.context.Pipe()
            process = self.context.Process(target=worker_main, args=(child, self.settings, self.registries, log_path),
                                           daemon=True, name="convcheck-worker")
            with _main_not_rerun(self.registries):
                process.start()
            child.close()
        worker = _Worker(process, parent, log_path=log_path, env=env)
        self.workers.append(worker)
        return worker

    def run(self, cells: list["PlannedCell"], on_start: Callable[[int], None]) -> Iterator[Finished]:
        pending = deque(deque(group) for group in group_cells(cells))
        try:
            while pending or any(w.current for w in self.workers) or self.alone:
                if not pending and not any(w.current for w in self.workers):
                    self._run_alone_from_now(pending)
                self._assign(pending, on_start)
                busy = [w for w in self.workers if w.current]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL_SECONDS)
                for worker in busy:
                    finished, carry_on = self._collect(worker, worker.conn in ready or worker.process.sentinel in ready)
                    yield from (self._said_alone(index, cell) for index, cell in finished)
                    if carry_on is not None:
                        self._send_next(carry_on, on_start)
        finally:
            self.shutdown()

    def _run_alone_from_now(self, pending: deque) -> None:
        """The cells set aside for memory, with one worker and the memory every worker shared before."""
        for worker in list(self.workers):
            self._stop(worker)
        self.jobs = 1
        self.memory_mb = self.limits.memory_for(1)
        pending.extend(self.alone)
        self.alone.clear()

    def _said_alone(self, index: int, cell: dict[str, Any]) -> Finished:
        if index in self.retried:
            cell.setdefault("warnings", []).append(
                f"computed again alone: with other workers its worker passed the {self.retried[index]:.0f} MiB "
                f"they each had (--memory-limit); this result had {self.memory_mb:.0f} MiB")
        return index, cell

    def _assign(self, pending: deque, on_start: Callable[[int], None]) -> None:
        """Give waiting groups to idle workers, starting workers up to `jobs`.

        An idle worker takes the next waiting group of its own family from anywhere in the queue, not only
        the head: a worker that has imported torch goes on with the next model's torch cells instead of
        being retired for a keras group and restarted later (a cold default matrix started ~90 workers one
        per model and family, each paying a fresh interpreter and the framework's first-call warm-up).
        Only when no idle worker's family is waiting does the head group get a worker: a new one while
        fewer than `jobs` run, else an idle worker of another family is retired for it.
        """
        while pending:
            idle = [w for w in self.workers if not w.current and not w.group]
            if not idle and len(self.workers) >= self.jobs:
                return
            worker, at = self._warm_match(idle, pending)
            if worker is None:
                at, first = 0, pending[0][0][1]
                if len(self.workers) < self.jobs:
                    worker = self._start(first.env)
                else:  # idle workers of another family only: retire one for a fresh one
                    self._stop(idle[0])
                    worker = self._start(first.env)
                worker.family = family_of(first)
            group = pending[at]
            del pending[at]
            worker.group = group
            self._send_next(worker, on_start)

    def _warm_match(self, idle: list[_Worker], pending: deque) -> tuple[_Worker | None, int]:
        """(an idle worker, the position of the first waiting group of its family), or (None, 0).

        A worker whose resident memory has grown past half the limit between groups is retired first
        (and a fresh one of its family takes the group): its leftovers must not push the next model's
        cell over the limit and have that cell blamed for memory it did not use."""
        for at, group in enumerate(pending):
            family = family_of(group[0][1])
            worker = next((w for w in idle if w.family == family), None)
            if worker is None:
                continue
            rss = _rss_mb(worker.process.pid)
            if rss is not None and rss > self.memory_mb / 2:
                env = worker.env
                self._stop(worker)
                worker = self._start(env)
                worker.family = family
            return worker, at
        return None, 0

    def _send_next(self, worker: _Worker, on_start: Callable[[int], None]) -> None:
        worker.current = None
        if not worker.group:
            return
        index, planned = worker.group.popleft()
        on_start(index)
        worker.current = (index, planned)
        worker.started = time.monotonic()
        worker.task = None
        try:
            worker.log_offset = os.path.getsize(worker.log_path)
        except OSError:
            worker.log_offset = 0
        worker.conn.send((index, planned))

    def _collect(self, worker: _Worker, ready: bool) -> tuple[list[Finished], _Worker | None]:
        """(the cells finished, the worker that goes on with the group, or None while still working).

        A finished cell is the worker's answer; or, when the worker died or broke a limit, the cell it
        was running and every waiting cell of its group downstream of the task that killed it."""
        index, planned = worker.current  # type: ignore[misc]
        if ready:
            try:
                while worker.conn.poll():
                    kind, got_index, *payload = worker.conn.recv()
                    if got_index != index:
                        continue
                    if kind == "stage":
                        worker.task = (payload[0], payload[1])
                    elif kind == "done":
                        return [(index, payload[0])], worker
            except (EOFError, OSError):
                pass  # it died while answering: judged below
        status, message = self._verdict(worker)
        if status is None:
            return [], None
        task, stage = worker.task or ("", None)
        lines, _ = _tail(worker.log_path, worker.log_offset)
        finished = [(index, died_in(planned, self.settings.size, status, message, stage, lines))]
        downstream, keep = split_downstream(worker.group, task, stage or "worker", planned, status, message,
                                            self.settings.size)
        if status is Status.OOM and self._more_memory_alone():
            # With the machine to itself the worker gets more memory (Keras ResNet-50's tf2onnx needs
            # ~10 GiB; two workers get 9.6 each on 24 GiB): compute it, and the cells needing the same
            # task, again at the end; its second verdict is final.
            kept = {i for i, _ in keep}
            again = [(index, planned)] + [(i, p) for i, p in worker.group if i not in kept]
            self.retried.update((i, self.memory_mb) for i, _ in again)
            self.alone.append(deque(again))
            finished = []
            downstream = []
        worker.group = deque(keep)
        return finished + downstream, self._replace(worker)

    def _more_memory_alone(self) -> bool:
        return self.jobs > 1 and self.limits.memory_mb is None and self.limits.memory_for(1) > self.memory_mb

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
        group, family, env = worker.group, worker.family, worker.env
        self._kill(worker)
        if not group:
            return None
        fresh = self._start(env)
        fresh.family, fresh.group = family, group
        return fresh

    def _kill(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        self._forget(worker)

    def _forget(self, worker: _Worker) -> None:
        self.workers.remove(worker)
        if worker.log_path:
            try:
                os.unlink(worker.log_path)
            except OSError:
                pass

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
        self._forget(worker)

    def shutdown(self) -> None:
        for worker in list(self.workers):
            if worker.current:
                self._kill(worker)  # interrupted mid-cell: its half-done cell is not kept
            else:
                self._stop(worker)


@contextlib.contextmanager
def _main_not_rerun(registries: dict[str, dict[str, object]]) -> Iterator[None]:
    """Start a spawned worker without it running the caller's script again.

    multiprocessing's spawn re-imports the parent's `__main__` file in every child (as `__mp_main__`), so a
    notebook-style script that calls `convcheck.check(model, ...)` at top level, without an
    `if __name__ == "__main__":` guard, would run again in each worker and fail it. A worker needs nothing
    from that script (the model is loaded from the file the API wrote), unless something registered from it
    travels with the work (a converter class defined in the script): only then is the script re-imported.
    """
    main = sys.modules.get("__main__")
    if main is None or _needs_main(registries) or getattr(main, "__spec__", None) is None \
            and not hasattr(main, "__file__"):
        yield
        return
    had_file, file = hasattr(main, "__file__"), getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    try:
        if had_file:
            del main.__file__
        main.__spec__ = None
        yield
    finally:
        if had_file:
            main.__file__ = file
        main.__spec__ = spec


def _needs_main(registries: dict[str, dict[str, object]]) -> bool:
    """Whether a registry entry that travels to workers lives in `__main__` (by dotted path or by object)."""
    def in_main(entry: object) -> bool:
        if isinstance(entry, str):
            return entry.startswith("__main__")
        module = getattr(entry, "__module__", None) or type(entry).__module__
        builders = getattr(entry, "builders", None)
        return module == "__main__" or isinstance(builders, dict) and any(
            str(b).startswith("__main__") for b in builders.values())

    return any(in_main(entry) for entries in registries.values() for entry in entries.values())


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


def run_env_cells(executor: Executor, cells: list["PlannedCell"], on_start: Callable[[int], None],
                  run_rest: Callable[[list["PlannedCell"], Callable[[int], None]], Iterator[Finished]]
                  ) -> Iterator[Finished]:
    """For executors that cannot start another interpreter themselves (inline, Ray): the cells of toolchain
    environments go to local workers with the environment's interpreter, the rest to `run_rest`."""
    own = [i for i, p in enumerate(cells) if p.env is None]
    envs = [i for i, p in enumerate(cells) if p.env is not None]
    if own:
        for j, cell in run_rest([cells[i] for i in own], lambda j: on_start(own[j])):
            yield own[j], cell
    if envs:
        local = LocalExecutor(executor.settings, executor.jobs, executor.limits)
        for j, cell in local.run([cells[i] for i in envs], lambda j: on_start(envs[j])):
            yield envs[j], cell
