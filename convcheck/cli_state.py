"""What convcheck keeps between runs under CONVCHECK_HOME: `convcheck cache` (the cell cache) and `convcheck envs`
(the toolchain environments, convcheck.envs), listed and cleared."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console()

envs_app = typer.Typer(help="Toolchain environments (under CONVCHECK_HOME/envs): the interpreters routes such as "
                       "torch/tflite, torch/executorch and --toolchain upgrade checks run in.",
                       invoke_without_command=True)
@envs_app.callback()
def envs_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")
              ) -> None:
    """List the environments: name, size, the packages that define them, creation and last use."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from rich.table import Table

    from convcheck.envs import envs_dir, list_envs

    found = list_envs()
    if as_json:
        print(json.dumps(found, indent=2))
        return
    if not found:
        console.print(f"no toolchain environments in {envs_dir()} (they are made on first use)")
        return
    table = Table(title=f"toolchain environments in {envs_dir()}")
    for column in ("env", "name", "size", "asked for", "created", "last used"):
        table.add_column(column)
    for e in found:
        table.add_row(e["digest"], e["name"] or "[red]incomplete: made again on next use[/red]",
                      f"{e['bytes'] / 2**20:.0f} MiB", ", ".join(e["requirements"]) or "—",
                      (e["created"] or "—")[:19], (e["last_used"] or "—")[:19])
    console.print(table)
    console.print("sizes count files uv hard-links from its cache once per environment")


@envs_app.command("clear")
def envs_clear(names: Optional[list[str]] = typer.Argument(None, help="Environment digests or names (default: all)."),
               ) -> None:
    """Remove toolchain environments (all, or those named); the next run that needs one makes it again."""
    from convcheck.envs import clear, envs_dir

    removed, freed = clear(list(names or []))
    console.print(f"removed {removed} environment{'s' if removed != 1 else ''} ({freed / 2**20:.0f} MiB) from {envs_dir()}")


cache_app = typer.Typer(help="The cell cache (under CONVCHECK_HOME): what it holds, and clearing it.",
                        no_args_is_help=True)


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


ecosystem_app = typer.Typer(help="The lock-in score's maintenance data (release recency and cadence, yanked "
                            "releases, deprecations): which snapshot scores, and refreshing it from PyPI.",
                            no_args_is_help=True)


@ecosystem_app.command("refresh")
def ecosystem_refresh(
    responses: Optional[Path] = typer.Option(None, "--responses", metavar="DIR", help="Read <package>.json files saved "
                                             "from https://pypi.org/pypi/<package>/json instead of asking PyPI (an "
                                             "air-gapped machine, a mirror, a test)."),
    today: Optional[str] = typer.Option(None, "--date", metavar="YYYY-MM-DD", help="The snapshot's day (default: "
                                        "today); releases uploaded after it are not counted."),
) -> None:
    """Re-read every route tool's maintenance signals from PyPI's JSON API into a dated snapshot
    (CONVCHECK_HOME/ecosystem/lockin-DATE.json) that lock-in scores use from now on; prints what changed."""
    import datetime

    from rich.table import Table

    from convcheck.ecosystem import fetch_pypi, recorded, refresh
    from convcheck.errors import ConvcheckError
    from convcheck.reports.lockin import load_lockin_data

    try:
        day = datetime.date.fromisoformat(today) if today else datetime.date.today()
    except ValueError:
        raise ConvcheckError(f"--date {today!r}: write the day as YYYY-MM-DD") from None
    data = load_lockin_data()
    done = refresh(data, recorded(responses) if responses is not None else fetch_pypi, day)
    table = Table(title=f"maintenance signals, {data['snapshot']['date']} -> {day.isoformat()}")
    for column in ("tool", "latest (released)", "stable releases / 365 d", "yanked (2 y)", "deprecations"):
        table.add_column(column)
    for name, tool in done.data["tools"].items():
        if tool["package"] in done.unreachable:
            table.add_row(name, f"{tool['latest']} ({tool['released']})", "[yellow]not refreshed[/yellow]", "", "")
            continue
        cadence = tool.get("cadence") or {}
        table.add_row(name, f"{tool['latest']} ({tool['released']})", str(cadence.get("releases_last_365_days", "—")),
                      ", ".join(y["version"] for y in tool.get("yanked") or []) or "—",
                      "; ".join(d["what"] for d in tool.get("deprecations") or []) or "—")
    console.print(table)
    for name, change in done.changes:
        console.print(f"changed: {name}: {change}")
    for package, why in done.unreachable.items():
        console.print(f"[yellow]kept the previous figures for {package}[/yellow]: {why}")
    console.print(f"snapshot: {done.path} (lock-in scores read it from now on; diff it against "
                  f"{done.data['snapshot']['refreshed_from']}'s)")


@ecosystem_app.command("status")
def ecosystem_status() -> None:
    """Which maintenance snapshot lock-in scores use, and the refreshed ones kept."""
    from convcheck.ecosystem import newest_snapshot, snapshots_dir
    from convcheck.reports.lockin import load_lockin_data

    data = load_lockin_data()
    newest = newest_snapshot()
    where = str(newest) if newest is not None else "the snapshot shipped with convcheck"
    console.print(f"lock-in scores use the snapshot of {data['snapshot']['date']}: {where}")
    kept = sorted(snapshots_dir().glob("lockin-*.json")) if snapshots_dir().is_dir() else []
    if kept:
        console.print("refreshed snapshots: " + ", ".join(p.name for p in kept))
    else:
        console.print("no refreshed snapshot yet: `convcheck ecosystem refresh` reads PyPI")
