"""The decision memo, the weighted matrix, its sensitivity and the cost-of-ownership curves, as Markdown and
HTML pieces that audit_render puts at the top of audit.md/html (everything below them is the evidence)."""

from __future__ import annotations

from typing import Any

from convcheck.reports.escaping import esc, md_escape
from convcheck.reports.numbers import money, readable

EVIDENCE_LINE = "Everything below the memo is the evidence it rests on: the measured figures, per route."


def _memo_lines(audit: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, text) lines of the memo: kinds 'head', 'item', 'text'."""
    memo = audit["memo"]
    prof = audit["profile"]
    out: list[tuple[str, str]] = []
    if memo["primary"] is None:
        out.append(("text", f"No route can be recommended for {prof['name']}: {memo.get('none_reason') or ''}"))
    else:
        p = memo["primary"]
        out.append(("head", f"Primary: {p['id']}"))
        out += [("item", f) for f in p["facts"]]
        c = memo.get("contingency")
        if c:
            out.append(("head", f"Contingency: {c['id']}" + (f" (caveat: {c['caveat']})" if c.get("caveat") else "")))
            out += [("item", f) for f in c["facts"]]
        else:
            out.append(("head", f"Contingency: none ({memo.get('contingency_none') or 'no other eligible route'})"))
        if memo.get("rule_differs"):
            out.append(("text", memo["rule_differs"]))
        out.append(("head", "Triggers for migrating"))
        out += [("item", f"If {t['condition']}: {t['action']}.") for t in memo["triggers"]]
    out.append(("head", "Not verified here"))
    out += [("item", n) for n in memo["not_verified"]] or [("item", "nothing: every candidate route ran on this host")]
    basis = (f"Chosen by {memo['basis']}"
             + (" (the table below: every score traces to the figure beside it)" if audit.get("criteria") else
                " (see 'Decision rule' below)")
             + f", from run {audit['run'].get('id')} measured on {audit['run']['host'].get('cpu') or 'this host'}.")
    out.append(("text", basis))
    return out


def memo_md(audit: dict[str, Any]) -> list[str]:
    out = ["## Decision memo", ""]
    for kind, text in _memo_lines(audit):
        if kind == "head":
            out += ["", f"**{md_escape(text)}**", ""]
        elif kind == "item":
            out.append(f"- {md_escape(text)}")
        else:
            out += ["", md_escape(text)]
    return out + ["", md_escape(EVIDENCE_LINE)]


def memo_html(audit: dict[str, Any]) -> str:
    parts = ['<section class="card memo"><h2>Decision memo</h2>']
    in_list = False
    for kind, text in _memo_lines(audit):
        if kind == "item":
            if not in_list:
                parts.append("<ul>")
                in_list = True
            parts.append(f"<li>{esc(text)}</li>")
            continue
        if in_list:
            parts.append("</ul>")
            in_list = False
        parts.append(f"<p><b>{esc(text)}</b></p>" if kind == "head" else f"<p>{esc(text)}</p>")
    if in_list:
        parts.append("</ul>")
    parts.append(f'<p class="muted">{esc(EVIDENCE_LINE)}</p></section>')
    return "".join(parts)


def _figure(value: Any, unit: str) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float) and value == float("inf"):
        return "identical"
    if unit == "USD":
        return money(value)
    return f"{readable(value)}{(' ' + unit) if unit and not unit.startswith('/') else unit}"


def matrix_tables(audit: dict[str, Any]) -> list[tuple[list[str], list[list[str]]]]:
    """(head, rows) of the criteria table and of the scored matrix."""
    crit = audit["criteria"]
    if not crit:
        return []
    matrix = crit["matrix"]
    criteria = matrix["criteria"]
    spec = (["criterion", "reads", "normalised", "weight"],
            [[c["name"], f"{c['figure']}: {c['meaning']}", c["describe"].split(", ", 2)[-1].rsplit(", weight", 1)[0],
              f"{c['weight']:g}"] for c in criteria])
    head = ["route", "target"] + [c["name"] for c in criteria] + ["total /100"]
    rows = []
    for r in matrix["rows"]:
        cells = []
        for c in criteria:
            cell = r["cells"][c["name"]]
            cells.append(f"{_figure(cell['figure'], c['unit'])} → {cell['score']:.2f} ({cell['points']:.1f} pts)")
        rows.append([r["route"], f"{r['device']} {r['precision']}"] + cells + [f"{r['total']:.1f}"])
    return [spec, (head, rows)]


def sensitivity_lines(audit: dict[str, Any]) -> list[str]:
    crit = audit["criteria"]
    if not crit:
        return []
    sens = crit["sensitivity"]
    if not sens["flips"]:
        return [sens["note"] or "no single-weight change flips the choice"]
    s = sens["smallest"]
    direction = "raising" if s["change"] > 0 else "lowering"
    out = [f"Smallest change that flips the primary: {direction} the weight of {s['criterion']} from "
           f"{s['weight_from']:g} to beyond {s['weight_to']:.3g} ({s['change']:+.3g}, {s['relative_change'] * 100:+.0f}%) "
           f"makes {s['candidate']} the primary, all other weights unchanged."]
    for f in sens["flips"][1:6]:
        out.append(f"{f['criterion']} {f['weight_from']:g} → beyond {f['weight_to']:.3g}: {f['candidate']}")
    for d in crit["matrix"]["dropped"]:
        out.append(f"criterion {d['criterion']} not scored: {d['why']}")
    return out


def tco_table(audit: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    tco = audit.get("tco") or {}
    if not tco.get("curves"):
        return None
    head = ["route", "capacity / instance", "basis", "instances (start → end)", "serving", "migration exposure",
            "total"]
    rows = []
    for cid, c in sorted(tco["curves"].items(), key=lambda kv: kv[1]["total_usd"]):
        rows.append([cid, f"{readable(c['capacity_per_s'])}/s", c["capacity_basis"] or "—",
                     f"{c['instances_first']} → {c['instances_last']}", money(c["serving_usd"]),
                     money(c["migration_exposure_usd"]) if c["migration_exposure_usd"] is not None else "not counted",
                     money(c["total_usd"])])
    return head, rows


def tco_chart(audit: dict[str, Any]) -> str | None:
    from convcheck.reports.audit_tco import chart

    tco = audit.get("tco") or {}
    primary = (audit["memo"].get("primary") or {}).get("id")
    return chart(tco.get("curves") or {}, primary)
