"""What both HTML pages are built from: the page skeleton (CSP, inline CSS, the data block), small
tables and badges, the run header, and the names of pages and sections.

Every string of a document is escaped for where it lands: `esc` for text and attributes, `script_json`
for the data block the script reads (reports/escaping.py).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from typing import Any, Iterable

from convcheck.reports.cell_view import Cell, headline_or_status
from convcheck.reports.escaping import esc, first_line, script_json
from convcheck.reports.html_assets import CSS
from convcheck.reports.numbers import finite, fmt_date, fmt_g
from convcheck.reports.status_groups import NOT_HERE, STYLE, group, mark, status_css
from convcheck.types import Status

#: A page loads and links nothing outside itself: no fetch of any kind, inline style and script only.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")
#: One line of a document's text in a list (longer ones are clipped with an ellipsis).
LINE_LIMIT = 220


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")[:60]


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def model_page_name(model: str) -> str:
    """The file name (with `.html`) of a model's page under `models/`.

    Deterministic and collision-free: a name made only of safe lower-case characters is kept as is;
    any other name (a `/`, `<`, a space, unicode, upper case that a case-insensitive disk would merge)
    gets its slug plus a hash of the exact name."""
    slug = _slug(model)
    if slug == model and slug == slug.lower() and slug:
        return f"{slug}.html"
    return f"{slug or 'model'}-{_short_hash(model)}.html"


def cell_anchor(cell: Cell) -> str:
    """The id of a cell's section on its model page: readable, and unique even for odd route names."""
    target = f"{cell['route']}|{cell.get('device', 'cpu')}|{cell.get('precision', 'fp32')}"
    return f"c-{_slug(target.replace('/', '-').replace('|', '-')) or 'cell'}-{_short_hash(target)[:6]}"


def figure(cell: Cell) -> str:
    """The figure under the status word: cell_view.headline where it has one, else where it stopped."""
    p50 = finite((cell.get("latency_ms") or {}).get("p50"))
    if cell["status"] == Status.PASS.value and p50 is not None:
        return headline_or_status(cell)  # fmt_ms(p50) and, for TVM, how the library was scheduled
    head = headline_or_status(cell)
    if head != cell["status"]:
        return head
    err = cell.get("error") or {}
    if err.get("op"):
        return f"op {err['op']}"
    if err.get("stage") and cell["status"] not in NOT_HERE:
        return f"at {err['stage']}"
    return ""


def sort_value(cell: Cell) -> float:
    """One number that orders a column: passes by p50, then mismatches by error, failures, not run here."""
    lat = finite((cell.get("latency_ms") or {}).get("p50"))
    par = finite((cell.get("parity") or {}).get("max_abs"))
    kind = group(cell["status"])
    if kind == "pass":
        return lat if lat is not None else 1e8
    if cell["status"] in ("mismatch", "vacuous"):
        return 1e9 + (par if par is not None else 0.0)
    return 2e9 if kind == "failure" else 3e9


def tolerance_text(tol: dict[str, Any] | None) -> str:
    if not tol:
        return "—"
    if tol.get("check") == "snr":
        return f"SNR ≥ {fmt_g(tol.get('min_snr_db'))} dB ({tol.get('profile') or 'snr'})"
    text = f"atol {fmt_g(tol.get('atol'))}, rtol {fmt_g(tol.get('rtol'))}"
    return text + (f" ({tol['profile']})" if tol.get("profile") else "")


def reason_key(message: Any) -> str:
    """The part of a could-not-run message shared by its cells (what follows is per-cell detail)."""
    text = first_line(message, 400)
    cut = min([i for i in (text.find(";"), text.find(". ")) if i > 0] or [len(text)])
    return text[:cut]


def page(title: str, body: str, script: str = "", data: Any = None) -> str:
    data_block = (f'<script type="application/json" id="cc-data">{script_json(data)}</script>\n'
                  if data is not None else "")
    script_block = f"<script>{script}</script>\n" if script else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"{data_block}{script_block}</body>\n</html>\n")


def kv(pairs: Iterable[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs)
    return f'<dl class="kv">{items}</dl>'


def html_table(headers: list[str], rows: list[list[Any]], numeric: Iterable[int] = ()) -> str:
    """A plain table; `rows` hold text (escaped here). Columns in `numeric` align right."""
    num = set(numeric)
    head = "".join(f'<th{" class=num" if i in num else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in num else ""}>{esc(v)}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def badge(status: str) -> str:
    return f'<span class="badge {status_css(status)}">{esc(mark(status))} {esc(status)}</span>'


def chips(counts: Counter) -> str:
    order = [s.value for s in Status] + sorted(set(counts) - {s.value for s in Status})
    return '<div class="chips">' + "".join(
        f'<span class="chip {status_css(s)}">{esc(mark(s))} {esc(s)} <b>{counts[s]}</b></span>'
        for s in order if counts.get(s)) + "</div>"


def legend() -> str:
    """The marks, once each, with every status that uses them (several failures share ✘)."""
    by_mark: dict[str, list[str]] = defaultdict(list)
    for status, (sign, _) in STYLE.items():
        by_mark[sign].append(status)
    items = "".join(f'<span><span class="mark {status_css(names[0])}">{esc(sign)}</span> {esc(", ".join(names))}'
                    "</span>" for sign, names in by_mark.items())
    return (f'<div class="legend">{items}<span><span class="warnmark">*</span> the cell has warnings</span>'
            '<span>figures: p50 latency of a pass, max_abs of a mismatch, the op or stage of a failure</span></div>')


def run_header(document: dict[str, Any], title: str) -> str:
    run = document.get("run") or {}
    host = run.get("host") or {}
    finished = run.get("finished")
    settings = run.get("settings") or {}
    gpus = ", ".join(map(str, host.get("gpus") or [])) or "no GPU"
    state = f"finished {fmt_date(finished)}" if finished else "unfinished (still running, or killed)"
    facts = [f"run {run.get('id', '—')}", f"started {fmt_date(run.get('started'))}", state,
             f"host {host.get('hostname', '—')}: {host.get('cpu', '—')}, {host.get('cores', '—')} cores, {gpus}"]
    # Only what the document says: an older or hand-made run lacks settings, and "size —" tells nobody anything.
    facts += [text for key, text in (("size", f"size {settings.get('size')}"),
                                     ("samples", f"{settings.get('samples')} samples")) if settings.get(key) is not None]
    if run.get("convcheck_version"):
        facts.append(f"convcheck {run['convcheck_version']}")
    return f"<h1>{esc(title)}</h1>\n<p class=\"meta\">" + "".join(f"<span>{esc(f)}</span>" for f in facts) + "</p>"
