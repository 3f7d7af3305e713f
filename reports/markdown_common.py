"""What matrix.md and the Markdown model pages share: clipping limits, figures as Markdown text, the
cell-count summary line. Every document string still goes through `md_escape` exactly once."""

from __future__ import annotations

from typing import Any

from convcheck.reports.escaping import md_escape
from convcheck.reports.numbers import num_text
from convcheck.reports.status_groups import status_counts, status_index

# Lengths at which a document's text is clipped (with an ellipsis): one line in a list, a table cell.
LINE_LIMIT = 220
CELL_LIMIT = 120
MESSAGE_LIMIT = 600


def num(x: Any, spec: str = ".3g") -> str:
    """A figure for a Markdown page (a string where a number should be: escaped and clipped)."""
    return num_text(x, spec, lambda v: md_escape(v, CELL_LIMIT))


def ms(x: Any) -> str:
    return "—" if x is None else f"{num(x)} ms"


def seconds(x: Any) -> str:
    return "—" if x is None else f"{num(x)} s"


def db(x: Any, exact: bool = False) -> str:
    if x is None:
        return "∞ (identical)" if exact else "—"
    return f"{num(x, '.1f')} dB"


def inline(value: Any) -> str:
    """A settings object as plain words (escaped by the caller): `threads 2, providers CPU, ...`."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {inline(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    return "—" if value is None else str(value)


def summary_line(document: dict[str, Any]) -> str:
    """`14 cells: 5 pass, 2 mismatch, ...` in status order (the document's summary, else counted)."""
    cells = document.get("cells") or []
    summary = document.get("summary") or dict(status_counts(cells))
    parts = [f"{n} {md_escape(s)}" for s, n in sorted(summary.items(), key=lambda kv: status_index(kv[0]))]
    return f"{len(cells)} cells: " + (", ".join(parts) if parts else "none")
