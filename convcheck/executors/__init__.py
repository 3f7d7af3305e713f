"""Executors: where planned cells run, chosen by name through the registry like converters.

- `inline`: in this process, one after another (debugging);
- `local` (the default): worker processes on this machine, a crash, hang or memory blow-up costs
  its cell, never the run;
- `ray`: tasks on a Ray cluster, placed by Ray resources.

All three share convcheck.executors.base: the grouping of cells, the worker's loop and the
post-mortem of a dead worker. A plugin adds one through the entry-point group `convcheck.executors`
(a class taking `(settings, jobs, limits, address)` with a `run(cells, on_start)` generator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convcheck.errors import ConvcheckError
from convcheck.executors.base import Executor, Limits, default_jobs

if TYPE_CHECKING:
    from convcheck.plan import RunSettings

__all__ = ["Executor", "Limits", "default_jobs", "executor_names", "make_executor"]


def executor_names() -> list[str]:
    from convcheck.registry import executors

    return executors.names()


def make_executor(name: str, settings: "RunSettings", jobs: int | None, limits: Limits,
                  ray_address: str | None = None) -> Executor:
    from convcheck.registry import executors

    if name not in executors:
        raise ConvcheckError(f"unknown --executor {name!r}: use {' or '.join(executors.names())}")
    return executors.get(name)(settings, jobs, limits, ray_address)  # type: ignore[operator]
