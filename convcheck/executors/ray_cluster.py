"""`ray`: the same cell groups as the local executor (convcheck.executors.base), as tasks on a Ray cluster.

`--executor ray --ray-address ADDR` joins an existing cluster; without an address a local Ray
instance is started for the run and stopped after it. Each (model, source) group is one Ray
generator task that yields its cells one by one (so references and exports are shared within the
group, as in a local worker, and each finished cell reaches the driver — and results.json — at
once). Placement uses Ray resources: a group with CUDA cells asks for a GPU when the cluster has
one (on a cluster without, those cells record `no_device` like anywhere else); a group with Core ML
cells asks for the custom resource `macos` when a node offers it (start such a node with
`ray start --resources='{"macos": 1}'`).

Faults: each task names the stage task it starts (convcheck.dag) on a Ray queue, before starting
it. When a group's task dies (a segfault: `crashed`; Ray's memory monitor: `oom`) or runs over
`--timeout` (cancelled: `timeout`), the cell it was in fails at that stage, the cells waiting on
the same shared task (the export that crashed) are `upstream_failed`, and the rest of the group
runs again as a new task. Without a stage report (the task died before its first one), the
undelivered cells run again one per task, so the culprit fails alone.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from convcheck.errors import ConvcheckError
from convcheck.executors.base import (Executor, Finished, Group, Limits, died_in, group_cells, portable_registries,
                                      serve_cells, split_downstream)
from convcheck.types import Status

if TYPE_CHECKING:
    from convcheck.plan import PlannedCell, RunSettings


def _run_group(settings: "RunSettings", registries: dict[str, dict[str, object]], group: Group, group_id: int,
               stages: Any) -> Iterator[Finished]:
    """Runs on a Ray worker: the group's cells in order (convcheck.executors.base.serve_cells)."""
    def report(index: int, task: str, stage: str) -> None:
        try:  # synchronous: the driver knows the stage before the stage can kill this worker
            stages.put_nowait((group_id, index, task, stage))
        except Exception:  # noqa: BLE001 - a lost report costs precision in a post-mortem, not the cell
            pass

    yield from serve_cells(settings, registries, group, report)


class RayExecutor(Executor):
    def __init__(self, settings: "RunSettings", jobs: int | None = None, limits: Limits | None = None,
                 address: str | None = None) -> None:
        super().__init__(settings, jobs, limits, address)
        try:
            import ray
        except ImportError:
            raise ConvcheckError("--executor ray needs Ray: pip install 'convcheck[ray]'") from None
        self.ray = ray
        self.registries = portable_registries()
        self.started_here = not ray.is_initialized() and address is None
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                         # The workers import the repository as the driver does (tests' planted converters too).
                         runtime_env={"env_vars": {"PYTHONPATH": _pythonpath()}})
            except ConnectionError as exc:
                raise ConvcheckError(f"--ray-address {address}: cannot connect ({exc})") from None

    def run(self, cells: list["PlannedCell"], on_start: Callable[[int], None]) -> Iterator[Finished]:
        from convcheck.executors.local import run_env_cells

        # Ray workers run the cluster's interpreter: cells of a toolchain environment run in local workers
        # on the driver, with the environment's interpreter, after the cluster's cells.
        yield from run_env_cells(self, cells, on_start, self._run_on_cluster)

    def _run_on_cluster(self, cells: list["PlannedCell"], on_start: Callable[[int], None]) -> Iterator[Finished]:
        from ray.util.queue import Queue

        remote = self.ray.remote(_run_group)
        stages = Queue()
        running: dict[Any, dict[str, Any]] = {}  # generator ref -> {"rest": [...], "since", "id", "stage"}
        by_id: dict[int, dict[str, Any]] = {}

        def submit(group: Group) -> None:
            options = self._placement(group)
            group_id = len(by_id)
            gen = remote.options(num_returns="streaming", max_retries=0, **options).remote(
                self.settings, self.registries, group, group_id, stages)
            running[gen] = by_id[group_id] = {"rest": list(group), "since": time.monotonic(), "stage": None}
            on_start(group[0][0])

        def drain() -> None:
            while not stages.empty():
                group_id, index, task, stage = stages.get_nowait()
                by_id[group_id]["stage"] = (index, task, stage)

        try:
            for group in group_cells(cells):
                submit(group)
            while running:
                for gen, state in list(running.items()):
                    drain()
                    result = self._next(gen, state)
                    if result is None:
                        continue
                    kind, payload = result
                    if kind == "cell":
                        index, cell = payload
                        state["rest"] = [(i, p) for i, p in state["rest"] if i != index]
                        state["since"] = time.monotonic()
                        yield index, cell
                        if state["rest"]:
                            on_start(state["rest"][0][0])
                        continue
                    del running[gen]
                    if kind == "end":
                        continue
                    status, message = payload  # the task died or ran over
                    drain()
                    if state["stage"] is not None:
                        yield from self._post_mortem(state, status, message, submit)
                        continue
                    if len(state["rest"]) > 1:
                        # Which cell killed it? Results a dead worker yielded may be lost with it, so the
                        # unaccounted cells run again one per task: the culprit fails alone.
                        for single in state["rest"]:
                            submit([single])
                        continue
                    (index, planned), = state["rest"]
                    yield index, died_in(planned, self.settings.size, status, message, None)
                time.sleep(0.05)
        finally:
            for gen in running:
                self.ray.cancel(gen, force=True)
            if self.started_here:
                self.ray.shutdown()

    def _post_mortem(self, state: dict[str, Any], status: Status, message: str,
                     submit: Callable[[Group], None]) -> Iterator[Finished]:
        """The task died in a known stage: that cell fails there, the cells needing the same shared task
        are upstream_failed (convcheck.executors.base.split_downstream), and the rest of the group goes
        on as a new task."""
        culprit, task, stage = state["stage"]
        rest = dict(state["rest"])
        victim = rest.pop(culprit, None)
        if victim is None:  # its result did arrive: the death came after it; run the rest again
            if rest:
                submit(sorted(rest.items()))
            return
        yield culprit, died_in(victim, self.settings.size, status, message, stage)
        downstream, again = split_downstream(sorted(rest.items()), task, stage, victim, status, message,
                                             self.settings.size)
        yield from downstream
        if again:
            submit(again)

    def _next(self, gen: Any, state: dict[str, Any]) -> tuple[str, Any] | None:
        """("cell", (index, cell)), ("end", None), ("failed", (status, message)), or None: not yet."""
        ray = self.ray
        ready, _ = ray.wait([gen], timeout=0)
        if ready:
            try:
                ref = next(gen)
            except StopIteration:
                return "end", None
            try:
                return "cell", ray.get(ref)
            except ray.exceptions.OutOfMemoryError as exc:
                return "failed", (Status.OOM, f"Ray's memory monitor killed the task: {str(exc).splitlines()[0]}")
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayTaskError,
                    ray.exceptions.TaskCancelledError) as exc:
                return "failed", (Status.CRASHED, f"the Ray worker died: {type(exc).__name__}")
        if time.monotonic() - state["since"] > self.limits.timeout_s:
            ray.cancel(gen, force=True)
            return "failed", (Status.TIMEOUT, f"no result after {self.limits.timeout_s:g} s (--timeout); "
                                              "the Ray task was cancelled")
        return None

    def _placement(self, group: Group) -> dict[str, Any]:
        resources = self.ray.cluster_resources()
        # A cell's runtimes use settings.threads intra-op threads: reserve that many CPUs (Ray also
        # sets OMP_NUM_THREADS to num_cpus, which would otherwise change the reference's summation order).
        options: dict[str, Any] = {"num_cpus": max(1, min(self.settings.threads or 1, int(resources.get("CPU", 1))))}
        if any(p.target.device == "cuda" for _, p in group) and resources.get("GPU", 0) >= 1:
            options["num_gpus"] = 1
        # Where a runtime needs a kind of node (Core ML: macOS), it says so (Runtime.placement); a group asks
        # for it when the cluster offers it, and otherwise runs anywhere (the cell then states no_device).
        from convcheck.registry import runtimes

        wanted: dict[str, float] = {}
        for _, planned in group:
            for resource, amount in getattr(runtimes.get(planned.route.runtime), "placement", {}).items():
                if resources.get(resource, 0) >= amount:
                    wanted[resource] = max(wanted.get(resource, 0), amount)
        if wanted:
            options["resources"] = wanted
        return options


def _pythonpath() -> str:
    import os
    import sys

    return os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
