"""The matrix in the terminal: models x routes, each cell a status mark and its headline figure."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from convcheck.types import Status

STYLE = {
    "pass": ("✔", "green"),
    "mismatch": ("✘", "red"),
    "vacuous": ("∅", "yellow"),
    "convert_error": ("✘", "red"),
    "runtime_error": ("✘", "red"),
    "unsupported": ("⊘", "magenta"),
    "crashed": ("☠", "red"),
    "timeout": ("⏱", "red"),
    "oom": ("✘", "red"),
    "missing_dep": ("–", "dim"),
    "no_device": ("–", "dim"),
    "upstream_failed": ("↑", "red"),
}


def headline(cell: dict[str, Any]) -> str:
    """The one figure a cell shows: p50 latency when it ran, else the error kind."""
    lat = cell.get("latency_ms")
    if cell["status"] == "pass" and lat:
        return f"{lat['p50']:.3g} ms"
    if cell["status"] == "mismatch" and cell.get("parity") and cell["parity"].get("max_abs") is not None:
        return f"max_abs {cell['parity']['max_abs']:.2g}"
    return cell["status"]


def cell_text(cell: dict[str, Any]) -> Text:
    mark, style = STYLE.get(cell["status"], ("?", "white"))
    return Text(f"{mark} {headline(cell)}", style=style)


def row_label(cell: dict[str, Any]) -> str:
    """A matrix row: the route, plus its target when that is not the default cpu fp32."""
    if cell["device"] == "cpu" and cell["precision"] == "fp32":
        return cell["route"]
    return f"{cell['route']} [{cell['device']} {cell['precision']}]"


def render(results: dict[str, Any], console: Console) -> None:
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
    summary = ", ".join(f"{n} {s}" for s, n in sorted(results["summary"].items()))
    console.print(f"{len(cells)} cells: {summary}")
    failed = [c for c in cells if Status(c["status"]).is_failure]
    not_here = [c for c in cells if c["status"] in (Status.MISSING_DEP.value, Status.NO_DEVICE.value)]
    for title, group in (("Failed", failed), ("Could not run on this machine", not_here)):
        if group:
            console.print(f"\n[bold]{title}[/bold]")
            for c in group:
                _print_reason(console, c)


def _print_reason(console: Console, cell: dict[str, Any]) -> None:
    err = cell.get("error") or {}
    mark, style = STYLE.get(cell["status"], ("?", "white"))
    line = Text(f" {mark} {cell['model']} × {row_label(cell)} ", style=style)
    line.append(f"{cell['status']} at {err.get('stage', '?')}: {err.get('message', '')}", style="default")
    console.print(line)
