"""The matrix in the terminal: models x routes, each cell a status mark and its headline figure."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from convcheck.reports.cell_view import TVM_LEGEND, has_tvm, headline, row_label
from convcheck.reports.status_groups import STYLE, is_failure
from convcheck.types import Status

__all__ = ["STYLE", "cell_text", "headline", "render", "row_label"]


def cell_text(cell: dict[str, Any]) -> Text:
    mark, style = STYLE.get(cell["status"], ("?", "white"))
    return Text(f"{mark} {headline(cell)}", style=style)


def render(results: dict[str, Any], console: Console, fail_on: set[str] | None = None) -> None:
    """Routes down, models across: a zoo has fewer models than routes x targets, so this stays readable."""
    cells = results["cells"]
    model_names = list(dict.fromkeys(c["model"] for c in cells))
    rows = list(dict.fromkeys(row_label(c) for c in cells))
    table = Table(title=f"convcheck matrix — run {results['run']['id']}")
    table.add_column("route [target]", style="bold", no_wrap=True)
    for name in model_names:
        table.add_column(Text(name), no_wrap=True)
    grid = {(row_label(c), c["model"]): c for c in cells}
    for row in rows:
        table.add_row(Text(row), *[cell_text(grid[(row, m)]) if (row, m) in grid else Text("") for m in model_names])
    console.print(table)
    if has_tvm(cells):
        console.print(TVM_LEGEND, style="dim")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(results["summary"].items()))
    console.print(f"{len(cells)} cells: {summary}")
    failing = (lambda c: c["status"] in fail_on) if fail_on is not None else (lambda c: is_failure(c["status"]))
    failed = [c for c in cells if failing(c)]
    if failed:
        console.print(f"\n[bold]Failed ({len(failed)})[/bold]")
        for c in failed[:MAX_LISTED]:
            _print_reason(console, c)
        if len(failed) > MAX_LISTED:
            console.print(f"  ... {len(failed) - MAX_LISTED} more in matrix.md / results.json")
    others = [c for c in cells if c not in failed and c["status"] != Status.PASS.value]
    if others:
        # One line per (route, status, reason): 60 TensorRT cells say the same thing.
        console.print("\n[bold]Could not run on this machine[/bold] (or not counted as failures by --fail-on)")
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for c in others:
            reason = (c.get("error") or {}).get("message", "").split(". Static check")[0].split("; static")[0]
            groups.setdefault((c["route"], c["status"], reason), []).append(c)
        for (route, status, reason), group in groups.items():
            mark, style = STYLE.get(status, ("?", "white"))
            line = Text(f" {mark} {route} ({len(group)} cells) ", style=style)
            line.append(f"{status}: {reason}", style="default")
            console.print(line)


MAX_LISTED = 40


def _print_reason(console: Console, cell: dict[str, Any]) -> None:
    err = cell.get("error") or {}
    mark, style = STYLE.get(cell["status"], ("?", "white"))
    line = Text(f" {mark} {cell['model']} × {row_label(cell)} ", style=style)
    line.append(f"{cell['status']} at {err.get('stage', '?')}: {err.get('message', '')}", style="default")
    console.print(line)
