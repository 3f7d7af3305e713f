"""The plan as a DAG of stage tasks.

models x routes x targets expand into cells; each cell is a chain of stage tasks

    reference(model, source) -> convert(first hop) -> convert(next hop) ... -> cell(load, run,
    compare, benchmark on one target)

and a chain shares every task it has in common with its neighbours: the reference outputs of a
model are computed once per source framework, and one ONNX export feeds ORT, OpenVINO, TVM and
TensorRT. A conversion whose converter depends on the target (a TensorRT engine for fp16, TVM code
for cuda) is a task per (device, precision); any other is shared by every target.

The task ids here are the keys the engine works with: `CellRunner` names the task it is starting
(`on_task`), so when a worker dies the parent knows *which* task killed it and marks every planned
cell downstream of that task `upstream_failed` instead of letting each of them pay for the same
crash, hang or memory blow-up again. After the cells, one run-level `score` task (lock-in) reads
them all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from convcheck.plan import PlannedCell
    from convcheck.routes import Route
    from convcheck.types import Target


def reference_task(model: str, source: str) -> str:
    return f"reference:{model}:{source}"


def convert_task(model: str, source: str, prefix: Sequence[str], target: "Target | None") -> str:
    """A conversion prefix: converter classes' registry names, plus the target where one of them
    depends on it (the same rule as CellRunner's in-process sharing)."""
    chain = "/".join(prefix)
    where = f"@{target.device}-{target.precision}" if target is not None else ""
    return f"convert:{model}:{source}:{chain}{where}"


def cell_task(model: str, route_id: str, device: str, precision: str) -> str:
    return f"cell:{model}:{route_id}:{device}:{precision}"


def chain_for(model: str, route: "Route", target: "Target") -> list[str]:
    """The stage tasks one cell needs, upstream first; the last one is the cell's own."""
    from convcheck.registry import converters

    chain = [reference_task(model, route.source.value)]
    bound = False
    for depth in range(1, len(route.converters) + 1):
        prefix = route.converters[:depth]
        bound = bound or bool(getattr(converters.get(prefix[-1]), "depends_on_target", False))
        chain.append(convert_task(model, route.source.value, prefix, target if bound else None))
    chain.append(cell_task(model, route.id, target.device, target.precision))
    return chain


@dataclass
class StageTask:
    id: str
    kind: str  # reference | convert | cell | score
    upstream: str | None  # the one task it reads (a chain: every task has at most one input)
    cells: list[int] = field(default_factory=list)  # indices of the planned cells that need it


@dataclass
class Dag:
    tasks: dict[str, StageTask]
    chains: list[list[str]]  # per planned cell, its task ids upstream first

    def downstream_cells(self, task_id: str) -> set[int]:
        """The planned cells that cannot finish if `task_id` fails."""
        task = self.tasks.get(task_id)
        return set(task.cells) if task else set()

    def counts(self) -> Counter:
        return Counter(t.kind for t in self.tasks.values())

    def shared(self) -> list[StageTask]:
        """Tasks that feed more than one cell: the work the plan saves, biggest saving first."""
        return sorted((t for t in self.tasks.values() if len(t.cells) > 1 and t.kind != "score"),
                      key=lambda t: (-len(t.cells), t.id))


def build_dag(cells: Sequence["PlannedCell"]) -> Dag:
    tasks: dict[str, StageTask] = {}
    chains: list[list[str]] = []
    for index, planned in enumerate(cells):
        chain = chain_for(planned.spec.name, planned.route, planned.target)
        chains.append(chain)
        upstream = None
        for task_id in chain:
            kind = task_id.split(":", 1)[0]
            task = tasks.setdefault(task_id, StageTask(task_id, kind, upstream))
            task.cells.append(index)
            upstream = task_id
    score = StageTask("score:lockin", "score", None, list(range(len(cells))))
    tasks[score.id] = score
    return Dag(tasks, chains)


def describe(task_id: str) -> str:
    """A task id as a reader would say it: `the ONNX export (OnnxFromTorch) of resnet50`."""
    kind, _, rest = task_id.partition(":")
    if kind == "reference":
        model, source = rest.split(":", 1)
        return f"the {source} reference run of {model}"
    if kind == "convert":
        model, source, chain = rest.split(":", 2)
        return f"the conversion {source}/{chain} of {model}"
    if kind == "cell":
        return f"the cell {rest}"
    return task_id
