"""The `convcheck` command line.

Importing this module imports no ML framework: `--help`, `routes`, `models` and `doctor` read
registries, class attributes and package metadata only (tests/unit/test_lazy_imports.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from convcheck import __version__
from convcheck.errors import ConvcheckError

app = typer.Typer(
    name="convcheck",
    help="Take models down every conversion route (PyTorch/TF -> ONNX, TFLite, TVM, OpenVINO, TensorRT, "
    "Core ML) and check each converted model still computes the same function, how fast it runs, and "
    "how locked-in the route is.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"convcheck {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the convcheck version and exit."),
) -> None:
    """convcheck: conversion parity, latency and lock-in for every route."""


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def routes(
    device: Optional[str] = typer.Option(None, help="Device to check availability for: cpu, cuda, ane "
                                         "(default: any device the route supports)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table."),
) -> None:
    """List every conversion route and whether it can run on this machine."""
    from convcheck.routes import availability, enumerate_routes
    from convcheck.registry import converters

    rows = []
    for route in enumerate_routes():
        avail = availability(route, device)
        rows.append({
            "route": route.id,
            "converters": [converters.get(c).__name__ for c in route.converters],  # type: ignore[attr-defined]
            "runtime": route.runtime,
            "devices": list(route.devices),
            "precisions": list(route.precisions),
            "status": avail.label,
            "reason": avail.reason,
            "hint": avail.hint,
        })
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"conversion routes (availability on {device or 'this machine'})")
    table.add_column("route", no_wrap=True)
    for col in ("hops", "runtime", "devices", "status"):
        table.add_column(col)
    for r in rows:
        style = "green" if r["status"] == "available" else "yellow"
        status = r["status"] + (f": {r['reason']} — {r['hint']}" if r["hint"] else f": {r['reason']}" if r["reason"] else "")
        table.add_row(Text(r["route"]), Text(" → ".join(r["converters"]) or "—"), Text(r["runtime"]),
                      Text(",".join(r["devices"])), Text(status, style=style))
    console.print(table)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List the model zoo: sources, task and inputs of each model."""
    from convcheck.registry import models as model_registry

    rows = []
    for name, spec in model_registry.items():
        rows.append({
            "model": name,
            "sources": [f.value for f in spec.sources],  # type: ignore[attr-defined]
            "task": spec.task,  # type: ignore[attr-defined]
            "inputs": [i.describe() for i in spec.inputs],  # type: ignore[attr-defined]
            "outputs": list(spec.outputs),  # type: ignore[attr-defined]
            "sizes": list(spec.sizes),  # type: ignore[attr-defined]
            "description": spec.description,  # type: ignore[attr-defined]
        })
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="model zoo")
    for col in ("model", "sources", "task", "sizes", "inputs", "outputs", "description"):
        table.add_column(col)
    for r in rows:
        # Text, not markup: names and descriptions may contain brackets ("[batch]", "x[0]").
        table.add_row(*(Text(v) for v in (r["model"], ",".join(r["sources"]), r["task"], ",".join(r["sizes"]),
                                          " ".join(r["inputs"]), ",".join(r["outputs"]), r["description"])))
    console.print(table)


@app.command()
def doctor(
    imports: bool = typer.Option(True, "--imports/--no-imports",
                                 help="Also import each installed framework in a subprocess to prove it loads."),
) -> None:
    """Show packages, versions, devices and host, and check each framework really imports."""
    from convcheck.doctor import report

    sys.exit(report(console, check_imports=imports))


def _choose(value: str, kind: str, vocabulary: tuple[str, ...], special: dict[str, Any]) -> list[str]:
    """A comma-separated choice from `vocabulary`, or one of the `special` words (each a callable)."""
    if value in special:
        return list(special[value]())
    chosen = _split(value) or [vocabulary[0]]
    for item in chosen:
        if item not in vocabulary:
            raise ConvcheckError(f"unknown {kind} {item!r}: use one of {', '.join([*vocabulary, *special])}")
    return chosen


def _devices(value: str) -> list[str]:
    from convcheck.environment import devices as present
    from convcheck.types import DEVICES

    return _choose(value, "device", DEVICES, {"auto": present, "all": lambda: DEVICES})


def _precisions(value: str) -> list[str]:
    from convcheck.types import PRECISIONS

    return _choose(value, "precision", PRECISIONS, {"all": lambda: PRECISIONS})


# Options shared by `matrix` and `check`.
DEVICE_OPT = typer.Option("auto", "--device", help="Comma-separated devices (cpu, cuda), `auto` (the devices "
                          "this machine has) or `all` (cells on absent devices are recorded as no_device).")
PRECISION_OPT = typer.Option("all", "--precision", help="Comma-separated precisions (fp32, fp16, int8), or `all`: "
                             "every precision each route offers (TFLite fp16/int8, TensorRT fp16, Core ML fp16).")
SAMPLES_OPT = typer.Option(4, "--samples", min=1, help="Seeded input samples compared per cell; the worst counts.")
THREADS_OPT = typer.Option(None, "--threads", min=1, help="Intra-op threads for every runtime (default: the "
                           "machine's physical cores, recorded with every figure).")
ATOL_OPT = typer.Option(None, "--atol", min=0.0, help="Judge every output elementwise with this absolute tolerance "
                        "instead of the precision's profile (fp32: elementwise 1e-4/1e-3; fp16, int8: SNR). "
                        "Give --rtol with it.")
RTOL_OPT = typer.Option(None, "--rtol", min=0.0, help="Relative tolerance that goes with --atol.")
EXECUTOR_OPT = typer.Option("local", "--executor", help="local: cells run in worker processes (a crash, hang or "
                            "runaway memory costs one cell, not the run); ray: as tasks on a Ray cluster (--ray-address; "
                            "without one, a local Ray instance); inline: in this process (debugging).")
RAY_ADDRESS_OPT = typer.Option(None, "--ray-address", help="With --executor ray: the cluster to join (e.g. "
                               "ray://head:10001 or auto); default: start a local Ray instance for this run.")
JOBS_OPT = typer.Option(None, "--jobs", min=1, help="Worker processes at once (default: what this machine can take; "
                        "1 here when every runtime already uses all cores).")
TIMEOUT_OPT = typer.Option(1800.0, "--timeout", min=1.0, help="Seconds one cell may take before its worker is stopped "
                           "(status timeout).")
MEMORY_OPT = typer.Option(None, "--memory-limit", min=64.0, help="MiB of resident memory one worker may use before it "
                          "is stopped (status oom; default: 80% of the machine's memory over --jobs).")
NO_CACHE_OPT = typer.Option(False, "--no-cache", help="Compute every cell, ignoring (and not filling) the cell cache.")
RETRY_OPT = typer.Option(False, "--retry-failed", help="Compute again the cells the cache holds as failed.")
RESUME_OPT = typer.Option(None, "--resume", metavar="RUN", help="Finish a killed or interrupted run (its id, a unique "
                          "prefix, or `latest`) with its own models, routes and settings: cells it finished are "
                          "kept, the rest are computed. Engine options (--jobs, --timeout, ...) may change.")
BATCH_OPT = typer.Option(None, "--batch", help="Comma-separated batch sizes, e.g. 1,8,32: latency and throughput "
                         "per batch where the model's batch axis is dynamic.")
BENCH_SECONDS_OPT = typer.Option(1.0, "--bench-seconds", min=0.0, help="Minimum timed duration per cell, after warm-up.")
BENCH_ITERS_OPT = typer.Option(30, "--bench-iters", min=1, help="Minimum timed iterations per cell.")
TVM_TUNE_OPT = typer.Option(0, "--tvm-tune", min=0, metavar="TRIALS",
                            help="MetaSchedule tuning trials for TVM cells (0: untuned). The tuning database is "
                            "cached per model and target; tuned and untuned latency are both recorded.")
OUT_OPT = typer.Option(None, "--out", help="Output folder (default: runs/<run id>/).")
FAIL_ON_OPT = typer.Option(None, "--fail-on", metavar="STATUS,...", help="Statuses that make the exit code 1 and "
                           "a JUnit <failure>: status names, `failures` (default: mismatch, vacuous, convert_error, "
                           "unsupported, runtime_error, crashed, timeout, oom, upstream_failed, internal_error), `all`, or `none`. "
                           "missing_dep and no_device (could not run here) fail only when named.")
LOCKIN_WEIGHTS_OPT = typer.Option(None, "--lockin-weights", metavar="FILE", help="A JSON file overriding the lock-in "
                                  "score's weights and facts (see convcheck/reports/data/lockin.json).")
MAX_ARTIFACT_OPT = typer.Option(20480.0, "--max-artifact-mb", min=0.01, help="A conversion that writes more than "
                                "this many MiB is refused (convert_error) and its output deleted: a model or "
                                "converter must not fill the disk.")
DRY_RUN_OPT = typer.Option(False, "--dry-run", help="Print the plan (cells and the stage tasks they share) and exit "
                           "without running anything.")


def _tolerance(atol: Optional[float], rtol: Optional[float]) -> Optional[dict]:
    if atol is None and rtol is None:
        return None
    if atol is None or rtol is None:
        raise ConvcheckError("--atol and --rtol go together: give both (e.g. --atol 1e-3 --rtol 1e-2)")
    return {"atol": atol, "rtol": rtol}


def _engine(executor: str, jobs: Optional[int], timeout: float, memory_limit: Optional[float], no_cache: bool,
            retry_failed: bool, resume: Optional[str], ray_address: Optional[str] = None,
            dry_run: bool = False, max_artifact_mb: float | None = None) -> dict:
    from convcheck.executors import executor_names

    if executor not in executor_names():
        raise ConvcheckError(f"unknown --executor {executor!r}: use {' or '.join(executor_names())}")
    if ray_address and executor != "ray":
        raise ConvcheckError("--ray-address goes with --executor ray")
    return {"executor": executor, "jobs": jobs, "timeout": timeout, "memory_limit": memory_limit,
            "no_cache": no_cache, "retry_failed": retry_failed, "resume": resume, "ray_address": ray_address,
            "dry_run": dry_run, "max_artifact_mb": max_artifact_mb}


def _batches(value: Optional[str]) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        sizes = tuple(dict.fromkeys(int(v) for v in value.split(",") if v.strip()))
    except ValueError:
        raise ConvcheckError(f"--batch {value!r}: give batch sizes joined by commas, e.g. 1,8,32") from None
    if not sizes or any(b < 1 for b in sizes):
        raise ConvcheckError(f"--batch {value!r}: batch sizes must be 1 or more")
    return sizes

#: The options of `matrix` and `check` that decide *what* a run computes (its plan), by parameter name.
#: They are stored with the run; `--resume RUN` replays them. The engine options (--jobs, --timeout,
#: --executor, ...) decide only *how*, and may differ on a resume.
MATRIX_PLAN = ("models_", "routes_", "out", "size", "device", "precision", "samples", "threads", "bench_seconds",
               "bench_iters", "tvm_tune", "atol", "rtol", "batch", "model_file", "input_")
CHECK_PLAN = ("model", "source", "signature", "routes_", "input_", "inputs", "reference", "out", "device",
              "precision", "samples", "threads", "bench_seconds", "bench_iters", "tvm_tune", "atol", "rtol", "batch")
#: Plan options naming files: stored as absolute paths, so a resume works from any folder.
_PATH_PARAMS = ("out", "model_file", "inputs", "model", "source")


def _as_stored(name: str, value: Any) -> Any:
    def one(v: Any) -> Any:
        if name in _PATH_PARAMS and v is not None and (isinstance(v, Path) or Path(str(v)).exists()):
            return str(Path(v).resolve())
        return str(v) if isinstance(v, Path) else v

    return [one(v) for v in value] if isinstance(value, (list, tuple)) else one(value)


def _plan_params(ctx: typer.Context, command: str, given: dict[str, Any], resume: Optional[str]) -> dict[str, Any]:
    """The plan options to run: the command line's; with `--resume RUN`, the ones stored with RUN (an
    option given again must say the same thing, or the resumed run would mix two plans)."""
    params = {name: _as_stored(name, value) for name, value in given.items()}
    if not resume:
        return params
    from convcheck.store import Store

    with Store() as store:
        run_id = store.resolve(resume)
        invocation = store.settings(run_id).get("invocation")
    if invocation is None:  # recorded before runs kept their plan: the command line must repeat it
        return params
    if invocation["command"] != command:
        raise ConvcheckError(f"run {run_id} was made by `convcheck {invocation['command']}`: resume it with "
                             f"`convcheck {invocation['command']} --resume {run_id}`")
    stored = invocation["params"]
    flags = {p.name: (p.opts[0] if p.opts and p.opts[0].startswith("-") else p.name.upper()) for p in ctx.command.params}
    for name, value in params.items():
        # By name: typer ships its own copy of click, whose ParameterSource is not click's.
        source = ctx.get_parameter_source(name)
        explicit = getattr(source, "name", "") in ("COMMANDLINE", "ENVIRONMENT")
        if explicit and value != stored.get(name):
            flag = flags.get(name, name)
            raise ConvcheckError(f"--resume {run_id} finishes that run's own plan, but {flag} {value} differs from "
                                 f"it ({stored.get(name)}): drop {flag}, or start a new run without --resume")
    return {name: stored.get(name, params.get(name)) for name in params}


def _fail_on_and_weights(reporting: dict) -> set[str]:
    """Check --fail-on and --lockin-weights before any work (a typo must not cost a whole run)."""
    from convcheck.reports.lockin import load_lockin_data
    from convcheck.reports.outputs import parse_fail_on

    load_lockin_data(reporting.get("lockin_weights"))
    return parse_fail_on(reporting.get("fail_on"))


def _finish(results: dict, out_dir: Path, lockin_weights: Optional[Path], fail_on: set[str]) -> dict:
    """The run's last task: lock-in scores over every cell, then results.json and the reports."""
    from convcheck.reports import terminal
    from convcheck.reports.outputs import score, write_reports
    from convcheck.results import write_json_atomic

    results = score(results, lockin_weights)
    write_json_atomic(out_dir / "results.json", results)
    written = write_reports(results, out_dir, fail_on)
    terminal.render(results, console, fail_on)
    console.print(f"\nresults: {out_dir / 'results.json'}\nreports: {written['matrix.html']}, "
                  f"{written['matrix.md']}, {written['junit.xml']}, {out_dir / 'models'}/")
    return results


def _print_plan(cells: list) -> None:  # noqa: ANN001
    from convcheck.dag import build_dag, describe

    dag = build_dag(cells)
    counts = dag.counts()
    console.print(f"{len(cells)} cells over {len({c.spec.name for c in cells})} models: "
                  f"{counts['reference']} reference runs, {counts['convert']} conversions, "
                  f"{counts['cell']} load/run/compare/benchmark tasks, then the lock-in score.")
    shared = dag.shared()
    if shared:
        console.print(f"{len(shared)} tasks feed more than one cell, e.g.:")
        for task in shared[:12]:
            console.print(f"  {describe(task.id)} -> {len(task.cells)} cells", highlight=False, markup=False)
    for index, planned in enumerate(cells):
        t = planned.target
        console.print(f"  {planned.spec.name} × {planned.route.id} [{t.device} {t.precision}]", highlight=False,
                      markup=False)


def _run_and_report(specs: list, routes_arg: Optional[str], device: str, precision: str, out: Optional[Path],
                    size: str, samples: int, threads: Optional[int], bench_seconds: float, bench_iters: int,
                    tvm_tune: int, references: Optional[dict] = None, tolerance: Optional[dict] = None,
                    batches: tuple[int, ...] = (), engine: Optional[dict] = None,
                    invocation: Optional[dict] = None, reporting: Optional[dict] = None,
                    after: Optional[Any] = None) -> None:
    """Plan, run with a progress bar, print the table, exit 0/1 (shared by `matrix` and `check`).

    `invocation` (the command and its plan options) is stored with the run, so `--resume RUN` can
    re-plan it without the command line."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from convcheck.matrix import exit_code, run_cells
    from convcheck.plan import plan
    from convcheck.paths import cache_dir
    from convcheck.plan import RunSettings
    from convcheck.reports import terminal
    from convcheck.results import new_run_id
    from convcheck.routes import given_routes, select_routes
    from convcheck.types import Status
    from convcheck.validate.latency import LatencyConfig

    devices = _devices(device)
    precisions = _precisions(precision)
    given = [r for spec in specs for r in given_routes(spec)]
    chosen = select_routes(routes_arg, None if device in ("auto", "all") else devices[0], given)
    cells = plan(specs, chosen, devices, precisions)
    engine, reporting = engine or {}, reporting or {}
    fail_on = _fail_on_and_weights(reporting)
    if engine.get("dry_run"):
        _print_plan(cells)
        raise typer.Exit(0)
    from convcheck.store import Store

    store = Store()
    run_id = store.resolve(engine["resume"]) if engine.get("resume") else new_run_id()
    out_dir = out or Path("runs") / run_id
    if out_dir.exists() and not out_dir.is_dir():
        raise ConvcheckError(f"--out {out_dir} is a file: give a folder")
    if invocation is not None:
        invocation = {**invocation, "params": {**invocation["params"], "out": str(out_dir.resolve())}}
    from convcheck.environment import physical_cores

    settings = RunSettings(
        workdir=out_dir, size=size, samples=samples, threads=threads or physical_cores(),
        tolerance_override=tolerance, batches=batches,
        artifact_cache_dir=None if (engine or {}).get("no_cache") else cache_dir(),
        max_artifact_mb=engine.get("max_artifact_mb") or 20480.0,
        latency=LatencyConfig(min_iters=bench_iters, min_seconds=bench_seconds),
        references=references or {},
        hop_settings={"tvm_tune_trials": tvm_tune, "cache_dir": cache_dir()},
    )
    failing = 0
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failing]} failing"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("matrix", total=len(cells), failing=0)

        def started(planned) -> None:  # noqa: ANN001
            progress.update(task, description=f"{planned.spec.name} × {planned.route.id}")

        def done(cell: dict) -> None:
            nonlocal failing
            failing += Status(cell["status"]).is_failure
            progress.update(task, advance=1, failing=failing)

        from convcheck.cache import CellCache
        from convcheck.executors import Limits, make_executor

        executor = make_executor(engine.get("executor", "inline"), settings, engine.get("jobs"),
                                 Limits(engine.get("timeout", 1800.0), engine.get("memory_limit")),
                                 engine.get("ray_address"))
        cache = CellCache(cache_dir(), enabled=not engine.get("no_cache"), retry_failed=engine.get("retry_failed", False))
        try:
            results = run_cells(cells, settings, out_dir, run_id, started, done, executor=executor, cache=cache,
                                 store=store, resume=bool(engine.get("resume")), invocation=invocation)
        except KeyboardInterrupt:
            # The executor has stopped its workers; every finished cell is in the store and results.json.
            kept = len(store.finished_cells(run_id))
            command = (invocation or {}).get("command", "matrix")
            progress.stop()
            err_console.print(f"interrupted: {kept} of {len(cells)} cells finished and are kept in "
                              f"{out_dir / 'results.json'} and the run store; finish the run with "
                              f"`convcheck {command} --resume {run_id}`", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
        finally:
            store.close()
    results = _finish(results, out_dir, reporting.get("lockin_weights"), fail_on)
    if after is not None:  # `audit`: its own report from the same document
        after(results, out_dir)
    raise typer.Exit(exit_code(results, fail_on))


@app.command()
def matrix(
    ctx: typer.Context,
    models_: Optional[str] = typer.Option(None, "--models", help="Comma-separated zoo models, or `all` (default: all)."),
    routes_: Optional[str] = typer.Option(None, "--routes",
                                          help="Comma-separated route ids (see `convcheck routes`), or `all` "
                                          "(default: every route available here)."),
    out: Optional[Path] = OUT_OPT,
    size: str = typer.Option("full", help="Zoo model size: full (default) or tiny (seconds, for smoke tests)."),
    device: str = DEVICE_OPT,
    precision: str = PRECISION_OPT,
    samples: int = SAMPLES_OPT,
    threads: Optional[int] = THREADS_OPT,
    bench_seconds: float = BENCH_SECONDS_OPT,
    bench_iters: int = BENCH_ITERS_OPT,
    tvm_tune: int = TVM_TUNE_OPT,
    atol: Optional[float] = ATOL_OPT,
    rtol: Optional[float] = RTOL_OPT,
    batch: Optional[str] = BATCH_OPT,
    executor: str = EXECUTOR_OPT,
    ray_address: Optional[str] = RAY_ADDRESS_OPT,
    jobs: Optional[int] = JOBS_OPT,
    timeout: float = TIMEOUT_OPT,
    memory_limit: Optional[float] = MEMORY_OPT,
    no_cache: bool = NO_CACHE_OPT,
    retry_failed: bool = RETRY_OPT,
    resume: Optional[str] = RESUME_OPT,
    fail_on: Optional[str] = FAIL_ON_OPT,
    lockin_weights: Optional[Path] = LOCKIN_WEIGHTS_OPT,
    dry_run: bool = DRY_RUN_OPT,
    max_artifact_mb: float = MAX_ARTIFACT_OPT,
    model_file: Optional[list[str]] = typer.Option(None, "--model-file", help="Your own model (any format "
                                                   "`convcheck check` reads) added to the matrix; repeatable. With "
                                                   "--model-file and no --models, only your models run."),
    input_: Optional[list[str]] = typer.Option(None, "--input", help="NAME:SHAPE:DTYPE[:LOW..HIGH] for --model-file "
                                               "inputs the file leaves open. Repeatable."),
) -> None:
    """Run zoo models x routes: convert, run, compare with the source framework, time. Writes results.json."""
    given = {name: value for name, value in locals().items() if name in MATRIX_PLAN}
    p = _plan_params(ctx, "matrix", given, resume)
    from convcheck.plan import select_models

    if p["size"] not in ("full", "tiny"):
        raise ConvcheckError(f"unknown size {p['size']!r}: use full or tiny")
    _devices(p["device"]), _precisions(p["precision"])  # usage errors before any work
    tolerance, batches = _tolerance(p["atol"], p["rtol"]), _batches(p["batch"])
    specs = select_models(p["models_"]) if p["models_"] or not p["model_file"] else []
    if p["model_file"]:
        from convcheck.zoo.user_files import spec_for_model

        specs += [spec_for_model(f, p["input_"] or [], None) for f in p["model_file"]]
    out_dir = Path(p["out"]) if p["out"] else None
    _run_and_report(specs, p["routes_"], p["device"], p["precision"], out_dir, p["size"], p["samples"], p["threads"],
                    p["bench_seconds"], p["bench_iters"], p["tvm_tune"], tolerance=tolerance, batches=batches,
                    engine=_engine(executor, jobs, timeout, memory_limit, no_cache, retry_failed, resume, ray_address,
                                   dry_run, max_artifact_mb),
                    invocation={"command": "matrix", "params": p},
                    reporting={"fail_on": fail_on, "lockin_weights": lockin_weights})


@app.command()
def check(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, show_default=False, help="Your model (required unless --resume): a .onnx file (external data beside it), a .pt2 "
                                "(torch.export), a TorchScript archive (.pt/.ts), a .keras file, a TensorFlow "
                                "SavedModel folder, a .tflite file, or package.module:factory returning "
                                "(model, example_inputs)."),
    source: Optional[str] = typer.Option(None, "--source", help="For a .tflite you converted yourself: the model it "
                                         "came from (any format above). The .tflite is run as it is and compared "
                                         "with that model. Without --source a .tflite is compared with LiteRT's "
                                         "reference kernels and converted onward with tf2onnx."),
    signature: Optional[str] = typer.Option(None, "--signature", help="For a SavedModel: the signature to check "
                                            "(default: serving_default, or the only one)."),
    routes_: Optional[str] = typer.Option(None, "--routes", help="Comma-separated route ids starting from the "
                                          "model's format, or `all` (default: every one available here)."),
    input_: Optional[list[str]] = typer.Option(None, "--input", help="NAME:SHAPE:DTYPE[:LOW..HIGH] for an input whose "
                                               "shape the file leaves open, or to set its value range, e.g. "
                                               "ids:1x128:int64:0..30522. Repeatable."),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help="A .npz with one array per input name: your own data "
                                          "instead of random inputs. Stack several samples on a new first axis; each "
                                          "is compared and the worst counts."),
    reference: str = typer.Option("ort", "--reference", help="For ONNX files, what the routes are compared against: "
                                  "`ort` (ONNX Runtime CPU, optimisations off) or `onnx-reference` (the ONNX spec's "
                                  "evaluator). Other formats are compared with their own framework."),
    out: Optional[Path] = OUT_OPT,
    device: str = DEVICE_OPT,
    precision: str = PRECISION_OPT,
    samples: int = SAMPLES_OPT,
    threads: Optional[int] = THREADS_OPT,
    bench_seconds: float = BENCH_SECONDS_OPT,
    bench_iters: int = BENCH_ITERS_OPT,
    tvm_tune: int = TVM_TUNE_OPT,
    atol: Optional[float] = ATOL_OPT,
    rtol: Optional[float] = RTOL_OPT,
    batch: Optional[str] = BATCH_OPT,
    executor: str = EXECUTOR_OPT,
    ray_address: Optional[str] = RAY_ADDRESS_OPT,
    jobs: Optional[int] = JOBS_OPT,
    timeout: float = TIMEOUT_OPT,
    memory_limit: Optional[float] = MEMORY_OPT,
    no_cache: bool = NO_CACHE_OPT,
    retry_failed: bool = RETRY_OPT,
    resume: Optional[str] = RESUME_OPT,
    fail_on: Optional[str] = FAIL_ON_OPT,
    lockin_weights: Optional[Path] = LOCKIN_WEIGHTS_OPT,
    dry_run: bool = DRY_RUN_OPT,
    max_artifact_mb: float = MAX_ARTIFACT_OPT,
) -> None:
    """Check your own model down every route that starts from its format. Writes results.json."""
    given = {name: value for name, value in locals().items() if name in CHECK_PLAN}
    p = _plan_params(ctx, "check", given, resume)
    if not p["model"]:
        raise ConvcheckError("name the model to check: `convcheck check MODEL` (or finish a run with --resume RUN)")
    from convcheck.routes import REFERENCE_CHOICES
    from convcheck.types import Format

    _devices(p["device"]), _precisions(p["precision"])
    tolerance, batches = _tolerance(p["atol"], p["rtol"]), _batches(p["batch"])
    choices = REFERENCE_CHOICES[Format.ONNX]
    if p["reference"] not in choices:
        raise ConvcheckError(f"unknown --reference {p['reference']!r}: use {' or '.join(choices)}")
    from convcheck.zoo.user_files import spec_for_model

    spec = spec_for_model(p["model"], p["input_"] or [], Path(p["inputs"]) if p["inputs"] else None,
                          source=p["source"], signature=p["signature"])
    out_dir = Path(p["out"]) if p["out"] else None
    _run_and_report([spec], p["routes_"], p["device"], p["precision"], out_dir, "full", p["samples"], p["threads"],
                    p["bench_seconds"], p["bench_iters"], p["tvm_tune"],
                    references={Format.ONNX: choices[p["reference"]]}, tolerance=tolerance, batches=batches,
                    engine=_engine(executor, jobs, timeout, memory_limit, no_cache, retry_failed, resume, ray_address,
                                   dry_run, max_artifact_mb),
                    invocation={"command": "check", "params": p},
                    reporting={"fail_on": fail_on, "lockin_weights": lockin_weights})


def _load_document(run: str) -> tuple[dict, Optional[Path]]:
    """A results document from a results.json file, a run folder, or the store (id, prefix, latest)."""
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
        out = (store.settings(run_id).get("invocation") or {}).get("params", {}).get("out")
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


@app.command()
def report(
    run: str = typer.Argument(..., help="A run id (or unique prefix, `latest`, `previous`) from the store, a run "
                              "folder, or a results.json file."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the reports (default: the run's own folder)."),
    fail_on: Optional[str] = FAIL_ON_OPT,
    lockin_weights: Optional[Path] = LOCKIN_WEIGHTS_OPT,
) -> None:
    """Render a run's reports again (matrix.md, matrix.html, junit.xml, models/*), e.g. with other lock-in
    weights or --fail-on. Exit status as `matrix`: 1 when a cell has a status in --fail-on."""
    from convcheck.matrix import exit_code

    fail_on_set = _fail_on_and_weights({"fail_on": fail_on, "lockin_weights": lockin_weights})
    document, where = _load_document(run)
    results = _finish(document, out or where, lockin_weights, fail_on_set)
    raise typer.Exit(exit_code(results, fail_on_set))


@app.command()
def audit(
    model: str = typer.Argument(..., help="A zoo model name (see `convcheck models`) or your own model file, as "
                                "`convcheck check` takes it."),
    deploy: str = typer.Option(..., "--deploy", metavar="TARGET", help="Deployment profile: cpu-server, nvidia-gpu, "
                               "apple, mobile, edge-cpu (which routes, devices and precisions it means: "
                               "convcheck/reports/data/deploy_profiles.json)."),
    latency_budget_ms: Optional[float] = typer.Option(None, "--latency-budget-ms", min=0.0, help="Latency budget: a "
                                                      "route's p99 per call, at the batch it was measured with, must "
                                                      "be within it to be recommended."),
    price_per_hour: Optional[float] = typer.Option(None, "--price-per-hour", min=0.0, metavar="USD", help="What one "
                                                   "instance of the target costs per hour: turns throughput into "
                                                   "a cost per million inferences per route."),
    traffic: Optional[float] = typer.Option(None, "--traffic", min=0.0, metavar="PER_SECOND", help="Expected "
                                            "inferences per second: instances needed and monthly cost per route."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: runs/<run id>/): audit.md, "
                                       "audit.html, audit.json beside the matrix reports."),
    size: str = typer.Option("full", help="Zoo model size: full (default) or tiny."),
    input_: Optional[list[str]] = typer.Option(None, "--input", help="As for `check`: NAME:SHAPE:DTYPE[:LOW..HIGH]."),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help="As for `check`: a .npz of your own inputs."),
    samples: int = SAMPLES_OPT,
    threads: Optional[int] = THREADS_OPT,
    bench_seconds: float = BENCH_SECONDS_OPT,
    bench_iters: int = BENCH_ITERS_OPT,
    jobs: Optional[int] = JOBS_OPT,
    timeout: float = TIMEOUT_OPT,
    memory_limit: Optional[float] = MEMORY_OPT,
    no_cache: bool = NO_CACHE_OPT,
    lockin_weights: Optional[Path] = LOCKIN_WEIGHTS_OPT,
) -> None:
    """Portability audit of one model for a deployment target: runs the routes that target means, then
    recommends a primary route and a fallback from the evidence (parity, latency against the budget,
    memory, lock-in), with the triggers that would change the choice. Exit status 0 when a route is
    recommended, 1 when none can be."""
    from fnmatch import fnmatch

    from convcheck.registry import models as zoo
    from convcheck.reports.audit import profile as deploy_profile
    from convcheck.routes import enumerate_routes, given_routes

    prof = deploy_profile(deploy)
    if size not in ("full", "tiny"):
        raise ConvcheckError(f"unknown size {size!r}: use full or tiny")
    if model in zoo.names() and not Path(model).exists():
        spec = zoo.get(model)
        if input_ or inputs:
            raise ConvcheckError("--input/--inputs are for your own model files; zoo models bring their inputs")
    else:
        from convcheck.zoo.user_files import spec_for_model

        spec = spec_for_model(model, input_ or [], inputs)
        size = "full"
    candidates = [r for r in [*given_routes(spec), *enumerate_routes()]
                  if r.source in spec.sources and any(fnmatch(r.id, pattern) for pattern in prof["routes"])]
    if not candidates:
        raise ConvcheckError(f"no route of the {deploy} profile starts from {spec.name}'s formats "
                             f"({', '.join(f.value for f in spec.sources)})")

    def write_audit(results: dict, out_dir: Path) -> None:
        from convcheck.reports.audit import build_audit, render_audit_html, render_audit_md
        from convcheck.reports.outputs import _write
        from convcheck.results import write_json_atomic

        found = build_audit(results, spec.name, prof, latency_budget_ms, price_per_hour, traffic)
        write_json_atomic(out_dir / "audit.json", found)
        _write(out_dir / "audit.md", render_audit_md(found))
        _write(out_dir / "audit.html", render_audit_html(found))
        rec = found["recommendation"]
        primary, fallback = rec.get("primary"), rec.get("fallback")
        console.print()
        if primary:
            console.print(Text(f"recommended for {deploy}: {primary['id']}", style="bold green"))
            if fallback:
                console.print(Text(f"fallback: {fallback['id']}"))
        else:
            console.print(Text(f"no route can be recommended for {deploy}: {rec.get('none_reason')}", style="bold red"))
        console.print(f"audit: {out_dir / 'audit.html'}, {out_dir / 'audit.md'}, {out_dir / 'audit.json'}")
        raise typer.Exit(0 if primary else 1)

    _run_and_report([spec], ",".join(r.id for r in candidates), ",".join(prof["devices"]),
                    ",".join(prof["precisions"]), out, size, samples, threads, bench_seconds, bench_iters, 0,
                    engine=_engine("local", jobs, timeout, memory_limit, no_cache, False, None),
                    invocation={"command": "audit", "params": {"model": _as_stored("model", model), "deploy": deploy}},
                    reporting={"fail_on": "none", "lockin_weights": lockin_weights}, after=write_audit)


@app.command()
def runs(limit: int = typer.Option(20, "--limit", min=1, help="How many runs, newest first.")) -> None:
    """List the runs in the store: id, when, how many cells, their statuses."""
    from rich.table import Table

    from convcheck.store import Store

    with Store() as store:
        found = store.runs()[:limit]
    if not found:
        console.print("no runs yet: `convcheck matrix` records every run here")
        return
    table = Table("run", "started", "finished", "cells", "statuses")
    for run in found:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(run["summary"].items(), key=lambda kv: -kv[1]))
        table.add_row(run["id"], run["started"] or "", run["finished"] or "[yellow]unfinished[/yellow]",
                      str(run["cells"]), statuses)
    console.print(table)


@app.command()
def diff(
    run_a: str = typer.Argument(..., help="The run before (id, unique prefix, `previous`)."),
    run_b: str = typer.Argument(..., help="The run after (id, unique prefix, `latest`)."),
) -> None:
    """What changed between two runs: statuses, and parity or latency moves beyond the measurement noise.

    Exit status 1 when a cell got worse (a status that fails, or parity/latency worse), else 0."""
    from convcheck.diff import diff_runs, render_diff
    from convcheck.store import Store
    from convcheck.types import Status

    with Store() as store:
        a, b = store.document(store.resolve(run_a)), store.document(store.resolve(run_b))
    entries = diff_runs(a, b)
    console.print(render_diff(entries), highlight=False, markup=False)
    worse = any((e["kind"] == "status" and Status(e["after"]).is_failure) or
                (e["kind"] in ("parity", "latency") and e["detail"].startswith(("worse", "slower")))
                for e in entries)
    raise typer.Exit(1 if worse else 0)


cache_app = typer.Typer(help="The cell cache (under CONVCHECK_HOME): what it holds, and clearing it.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info() -> None:
    """Where the cache is and what it holds."""
    from convcheck import cache
    from convcheck.paths import cache_dir

    found = cache.info(cache_dir())
    console.print(f"{found['folder']}: {found['cells']} cached cells ({found['cell_bytes'] / 2**20:.1f} MiB), "
                  f"{found['other_files']} other files ({found['other_bytes'] / 2**20:.1f} MiB: tuning records)")


@cache_app.command("clear")
def cache_clear() -> None:
    """Remove every cached cell and tuning record (the run store and run folders are kept)."""
    from convcheck import cache
    from convcheck.paths import cache_dir

    console.print(f"removed {cache.clear(cache_dir())} cached cells from {cache_dir()}")


def main() -> None:
    try:
        app()
    except ConvcheckError as exc:
        from rich.markup import escape

        # One line, whatever the message quotes from a model (a name with a newline could forge a second line).
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(exc))
        err_console.print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
