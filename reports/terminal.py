"""The matrix in the terminal: models x routes, each cell a status mark and its headline figure."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

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
    """A matrix row: the model, plus its target when that is not the default cpu fp32."""
    if cell["device"] == "cpu" and cell["precision"] == "fp32":
        return cell["model"]
    return f"{cell['model']} [{cell['device']} {cell['precision']}]"


def render(results: dict[str, Any], console: Console) -> None:
    cells = results["cells"]
    routes = list(dict.fromkeys(c["route"] for c in cells))
    rows = list(dict.fromkeys(row_label(c) for c in cells))
    table = Table(title=f"convcheck matrix — run {results['run']['id']}", show_lines=False)
    table.add_column("model", style="bold")
    for route in routes:
        table.add_column(route, justify="left")
    grid: dict[tuple[str, str], dict[str, Any]] = {}
    for c in cells:
        grid[(row_label(c), c["route"])] = c
    for row in rows:
        table.add_row(Text(row), *[cell_text(grid[(row, r)]) if (row, r) in grid else Text("") for r in routes])
    console.print(table)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(results["summary"].items()))
    console.print(f"{len(cells)} cells: {summary}")
    failing = [c for c in cells if c["status"] != "pass"]
    if failing:
        console.print("\n[bold]Cells that did not pass[/bold]")
        for c in failing:
            err = c.get("error") or {}
            mark, style = STYLE.get(c["status"], ("?", "white"))
            line = Text(f" {mark} {c['model']} × {c['route']} [{c['device']} {c['precision']}] ", style=style)
            line.append(f"{c['status']} at {err.get('stage', '?')}: {err.get('message', '')}", style="default")
            console.print(line)
