"""What convcheck keeps between runs under CONVCHECK_HOME: `convcheck cache` (the cell cache) and `convcheck envs`
(the toolchain environments, convcheck.envs), listed and cleared."""

from __future__ import annotations

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
