"""The audit as pages: `render_audit_md` (audit.md) and `render_audit_html` (audit.html), both from the
audit dict `build_audit` returns (audit.json is that dict itself).

Every string that came from the document (model, route and op names, messages, evidence) is escaped
where it is placed, with the reports' one Markdown escape (`md_escape`, as matrix.md) and one HTML
escape (`esc`).
"""

from __future__ import annotations

from typing import Any

from convcheck.reports.escaping import esc, md_escape, md_table
from convcheck.reports.audit_memo_render import (matrix_tables, memo_html, memo_md, sensitivity_lines, tco_chart,
                                                 tco_table)
from convcheck.reports.html_charts import qps_chart
from convcheck.reports.numbers import money, readable, score_text, share, si_bytes

CAND_HEAD = ["route", "target", "status", "parity", "max_abs", "SNR dB", "p50 ms", "p99 ms", "rows/call",
             "budget (p99)", "inferences/s", "$/M", "peak MB", "Δ load+run MB", "artifact", "lock-in"]


def _cand_head(audit: dict) -> list[str]:
    traffic = bool(audit["pricing"] and audit["pricing"]["traffic_per_s"])
    return ["role"] + CAND_HEAD + (["instances", "$/month"] if traffic else [])


def _role(c: dict, rec: dict) -> str:
    for role in ("primary", "fallback"):
        if rec[role] and rec[role]["id"] == c["id"]:
            return role
    return "eligible" if c["eligible"] else "—"


def _cand_rows(audit: dict) -> list[list[str]]:
    traffic = bool(audit["pricing"] and audit["pricing"]["traffic_per_s"])
    rows = []
    for c in audit["candidates"]:
        cost = c["cost"] or {}
        extra = [str(cost.get("instances") or "—"), money(cost.get("monthly_usd"))] if traffic else []
        rows.append([_role(c, audit["recommendation"])] + _cand_row(c) + extra)
    return rows


def _cand_row(c: dict) -> list[str]:
    lat, par = c["latency"] or {}, c["parity"]
    budget = "—" if lat.get("within_budget") is None else ("✔ " if lat["within_budget"] else "✘ ") + \
        share(lat["budget_fraction"] or 0)
    tput = c["throughput"]["per_s"] if c["throughput"] else None
    cost = (c["cost"] or {}).get("per_million_usd")
    mem = c["memory"] or {}
    snr = "exact" if par["exact"] else readable(par["snr_db"])
    return [c["route"], f"{c['device']} {c['precision']}", c["status"], par["verdict"], readable(par["max_abs"]), snr,
            readable(lat.get("p50")), readable(lat.get("p99")), str(lat.get("batch") or "—"), budget, readable(tput),
            money(cost), readable(mem.get("process_peak_mb")), readable(mem.get("load_and_run_delta_mb")),
            si_bytes(c["artifact_bytes"]), score_text(c["lockin"]["score"]) if c["lockin"] else "—"]


def _detail(c: dict) -> str:
    """The unverified cell's own statement, without the install hint already shown under 'needs'."""
    return ((c["error"] or {}).get("message") or "").split("; pip install")[0]


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A GFM table of plain text: every header and cell escaped here."""
    return md_table([md_escape(h) for h in head], [[md_escape(v) for v in row] for row in rows])


def _factor_names(cands: list[dict]) -> list[str]:
    names: list[str] = []
    for c in cands:
        for name in (c["lockin"] or {}).get("factors", {}):
            if name not in names:
                names.append(name)
    return names


def _factor_cell(f: dict) -> str:
    value, weight = f.get("value"), f.get("weight")
    return f"{'—' if value is None else f'{value:.2f}'} (w {'—' if weight is None else f'{weight:g}'})"


def _lockin_rows(cands: list[dict]) -> tuple[list[str], list[list[str]], list[str]]:
    """One row per route (the score is per route), factor values; evidence listed under the table."""
    names, seen, rows, evidence = _factor_names(cands), set(), [], []
    for c in cands:
        if not c["lockin"] or c["route"] in seen:
            continue
        seen.add(c["route"])
        f = c["lockin"]["factors"]
        rows.append([c["route"], score_text(c["lockin"]["score"])] +
                    [_factor_cell(f[n]) if n in f else "—" for n in names])
        evidence += [f"{c['route']} — {n}: {f[n]['evidence']}" for n in names if n in f and f[n]["evidence"]]
    return ["route", "score"] + names, rows, evidence


def header_lines(audit: dict) -> list[str]:
    """The audit's context in plain text (each renderer escapes it): run, host, budget, pricing, lock-in."""
    run, budget, pricing = audit["run"], audit["budget"]["latency_ms"], audit["pricing"]
    lines = [f"run {run.get('id')}, convcheck {run.get('convcheck_version')}, size {run.get('size')}; "
             f"host: {audit['host']['note']}",
             f"latency budget: {readable(budget) + ' ms' if budget is not None else 'none given'} — "
             f"{audit['budget']['basis']}"]
    if pricing:
        traffic = f"{readable(pricing['traffic_per_s'])}/s" if pricing["traffic_per_s"] else "not given"
        lines.append(f"price {money(pricing['price_per_hour_usd'])}/hour, traffic {traffic}; "
                     f"assumption: {pricing['assumption']}")
    if audit["lockin"]["note"]:
        lines.append(f"lock-in: {audit['lockin']['note']}")
    return lines


def _stand_in_lines(audit: dict[str, Any], escape: Any) -> list[str]:
    """Candidates whose verdict came from a stand-in for the deployed runtime (Core ML off macOS)."""
    by = [c for c in audit["candidates"] if c.get("verified_by")]
    if not by:
        return []
    return [f"{escape(', '.join(c['id'] for c in by))}: verified by {escape(by[0]['verified_by'])}: parity of the "
            "ML program's semantics only; no latency, and Apple's kernels were not run (a Mac runs them)"]


LOAD_HEAD = ["route", "target", "Server at the traffic: QPS", "p50 ms", "p99 ms", "LoadGen", "capacity QPS",
             "capacity inferences/s", "eligible"]


def _load_rows(audit: dict) -> list[list[str]]:
    """One row per candidate served under LoadGen: the Server run at the traffic and the capacity."""
    rows = []
    for c in audit["candidates"]:
        served = c.get("served")
        if not served:
            continue
        server, cap = served.get("server") or {}, served.get("capacity") or {}
        verdict = "—" if not server else ("VALID" if server["valid"] else f"INVALID: {server.get('why') or '?'}")
        rows.append([c["route"], f"{c['device']} {c['precision']}", readable(server.get("achieved_qps")),
                     readable(server.get("p50")), readable(server.get("p99")), verdict, readable(cap.get("qps")),
                     readable(cap.get("rows_per_s")), "yes" if c["eligible"] else "no"])
    return rows


def _load_lines(audit: dict) -> list[str]:
    served = [c["served"] for c in audit["candidates"] if c.get("served")]
    if not served:
        return []
    durations = sorted({s["min_duration_s"] for s in served if s.get("min_duration_s")})
    mlperf = all(s.get("mlperf_duration") for s in served)
    return [f"Each passing route was served under MLPerf LoadGen (Server scenario: queries arriving at random, each one "
            f"call of {served[0]['rows_per_query']} row(s)), p99 held to the {readable(audit['budget']['latency_ms'])} "
            "ms budget by LoadGen's own validity rules; capacity is the highest QPS LoadGen judged valid.",
            f"Minimum duration per run: {', '.join(f'{d:g} s' for d in durations) or '—'}"
            + ("" if mlperf else " — shorter than MLPerf Inference's 600 s: LoadGen's rules, not MLPerf-valid runs")]


def _load_chart(audit: dict) -> str | None:
    lines = [(c["id"], c["served"]["curve"]) for c in audit["candidates"] if c.get("served") and c["served"].get("curve")]
    budget = audit["budget"]["latency_ms"]
    return qps_chart(audit["model"], lines, [budget] if budget else [])


def render_audit_md(audit: dict[str, Any]) -> str:
    """The audit as Markdown: every string from the document escaped."""
    prof, rec = audit["profile"], audit["recommendation"]
    out = [f"# Portability audit: {md_escape(audit['model'])} → {md_escape(prof['name'])}", "",
           f"{md_escape(prof.get('description'))}. {md_escape(prof.get('why'))}", ""]
    out += [f"- {md_escape(line)}" for line in header_lines(audit)]
    if audit.get("memo"):
        out += [""] + memo_md(audit)
    out += _md_decision_evidence(audit)
    out += ["", "## Recommendation", ""] + _md_recommendation(rec)
    out += ["", "## Decision rule", ""] + [f"{i}. {md_escape(t)}" for i, t in enumerate(audit["rule"]["text"], 1)]
    if rec["trail"]:
        out += ["", "How the rule picked the primary:", ""]
        out += _md_table(["step", "kept", "dropped", "why"],
                         [[s["criterion"], ", ".join(s["kept"]), ", ".join(s["dropped"]) or "—", s["note"]]
                          for s in rec["trail"]])
    out += ["", "## What would change the choice", ""]
    out += [f"- If {md_escape(t['condition'])}: {md_escape(t['effect'])}" for t in audit["triggers"]] or ["- nothing found"]
    out += ["", "## Candidates verified on this host", ""]
    out += _md_table(_cand_head(audit), _cand_rows(audit)) if audit["candidates"] else ["none"]
    if _load_rows(audit):
        out += ["", "## Under load (MLPerf LoadGen)", ""] + [md_escape(line) for line in _load_lines(audit)] + [""]
        out += _md_table(LOAD_HEAD, _load_rows(audit))
    out += [f"- {line}" for line in _stand_in_lines(audit, md_escape)]
    failed = [c for c in audit["candidates"] if not c["passes"]]
    if failed:
        out += ["", "Failed here (never recommended):", ""]
        out += [f"- {md_escape(c['id'])}: {md_escape(c['ineligible_reason'])}" +
                (f" — {md_escape(c['parity']['localization'])}" if c["parity"]["localization"] else "") for c in failed]
    out += _md_lockin(audit["candidates"])
    out += ["", "## Unverified here (not recommended)", ""]
    if audit["unverified"]:
        out += _md_table(["route", "target", "status", "needs", "detail", "static checks"],
                         [[c["route"], f"{c['device']} {c['precision']}", c["status"], c["needs"],
                           _detail(c), c["precheck_verdict"] or "—"] for c in audit["unverified"]])
    else:
        out.append("none: every candidate ran here")
    if audit["notes"]:
        out += ["", "## Notes", ""] + [f"- {md_escape(n)}" for n in audit["notes"]]
    return "\n".join(out) + "\n"


def _md_decision_evidence(audit: dict[str, Any]) -> list[str]:
    """The weighted matrix, its sensitivity and the cost of ownership (what the memo's choice rests on)."""
    out: list[str] = []
    tables = matrix_tables(audit)
    if tables:
        (spec_head, spec_rows), (head, rows) = tables
        out += ["", "## Weighted criteria", ""] + _md_table(spec_head, spec_rows)
        out += ["", "Scored matrix (each cell: the measured figure → its 0..1 score (weighted points)):", ""]
        out += _md_table(head, rows)
        out += ["", "### Sensitivity", ""] + [f"- {md_escape(line)}" for line in sensitivity_lines(audit)]
    tco = tco_table(audit)
    if audit.get("tco"):
        out += ["", "## Cost of ownership", "", md_escape(audit["tco"]["assumptions"]["text"]), ""]
        out += _md_table(*tco) if tco else []
    return out


def _md_recommendation(rec: dict) -> list[str]:
    if rec["primary"] is None:
        return [f"**No recommendation.** {md_escape(rec['none_reason'])}"]
    p, fb = rec["primary"], rec["fallback"]
    out = [f"**Primary: {md_escape(p['id'])}**", ""] + [f"- {md_escape(r)}" for r in p["reasons"]] + [""]
    if fb:
        out += [f"**Fallback: {md_escape(fb['id'])}**" + (f" — caveat: {md_escape(fb['caveat'])}" if fb["caveat"] else ""), ""]
        out += [f"- {md_escape(r)}" for r in fb["reasons"]]
    else:
        out.append(f"**Fallback: none.** {md_escape(rec.get('fallback_none_reason') or '')}")
    return out


def _md_lockin(cands: list[dict]) -> list[str]:
    head, rows, evidence = _lockin_rows(cands)
    if not rows:
        return ["", "Lock-in: — (not scored in this document)"]
    out = ["", "## Lock-in breakdown (factor value 0..1, 1 = most locked; w = weight)", ""] + _md_table(head, rows)
    if evidence:
        out += ["", "<details><summary>evidence</summary>", ""] + [f"- {md_escape(e)}" for e in evidence] + \
               ["", "</details>"]
    return out


CSS = """svg.chart{display:block;max-width:100%;height:auto}svg.chart text{font-size:11px;fill:#1f2328}
svg.chart text.axis{fill:#59636e;font-size:10px}svg.chart text.lbl{font-family:monospace;font-size:10.5px}
svg.chart .grid{stroke:#e5e8eb;stroke-width:1}
body{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.ok{color:#17702a}.bad{color:#b3261e}.muted{color:#777}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.6em 0}.primary{border-color:#17702a}
.fallback{border-color:#8a6d00}.none{border-color:#b3261e}code{background:#f6f6f6}
.memo{border-color:#0969da;border-width:2px}"""


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{esc(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _html_list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def _html_recommendation(rec: dict) -> str:
    if rec["primary"] is None:
        return f'<div class="card none"><b>No recommendation.</b> {esc(rec["none_reason"])}</div>'
    p, fb = rec["primary"], rec["fallback"]
    out = f'<div class="card primary"><b>Primary: {esc(p["id"])}</b>{_html_list(p["reasons"])}</div>'
    if fb:
        cav = f' <span class="bad">caveat: {esc(fb["caveat"])}</span>' if fb["caveat"] else ""
        out += f'<div class="card fallback"><b>Fallback: {esc(fb["id"])}</b>{cav}{_html_list(fb["reasons"])}</div>'
    else:
        out += f'<div class="card none"><b>Fallback: none.</b> {esc(rec.get("fallback_none_reason") or "")}</div>'
    return out


def _html_decision_evidence(audit: dict[str, Any]) -> str:
    parts: list[str] = []
    tables = matrix_tables(audit)
    if tables:
        (spec_head, spec_rows), (head, rows) = tables
        parts += ["<h2>Weighted criteria</h2>", _html_table(spec_head, spec_rows),
                  "<p>Scored matrix (each cell: the measured figure → its 0..1 score (weighted points)):</p>",
                  _html_table(head, rows), "<h3>Sensitivity</h3>", _html_list(sensitivity_lines(audit))]
    if audit.get("tco"):
        parts += ["<h2>Cost of ownership</h2>", f"<p>{esc(audit['tco']['assumptions']['text'])}</p>"]
        tco = tco_table(audit)
        if tco:
            parts.append(_html_table(*tco))
        chart = tco_chart(audit)
        if chart:
            parts.append(chart)
    return "\n".join(parts)


def render_audit_html(audit: dict[str, Any]) -> str:
    """A self-contained page: no scripts, no network (CSP), every value escaped."""
    prof, rec = audit["profile"], audit["recommendation"]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>convcheck audit: {esc(audit['model'])} on {esc(prof['name'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Portability audit: {esc(audit['model'])} → {esc(prof['name'])}</h1>",
        f"<p>{esc(prof.get('description'))}. {esc(prof.get('why'))}</p>",
        _html_list(header_lines(audit)),
        memo_html(audit) if audit.get("memo") else "",
        _html_decision_evidence(audit),
        "<h2>Recommendation</h2>", _html_recommendation(rec),
        "<h2>Decision rule</h2>",
        "<ol>" + "".join(f"<li>{esc(t)}</li>" for t in audit["rule"]["text"]) + "</ol>",
    ]
    if rec["trail"]:
        parts.append(_html_table(["step", "kept", "dropped", "why"],
                                 [[s["criterion"], ", ".join(s["kept"]), ", ".join(s["dropped"]) or "—", s["note"]]
                                  for s in rec["trail"]]))
    parts += ["<h2>What would change the choice</h2>",
              _html_list([f"If {t['condition']}: {t['effect']}" for t in audit["triggers"]] or ["nothing found"]),
              "<h2>Candidates verified on this host</h2>",
              _html_table(_cand_head(audit), _cand_rows(audit)) if audit["candidates"] else
              "<p>none</p>"]
    if _load_rows(audit):
        chart = _load_chart(audit)
        parts += ["<h2>Under load (MLPerf LoadGen)</h2>", _html_list(_load_lines(audit)),
                  _html_table(LOAD_HEAD, _load_rows(audit))] + ([chart] if chart else [])
    stand_in = _stand_in_lines(audit, str)
    if stand_in:
        parts.append(_html_list(stand_in))
    failed = [c for c in audit["candidates"] if not c["passes"]]
    if failed:
        parts += ["<p>Failed here (never recommended):</p>",
                  _html_list([f"{c['id']}: {c['ineligible_reason']}" for c in failed])]
    head, rows, evidence = _lockin_rows(audit["candidates"])
    parts.append("<h2>Lock-in breakdown</h2>" + (_html_table(head, rows) + (
        f"<details><summary>evidence</summary>{_html_list(evidence)}</details>" if evidence else "")
        if rows else '<p class="muted">— (not scored in this document)</p>'))
    parts.append("<h2>Unverified here (not recommended)</h2>")
    parts.append(_html_table(["route", "target", "status", "needs", "detail", "static checks"],
                             [[c["route"], f"{c['device']} {c['precision']}", c["status"], c["needs"],
                               _detail(c), c["precheck_verdict"] or "—"] for c in audit["unverified"]])
                 if audit["unverified"] else
                 "<p>none: every candidate ran here</p>")
    if audit["notes"]:
        parts += ["<h2>Notes</h2>", _html_list(audit["notes"])]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
