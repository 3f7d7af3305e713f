"""What every executor shares: the limits, how cells are grouped, the worker's loop, and the
post-mortem of a worker that died.

Work is handed out by model and source format: the cells of one (model, source) group go to one
worker in plan order, so the worker computes the reference outputs once and shares the ONNX export
between ORT, OpenVINO, TVM and TensorRT (CellRunner's in-process sharing).

Each worker names the stage task of the plan's DAG it starts (convcheck.dag: the reference run, a
conversion prefix, the cell's own load/run/benchmark). When a worker dies, the executor knows what
killed it: the cell it was running fails *at that stage*, and the cells still waiting in its group
that depend on the same shared task (the ONNX export that segfaulted) become `upstream_failed` at
once instead of each paying for the same crash, hang or blow-up again (`split_downstream`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from convcheck.cells import failed_cell, skipped_cell, upstream_failed_cell
from convcheck.dag import chain_for
from convcheck.errors import CellFailure
from convcheck.failures import first_line
from convcheck.types import Status

if TYPE_CHECKING:
    from convcheck.pipeline import CellRunner
    from convcheck.plan import PlannedCell, RunSettings

#: A finished cell as every executor yields it: (index in the list it was given, the cell record).
Finished = tuple[int, dict[str, Any]]
#: (index, planned cell) of a group, in plan order.
Group = list[tuple[int, "PlannedCell"]]


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


def family_of(planned: "PlannedCell") -> str:
    """Which framework a cell's worker will have imported: its source's (torch, keras, onnx...), and in
    which interpreter (a toolchain environment's cells never share a worker with the main one's)."""
    env = getattr(planned, "env", None)
    return planned.route.source.value + (f"@{env.digest}" if env is not None else "")


def group_cells(cells: list["PlannedCell"]) -> list[Group]:
    """The cells by (model, source family), each group in plan order, groups in order of first cell."""
    groups: dict[tuple[str, str], Group] = {}
    for index, planned in enumerate(cells):
        groups.setdefault((planned.spec.name, family_of(planned)), []).append((index, planned))
    return list(groups.values())


def portable_registries() -> dict[str, dict[str, object]]:
    """The registries as a worker in another process (or on another Ray node) re-registers them:
    test converters and plugins registered in code travel with the work."""
    from convcheck import registry

    return {kind: getattr(registry, kind).portable() for kind in ("converters", "runtimes", "models")}


def run_planned(runner: "CellRunner", planned: "PlannedCell") -> dict[str, Any]:
    """One cell, the same in every executor: run it, or record why it cannot run here (and what the
    machine can still check about it)."""
    from convcheck.routes import availability

    avail = availability(planned.route, planned.target.device)
    if avail.available:
        return runner.run(planned.spec, planned.route, planned.target)
    cell = skipped_cell(planned.spec.name, planned.route, planned.target, runner.settings.size,
                        avail.status, avail.reason, avail.hint)
    try:
        runner.precheck(planned.spec, planned.route, planned.target, cell)
    except CellFailure as failure:  # the source model itself failed (reference): that blocks first
        runner.blocked_by(cell, failure, planned.route.id)
    except Exception as exc:  # noqa: BLE001 - a static check must never take the cell down
        cell["precheck"] = {"error": first_line(exc)}
    return cell


def serve_cells(settings: "RunSettings", registries: dict[str, dict[str, object]], group: Iterable[tuple[int, Any]],
                report: Callable[[int, str, str], None]) -> Iterator[Finished]:
    """The worker's loop, in a worker process or a Ray task: re-register what the parent registered,
    then run the cells in order with one CellRunner per model (shared references and exports),
    reporting (index, stage task, stage) before each stage can kill the worker."""
    from convcheck import registry
    from convcheck.pipeline import CellRunner

    for kind, entries in registries.items():
        getattr(registry, kind).adopt(entries)
    runner, model = CellRunner(settings), None
    for index, planned in group:
        if planned.spec.name != model:
            # A warm worker goes on to the next model's group: what it kept of the last model (references,
            # converted artifacts, the loaded framework models) is dropped, not carried for the whole run.
            if model is not None:
                import gc

                runner = CellRunner(settings)
                gc.collect()
            model = planned.spec.name
        runner.on_stage = lambda task, stage, i=index: report(i, task, stage)
        yield index, run_planned(runner, planned)


def split_downstream(rest: Iterable[tuple[int, "PlannedCell"]], task: str, stage: str, victim: "PlannedCell",
                     status: Status, message: str, size: str) -> tuple[list[Finished], Group]:
    """The post-mortem of a worker that died in `task`: of the cells still waiting in its group,
    those that need the same shared task are `upstream_failed` now (not run again to die the same
    way); the others (returned second) go on in a fresh worker. A cell's own task (`cell:...`)
    is shared by no one."""
    failed: list[Finished] = []
    keep: Group = []
    shared = bool(task) and not task.startswith("cell:")
    for index, planned in rest:
        if shared and task in chain_for(planned.spec.name, planned.route, planned.target):
            failed.append((index, upstream_failed_cell(planned, size, task, stage, victim, status, message)))
        else:
            keep.append((index, planned))
    return failed, keep


def died_in(planned: "PlannedCell", size: str, status: Status, message: str, stage: str | None,
            log: list[str] | None = None) -> dict[str, Any]:
    """The cell a worker died on, at the stage it had reported (or `worker` when it reported none)."""
    where = f" during {stage}" if stage else ""
    return failed_cell(planned, size, status, message + where, stage or "worker", log)


class Executor:
    """Where planned cells run. `run` yields (index, cell) as cells finish, in any order, and calls
    `on_start(index)` as each starts; a failed cell is data, never an exception."""

    def __init__(self, settings: "RunSettings", jobs: int | None = None, limits: Limits | None = None,
                 address: str | None = None) -> None:
        self.settings = settings
        self.jobs = jobs
        self.limits = limits or Limits()
        self.address = address

    def run(self, cells: list["PlannedCell"], on_start: Callable[[int], None]) -> Iterator[Finished]:
        raise NotImplementedError
