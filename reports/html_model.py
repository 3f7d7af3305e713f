"""models/<page>.html: one model's page — per route [target], the stage ladder and where it stopped,
parity per output, latency, memory, size, localisation, static check, tool versions and lock-in.
"""

from __future__ import annotations

from typing import Any

from convcheck.reports.cell_view import HOP_FACTS, Cell, cross_check_text, label, lockin_of, no_latency_reason, tvm_build_text
from convcheck.reports.escaping import clip, esc, first_line
from convcheck.reports.html_charts import contributions, latency_panel, load_curve_panel
from convcheck.reports.html_parts import (LINE_LIMIT, badge, cell_anchor, chips, kv, page, reason_key, run_header,
                                          html_table, tolerance_text)
from convcheck.reports.ladder import ladder
from convcheck.reports.load_view import capacity_text, load_note, scenario_rows, sut_text
from convcheck.reports.numbers import finite, fmt_bytes, fmt_g, fmt_mib, fmt_ms, fmt_pct, fmt_rate, fmt_s, fmt_value
from convcheck.reports.route_packages import packages_or_all
from convcheck.reports.status_groups import NOT_HERE, status_counts
from convcheck.types import Status


_LADDER_STYLE = {"ok": ("✔", "s-pass"), "failed": ("✘", "s-fail"), "not reached": ("·", "s-skip"),
                 "n/a": ("n/a", "s-skip"), "same": ("=", "s-skip")}


def _ladder_html(cell: Cell) -> str:
    items = []
    steps = ladder(cell)
    for step in steps:
        sign, css = _LADDER_STYLE[step["state"]]
        name = step["step"]
        if step["state"] == "same":  # a one-hop route: "converted" is the export, shown in its colour
            css = _LADDER_STYLE[steps[0]["state"]][1]
            name = "converted (= exported)"
        note = {"same": "one hop: the same step as exported",
                "n/a": "no conversion: the source runs as is"}.get(step["state"], step["state"])
        secs = f'<span class="secs">{esc(fmt_s(step["seconds"]))}</span>' if step["seconds"] is not None else ""
        items.append(f'<li class="{css}" title="{esc(note)}">{esc(sign)} {esc(name)}'
                     f'<span class="sr"> ({esc(step["state"])})</span>{secs}</li>')
    err = cell.get("error") or {}
    if cell["status"] == "pass":
        stopped = '<p class="stopped s-pass">Went through every stage.</p>'
    else:
        op = f", op <code>{esc(err['op'])}</code>" if err.get("op") else ""
        stopped = (f'<div class="stopped">Stopped at <b>{esc(err.get("stage") or "?")}</b>{op}: '
                   f'{badge(cell["status"])}<pre>{esc(err.get("message") or "no message")}</pre></div>')
    ref = next((s for s in cell.get("stages") or [] if isinstance(s, dict) and s.get("stage") == "reference"), None)
    ref_note = (f'<p class="muted small">reference outputs from {esc(cell.get("reference") or "the source")}'
                f' in {esc(fmt_s(ref.get("seconds")))}</p>') if ref else ""
    return f'<ol class="ladder">{"".join(items)}</ol>{ref_note}{stopped}'


_PARITY_FIELDS = ("max_abs", "max_rel", "mean_abs", "rms", "cosine", "snr_db", "psnr_db", "top1_agreement",
                  "top5_agreement", "exact_match")


def _parity_html(par: dict[str, Any]) -> str:
    tol = par.get("tolerance") or {}
    head = [("verdict", "within tolerance" if par.get("ok") else "outside tolerance"),
            ("tolerance", tolerance_text(tol)), ("samples", par.get("samples")),
            ("worst sample", par.get("worst_sample"))]
    mp = par.get("min_passing") or {}
    if mp:
        head.append(("smallest passing bounds", ", ".join(f"{k} {fmt_g(v)}" for k, v in mp.items())))
    nf = par.get("noise_floor") or {}
    if nf:
        head.append(("noise floor", f"{nf.get('reference', 'fp64')}: max_abs {fmt_g(nf.get('max_abs'))}"))
    if tol.get("raised_by_noise_floor"):
        head.append(("atol raised by noise floor", fmt_value(tol["raised_by_noise_floor"])))
    half = par.get("fp16_floor") or {}
    if half:
        head.append((f"fp16 floor ({half.get('reference', '?')})", half.get("error") or ", ".join(
            f"{k} SNR {fmt_g(v.get('snr_db'), 3)} dB" for k, v in (half.get("per_output") or {}).items()) or "—"))
    if tol.get("snr_lowered_by_fp16_floor"):
        head.append(("SNR bound lowered to the source's own fp16 error",
                     ", ".join(f"{k} ≥ {fmt_g(v, 3)} dB" for k, v in tol["snr_lowered_by_fp16_floor"].items())))
    rows = []
    for name, o in (par.get("per_output") or {}).items():
        o = o if isinstance(o, dict) else {}
        rows.append([name, "x".join(map(str, o.get("shape") or [])) or "—", o.get("dtype") or "—",
                     "ok" if o.get("ok") else "FAIL", *[fmt_g(o.get(f), 4) for f in _PARITY_FIELDS[:6]],
                     fmt_g(o.get("min_atol")), o.get("problem") or ""])
    per_output = html_table(["output", "shape", "dtype", "ok", "max_abs", "max_rel", "mean_abs", "rms", "cosine", "SNR dB",
                    "min atol", "problem"], rows, numeric=range(4, 11)) if rows else ""
    overall = ", ".join(f"{f} {fmt_g(par.get(f), 4)}" for f in _PARITY_FIELDS if finite(par.get(f)) is not None)
    return f"{kv(head)}<p class=\"small\">worst output: {esc(overall or '—')}</p>{per_output}"


def _latency_html(cell: Cell) -> str:
    lat = cell.get("latency_ms") or {}
    t = cell.get("timings_s") or {}
    pairs = []
    if lat:
        pairs += [(k, fmt_ms(lat.get(k))) for k in ("p50", "p90", "p99", "mean", "min", "max")]
        pairs += [("stdev / cv", f"{fmt_ms(lat.get('stdev'))} / {fmt_pct(lat.get('cv'))}"),
                  ("timed calls", f"{lat.get('n', '—')} (after {lat.get('warmup', '—')} warm-up)"),
                  ("batch", fmt_value(lat.get("batch"))), ("threads", fmt_value(lat.get("threads")))]
        if lat.get("noisy"):
            pairs.append(("noisy", "yes: compare with care"))
    elif no_latency_reason(cell):
        pairs.append(("latency", f"not measured: {no_latency_reason(cell)}"))
    pairs += [(f"{k.replace('_', ' ')} time", fmt_s(t.get(k))) for k in ("reference", "convert", "load",
                                                                         "first_inference") if k in t]
    return kv(pairs) if pairs else '<p class="muted">—</p>'


def _load_html(model: str, cell: Cell) -> str:
    """Every LoadGen scenario the cell ran, its capacity, the SUT, and its latency-vs-QPS curve."""
    rows = scenario_rows(cell)
    if not rows and not capacity_text(cell):
        return f'<p class="muted">{esc(load_note(cell) or "—")}</p>'
    load = cell.get("load") or {}
    table = html_table(["scenario", "LoadGen", "throughput", "p50", "p90", "p99", "latency of", "log"],
                       [[r["scenario"], r["verdict"], r["qps"], r["p50"], r["p90"], r["p99"], r["latency_of"] or "",
                         f"{load.get('logs', '')}/{r['log']}" if r["log"] else ""] for r in rows], numeric=(3, 4, 5))
    capacity = capacity_text(cell)
    curve = load_curve_panel(model, [cell])
    notes = [n for n in (f"capacity: {capacity}" if capacity else "", f"system under test: {sut_text(cell)}",
                         str(load.get("note") or ""), f"load test failed: {load['error']}" if load.get("error") else "")
             if n]
    return table + "".join(f'<p class="small">{esc(n)}</p>' for n in notes) + (curve or "")


def _memory_html(cell: Cell) -> str:
    mem = cell.get("memory_mb") or {}
    pairs = [(k.replace("_", " "), fmt_mib(v)) for k, v in mem.items()]
    pairs.append(("artifact size", fmt_bytes(cell.get("artifact_bytes"))))
    return kv(pairs)


def _artifacts_html(cell: Cell) -> str:
    rows = []
    for a in cell.get("artifacts") or []:
        if not isinstance(a, dict):
            continue
        meta = a.get("metadata") or {}
        facts = ", ".join(f"{k.replace('_', ' ')} {fmt_value(meta[k])}" for k in HOP_FACTS
                          if meta.get(k) not in (None, ""))
        rows.append([a.get("hop", "—"), a.get("converter", "—"), a.get("format", "—"), "ok" if a.get("ok") else "failed",
                     fmt_bytes(a.get("bytes")), fmt_s(a.get("seconds")), str(a.get("sha256") or "")[:12], facts])
    return html_table(["hop", "converter", "format", "ok", "size", "time", "sha256", "metadata"], rows,
                  numeric=(4, 5)) if rows else ""


def _localization_html(loc: Any) -> str:
    if not isinstance(loc, dict):
        return ""
    lead = (f"<p><b>{esc(loc.get('summary') or 'found')}</b></p>" if loc.get("found")
            else f"<p>Not found: {esc(loc.get('reason') or 'no reason given')}</p>")
    keep = [(k, fmt_s(v) if k == "seconds" else fmt_value(v)) for k, v in loc.items()
            if k not in ("summary", "reason", "found", "tolerance")]
    return f"{lead}{kv(keep)}"


def _precheck_html(pre: Any) -> str:
    if not isinstance(pre, dict):
        return ""
    pairs = [(k, fmt_value(pre[k])) for k in ("verdict", "unsupported", "restricted", "opset") if k in pre]
    checks = [[c.get("name", "—"), "ok" if c.get("ok") else "FAIL", c.get("detail", "")]
              for c in pre.get("checks") or [] if isinstance(c, dict)]
    ops = pre.get("ops")
    if isinstance(ops, dict):
        pairs.append(("ops", ", ".join(f"{k} {v}" for k, v in ops.items())))
    src = pre.get("list")
    if isinstance(src, dict):
        pairs.append(("support list", fmt_value(src)))  # text only: the report links nothing outside itself
    return kv(pairs) + (html_table(["check", "ok", "detail"], checks) if checks else "")


def _lockin_table(lock: dict[str, Any] | None) -> str:
    if not lock:
        return '<p class="muted">— (no lock-in score in this document)</p>'
    rows = [[name, fmt_g(w), fmt_g(v), f"{pts:.1f}", ev] for name, w, v, pts, ev in contributions(lock)]
    return (f'<p>score <b>{esc(fmt_g(lock.get("score"), 3))}</b> / 100 (0 open, 100 locked in)</p>'
            + html_table(["factor", "weight", "value", "points", "evidence"], rows, numeric=(1, 2, 3)))


def _cell_section(document: dict[str, Any], cell: Cell) -> str:
    packages = packages_or_all(document, cell)
    rs = cell.get("runtime_settings") or {}
    parts = [f'<section class="cellsec" id="{esc(cell_anchor(cell))}">'
             f"<h3>{esc(label(cell))} {badge(cell['status'])}"
             f'<span class="muted small">{esc(" → ".join(map(str, cell.get("converters") or cell.get("steps") or [])) or "no conversion")}'
             f' · runtime {esc(cell.get("runtime", "—"))}</span></h3>', _ladder_html(cell)]
    if cell.get("warnings"):
        parts.append("<h4>Warnings</h4><ul>" + "".join(f"<li>{esc(w)}</li>" for w in cell["warnings"]) + "</ul>")
    if cell.get("localization"):
        parts.append(f"<h4>Localisation</h4>{_localization_html(cell['localization'])}")
    if cell.get("precheck"):
        parts.append(f"<h4>Static pre-check</h4>{_precheck_html(cell['precheck'])}")
    if cell.get("parity"):
        cross = cross_check_text(cell)
        parts.append(f"<h4>Parity</h4>{_parity_html(cell['parity'])}"
                     + (f'<p class="small">cross-check: {esc(cross)}</p>' if cross else ""))
    versions = (f"<div><h4>Tool versions</h4>{kv(sorted(packages.items())) if packages else '—'}"
                + (f"<h4>Runtime settings</h4>{kv((k, fmt_value(v)) for k, v in rs.items())}" if rs else "")
                + "</div>")
    started = any(v is not None for v in (cell.get("timings_s") or {}).values()) or any(
        cell.get(k) for k in ("latency_ms", "memory_mb", "artifact_bytes", "stages"))
    # A cell stopped at plan has no figures: its page shows the versions, not a column of dashes.
    build = tvm_build_text(cell)
    figures = (f"<div><h4>Latency and timings</h4>{_latency_html(cell)}"
               + (f'<p class="small">TVM build: {esc(build)}</p>' if build else "") + "</div>"
               f"<div><h4>Memory and size</h4>{_memory_html(cell)}</div>") if started else ""
    parts.append(f'<div class="cols">{figures}{versions}</div>')
    if cell.get("variants"):
        rows = [[n, fmt_g((v.get("parity") or {}).get("max_abs")), fmt_ms((v.get("latency_ms") or {}).get("p50"))]
                for n, v in cell["variants"].items() if isinstance(v, dict)]
        parts.append("<h4>Variants</h4>" + html_table(["variant", "max_abs", "p50"], rows, numeric=(1, 2)))
    batches = cell.get("batches") or {}
    if batches.get("per_batch"):
        rows = [[b.get("batch"), fmt_ms((b.get("latency_ms") or {}).get("p50")), fmt_rate(b.get("throughput_per_s")),
                 b.get("error") or ""] for b in batches["per_batch"] if isinstance(b, dict)]
        parts.append("<h4>Batches</h4>" + html_table(["batch", "p50", "rows/s", "error"], rows, numeric=(0, 1, 2)))
    elif batches.get("skipped"):
        parts.append(f"<h4>Batches</h4><p>skipped: {esc(batches['skipped'])}</p>")
    if cell.get("load"):
        parts.append(f"<h4>Under load (MLPerf LoadGen)</h4>{_load_html(str(cell.get('model')), cell)}")
    if cell.get("artifacts"):
        parts.append(f"<h4>Artifacts</h4>{_artifacts_html(cell)}")
    parts.append(f"<h4>Lock-in of the route</h4>{_lockin_table(lockin_of(document, cell))}")
    if cell.get("log"):
        parts.append(f"<details><summary>Converter log ({len(cell['log'])} lines)</summary>"
                     f"<pre>{esc(chr(10).join(map(str, cell['log'])))}</pre></details>")
    parts.append("</section>")
    return "".join(parts)


def _index_note(cell: Cell) -> str:
    """The route index's last column: where and why a cell stopped, or its warnings."""
    err = cell.get("error") or {}
    if cell["status"] == Status.PASS.value:
        return "; ".join(map(str, cell.get("warnings") or []))
    if cell["status"] in NOT_HERE:
        return reason_key(err.get("message"))
    return clip(f"{err.get('stage') or '?'}: {first_line(err.get('message'), LINE_LIMIT)}", 120, rstrip=False)


def render_model_html(document: dict[str, Any], model: str) -> str:
    """One model's page, written as `models/<model_page_name(model)>`: per route, the stage ladder and
    where it stopped, parity per output, latency, memory, size, localisation, versions, lock-in."""
    cells = [c for c in document.get("cells") or [] if isinstance(c, dict) and c.get("model") == model]
    run_id = (document.get("run") or {}).get("id", "—")
    counts = status_counts(cells)
    index = "".join(
        f'<tr><td><a href="#{esc(cell_anchor(c))}">{esc(label(c))}</a></td><td>{badge(c["status"])}</td>'
        f'<td class="num">{esc(fmt_ms((c.get("latency_ms") or {}).get("p50")))}</td>'
        f'<td class="num">{esc(fmt_g((c.get("parity") or {}).get("max_abs"), 2))}</td>'
        f'<td class="num">{esc(fmt_bytes(c.get("artifact_bytes")))}</td>'
        f'<td class="num">{esc(fmt_g((lockin_of(document, c) or {}).get("score"), 3))}</td>'
        f"<td>{esc(_index_note(c))}</td></tr>" for c in cells)
    chart = latency_panel(model, cells)
    body = [
        '<p class="small"><a href="../matrix.html">← the whole matrix</a></p>',
        run_header(document, f"{model} — convcheck run {run_id}"),
        chips(counts) if cells else '<p class="muted">No cell of this model in the run.</p>',
        '<h2>Routes</h2><table class="grid"><thead><tr><th>route [target]</th><th>status</th>'
        '<th class="num">p50</th><th class="num">max_abs</th><th class="num">artifact</th>'
        '<th class="num">lock-in</th><th>stopped at, why</th></tr></thead>'
        f"<tbody>{index}</tbody></table>",
        (f'<h2>Latency</h2><figure class="panel wide">{chart}</figure>' if chart else ""),
        "<h2>Cells</h2>", *[_cell_section(document, c) for c in cells],
        f'<footer>convcheck HTML report, run {esc(run_id)}. Self-contained: this file loads nothing from the '
        "network.</footer>",
    ]
    return page(f"{model} — convcheck run {run_id}", "\n".join(body))
