"""The `convcheck` command line.

Importing this module imports no ML framework: `--help`, `routes`, `models` and `doctor` read
registries, class attributes and package metadata only (tests/unit/test_lazy_imports.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

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
    device: str = typer.Option("cpu", help="Device to check availability for: cpu, cuda, ane."),
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
    table = Table(title=f"conversion routes (availability on {device})")
    for col in ("route", "hops", "runtime", "devices", "status"):
        table.add_column(col)
    for r in rows:
        style = "green" if r["status"] == "available" else "yellow"
        status = r["status"] + (f": {r['reason']} — {r['hint']}" if r["hint"] else f": {r['reason']}" if r["reason"] else "")
        table.add_row(r["route"], " → ".join(r["converters"]) or "—", r["runtime"], ",".join(r["devices"]),
                      f"[{style}]{status}[/{style}]")
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
    for col in ("model", "sources", "task", "inputs", "outputs", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], ",".join(r["sources"]), r["task"], " ".join(r["inputs"]), ",".join(r["outputs"]),
                      r["description"])
    console.print(table)


@app.command()
def doctor(
    imports: bool = typer.Option(True, "--imports/--no-imports",
                                 help="Also import each installed framework in a subprocess to prove it loads."),
) -> None:
    """Show packages, versions, devices and host, and check each framework really imports."""
    from convcheck.doctor import report

    sys.exit(report(console, check_imports=imports))


@app.command()
def matrix(
    models_: Optional[str] = typer.Option(None, "--models", help="Comma-separated zoo models, or `all` (default: all)."),
    routes_: Optional[str] = typer.Option(None, "--routes",
                                          help="Comma-separated route ids (see `convcheck routes`), or `all` "
                                          "(default: every route available here)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: runs/<run id>/)."),
    size: str = typer.Option("full", help="Zoo model size: full (default) or tiny (seconds, for smoke tests)."),
    device: str = typer.Option("cpu", help="Comma-separated devices: cpu, cuda."),
    precision: str = typer.Option("fp32", help="Comma-separated precisions: fp32, fp16, int8."),
    samples: int = typer.Option(4, min=1, help="Seeded input samples compared per cell; the worst counts."),
    threads: Optional[int] = typer.Option(None, min=1, help="Intra-op threads for every runtime (default: all cores)."),
    bench_seconds: float = typer.Option(1.0, min=0.0, help="Minimum timed duration per cell, after warm-up."),
    bench_iters: int = typer.Option(30, min=1, help="Minimum timed iterations per cell."),
) -> None:
    """Run models x routes: convert, run, compare with the source framework, time. Writes results.json."""
    from convcheck.matrix import exit_code, plan, run_matrix, select_models
    from convcheck.pipeline import RunSettings
    from convcheck.reports import terminal
    from convcheck.results import new_run_id
    from convcheck.routes import select_routes
    from convcheck.types import DEVICES, PRECISIONS
    from convcheck.validate.latency import LatencyConfig

    devices = _split(device) or ["cpu"]
    precisions = _split(precision) or ["fp32"]
    for d in devices:
        if d not in DEVICES:
            raise ConvcheckError(f"unknown device {d!r}: use one of {', '.join(DEVICES)}")
    for p in precisions:
        if p not in PRECISIONS:
            raise ConvcheckError(f"unknown precision {p!r}: use one of {', '.join(PRECISIONS)}")
    if size not in ("full", "tiny"):
        raise ConvcheckError(f"unknown size {size!r}: use full or tiny")
    specs = select_models(models_)
    chosen = select_routes(routes_, devices[0])
    cells = plan(specs, chosen, devices, precisions)

    run_id = new_run_id()
    out_dir = out or Path("runs") / run_id
    if out_dir.exists() and not out_dir.is_dir():
        raise ConvcheckError(f"--out {out_dir} is a file: give a folder")
    settings = RunSettings(
        workdir=out_dir, size=size, samples=samples, threads=threads,
        latency=LatencyConfig(min_iters=bench_iters, min_seconds=bench_seconds),
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    failing = 0
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failing]} failing"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("matrix", total=len(cells), failing=0)

        def started(planned) -> None:  # noqa: ANN001
            progress.update(task, description=f"{planned.spec.name} × {planned.route.id}")

        def done(cell: dict) -> None:
            nonlocal failing
            from convcheck.types import Status

            failing += Status(cell["status"]).is_failure
            progress.update(task, advance=1, failing=failing)

        results = run_matrix(cells, settings, out_dir, run_id, started, done)
    terminal.render(results, console)
    console.print(f"\nresults: {out_dir / 'results.json'}")
    raise typer.Exit(exit_code(results))


def main() -> None:
    try:
        app()
    except ConvcheckError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
