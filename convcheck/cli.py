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
from rich.table import Table
from rich.text import Text

from convcheck.cli_options import (
    DEVICE_OPT, PRECISION_OPT, SAMPLES_OPT, THREADS_OPT, ATOL_OPT, RTOL_OPT, EXECUTOR_OPT, RAY_ADDRESS_OPT,
    JOBS_OPT, TIMEOUT_OPT, MEMORY_OPT, NO_CACHE_OPT, RETRY_OPT, RESUME_OPT, BATCH_OPT, BENCH_SECONDS_OPT,
    BENCH_ITERS_OPT, TVM_TUNE_OPT, TOOLCHAIN_OPT, OUT_OPT, FAIL_ON_OPT, LOCKIN_WEIGHTS_OPT, MLFLOW_OPT, MAX_ARTIFACT_OPT, DRY_RUN_OPT,
)
from convcheck.cli_run import _print_plan, _print_result, _run, console, err_console  # noqa: F401 - shared with cli_load
from convcheck.errors import ConvcheckError
from convcheck.version import __version__

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
            # Where its cells run: a toolchain environment of its own (convcheck.toolchains), made on first use.
            "toolchain": [t.name for t in route.toolchains],
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
        if r["toolchain"] and r["status"] == "available":
            status += f" (in the {'+'.join(r['toolchain'])} environment, made on first use)"
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



# Options shared by `matrix` and `check`.
def _fields(cls: Any, params: dict[str, Any], explicit: Optional[typer.Context] = None) -> dict[str, Any]:
    """The fields of option class `cls` among a command's parameters (renamed: convcheck.api.CLI_FIELDS);
    with `explicit`, only those its command line gives."""
    from dataclasses import fields

    from convcheck.api import CLI_FIELDS

    names = {f.name for f in fields(cls)}
    # By name: typer ships its own copy of click, whose ParameterSource is not click's.
    return {CLI_FIELDS.get(n, n): v for n, v in params.items() if CLI_FIELDS.get(n, n) in names and (
        explicit is None or getattr(explicit.get_parameter_source(n), "name", "") in ("COMMANDLINE", "ENVIRONMENT"))}


def _plan_options(ctx: typer.Context, cls: Any, params: dict[str, Any]) -> Any:
    """The plan options to run: the command line's; with `--resume RUN`, the ones stored with RUN (an
    option given again must say the same thing: convcheck.api.options_for_resume)."""
    from convcheck.api import CLI_FIELDS, options_for_resume

    if params["resume"]:
        flags = {CLI_FIELDS.get(p.name, p.name): p.opts[0] if p.opts and p.opts[0].startswith("-") else p.name.upper()
                 for p in ctx.command.params}
        stored = options_for_resume(params["resume"], cls.kind, _fields(cls, params, ctx), flags)
        if stored is not None:  # else recorded before runs kept their plan: the command line must repeat it
            return stored
    return cls(**_fields(cls, params))


def _plan_and_run(ctx: typer.Context, command: str, params: dict[str, Any]) -> None:
    """`matrix` and `check`: their parameters into options, the run, the exit code."""
    from convcheck.api import CheckOptions, EngineOptions, MatrixOptions, ReportOptions

    options = _plan_options(ctx, {"matrix": MatrixOptions, "check": CheckOptions}[command], params)
    engine, report = EngineOptions(**_fields(EngineOptions, params)), ReportOptions(**_fields(ReportOptions, params))
    result = _run(options, engine, report, params["resume"], params["dry_run"])
    raise typer.Exit(result.exit_code)


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
    toolchain: Optional[list[str]] = TOOLCHAIN_OPT,
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
    mlflow: Optional[str] = MLFLOW_OPT,
    dry_run: bool = DRY_RUN_OPT,
    max_artifact_mb: float = MAX_ARTIFACT_OPT,
    model_file: Optional[list[str]] = typer.Option(None, "--model-file", help="Your own model (any format "
                                                   "`convcheck check` reads) added to the matrix; repeatable. With "
                                                   "--model-file and no --models, only your models run."),
    input_: Optional[list[str]] = typer.Option(None, "--input", help="NAME:SHAPE:DTYPE[:LOW..HIGH] for --model-file "
                                               "inputs the file leaves open. Repeatable."),
) -> None:
    """Run zoo models x routes: convert, run, compare with the source framework, time. Writes results.json."""
    _plan_and_run(ctx, "matrix", dict(locals()))


@app.command()
def check(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, show_default=False, help="Your model (required unless --resume): a .onnx file (external data beside it), a .pt2 "
                                "(torch.export), a TorchScript archive (.pt/.ts), a .keras file, a TensorFlow "
                                "SavedModel folder, a .tflite file, a .mlpackage (with --source), or "
                                "package.module:factory returning (model, example_inputs)."),
    source: Optional[str] = typer.Option(None, "--source", help="For a .tflite or .mlpackage you converted yourself: "
                                         "the model it came from (any format above). The file is run as it is and "
                                         "compared with that model (a .mlpackage off macOS on convcheck's MIL "
                                         "executor). Without --source a .tflite is compared with LiteRT's "
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
    examples: Optional[Path] = typer.Option(None, "--examples", help="A .npz with one example batch per input name "
                                            "(what the Python API writes for a live model): the first parity "
                                            "sample, with seeded random samples of the same shapes and value "
                                            "ranges after it. Use --inputs instead to give every sample."),
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
    toolchain: Optional[list[str]] = TOOLCHAIN_OPT,
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
    mlflow: Optional[str] = MLFLOW_OPT,
    dry_run: bool = DRY_RUN_OPT,
    max_artifact_mb: float = MAX_ARTIFACT_OPT,
) -> None:
    """Check your own model down every route that starts from its format. Writes results.json."""
    _plan_and_run(ctx, "check", dict(locals()))


@app.command()
def report(
    run: str = typer.Argument(..., help="A run id (or unique prefix, `latest`, `previous`) from the store, a run "
                              "folder, or a results.json file."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the reports (default: the run's own folder)."),
    fail_on: Optional[str] = FAIL_ON_OPT,
    lockin_weights: Optional[Path] = LOCKIN_WEIGHTS_OPT,
    mlflow: Optional[str] = MLFLOW_OPT,
) -> None:
    """Render a run's reports again (matrix.md, matrix.html, junit.xml, models/*), e.g. with other lock-in
    weights or --fail-on. Exit status as `matrix`: 1 when a cell has a status in --fail-on."""
    from convcheck.api import ReportOptions, render_run

    result = render_run(run, out, ReportOptions(fail_on=fail_on, lockin_weights=lockin_weights, mlflow=mlflow))
    _print_result(result)
    raise typer.Exit(result.exit_code)


@app.command()
def audit(
    model: str = typer.Argument(..., help="A zoo model name (see `convcheck models`) or your own model file, as "
                                "`convcheck check` takes it."),
    deploy: str = typer.Option(..., "--deploy", metavar="TARGET", help="Deployment profile: cpu-server, nvidia-gpu, "
                               "apple, mobile, edge-cpu (which routes, devices and precisions it means: "
                               "convcheck/reports/data/deploy_profiles.json)."),
    latency_budget_ms: Optional[float] = typer.Option(None, "--latency-budget-ms", min=0.0, help="Latency budget: a "
                                                      "route's p99 per call, at the batch it was measured with, must "
                                                      "be within it to be recommended; with --traffic, the p99 of "
                                                      "LoadGen's Server scenario at that traffic."),
    price_per_hour: Optional[float] = typer.Option(None, "--price-per-hour", min=0.0, metavar="USD", help="What one "
                                                   "instance of the target costs per hour: turns throughput into "
                                                   "a cost per million inferences per route."),
    traffic: Optional[float] = typer.Option(None, "--traffic", min=0.0, metavar="PER_SECOND", help="Expected "
                                            "inferences (rows) per second: instances needed and monthly cost per "
                                            "route. With --latency-budget-ms, each passing route is served at this "
                                            "traffic under MLPerf LoadGen (Server scenario) and its capacity measured."),
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
    mlflow: Optional[str] = MLFLOW_OPT,
    load_duration: float = typer.Option(5.0, "--load-duration", metavar="SECONDS", help="With --latency-budget-ms and "
                                        "--traffic (or --price-per-hour): LoadGen's minimum duration per Server run "
                                        "(the run at the traffic and each capacity trial)."),
    capacity_trials: int = typer.Option(6, "--capacity-trials", min=1, help="Server runs the capacity search may "
                                        "take per route."),
    criteria: Optional[str] = typer.Option(None, "--criteria", metavar="FILE|default", help="Choose by weighted "
                                           "criteria (a YAML file; `default`: convcheck's, documented in "
                                           "reports/data/criteria.yaml): every eligible route scored on latency, "
                                           "fidelity, cost, lock-in, toolchain health and memory, with the "
                                           "sensitivity of the choice to the weights. Default: the ranking rule."),
    horizon_years: float = typer.Option(3.0, "--horizon-years", min=0.01, help="Years of the cost-of-ownership "
                                        "curves (with --price-per-hour and --traffic)."),
    growth: float = typer.Option(0.0, "--growth", min=-0.99, metavar="RATE", help="Yearly traffic growth for the "
                                 "cost of ownership: 0.2 is 20% a year."),
    migration_cost: Optional[float] = typer.Option(None, "--migration-cost", min=0.0, metavar="USD", help="Your "
                                                   "estimate of what leaving a fully locked route would cost; each "
                                                   "route's exposure is its lock-in score / 100 times it, added "
                                                   "to its cost of ownership. Not given: not counted."),
) -> None:
    """Portability audit of one model for a deployment target: runs the routes that target means, then
    recommends a primary route and a fallback from the evidence (parity, latency against the budget,
    memory, lock-in), with the triggers that would change the choice. Exit status 0 when a route is
    recommended, 1 when none can be."""
    from convcheck.api import EngineOptions, ReportOptions
    from convcheck.api.audit import finish_audit, plan_audit

    plan = plan_audit(model, deploy, size=size, input_specs=input_ or (), input_data=inputs, out=out,
                      samples=samples, threads=threads, bench_seconds=bench_seconds, bench_iters=bench_iters,
                      latency_budget_ms=latency_budget_ms, traffic=traffic, price_per_hour=price_per_hour,
                      load_duration_s=load_duration, capacity_trials=capacity_trials, criteria=criteria,
                      horizon_years=horizon_years, growth=growth, migration_cost=migration_cost)
    engine = EngineOptions(jobs=jobs, timeout=timeout, memory_limit=memory_limit, no_cache=no_cache)
    result = _run(plan.options, engine, ReportOptions(fail_on="none", lockin_weights=lockin_weights, mlflow=mlflow),
                  specs=[plan.spec], command="audit", extra={"deploy": deploy})
    done = finish_audit(result, plan, latency_budget_ms, price_per_hour, traffic)
    out_dir, found = result.out_dir, done.audit
    rec = found["recommendation"]
    primary, fallback = rec.get("primary"), rec.get("fallback")
    if found.get("criteria"):
        _print_weighted(found)
    console.print()
    if primary:
        console.print(Text(f"recommended for {deploy}: {primary['id']}", style="bold green"))
        if fallback:
            console.print(Text(f"fallback: {fallback['id']}"))
    else:
        console.print(Text(f"no route can be recommended for {deploy}: {rec.get('none_reason')}", style="bold red"))
    console.print(f"audit: {out_dir / 'audit.html'}, {out_dir / 'audit.md'}, {out_dir / 'audit.json'}")
    raise typer.Exit(0 if primary else 1)


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
    from convcheck.diff import diff_runs, render_diff, render_versions, version_changes
    from convcheck.store import Store
    from convcheck.types import Status

    with Store() as store:
        a, b = store.document(store.resolve(run_a)), store.document(store.resolve(run_b))
    entries = diff_runs(a, b)
    versions = version_changes(a, b)
    if versions:  # an upgrade check: say what was changed before what it changed
        console.print("tool versions the cells ran with:\n" + render_versions(versions) + "\n", highlight=False,
                      markup=False)
    console.print(render_diff(entries), highlight=False, markup=False)
    worse = any((e["kind"] == "status" and Status(e["after"]).is_failure) or
                (e["kind"] in ("parity", "latency") and e["detail"].startswith(("worse", "slower")))
                for e in entries)
    raise typer.Exit(1 if worse else 0)


from convcheck.cli_state import cache_app, ecosystem_app, envs_app  # noqa: E402 - sub-command groups, attached after `app`

app.add_typer(cache_app, name="cache")
app.add_typer(envs_app, name="envs")
app.add_typer(ecosystem_app, name="ecosystem")

from convcheck.cli_load import load as _load_command  # noqa: E402 - `convcheck load`, in a module of its own

app.command(name="load")(_load_command)


def _print_weighted(found: dict) -> None:
    """The audit's scored matrix and the smallest weight change that flips it, in the terminal."""
    from rich.table import Table

    from convcheck.reports.audit_memo_render import matrix_tables, sensitivity_lines

    (_, _), (head, rows) = matrix_tables(found)
    table = Table(title="weighted criteria: figure → score (points)")
    for column in head:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in sensitivity_lines(found)[:1]:
        console.print(Text(line), soft_wrap=True)  # one line a script can grep, however narrow the terminal


def _optional_values(argv: list[str]) -> list[str]:
    """`--mlflow` alone means its default store: typer passes click no optional-value option, so the bare flag
    (last, or followed by another option) gets the value `default` here, before parsing."""
    from convcheck.tracking import DEFAULT

    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":  # what follows is arguments, not options
            return out + argv[i:]
        out.append(arg)
        if arg == "--mlflow" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(DEFAULT)
    return out


def main() -> None:
    try:
        app(args=_optional_values(sys.argv[1:]))
    except ConvcheckError as exc:
        from rich.markup import escape

        # One line, whatever the message quotes from a model (a name with a newline could forge a second line).
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(exc))
        err_console.print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
