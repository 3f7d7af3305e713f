"""The local executor's scheduling: a warm worker goes on with the next model's cells of its own framework
family instead of being retired and restarted per (model, family), and a worker grown past half the
memory limit is replaced between groups. Only the process start is stubbed: the policy is the subject."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass

import pytest

from convcheck.executors import Limits, local
from convcheck.executors.base import group_cells
from convcheck.executors.local import LocalExecutor, _Worker
from convcheck.plan import RunSettings


@dataclass(frozen=True)
class _Spec:
    name: str


@dataclass(frozen=True)
class _Source:
    value: str


@dataclass(frozen=True)
class _Route:
    source: _Source
    id: str


@dataclass(frozen=True)
class _Cell:
    spec: _Spec
    route: _Route
    env: object = None


class _Process:
    pid = os.getpid()

    def is_alive(self) -> bool:
        return True


class _Recording(LocalExecutor):
    """Starts no process: records each start and stop, and finishes each cell as soon as it is sent."""

    def __init__(self, settings: RunSettings, jobs: int, memory_mb: float) -> None:
        super().__init__(settings, jobs=jobs, limits=Limits(timeout_s=10, memory_mb=memory_mb))
        self.starts: list[str] = []
        self.stops = 0
        self.order: list[tuple[str, str]] = []

    def _start(self, env=None) -> _Worker:
        worker = _Worker(_Process(), conn=None, env=env)  # type: ignore[arg-type]
        self.workers.append(worker)
        self.starts.append("")
        return worker

    def _stop(self, worker: _Worker) -> None:
        self.stops += 1
        self.workers.remove(worker)

    def _send_next(self, worker: _Worker, on_start) -> None:
        worker.current = None
        while worker.group:  # the whole group at once: the policy under test is between groups
            _, planned = worker.group.popleft()
            self.order.append((planned.spec.name, planned.route.source.value))


def _schedule(cells: list[_Cell], jobs: int = 1, memory_mb: float = 1e9, rss: float | None = 100.0,
              monkeypatch: pytest.MonkeyPatch | None = None) -> _Recording:
    executor = _Recording(RunSettings(workdir=None, size="tiny"), jobs, memory_mb)  # type: ignore[arg-type]
    if monkeypatch is not None:
        monkeypatch.setattr(local, "_rss_mb", lambda pid: rss)
    pending = deque(deque(group) for group in group_cells(cells))  # type: ignore[arg-type]
    while pending:
        executor._assign(pending, lambda i: None)
    return executor


def _zoo(models: list[str], families: list[str]) -> list[_Cell]:
    return [_Cell(_Spec(m), _Route(_Source(f), f"{f}/onnx/ort")) for m in models for f in families]


def test_one_worker_per_family_not_per_model_and_family(monkeypatch):
    executor = _schedule(_zoo(["mlp", "cnn", "lstm"], ["torch", "keras"]), monkeypatch=monkeypatch)
    # Before: every (model, family) group got a fresh worker (6 starts). Now: one per family.
    assert len(executor.starts) == 2
    assert executor.order == [("mlp", "torch"), ("cnn", "torch"), ("lstm", "torch"),
                              ("mlp", "keras"), ("cnn", "keras"), ("lstm", "keras")]


def test_two_jobs_keep_one_warm_worker_per_family(monkeypatch):
    executor = _schedule(_zoo(["mlp", "cnn", "lstm"], ["torch", "keras", "jax"]), jobs=2, monkeypatch=monkeypatch)
    assert len(executor.starts) == 3  # torch and keras at once; jax replaces whichever idles first
    assert sorted(executor.order) == sorted((m, f) for m in ["mlp", "cnn", "lstm"] for f in ["torch", "keras", "jax"])


def test_a_worker_grown_past_half_the_limit_is_replaced_between_groups(monkeypatch):
    executor = _schedule(_zoo(["mlp", "cnn"], ["torch"]), memory_mb=1000, rss=600.0, monkeypatch=monkeypatch)
    assert len(executor.starts) == 2 and executor.stops == 1
    assert executor.order == [("mlp", "torch"), ("cnn", "torch")]
