"""HTML reports of a results.json: `matrix.html` (the whole run) and `models/<page>.html` (one model).

Each page is one self-contained file: CSS and JavaScript inline, charts drawn as inline SVG, and a
Content-Security-Policy that forbids every fetch, so a report can be archived or mailed and opened
anywhere without reaching the network. The table and charts are static HTML; the script only adds
sorting, filtering and a cell detail drawer.

Every string of a document may come from a user's model (model and output names, op names, error
messages), so every one is escaped for where it lands: `esc` for text and attributes, `script_json`
for the data block the script reads. Every field but model/route/status is optional: older runs lack
memory, localisation and lock-in, and a killed run has `finished: null`.

The pages are built by Python functions, not templates: Jinja2 is no dependency of convcheck (it is in
a development environment only because torch pulls it in), and the markup is small pieces placed by
loops over cells, where a builder function reads as clearly as a template would.

Where things are: html_parts (skeleton, shared pieces, page names), html_charts (SVG), html_matrix
(matrix.html), html_model (models/<page>.html); escaping, numbers, status_groups, ladder, cell_view and
route_packages are shared with the Markdown reports and the audit. This module is the public face.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convcheck.atomic import write_text_atomic
from convcheck.reports.cell_view import Cell, label, lockin_of
from convcheck.reports.escaping import esc, script_json
from convcheck.reports.html_charts import FACTOR_COLOURS, LogScale, contributions, latency_panel, lockin_chart, parity_chart
from convcheck.reports.html_matrix import cell_detail, render_matrix_html
from convcheck.reports.html_model import render_model_html
from convcheck.reports.html_parts import cell_anchor, figure, model_page_name, sort_value
from convcheck.reports.ladder import LADDER, ladder
from convcheck.reports.numbers import (fmt_bytes, fmt_date, fmt_db, fmt_g, fmt_mib, fmt_ms, fmt_pct, fmt_rate, fmt_s,
                                       fmt_value)
from convcheck.reports.route_packages import packages_or_all
from convcheck.reports.status_groups import NOT_HERE, group, mark, status_css

__all__ = ["Cell", "FACTOR_COLOURS", "LADDER", "LogScale", "NOT_HERE", "cell_anchor", "cell_detail", "esc", "figure",
           "fmt_bytes", "fmt_date", "fmt_db", "fmt_g", "fmt_mib", "fmt_ms", "fmt_pct", "fmt_rate", "fmt_s",
           "fmt_value", "group", "label", "ladder", "latency_panel", "lockin_chart", "lockin_of", "mark",
           "model_page_name", "parity_chart", "render_matrix_html", "render_model_html", "route_packages",
           "sort_value", "status_css", "write_html_reports"]

# Older private names, kept for callers that reached into this module.
_script_json = script_json
_contributions = contributions


def route_packages(cell: Cell, packages: dict[str, Any]) -> dict[str, Any]:
    """`packages` (run.packages) narrowed to what the cell's route touches, plus numpy; all of them if
    none match (route_packages.packages_or_all)."""
    return packages_or_all({"run": {"packages": packages}}, cell)


def write_html_reports(document: dict[str, Any], directory: Path | str) -> list[Path]:
    """Write `matrix.html` and `models/<page>.html` for every model under `directory`; returns the paths."""
    out = Path(directory)
    (out / "models").mkdir(parents=True, exist_ok=True)
    written = [out / "matrix.html"]
    # errors="replace": a lone surrogate in a user's string (valid JSON) must not stop the report.
    write_text_atomic(written[0], render_matrix_html(document), errors="replace")
    for model in dict.fromkeys(c["model"] for c in document.get("cells") or [] if isinstance(c, dict)):
        path = out / "models" / model_page_name(model)
        write_text_atomic(path, render_model_html(document, model), errors="replace")
        written.append(path)
    return written
