"""What a run gives back in Python: the cells as flat rows (one per model x route x target), as a pandas
DataFrame, as a plain-text table for logs and assertion messages, and as HTML for Jupyter.

The rows only read the results document (results.json's cells): a figure a cell did not measure stays
None, never 0, and `error` carries the cell's own one-line reason.
"""

from __future__ import annotations

import html
from typing import Any, Iterable

#: The columns of `rows()`, in order; what each holds is in docs/python.md.
COLUMNS = ("model", "route", "device", "precision", "status", "max_abs", "max_rel", "snr_db", "cosine",
           "top1_agreement", "p50_ms", "p99_ms", "peak_rss_mb", "artifact_mb", "convert_s", "lockin", "error")

#: Columns of the compact table (text and HTML): enough to see what failed and by how much.
SHORT = ("model", "route", "device", "precision", "status", "max_abs", "snr_db", "p50_ms", "error")


class ConversionFailures(AssertionError):
    """`raise_for_failures()`: some cells have a status the run fails on. `.cells` holds them; the
    message is their table (an AssertionError, so pytest shows it as a failed check, not a crash)."""

    def __init__(self, message: str, cells: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.cells = cells


def row(cell: dict[str, Any]) -> dict[str, Any]:
    """One results.json cell as the flat row `rows()` returns (None where the cell measured nothing)."""
    parity = cell.get("parity") or {}
    latency = cell.get("latency_ms") or {}
    memory = cell.get("memory_mb") or {}
    lockin = cell.get("lockin") or {}
    error = cell.get("error") or {}
    size = cell.get("artifact_bytes")
    convert = (cell.get("timings_s") or {}).get("convert")
    return {
        "model": cell.get("model"), "route": cell.get("route"), "device": cell.get("device"),
        "precision": cell.get("precision"), "status": cell.get("status"),
        "max_abs": parity.get("max_abs"), "max_rel": parity.get("max_rel"), "snr_db": parity.get("snr_db"),
        "cosine": parity.get("cosine"), "top1_agreement": parity.get("top1_agreement"),
        "p50_ms": latency.get("p50"), "p99_ms": latency.get("p99"),
        "peak_rss_mb": memory.get("process_peak_rss"),
        "artifact_mb": None if size is None else size / 2**20,
        "convert_s": convert, "lockin": lockin.get("score"),
        "error": error.get("message") if isinstance(error, dict) else (str(error) if error else None),
    }


def rows(cells: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row(c) for c in cells]


def _shown(value: Any, column: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if column in ("snr_db",):
            return "inf" if value == float("inf") else f"{value:.1f}"
        if column in ("p50_ms", "p99_ms"):
            return f"{value:.3g} ms"
        return f"{value:.3g}"
    text = str(value)
    return text if len(text) <= 90 else text[:87] + "..."


def text_table(cells: Iterable[dict[str, Any]], columns: tuple[str, ...] = SHORT) -> str:
    """A fixed-width table of the cells, for a terminal, a log or an assertion message."""
    table = [[_shown(r[c], c) for c in columns] for r in rows(cells)]
    widths = [max([len(c)] + [len(t[i]) for t in table]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip() for t in table]
    return "\n".join(lines)


_COLOURS = {"pass": "#e6f4ea", "mismatch": "#fde7e9", "vacuous": "#fff4ce", "missing_dep": "#f1f1f1",
            "no_device": "#f1f1f1"}


def html_table(cells: list[dict[str, Any]], title: str, summary: str) -> str:
    """An HTML fragment (no page, no script) for Jupyter: a heading, the summary and one row per cell."""
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(c)}</th>" for c in SHORT)
    body = []
    for r in rows(cells):
        colour = _COLOURS.get(r["status"] or "", "#fde7e9")
        tds = "".join(f"<td style='padding:2px 8px'>{html.escape(_shown(r[c], c))}</td>" for c in SHORT)
        body.append(f"<tr style='background:{colour}'>{tds}</tr>")
    return (f"<div class='convcheck-results'><b>{html.escape(title)}</b> — {html.escape(summary)}"
            f"<table style='border-collapse:collapse;font-size:90%'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def summary_line(cells: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for c in cells:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    return f"{len(cells)} cells: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))
