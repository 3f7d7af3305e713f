"""The API's runs: plan, run (through the cache, the store and an executor), score lock-in and write
every report; resume a stored run from its options."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from convcheck.api.options import (_KINDS, CheckOptions, EngineOptions, MatrixOptions, PathLike, PlanOptions,
                                   ReportOptions)
from convcheck.errors import ConvcheckError


# -- results -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    """A finished run: its results document (results.json, lock-in scored), where its files are,
    and the exit code the CLI would give (1: a cell has a status in --fail-on)."""

    results: dict[str, Any]
    out_dir: Path
    run_id: str
    exit_code: int
    fail_on: frozenset[str]
    reports: dict[str, Path]  # matrix.md, matrix.html, junit.xml
    options: Optional[PlanOptions] = None
    #: With ReportOptions(mlflow=...): where the cells were logged (convcheck.tracking.Logged).
    tracking: Optional[Any] = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def cells(self) -> list[dict[str, Any]]:
        """results.json's cells: one dict per model x route x device x precision."""
        return self.results["cells"]

    def failures(self) -> list[dict[str, Any]]:
        """The cells whose status fails the run (`fail_on`: by default every failure; missing_dep and
        no_device are reasons a cell could not run here, not failures)."""
        return [c for c in self.cells if c["status"] in self.fail_on]

    def rows(self) -> list[dict[str, Any]]:
        """The cells as flat rows (convcheck.api.results.COLUMNS): None where a cell measured nothing."""
        from convcheck.api.results import rows

        return rows(self.cells)

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (pandas is optional: `pip install pandas`)."""
        try:
            import pandas
        except ImportError:
            raise ConvcheckError("to_pandas() needs pandas: pip install pandas (or use .rows(), a list of dicts)") \
                from None
        from convcheck.api.results import COLUMNS

        return pandas.DataFrame(self.rows(), columns=list(COLUMNS))

    def table(self) -> str:
        """A plain-text table of the cells (model, route, target, status, error, latency)."""
        from convcheck.api.results import text_table

        return text_table(self.cells)

    def raise_for_failures(self) -> "RunResult":
        """Raise ConversionFailures (an AssertionError whose message is the failing cells' table) when a cell
        fails the run; return this result otherwise, so a script can chain it."""
        from convcheck.api.results import ConversionFailures, summary_line, text_table

        failed = self.failures()
        if failed:
            raise ConversionFailures(f"{len(failed)} of {len(self.cells)} cells failed (run {self.run_id}, "
                                     f"{self.out_dir / 'matrix.html'}):\n{text_table(failed)}\n"
                                     f"all: {summary_line(self.cells)}", failed)
        return self

    def _repr_html_(self) -> str:
        from convcheck.api.results import html_table, summary_line

        return html_table(self.cells, f"convcheck run {self.run_id}", summary_line(self.cells))

    def __repr__(self) -> str:
        from convcheck.api.results import summary_line

        return f"<convcheck results {self.run_id}: {summary_line(self.cells)}; {self.out_dir}>"


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the executor stopped its workers, every finished cell is in the store and
    results.json; `resume(run_id)` finishes it."""

    def __init__(self, run_id: str, out_dir: Path, finished: int, total: int, command: str) -> None:
        super().__init__(f"interrupted: {finished} of {total} cells finished (run {run_id})")
        self.run_id, self.out_dir, self.finished, self.total, self.command = run_id, out_dir, finished, total, command


CellStart = Callable[[Any], None]  # a convcheck.plan.PlannedCell
CellDone = Callable[[dict[str, Any]], None]  # a results.json cell


# -- running -----------------------------------------------------------------------------------------
def plan_cells(options: PlanOptions, specs: list[Any] | None = None) -> list[Any]:
    """The cells `options` expand into (models x routes x targets), without running anything."""
    from convcheck.plan import plan
    from convcheck.routes import given_routes, select_routes

    specs = options.specs() if specs is None else specs
    devices = options.device_list()
    given = [r for spec in specs for r in given_routes(spec)]
    device = None if options.devices in (("auto",), ("all",)) else devices[0]
    chosen = select_routes(None if options.routes is None else ",".join(options.routes), device, given)
    return plan(specs, chosen, devices, options.precision_list())


def run_matrix(options: MatrixOptions, engine: EngineOptions | None = None, report: ReportOptions | None = None,
               *, resume: str | None = None, on_plan: Callable[[list[Any]], None] | None = None,
               on_cell_start: CellStart | None = None, on_cell_done: CellDone | None = None) -> RunResult:
    """Run zoo models (and your files) x routes; write results.json and every report. `resume=RUN`
    finishes that run (give it its own options: `resume(RUN)` does)."""
    if not isinstance(options, MatrixOptions):
        raise ConvcheckError(f"run_matrix takes MatrixOptions, not {type(options).__name__} (check() takes CheckOptions)")
    return execute(options, engine, report, resume=resume, on_plan=on_plan, on_cell_start=on_cell_start,
                   on_cell_done=on_cell_done)


def check(options: CheckOptions, engine: EngineOptions | None = None, report: ReportOptions | None = None,
          *, resume: str | None = None, on_plan: Callable[[list[Any]], None] | None = None,
          on_cell_start: CellStart | None = None, on_cell_done: CellDone | None = None) -> RunResult:
    """Check one model of yours down every route that starts from its format (`convcheck check`)."""
    if not isinstance(options, CheckOptions):
        raise ConvcheckError(f"check takes CheckOptions, not {type(options).__name__} (run_matrix() takes MatrixOptions)")
    return execute(options, engine, report, resume=resume, on_plan=on_plan, on_cell_start=on_cell_start,
                   on_cell_done=on_cell_done)


def resume(run: PathLike, engine: EngineOptions | None = None, report: ReportOptions | None = None, *,
           on_plan: Callable[[list[Any]], None] | None = None, on_cell_start: CellStart | None = None,
           on_cell_done: CellDone | None = None) -> RunResult:
    """Finish a killed or interrupted run (an id, a unique prefix, `latest`, or its folder) with the
    options stored with it: cells it finished are kept, the rest are computed."""
    run_id, command, options = stored_options(run)
    if options is None:
        raise ConvcheckError(f"run {run_id} was recorded before runs kept their options: run it again with "
                             "run_matrix()/check()")
    return execute(options, engine, report, resume=run_id, command=command, on_plan=on_plan,
                   on_cell_start=on_cell_start, on_cell_done=on_cell_done)


def options_for_resume(run: str, kind: str, given: dict[str, Any] | None = None,
                       flags: dict[str, str] | None = None) -> PlanOptions | None:
    """The plan options stored with `run`, to resume it with a `kind` ("matrix", "check") run. Each
    of `given` (field -> value, said again) must say what the run said, or the resumed run would mix
    two plans (`flags` name the fields in the message). None: the run was recorded without them."""
    run_id, command, stored = stored_options(run)
    if command is not None and command != kind:
        raise ConvcheckError(f"run {run_id} was made by `convcheck {command}`: resume it with "
                             f"`convcheck {command} --resume {run_id}`")
    for key, value in (given or {}).items() if stored is not None else ():
        before = getattr(stored, key)
        if getattr(dataclasses.replace(stored, **{key: value}).resolved(), key) != before:
            flag = (flags or {}).get(key, key)
            shown = ",".join(map(str, before)) if isinstance(before, tuple) else before
            raise ConvcheckError(f"--resume {run_id} finishes that run's own plan, but {flag} {value} differs from "
                                 f"it ({shown}): drop {flag}, or start a new run without --resume")
    return stored


def stored_options(run: PathLike) -> tuple[str, str | None, PlanOptions | None]:
    """(run id, the command that planned it, its plan options) from the store; options None for a
    run recorded without them. Reads the form convcheck 0.1 stored too (raw CLI parameters)."""
    from convcheck.store import Store

    run = os.fspath(run)
    folder = Path(run) / "results.json"
    if folder.is_file():  # a run folder
        try:
            run = json.loads(folder.read_text(encoding="utf-8"))["run"]["id"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConvcheckError(f"{folder} is not a convcheck results.json: name a run id or a run folder") from None
    with Store() as store:
        run_id = store.resolve(run)
        invocation = store.settings(run_id).get("invocation")
    if not invocation:
        return run_id, None, None
    if "options" in invocation:
        data = invocation["options"]
        return run_id, invocation["command"], _KINDS[data.get("kind", invocation["command"])].from_dict(data)
    if invocation.get("command") in _KINDS:  # the old form: the CLI's own parameter names
        return run_id, invocation["command"], _from_params(invocation["command"], invocation.get("params", {}))
    return run_id, invocation.get("command"), None


#: CLI parameter name -> option field, where they differ (the stored form before OPTIONS_VERSION 1).
CLI_FIELDS = {"models_": "models", "routes_": "routes", "device": "devices", "precision": "precisions",
              "batch": "batches", "model_file": "model_files", "input_": "input_specs", "inputs": "input_data",
              "toolchain": "toolchains"}


def _from_params(command: str, params: dict[str, Any]) -> PlanOptions:
    cls = _KINDS[command]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{CLI_FIELDS.get(k, k): v for k, v in params.items() if CLI_FIELDS.get(k, k) in names})


def execute(options: PlanOptions, engine: EngineOptions | None = None, report: ReportOptions | None = None, *,
            resume: str | None = None, command: str | None = None, specs: list[Any] | None = None,
            extra: dict[str, Any] | None = None, only: Optional[set[tuple[str, str, str, str]]] = None,
            on_plan: Callable[[list[Any]], None] | None = None,
            on_cell_start: CellStart | None = None, on_cell_done: CellDone | None = None,
            on_env: Callable[[str], None] | None = None) -> RunResult:
    """What run_matrix() and check() do. `command` (default: the options' kind) and `extra` are
    stored with the run beside the options; `specs`, when the caller already built them, are used; `only`
    keeps the planned cells named (model, route, device, precision)."""
    from convcheck.cache import CellCache
    from convcheck.environment import physical_cores
    from convcheck.executors import Limits, make_executor
    from convcheck.engine import run_cells
    from convcheck.paths import cache_dir
    from convcheck.plan import RunSettings
    from convcheck.results import new_run_id
    from convcheck.store import Store
    from convcheck.validate.latency import LatencyConfig

    engine, report = engine or EngineOptions(), report or ReportOptions()
    command = command or options.kind
    cells = plan_cells(options, specs)
    if report.mlflow is not None:  # an unusable store is a usage error now, not after the last cell
        from convcheck.tracking import check_store

        check_store(report.mlflow)
    if only is not None:
        cells = [c for c in cells if (c.spec.name, c.route.id, c.target.device, c.target.precision) in only]
        if not cells:
            raise ConvcheckError("nothing to run: none of the planned cells is among the ones asked for")
    with Store() as store:
        run_id = store.resolve(resume) if resume else new_run_id()
        out_dir = options.out or Path("runs") / run_id
        if out_dir.exists() and not out_dir.is_dir():
            raise ConvcheckError(f"--out {out_dir} is a file: give a folder")
        if resume and extra is None:  # what else the run recorded (an audit's deploy target) stays
            before = store.settings(run_id).get("invocation") or {}
            extra = {k: v for k, v in before.items() if k not in ("command", "options", "params")}
        stored = dataclasses.replace(options, out=out_dir).resolved()
        invocation = {"command": command, "options": stored.to_dict(), **(extra or {})}
        settings = RunSettings(
            workdir=out_dir, size=options.size, samples=options.samples,
            threads=options.threads or physical_cores(), tolerance_override=options.tolerance(),
            batches=options.batches, artifact_cache_dir=None if engine.no_cache else cache_dir(),
            max_artifact_mb=engine.max_artifact_mb or 20480.0,
            latency=LatencyConfig(min_iters=options.bench_iters, min_seconds=options.bench_seconds),
            references=options.references(),
            hop_settings={"tvm_tune_trials": options.tvm_tune, "cache_dir": cache_dir()},
            toolchains=options.toolchains, load=options.load_settings(),
        )
        if on_plan is not None:
            on_plan(cells)
        executor = make_executor(engine.executor, settings, engine.jobs, Limits(engine.timeout, engine.memory_limit),
                                 engine.ray_address)
        cache = CellCache(cache_dir(), enabled=not engine.no_cache, retry_failed=engine.retry_failed)
        try:
            results = run_cells(cells, settings, out_dir, run_id, on_cell_start or (lambda c: None),
                                on_cell_done or (lambda c: None), executor=executor, cache=cache, store=store,
                                resume=bool(resume), invocation=invocation, on_env=on_env)
        except KeyboardInterrupt:
            # The executor has stopped its workers; every finished cell is in the store and results.json.
            raise RunInterrupted(run_id, out_dir, len(store.finished_cells(run_id)), len(cells), command) from None
    return _outputs(results, out_dir, report, options)


def _outputs(results: dict[str, Any], out_dir: Path, report: ReportOptions, options: PlanOptions | None
             ) -> RunResult:
    """The run's last task: lock-in scores over every cell, then results.json and the reports."""
    from convcheck.engine import exit_code
    from convcheck.reports.outputs import score, write_reports
    from convcheck.atomic import write_json_atomic

    fail_on = report.statuses()
    results = score(results, report.lockin_weights)
    write_json_atomic(out_dir / "results.json", results)
    written = write_reports(results, out_dir, fail_on)
    tracking = None
    if report.mlflow is not None:
        from convcheck.tracking import log_run

        tracking = log_run(results, out_dir, report.mlflow)
    return RunResult(results, out_dir, results["run"]["id"], exit_code(results, fail_on), frozenset(fail_on),
                     written, options, tracking)


def render_run(run: str, out: PathLike | None = None, report: ReportOptions | None = None) -> RunResult:
    """Render a run's reports again (`convcheck report RUN`): from a results.json, a run folder, or the
    store (id, prefix, `latest`), into `out` (default: the run's own folder)."""
    report = report or ReportOptions()
    document, where = load_document(run)
    if report.mlflow is not None:
        from convcheck.tracking import check_store

        check_store(report.mlflow)
    return _outputs(document, Path(out) if out is not None else where, report, None)


def load_document(run: str) -> tuple[dict[str, Any], Path]:
    """A results document from a results.json file, a run folder, or the store (id, prefix, latest),
    and the folder it belongs in."""
    path = Path(run)
    if path.is_dir():
        path = path / "results.json"
        if not path.is_file():
            raise ConvcheckError(f"{run} has no results.json: name a run folder, a results.json, or a run id")
    if path.is_file():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            document["cells"], document["run"]["id"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConvcheckError(f"{path} is not a convcheck results.json ({type(exc).__name__}): give the "
                                 "results.json a `convcheck matrix` run wrote") from None
        return document, path.parent
    from convcheck.store import Store

    with Store() as store:
        run_id = store.resolve(run)
        invocation = store.settings(run_id).get("invocation") or {}
        out = (invocation.get("options") or invocation.get("params") or {}).get("out")
        document = store.document(run_id)
    # The run folder's results.json lists cells in plan order; the store in the order they finished.
    saved = Path(out) / "results.json" if out else None
    if saved is not None and saved.is_file():
        try:
            found = json.loads(saved.read_text(encoding="utf-8"))
            if found["run"]["id"] == run_id and len(found["cells"]) == len(document["cells"]):
                document = found
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return document, Path(out) if out else Path("runs") / run_id

