"""What the commands that run cells share (`matrix`, `check`, `audit`, `load`): the progress bar, the run
through the API with it, and the printed result. Imports no ML framework."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class _Bar:
    """The progress bar, drawn by the run API's callbacks from the moment the plan is known."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.failing = 0

    def plan(self, cells: list) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[failing]} failing"), TimeElapsedColumn(),
                                 console=err_console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task("matrix", total=len(cells), failing=0)

    def start(self, planned: Any) -> None:
        self.progress.update(self.task, description=f"{planned.spec.name} × {planned.route.id}")

    def env(self, line: str) -> None:
        """A toolchain environment being made (convcheck.envs): its milestones above the bar, uv's
        current step in the bar's description."""
        milestone = line.startswith(("creating environment", "environment "))
        if self.progress is None or milestone:
            (self.progress.console if self.progress is not None else err_console).print(
                line, highlight=False, markup=False, soft_wrap=True)
        else:
            self.progress.update(self.task, description=f"env: {line.strip()[:70]}")

    def done(self, cell: dict) -> None:
        from convcheck.types import Status

        self.failing += Status(cell["status"]).is_failure
        self.progress.update(self.task, advance=1, failing=self.failing)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _print_result(result: Any) -> None:
    from convcheck.reports import terminal

    out_dir, written = result.out_dir, result.reports
    terminal.render(result.results, console, set(result.fail_on))
    console.print(f"\nresults: {out_dir / 'results.json'}\nreports: {written['matrix.html']}, "
                  f"{written['matrix.md']}, {written['junit.xml']}, {out_dir / 'models'}/")
    if result.tracking is not None:
        logged = result.tracking
        console.print(f"mlflow: {len(logged.run_ids)} runs in experiment {logged.experiment_name!r} "
                      f"({logged.experiment_id}) at {logged.uri}")


def _run(options: Any, engine: Any, report: Any, resume: Optional[str] = None, dry_run: bool = False,
         **more: Any) -> Any:
    """Plan (--dry-run: print the plan, exit 0), run through the API with a progress bar, print the table."""
    from convcheck import api

    if dry_run:
        _print_plan(api.plan_cells(options, more.get("specs")))
        raise typer.Exit(0)
    bar = _Bar()
    try:
        result = api.execute(options, engine, report, resume=resume, on_plan=bar.plan, on_cell_start=bar.start,
                             on_cell_done=bar.done, on_env=bar.env, **more)
    except api.RunInterrupted as stop:
        bar.stop()
        err_console.print(f"interrupted: {stop.finished} of {stop.total} cells finished and are kept in "
                          f"{stop.out_dir / 'results.json'} and the run store; finish the run with "
                          f"`convcheck {stop.command} --resume {stop.run_id}`", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        bar.stop()
    _print_result(result)
    return result


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
