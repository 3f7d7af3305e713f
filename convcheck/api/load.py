"""`convcheck.load(...)`: MLPerf LoadGen scenarios on the passing cells of a model or of a finished run.

A load test is a run whose cells carry `LoadSettings` (convcheck.validate.loadgen): every cell is
converted (from the artifact cache where it can), run and compared as in a matrix, and a cell that
passes is then driven by LoadGen in its own worker, on the same loaded runtime. A finished run is not
re-timed from its stored figures: its passing cells are run again, so the load figures and the verdict
they stand on come from one process, one artifact and one set of settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from convcheck.api.options import CheckOptions, EngineOptions, MatrixOptions, PathLike, PlanOptions, ReportOptions
from convcheck.api.run import CellDone, CellStart, RunResult, execute, load_document, stored_options
from convcheck.errors import ConvcheckError


@dataclass(frozen=True)
class LoadPlan:
    options: PlanOptions
    specs: list[Any]  # convcheck.model_spec.ModelSpec
    #: (model, route, device, precision) of the cells to run; None: every planned cell.
    only: Optional[set[tuple[str, str, str, str]]]
    #: The run whose passing cells are load-tested, when the target was a run.
    of_run: Optional[str] = None


def _is_results(path: Path) -> bool:
    return (path.is_dir() and (path / "results.json").is_file()) or (path.is_file() and path.name == "results.json")


def plan_load(target: str, load: Any, *, routes: Optional[Iterable[str]] = None, size: str = "full",
              input_specs: Iterable[str] = (), input_data: PathLike | None = None, out: PathLike | None = None,
              samples: int = 4, threads: int | None = None, bench_seconds: float = 1.0,
              bench_iters: int = 30) -> LoadPlan:
    """What `convcheck load TARGET` runs. `target`: a zoo model name, a model file as `check` takes it, or a
    run (id, unique prefix, `latest`, its folder or results.json); `load`: LoadSettings or its dict."""
    from convcheck.registry import models as zoo
    from convcheck.validate.loadgen import LoadSettings

    settings = load if isinstance(load, LoadSettings) else LoadSettings.from_dict(dict(load))
    chosen = tuple(routes) if routes else None
    common: dict[str, Any] = {"load": settings.to_dict(), "out": out, "samples": samples, "threads": threads,
                              "bench_seconds": bench_seconds, "bench_iters": bench_iters}
    path = Path(target)
    if target in zoo.names() and not path.exists():
        if input_specs or input_data:
            raise ConvcheckError("--input/--inputs are for your own model files; zoo models bring their inputs")
        options: PlanOptions = MatrixOptions(models=(target,), size=size, routes=chosen, **common)
        return LoadPlan(options, options.specs(), None)
    if path.exists() and not _is_results(path):
        options = CheckOptions(model=target, input_specs=tuple(input_specs or ()), input_data=input_data,
                               routes=chosen, **common)
        return LoadPlan(options, options.specs(), None)
    return _plan_from_run(target, settings, chosen, out)


def _plan_from_run(run: str, settings: Any, routes: tuple[str, ...] | None, out: PathLike | None) -> LoadPlan:
    if Path(run).is_file():  # a results.json: its run folder
        run = str(Path(run).parent)
    try:
        run_id, _, stored = stored_options(run)
    except ConvcheckError as exc:
        raise ConvcheckError(f"{run!r} is not a zoo model, a model file or a run ({exc}): name one of "
                             "`convcheck models`, a model file, or a run from `convcheck runs`") from None
    if stored is None:
        raise ConvcheckError(f"run {run_id} was recorded before runs kept their options: load-test its model by "
                             "name or file instead")
    document, _ = load_document(run_id)
    passing = {(c["model"], c["route"], c.get("device", "cpu"), c.get("precision", "fp32"))
               for c in document["cells"] if c.get("status") == "pass"
               and (routes is None or c["route"] in routes)}
    if not passing:
        which = f" on the routes {', '.join(routes)}" if routes else ""
        raise ConvcheckError(f"run {run_id} has no passing cell{which} to load-test: load is measured only where "
                             "the outputs match (see its results with `convcheck report " + run_id + "`)")
    # A new run of its own: the stored run's folder is never written into.
    options = dataclasses.replace(stored, load=settings.to_dict(), out=None if out is None else Path(out),
                                  routes=tuple(sorted({c[1] for c in passing})))
    return LoadPlan(options, options.specs(), passing, run_id)


def load(target: str, load_settings: Any, *, engine: EngineOptions | None = None,
         report: ReportOptions | None = None, on_plan: Callable[[list[Any]], None] | None = None,
         on_cell_start: CellStart | None = None, on_cell_done: CellDone | None = None,
         **plan_options: Any) -> RunResult:
    """Load-test `target` (a zoo model, your model file, or a run): plan_load's options, then the run.
    Cells run one at a time unless `engine.jobs` says otherwise (load figures from cells sharing the
    cores would measure the contention)."""
    plan = plan_load(target, load_settings, **plan_options)
    return execute(plan.options, engine or EngineOptions(jobs=1), report, command="load", specs=plan.specs,
                   only=plan.only, extra={"load_of": plan.of_run} if plan.of_run else None, on_plan=on_plan,
                   on_cell_start=on_cell_start, on_cell_done=on_cell_done)
