"""`convcheck load`: MLPerf LoadGen scenarios on every passing cell of a model or of a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from convcheck.cli_options import (BENCH_ITERS_OPT, BENCH_SECONDS_OPT, FAIL_ON_OPT, LOCKIN_WEIGHTS_OPT, MEMORY_OPT,
                                   NO_CACHE_OPT, OUT_OPT, SAMPLES_OPT, THREADS_OPT, TIMEOUT_OPT)


def load(
    target: str = typer.Argument(..., help="What to load-test: a zoo model name (see `convcheck models`), your own model "
                                 "file (as `convcheck check` takes it), or a finished run (its id, a unique prefix, "
                                 "`latest`, or its folder): then its passing cells are converted, compared and "
                                 "loaded again, in a new run."),
    routes_: Optional[str] = typer.Option(None, "--routes", help="Comma-separated route ids (default: every route "
                                          "available here; for a run, its passing routes)."),
    scenario: str = typer.Option("all", "--scenario", help="Comma-separated LoadGen scenarios: single-stream, "
                                 "multi-stream, server, offline, or `all`."),
    qps: Optional[float] = typer.Option(None, "--qps", help="Server scenario's target queries per second (default: "
                                        "half what the runtime sustains back to back, measured in the Offline run)."),
    latency_bound_ms: Optional[float] = typer.Option(None, "--latency-bound-ms", help="Server latency bound: its p99 "
                                                     "must stay within it. Also searches each cell's capacity: the "
                                                     "highest Server QPS LoadGen calls valid under the bound."),
    duration: float = typer.Option(5.0, "--duration", metavar="SECONDS", help="LoadGen's minimum duration per run "
                                   "(MLPerf Inference needs 600; shorter runs are marked as not MLPerf-valid)."),
    workers: int = typer.Option(1, "--workers", help="Threads of the system under test calling the runtime at once "
                                "(each call also uses the runtime's own --threads)."),
    max_batch: int = typer.Option(1, "--max-batch", help="Dynamic batching: gather up to this many queued samples into "
                                  "one call, where the model's batch axis is dynamic (the batched outputs are "
                                  "compared first)."),
    batch_window_ms: float = typer.Option(1.0, "--batch-window-ms", help="With --max-batch: how long a worker waits "
                                          "for more samples after the first."),
    samples_per_query: int = typer.Option(8, "--samples-per-query", help="MultiStream: samples in each query."),
    capacity_trials: int = typer.Option(6, "--capacity-trials", help="With --latency-bound-ms: Server runs the "
                                        "capacity search may take (0: no search)."),
    min_query_count: int = typer.Option(100, "--min-query-count", help="LoadGen's minimum queries per run."),
    seed: int = typer.Option(0, "--seed", help="LoadGen's sample-index, QSL and schedule RNG seeds."),
    size: str = typer.Option("full", help="Zoo model size: full (default) or tiny."),
    input_: Optional[list[str]] = typer.Option(None, "--input", help="As for `check`: NAME:SHAPE:DTYPE[:LOW..HIGH]."),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help="As for `check`: a .npz of your own inputs."),
    out: Optional[Path] = OUT_OPT,
    samples: int = SAMPLES_OPT,
    threads: Optional[int] = THREADS_OPT,
    bench_seconds: float = BENCH_SECONDS_OPT,
    bench_iters: int = BENCH_ITERS_OPT,
    jobs: int = typer.Option(1, "--jobs", min=1, help="Cells at once (default 1: load figures from cells sharing "
                             "the cores would measure each other)."),
    timeout: float = TIMEOUT_OPT,
    memory_limit: Optional[float] = MEMORY_OPT,
    no_cache: bool = NO_CACHE_OPT,
    fail_on: Optional[str] = FAIL_ON_OPT,
    lockin_weights: Optional[Path] = LOCKIN_WEIGHTS_OPT,
) -> None:
    """Serve each passing cell under MLPerf LoadGen: SingleStream, MultiStream, Server and Offline scenarios, and
    with --latency-bound-ms the highest QPS whose p99 stays within it. Results go into results.json (`load`
    per cell), the reports and LoadGen's own logs (runs/<id>/load/). Exit status as `matrix`."""
    from convcheck.api import EngineOptions, ReportOptions
    from convcheck.api.load import plan_load
    from convcheck.cli_run import _run, console
    from convcheck.validate.loadgen import SCENARIOS, LoadSettings

    scenarios = tuple(SCENARIOS) if scenario.strip() == "all" else tuple(
        s.strip() for s in scenario.split(",") if s.strip())
    settings = LoadSettings(scenarios=scenarios, target_qps=qps, latency_bound_ms=latency_bound_ms,
                            duration_s=duration, workers=workers, max_batch=max_batch, batch_window_ms=batch_window_ms,
                            samples_per_query=samples_per_query, capacity_trials=capacity_trials,
                            min_query_count=min_query_count, seed=seed)
    plan = plan_load(target, settings, routes=[r.strip() for r in routes_.split(",")] if routes_ else None,
                     size=size, input_specs=input_ or (), input_data=inputs, out=out, samples=samples, threads=threads,
                     bench_seconds=bench_seconds, bench_iters=bench_iters)
    engine = EngineOptions(jobs=jobs, timeout=timeout, memory_limit=memory_limit, no_cache=no_cache)
    result = _run(plan.options, engine, ReportOptions(fail_on=fail_on, lockin_weights=lockin_weights),
                  specs=plan.specs, command="load", only=plan.only,
                  extra={"load_of": plan.of_run} if plan.of_run else None)
    _print_load(result.results, console)
    raise typer.Exit(result.exit_code)


def _print_load(results: dict, console) -> None:  # noqa: ANN001
    from convcheck.reports.load_view import capacity_text, load_note, scenario_rows

    table = Table(title="under load (MLPerf LoadGen)", show_lines=True)
    for col in ("cell", "scenario", "LoadGen", "throughput", "p50", "p99"):
        table.add_column(col, no_wrap=col in ("scenario", "p50", "p99"))
    notes = set()
    for cell in results["cells"]:
        label = Text(f"{cell['model']} × {cell['route']} [{cell.get('device')} {cell.get('precision')}]")
        rows = scenario_rows(cell)
        for row in rows:
            table.add_row(label, row["scenario"], Text(row["verdict"], style="green" if row["valid"] else "yellow"),
                          row["qps"], row["p50"], row["p99"])
        capacity = capacity_text(cell)
        if capacity:
            table.add_row(label, "capacity", "", Text(capacity), "", "")
        note = load_note(cell)
        if note and not rows:
            table.add_row(label, "—", Text(note, style="dim"), "", "", "")
        if (cell.get("load") or {}).get("note"):
            notes.add(cell["load"]["note"])
    console.print(table)
    for note in sorted(notes):
        console.print(Text(note, style="dim"))
