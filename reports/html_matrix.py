"""matrix.html: the whole run on one page — header, the models x routes matrix (sortable, filterable,
a detail drawer per cell), failures, what could not run here, the charts, models and environment.

The table and charts are static HTML; the script (html_assets.MATRIX_JS) only adds sorting, filtering
and the drawer, from the data block `cell_detail` fills (formatted here, so the script only places text).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from convcheck.reports.cell_view import TVM_LEGEND, Cell, by_row, grid, has_tvm, label, lockin_of
from convcheck.reports.escaping import esc, first_line
from convcheck.reports.html_assets import MATRIX_JS
from convcheck.reports.html_charts import latency_panel, lockin_chart, parity_chart, load_curve_panel
from convcheck.reports.html_parts import (LINE_LIMIT, badge, cell_anchor, chips, figure, kv, legend, model_page_name,
                                          page, reason_key, run_header, sort_value, html_table, tolerance_text)
from convcheck.reports.numbers import (finite, fmt_bytes, fmt_db, fmt_g, fmt_mib, fmt_ms, fmt_value, plural)
from convcheck.reports.status_groups import NOT_HERE, group, mark, not_here, status_counts, status_css


def _localization_text(loc: dict[str, Any] | None) -> str | None:
    if not isinstance(loc, dict):
        return None
    if loc.get("found"):
        return str(loc.get("summary") or loc.get("node") or loc.get("layer") or "found")
    return f"not found: {loc.get('reason') or 'no reason given'}"


def _outputs_line(per_output: Any, limit: int = 8) -> str:
    """`name: ok` per output, the first `limit` of them (a detector can have dozens of outputs)."""
    items = [(n, o) for n, o in (per_output or {}).items()] if isinstance(per_output, dict) else []
    line = ", ".join(f"{n}: {'ok' if isinstance(o, dict) and o.get('ok') else 'FAIL'}" for n, o in items[:limit])
    return (line + (f", … {len(items) - limit} more" if len(items) > limit else "")) or "—"


def cell_detail(document: dict[str, Any], cell: Cell, href: str) -> dict[str, Any]:
    """What the detail drawer shows, formatted here so the script only places text."""
    err = cell.get("error") or {}
    par = cell.get("parity") or {}
    lat = cell.get("latency_ms") or {}
    mem = cell.get("memory_mb") or {}
    sections: list[list[Any]] = []
    where = [["stage", err.get("stage")], ["op", err.get("op")]]
    if any(v for _, v in where):
        sections.append(["where it stopped", [[k, str(v)] for k, v in where if v]])
    if par:
        sections.append(["parity (worst output)", [
            ["max_abs", fmt_g(par.get("max_abs"))], ["max_rel", fmt_g(par.get("max_rel"))],
            ["cosine", fmt_g(par.get("cosine"), 6)], ["SNR", fmt_db(par.get("snr_db"))],
            ["tolerance", tolerance_text(par.get("tolerance"))],
            ["outputs", _outputs_line(par.get("per_output"))]]])
    if lat:
        sections.append(["latency", [
            ["p50", fmt_ms(lat.get("p50"))], ["p90", fmt_ms(lat.get("p90"))], ["p99", fmt_ms(lat.get("p99"))],
            ["calls", f"{lat.get('n', '—')} × batch {lat.get('batch', '—')}"],
            ["threads", fmt_value(lat.get("threads"))]]])
    other = [["artifact size", fmt_bytes(cell.get("artifact_bytes"))]]
    if mem:
        other += [["RSS after load", fmt_mib(mem.get("rss_after_load"))],
                  ["process peak RSS", fmt_mib(mem.get("process_peak_rss"))]]
        if mem.get("gpu_peak") is not None:
            other.append(["GPU peak", fmt_mib(mem.get("gpu_peak"))])
    lock = lockin_of(document, cell)
    other.append(["lock-in score", fmt_g(lock.get("score"), 3) if lock else "—"])
    sections.append(["size, memory, lock-in", other])
    loc = _localization_text(cell.get("localization"))
    if loc:
        sections.append(["localisation", [["where the error starts", loc]]])
    if cell.get("warnings"):
        sections.append(["warnings", [[str(i + 1), str(w)] for i, w in enumerate(cell["warnings"])]])
    return {"title": f"{cell['model']} × {label(cell)}", "status": cell["status"], "mark": mark(cell["status"]),
            "css": status_css(cell["status"]), "headline": figure(cell),
            "message": None if err.get("message") is None else str(err["message"]),
            "sections": sections, "href": href}


def _breakable(name: str) -> str:
    """Escaped, with line-break chances after `_` and `/` so a column header wraps at word parts."""
    return esc(name).replace("_", "_<wbr>").replace("/", "/<wbr>")


def _matrix_table(document: dict[str, Any], cells: list[Cell], pages: dict[str, str]) -> tuple[str, dict[str, Any]]:
    models, rows, cell_at = grid(cells)
    row_cells = by_row(cells)
    details: dict[str, Any] = {}
    head = ['<th class="rowhead" data-sortable><button class="sort" type="button">route [target]</button></th>',
            '<th class="nowrap" data-sortable title="lock-in score of the route, 0 (open) .. 100 (locked in)">'
            '<button class="sort" type="button">lock-in</button></th>',
            '<th class="nowrap" data-sortable title="cells that passed / cells in the row">'
            '<button class="sort" type="button">'
            "passed</button></th>"]
    for m in models:
        head.append(f'<th data-sortable><button class="sort" type="button" title="sort the rows by this model">'
                    f'{_breakable(m)}</button><a class="page" href="models/{esc(pages[m])}">page</a></th>')
    body = []
    for r, row in enumerate(rows):
        lock = lockin_of(document, row_cells[row][0])
        score = finite(lock.get("score")) if lock else None
        passed = sum(c["status"] == "pass" for c in row_cells[row])
        bar = "" if score is None else f' style="--v:{min(max(score, 0), 100):.0f}%"'
        tds = [f'<th class="rowhead" scope="row" data-sort="{esc(row)}">{esc(row)}</th>',
               f'<td class="lock" data-sort="{"" if score is None else score}"{bar}>'
               f'{"—" if score is None else esc(fmt_g(score, 3))}</td>',
               f'<td class="ran" data-sort="{passed}">{passed}/{len(row_cells[row])}</td>']
        for m_i, m in enumerate(models):
            c = cell_at.get((row, m))
            if c is None:
                tds.append('<td class="empty" data-sort=""><span class="sr">not in this run</span></td>')
                continue
            key = f"{r}-{m_i}"
            href = f"models/{pages[m]}#{cell_anchor(c)}"
            details[key] = cell_detail(document, c, href)
            warn = '<span class="warnmark" title="this cell has warnings">*</span>' if c.get("warnings") else ""
            fig = figure(c)
            tds.append(
                f'<td class="cell {status_css(c["status"])}" data-key="{key}" data-status="{esc(c["status"])}" '
                f'data-group="{group(c["status"])}" data-sort="{sort_value(c)}">'
                f'<a href="{esc(href)}" title="{esc(m)} × {esc(row)}: {esc(c["status"])}">'
                f'<span class="st">{esc(mark(c["status"]))} {esc(c["status"])}</span>{warn}'
                + (f'<br><span class="fig">{esc(fig)}</span>' if fig else "") + "</a></td>")
        body.append(f'<tr data-label="{esc(row)}" data-order="{r}">{"".join(tds)}</tr>')
    table = (f'<div class="wrap"><table class="matrix" id="matrix"><thead><tr>{"".join(head)}</tr></thead>'
             f'<tbody>{"".join(body)}</tbody></table>'
             '<p id="nomatch" class="muted hidden">No row matches the filter.</p></div>')
    return table, details


def _controls(counts: Counter) -> str:
    options = [("all", "every status"), ("failure", "failures"), ("pass", "passes"), ("notrun", "could not run here")]
    options += [(s, s) for s in sorted(counts)]
    opts = "".join(f'<option value="{esc(v)}">{esc(t)}</option>' for v, t in options)
    return ('<div class="controls"><label>Filter <input type="search" id="filter" '
            'placeholder="a route (tflite) or a model (resnet)" autocomplete="off"></label>'
            f'<label>Status <select id="status-filter">{opts}</select></label>'
            '<span id="shown" class="muted small"></span>'
            '<span class="muted small">Click a column header to sort, a cell for its detail.</span></div>')


def _failure_list(cells: list[Cell], models: list[str], rows: list[str], pages: dict[str, str]) -> str:
    failed = [c for c in cells if group(c["status"]) == "failure"]
    if not failed:
        return '<p class="muted">No cell failed.</p>'
    items = []
    for c in failed:
        err = c.get("error") or {}
        key = f"{rows.index(label(c))}-{models.index(c['model'])}"
        href = f"models/{pages[c['model']]}#{cell_anchor(c)}"
        why = f"{c['status']} at {err.get('stage') or '?'}: {first_line(err.get('message'), LINE_LIMIT) or 'no message'}"
        items.append(f'<li data-key="{key}">{badge(c["status"])} <a href="{esc(href)}">{esc(c["model"])} × '
                     f'{esc(label(c))}</a> — <span class="why">{esc(why)}</span></li>')
    return f'<ul class="fails" id="failures">{"".join(items)}</ul>'


def _not_here_list(cells: list[Cell]) -> str:
    skipped = not_here(cells)
    if not skipped:
        return ""
    groups: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for c in skipped:
        groups[(c["status"], reason_key((c.get("error") or {}).get("message")))].append(c)
    items = []
    for (status, reason), cs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        example = first_line((cs[0].get("error") or {}).get("message"), 400)
        routes = ", ".join(dict.fromkeys(label(c) for c in cs))
        items.append(f"<li>{badge(status)} <b>{plural(len(cs), 'cell')}</b> — {esc(reason or 'no reason given')}"
                     f'<br><span class="muted small">routes: {esc(routes)}</span>'
                     f'<br><span class="muted small">e.g.: {esc(example)}</span></li>')
    counts = status_counts(skipped)
    summary = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    return (f"<details><summary><b>{plural(len(skipped), 'cell')} could not run on this machine</b> ({esc(summary)}): "
            f'not failures, stated reasons</summary><ul class="fails">{"".join(items)}</ul></details>')


def _models_table(cells: list[Cell], pages: dict[str, str]) -> str:
    by_model: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        by_model[c["model"]].append(c)
    rows = []
    for m, cs in by_model.items():
        kinds = Counter(group(c["status"]) for c in cs)
        fastest = min(((finite((c.get("latency_ms") or {}).get("p50")), label(c)) for c in cs
                       if c["status"] == "pass" and finite((c.get("latency_ms") or {}).get("p50")) is not None),
                      default=None)
        best = f"{fmt_ms(fastest[0])} ({fastest[1]})" if fastest else "—"
        rows.append(f'<tr><td><a href="models/{esc(pages[m])}">{esc(m)}</a></td><td class="num">{kinds["pass"]}</td>'
                    f'<td class="num">{kinds["failure"]}</td><td class="num">{kinds["notrun"]}</td>'
                    f"<td>{esc(best)}</td></tr>")
    return ('<table class="grid"><thead><tr><th>model</th><th class="num">passed</th><th class="num">failed</th>'
            '<th class="num">not run here</th><th>fastest passing route (p50)</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _environment(document: dict[str, Any]) -> str:
    run = document.get("run") or {}
    host = run.get("host") or {}
    mem = finite(host.get("memory_bytes"))
    host_pairs = [("hostname", host.get("hostname")), ("cpu", host.get("cpu")), ("cores", host.get("cores")),
                  ("memory", fmt_bytes(mem) if mem else "—"), ("GPUs", ", ".join(map(str, host.get("gpus") or [])) or "none"),
                  ("os", host.get("os")), ("python", host.get("python")),
                  ("convcheck", run.get("convcheck_version"))]
    settings = run.get("settings") or {}
    set_pairs = [(k, fmt_value(v)) for k, v in settings.items() if k not in ("models", "routes")]
    set_pairs += [(k, f"{len(settings[k])}: {', '.join(map(str, settings[k]))}") for k in ("models", "routes")
                  if isinstance(settings.get(k), list)]
    packages = run.get("packages") or {}
    pkg = html_table(["package", "version"], [[k, v] for k, v in sorted(packages.items())]) if packages else \
        '<p class="muted">No package versions recorded.</p>'
    snapshot = (document.get("lockin") or {}).get("data_snapshot") or {}
    lock = ""
    if snapshot:
        # Sources are shown as text, never as links: the report loads and links nothing outside itself.
        sources = "".join(f"<li>{esc(fmt_value(s))}</li>" for s in snapshot.get("sources") or [])
        lock = (f"<h3>Lock-in data snapshot</h3><p>dated {esc(snapshot.get('date', '—'))}</p>"
                f'<ul class="small">{sources}</ul>')
    return (f'<div class="cols"><div><h3>Host</h3>{kv((k, fmt_value(v)) for k, v in host_pairs)}</div>'
            f"<div><h3>Packages</h3>{pkg}</div>"
            f'<div style="max-width:560px"><h3>Settings</h3>{kv(set_pairs)}</div></div>{lock}')


def _latency_section(cells: list[Cell], models: list[str]) -> str:
    panels, options = [], ['<option value="all">all models</option>']
    for i, m in enumerate(models):
        svg = latency_panel(m, [c for c in cells if c["model"] == m])
        if svg is None:
            continue
        options.append(f'<option value="{i}">{esc(m)}</option>')
        panels.append(f'<figure class="panel" data-model="{i}"><figcaption>{esc(m)}</figcaption>{svg}</figure>')
    if not panels:
        return '<p class="muted">No cell ran: no latency to chart.</p>'
    return ('<p class="note">p50 per route [target], fastest first, one panel per model, log scale (each panel its '
            'own); the black whisker reaches p90. Green: passed; red: ran but failed parity; pale: noisy figure '
            f'(<b>~</b>). <label>Show <select id="lat-model">{"".join(options)}</select></label></p>'
            f'<div class="charts" id="latency-panels">{"".join(panels)}</div>')


def _load_section(cells: list[Cell], models: list[str]) -> str:
    """Latency-vs-QPS curves (MLPerf LoadGen's Server runs), one panel per model; '' when nothing ran under load."""
    panels = []
    for m in models:
        svg = load_curve_panel(m, [c for c in cells if c["model"] == m])
        if svg is not None:
            panels.append(f'<figure class="panel"><figcaption>{esc(m)}</figcaption>{svg}</figure>')
    if not panels:
        return ""
    note = next((str((c.get("load") or {}).get("note")) for c in cells if (c.get("load") or {}).get("note")), "")
    return ('<h2 id="load-sec">Under load (MLPerf LoadGen)</h2><p class="note">p99 latency against the QPS each '
            "Server-scenario run achieved (the Server run and the capacity search's trials), log scales. Filled: "
            "LoadGen judged the run VALID; hollow: INVALID (p99 over the bound, or too few queries to hold it). "
            "Dashed red: the latency bound. Hover a mark for its figures; each model's page has every scenario."
            + (f" {esc(note)}." if note else "") + f'</p><div class="charts">{"".join(panels)}</div>')


def render_matrix_html(document: dict[str, Any]) -> str:
    """The run's page: header, matrix, failures, charts, environment. Links to `models/<page>.html`."""
    cells = [c for c in document.get("cells") or [] if isinstance(c, dict)]
    run_id = (document.get("run") or {}).get("id", "—")
    models, rows, _ = grid(cells)
    pages = {m: model_page_name(m) for m in models}
    counts = status_counts(cells)
    table, details = _matrix_table(document, cells, pages)
    parity = parity_chart(by_row(cells))
    lockin = lockin_chart(document, cells)
    failures = sum(counts[s] for s in counts if group(s) == "failure")
    load = _load_section(cells, models)
    body = [
        run_header(document, f"convcheck matrix — run {run_id}"),
        '<nav class="toc"><a href="#matrix-sec">Matrix</a><a href="#failures-sec">Failures</a>'
        '<a href="#latency-sec">Latency</a>' + ('<a href="#load-sec">Under load</a>' if load else "") +
        '<a href="#parity-sec">Parity</a><a href="#lockin-sec">Lock-in</a>'
        '<a href="#models-sec">Models</a><a href="#env-sec">Environment</a></nav>',
        f"<p><b>{plural(len(cells), 'cell')}</b>: {plural(len(models), 'model')} × {len(rows)} routes [targets]; "
        f"<b>{counts['pass']}</b> passed, <b>{failures}</b> failed, "
        f"<b>{sum(counts[s] for s in NOT_HERE)}</b> could not run on this machine.</p>",
        chips(counts),
        '<h2 id="matrix-sec">Matrix</h2>', legend(),
        f'<p class="note">{esc(TVM_LEGEND)}</p>' if has_tvm(cells) else "", _controls(counts), table,
        f'<h2 id="failures-sec">Failures ({failures})</h2>', _failure_list(cells, models, rows, pages),
        _not_here_list(cells),
        '<h2 id="latency-sec">Latency per route</h2>', _latency_section(cells, models),
        load,
        '<h2 id="parity-sec">Parity error per route</h2>',
        ('<p class="note">max |converted − reference| of each model (one mark per model; hover for its name), '
         'log scale. <span style="color:#2da44e">●</span> within tolerance, <span style="color:#cf222e">✘</span> '
         'outside it, ○ exact (0). The black bar is the row\'s atol (elementwise check: |a − r| ≤ atol + rtol·|r|); '
         'rows checked by SNR name their bound on the right.</p>' + parity) if parity
        else '<p class="muted">No cell ran: no parity to chart.</p>',
        '<h2 id="lockin-sec">Lock-in per route</h2>',
        ('<p class="note">Score 0 (open) .. 100 (locked in) = 100 × Σ weight·value / Σ weight; each segment is one '
         "factor's share of it. Hover a segment for its evidence.</p>" + lockin) if lockin
        else '<p class="muted">— no lock-in scores in this document (the run predates lock-in scoring).</p>',
        f'<h2 id="models-sec">Models</h2>{_models_table(cells, pages)}',
        f'<h2 id="env-sec">Environment</h2>{_environment(document)}',
        '<aside id="detail" hidden aria-live="polite"></aside>',
        f'<footer>convcheck HTML report, schema {esc(document.get("schema_version", "—"))}. '
        "Self-contained: this file loads nothing from the network.</footer>",
    ]
    data = {"models": [{"name": m, "page": pages[m]} for m in models], "firstModelColumn": 3, "cells": details}
    return page(f"convcheck matrix — run {run_id}", "\n".join(body), MATRIX_JS, data)
