"""`convcheck audit`'s engine: which route to deploy a model on, decided from an already-run results
document. `build_audit` gathers the candidates (audit_evidence), applies the rule (audit_rule), picks
the fallback and lists the triggers that would flip the choice (audit_triggers).

Pure functions and the standard library only: the CLI runs the routes, this reads the result. The
audit dict is itself the JSON output (finite numbers only, so `allow_nan=False` is safe); the pages
are rendered from it by audit_render.
"""

from __future__ import annotations

import math
from typing import Any

from convcheck.errors import ConvcheckError
from convcheck.reports.audit_evidence import HOURS_PER_MONTH, build_candidate, matches
from convcheck.reports.audit_rule import (CRITERIA, DEFAULT_TIE_POINTS, decide, no_recommendation, pick_fallback,
                                          rule_text)
from convcheck.reports.audit_triggers import triggers
from convcheck.reports.numbers import finite, money, readable, rows_text, score_text, share

AUDIT_VERSION = 1


def json_safe(obj: Any) -> Any:
    """The audit with every non-finite float replaced by None (json.dumps(allow_nan=False) must work)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _host_matches(document: dict, prof: dict) -> tuple[bool, str]:
    host = (document.get("run") or {}).get("host") or {}
    target = prof.get("target_host") or {}
    os_name = str(host.get("os", ""))
    os_ok = not target.get("os") or any(os_name.startswith(o) for o in target["os"])
    gpu_ok = not target.get("gpu") or bool(host.get("gpus"))
    if os_ok and gpu_ok:
        return True, f"measured on {host.get('cpu', 'this host')}: representative of {target.get('description')}"
    return False, (f"measured on {os_name or 'an unknown OS'} / {host.get('cpu', 'unknown CPU')}"
                   f"{' without a GPU' if target.get('gpu') and not host.get('gpus') else ''}, not on "
                   f"{target.get('description')}: parity carries over, latency and cost are indicative only")


def _cells(document: dict, model: str, prof: dict, source: str | None) -> list[dict]:
    cells = [c for c in document.get("cells") or [] if isinstance(c, dict) and c.get("model") == model]
    if not cells:
        models = sorted({str(c.get("model")) for c in document.get("cells") or [] if isinstance(c, dict)})
        raise ConvcheckError(f"no cells for model {model!r} in this results document "
                             f"(it has: {', '.join(models) or 'no cells'})")
    chosen = [c for c in cells if matches(c, prof)]
    if source is not None:
        chosen = [c for c in chosen if str(c.get("source") or str(c.get("route")).split("/")[0]) == source]
    return chosen


def build_audit(document: dict[str, Any], model: str, profile: dict[str, Any], latency_budget_ms: float | None,
                price_per_hour: float | None, traffic_per_s: float | None,
                source: str | None = None, criteria: list[Any] | None = None, horizon_years: float = 3.0,
                growth_per_year: float = 0.0, migration_cost_usd: float | None = None) -> dict[str, Any]:
    """The portability audit of `model` for one deployment profile, from an already-run results document.

    `source` restricts the candidates to routes from one source format (a zoo model has several builders;
    the user's own file has one). `criteria` (audit_criteria.load_criteria): the primary is the weighted
    matrix's leader instead of the ranking rule's choice. The cost of ownership over `horizon_years` is
    computed when a price and a traffic are given (audit_tco)."""
    from convcheck.reports import audit_tco
    prof = profile
    budget = finite(latency_budget_ms)
    price, traffic = finite(price_per_hour), finite(traffic_per_s)
    rank_by = [r for r in prof.get("rank_by") or ["lockin", "precision", "latency"] if r in CRITERIA]
    tie = finite(prof.get("lockin_tie_points"))
    tie = DEFAULT_TIE_POINTS if tie is None else tie
    cands = [build_candidate(c, document, budget, price, traffic) for c in _cells(document, model, prof, source)]
    cands.sort(key=lambda c: c["id"])
    growth, migration = finite(growth_per_year) or 0.0, finite(migration_cost_usd)
    for c in cands:
        c["tco"] = audit_tco.curve(c, horizon_years, price, traffic, growth, migration) if c["passes"] else None
    verified = [c for c in cands if c["verified"]]
    unverified = [c for c in cands if not c["verified"]]
    eligible = [c for c in verified if c["eligible"]]
    primary, trail = decide(eligible, prof, rank_by, tie)
    rule_choice = primary["id"] if primary else None
    weighted = _weighted(eligible, criteria) if criteria else None
    if weighted is not None and weighted["primary"] is not None:
        primary = weighted["primary"]
        trail = [weighted["trail"]]
    under_load = [c for c in verified if c["served"] and c["served"].get("server")]
    if under_load:
        trail = [_load_step(verified, budget, traffic)] + trail
    host_ok, host_note = _host_matches(document, prof)
    # A zoo model may come in several source formats; a route from another source needs another model
    # file, so the fallback and the what-ifs stay with the primary's source (the `source` trigger names
    # the others' best).
    src = primary["source"] if primary else None
    same = (lambda c: c["source"] == src) if src else (lambda c: True)
    ctx = {"budget": budget, "traffic": traffic, "eligible": [c for c in eligible if same(c)], "all_eligible": eligible,
           "profile": prof, "rank_by": rank_by, "tie": tie, "pool": [c for c in cands if same(c)],
           "primary": primary, "trail": trail, "unverified": unverified, "host_matches": host_ok}
    recommendation = _recommend(primary, trail, ctx, cands)
    if weighted is not None and primary is not None:
        recommendation["fallback"] = _contingency(weighted, ctx)
        recommendation["fallback_none_reason"] = weighted["why_contingency"] if weighted["contingency"] is None \
            else None
    ctx["fallback"] = recommendation["fallback"]
    audit = {
        "kind": "convcheck-audit", "audit_version": AUDIT_VERSION, "model": model, "source": source,
        "profile": {k: prof.get(k) for k in ("name", "description", "why", "routes", "devices", "precisions",
                                             "rank_by", "lockin_tie_points", "prefer", "preferences",
                                             "target_host")},
        "run": _run_summary(document),
        "host": {"matches_target": host_ok, "note": host_note},
        "budget": {"latency_ms": budget,
                   "basis": (f"under load: the p99 of MLPerf LoadGen's Server scenario at {traffic:g} inferences/s "
                             "(queries arriving at random, each one call at the batch the route was measured with), "
                             "judged by LoadGen's validity rules; a route one instance cannot carry that far is "
                             "eligible at the instance count its measured capacity needs. Routes without load "
                             "figures: p99 per call." if under_load else
                             "p99 per call (p50 where p99 is missing), at the batch each route was measured with "
                             "(rows per call shown per route); not per row, not end-to-end with network or "
                             "pre-processing"),
                   "under_load": bool(under_load)},
        "pricing": _pricing_summary(price, traffic, document),
        "lockin": _lockin_summary(document, cands),
        "rule": {"criteria": rank_by, "lockin_tie_points": tie, "text": rule_text(prof, rank_by, tie, budget)},
        "recommendation": recommendation,
        "candidates": verified,
        "unverified": unverified,
        # The rule's what-ifs re-run the ranking rule; with weighted criteria the sensitivity answers that.
        "triggers": triggers(ctx) if weighted is None else _generic_triggers(ctx),
        "notes": _notes(cands, document, src),
        "rule_choice": rule_choice,
        "criteria": None if weighted is None else {"matrix": weighted["matrix"], "sensitivity": weighted["sensitivity"]},
    }
    tco = {"assumptions": audit_tco.assumptions(horizon_years, price, traffic, growth, migration),
           "curves": {c["id"]: c["tco"] for c in verified if c["tco"]}}
    audit["tco"] = tco
    from convcheck.reports.audit_memo import build_memo

    audit["memo"] = build_memo(audit, cands, None if weighted is None else weighted["matrix"],
                               None if weighted is None else weighted["sensitivity"], tco)
    return json_safe(audit)


def _weighted(eligible: list[dict], criteria: list[Any]) -> dict[str, Any]:
    """The weighted matrix over the eligible candidates, its sensitivity, and the choice it makes."""
    from convcheck.reports.audit_criteria import score, sensitivity
    from convcheck.reports.audit_memo import weighted_choice

    matrix = score(eligible, criteria)
    sens = sensitivity(matrix)
    primary, contingency, why = weighted_choice(matrix, eligible)
    rows = matrix["rows"]
    note = (f"weighted criteria ({', '.join(c['name'] + ' ' + format(c['weight'], 'g') for c in matrix['criteria'])}): "
            + ", ".join(f"{r['id']} {r['total']:.1f}" for r in rows))
    trail = {"criterion": "weighted criteria", "kept": [rows[0]["id"]] if rows else [],
             "dropped": [r["id"] for r in rows[1:]], "note": note}
    return {"matrix": matrix, "sensitivity": sens, "primary": primary, "contingency": contingency,
            "why_contingency": why, "trail": trail}


def _contingency(weighted: dict[str, Any], ctx: dict) -> dict[str, Any] | None:
    fb = weighted["contingency"]
    if fb is None:
        return None
    primary = ctx["primary"]
    why = [f"runtime {fb['runtime']}, not {primary['runtime']}: survives a bug, regression or licence change in the "
           "primary's runtime"] if fb["runtime"] != primary["runtime"] else []
    row = next(r for r in weighted["matrix"]["rows"] if r["id"] == fb["id"])
    why.append(f"weighted score {row['total']:.1f}, the best eligible route on another runtime"
               if fb["runtime"] != primary["runtime"] else f"weighted score {row['total']:.1f}")
    return {"id": fb["id"], "route": fb["route"], "runtime": fb["runtime"], "precision": fb["precision"],
            "caveat": weighted["why_contingency"], "reasons": why + reasons(fb, ctx, "fallback", [])}


def _generic_triggers(ctx: dict) -> list[dict[str, str]]:
    """The triggers that do not re-run the ranking rule: unverified routes, another host."""
    from convcheck.reports.audit_triggers import _t_host, _t_unverified

    return _t_unverified(ctx) + _t_host(ctx)


def _load_step(verified: list[dict], budget: float | None, traffic: float | None) -> dict[str, Any]:
    """The rule trail's first step when routes were served under LoadGen: which passed the Server scenario."""
    passing = [c for c in verified if c["passes"]]
    kept = [c["id"] for c in passing if c["eligible"]]
    several = [c["id"] for c in passing if c["eligible"] and ((c["served"] or {}).get("server") or {}).get("valid")
               is False]
    note = (f"eligibility under load: LoadGen Server scenario at {readable(traffic)} inferences/s, p99 ≤ "
            f"{readable(budget)} ms by LoadGen's validity rules")
    if several:
        note += f"; needing more than one instance (by their measured capacity): {', '.join(several)}"
    return {"criterion": "eligibility", "kept": kept, "dropped": [c["id"] for c in passing if not c["eligible"]],
            "note": note}


def _recommend(primary: dict | None, trail: list[dict], ctx: dict, cands: list[dict]) -> dict[str, Any]:
    if primary is None:
        return {"primary": None, "fallback": None, "none_reason": no_recommendation(cands, ctx["budget"]),
                "trail": trail, "fallback_trail": []}
    passing = [c for c in cands if c["verified"] and c["passes"]]
    fb, fb_trail, caveat = pick_fallback(primary, passing, ctx["unverified"], ctx["profile"], ctx["rank_by"],
                                     ctx["tie"])
    rec_primary = {"id": primary["id"], "route": primary["route"], "runtime": primary["runtime"],
                   "precision": primary["precision"], "reasons": reasons(primary, ctx, "primary", trail)}
    rec_fb = None
    if fb is not None:
        why_other = ([f"runtime {fb['runtime']}, not {primary['runtime']}: survives a bug, regression or licence "
                      f"change in the primary's runtime"] if fb["runtime"] != primary["runtime"] else [])
        if fb["first_hop"] and fb["first_hop"] == primary["first_hop"]:
            why_other.append(f"shares its first conversion ({fb['first_hop']}) with the primary: a problem in that "
                             "exporter hits both")
        rec_fb = {"id": fb["id"], "route": fb["route"], "runtime": fb["runtime"], "precision": fb["precision"],
                  "caveat": caveat, "reasons": why_other + reasons(fb, ctx, "fallback", [])}
    return {"primary": rec_primary, "fallback": rec_fb, "none_reason": None,
            "fallback_none_reason": caveat if fb is None else None, "trail": trail, "fallback_trail": fb_trail}


def reasons(c: dict, audit_ctx: dict, role: str, trail: list[dict]) -> list[str]:
    """Why this candidate, in numbers taken from its own cell."""
    out = [_parity_sentence(c)]
    lat, budget = c["latency"], audit_ctx["budget"]
    if lat:
        text = f"p50 {readable(lat['p50'])} ms, p99 {readable(lat['p99'])} ms per call of {rows_text(lat['batch'])}"
        if budget is not None and lat["budget_fraction"] is not None:
            text += f": {share(lat['budget_fraction'])} of the {readable(budget)} ms budget"
        out.append(text + (" (noisy figure: cv " + share(lat["cv"]) + ")" if lat["noisy"] and lat["cv"] else ""))
    served = c.get("served") or {}
    if served.get("server"):
        out.append(c["eligibility_basis"])
    cap = served.get("capacity") or {}
    if cap.get("qps"):
        out.append(f"capacity {readable(cap['qps'])} queries/s ({readable(cap['rows_per_s'])} inferences/s) with p99 ≤ "
                   f"{readable(audit_ctx['budget'])} ms, LoadGen Server scenario"
                   + (" (the run at the traffic: the search found less)" if cap.get("from_server_run") else
                      f" ({cap['trials']} runs of the capacity search)"))
    if c["lockin"]:
        context = _lockin_context(c, audit_ctx["eligible"]) if role == "primary" else \
            (f" (primary: {score_text(audit_ctx['primary']['lockin']['score'])})" if audit_ctx["primary"]["lockin"] else "")
        out.append(f"lock-in {score_text(c['lockin']['score'])}/100" + context)
    else:
        out.append("lock-in not scored in this document")
    if c["cost"] and c["cost"].get("per_million_usd") is not None:
        out.append(f"{money(c['cost']['per_million_usd'])} per million inferences "
                   f"({readable(c['throughput']['per_s'])} inferences/s, {c['throughput']['basis']})")
    if c["cost"] and c["cost"].get("instances"):
        cost = c["cost"]
        month = f", {money(cost['monthly_usd'])} a month" if cost.get("monthly_usd") is not None else ""
        out.append(f"at {readable(audit_ctx['traffic'])} inferences/s: {cost['instances']} instance(s){month} "
                   f"({share(cost['utilisation'])} busy)")
    for step in trail:
        if step["dropped"]:
            out.append(f"rule step '{step['criterion']}': {step['note']}")
    return out


def _parity_sentence(c: dict) -> str:
    p = c["parity"]
    tol = p["tolerance"]
    if tol.get("check") == "snr":
        bound = f"SNR ≥ {tol.get('min_snr_db')} dB ({tol.get('profile')} profile)"
    else:
        bound = f"atol {tol.get('atol'):g}, rtol {tol.get('rtol'):g} ({tol.get('profile')} profile)" \
            if tol.get("atol") is not None and tol.get("rtol") is not None else f"the {tol.get('profile')} profile"
    snr = "identical outputs" if p["exact"] else f"SNR {readable(p['snr_db'])} dB"
    return f"parity passes: max_abs {readable(p['max_abs'])}, {snr}, cosine {readable(p['cosine'], 6)} within {bound}"


def _lockin_context(c: dict, eligible: list[dict]) -> str:
    others = [o for o in eligible if o is not c and o["lockin"]]
    if not others:
        return ""
    score = c["lockin"]["score"]
    best_other = min(o["lockin"]["score"] for o in others)
    if score < best_other:
        return f", the lowest of the eligible routes (next {score_text(best_other)})"
    if score == best_other:
        same = sorted({o["route"] for o in others if o["lockin"]["score"] == score})
        return f", the lowest of the eligible routes (tied with {', '.join(same)})"
    return f" (lowest eligible: {score_text(best_other)})"


def _run_summary(document: dict) -> dict[str, Any]:
    run = document.get("run") or {}
    host = run.get("host") or {}
    settings = run.get("settings") or {}
    return {"id": run.get("id"), "finished": run.get("finished"), "convcheck_version": run.get("convcheck_version"),
            "host": {k: host.get(k) for k in ("cpu", "cores", "os", "gpus")},
            "size": settings.get("size"), "samples": settings.get("samples"), "threads": settings.get("threads")}


def _pricing_summary(price: float | None, traffic: float | None, document: dict) -> dict[str, Any] | None:
    if price is None and traffic is None:
        return None
    host = ((document.get("run") or {}).get("host") or {})
    loaded = any(((c.get("load") or {}).get("capacity") or {}).get("qps") for c in document.get("cells") or []
                 if isinstance(c, dict) and isinstance(c.get("load"), dict))
    return {"price_per_hour_usd": price, "traffic_per_s": traffic, "hours_per_month": HOURS_PER_MONTH,
            "capacity_basis": ("LoadGen Server capacity: the highest QPS whose p99 LoadGen judged within the budget, "
                               "per route where it was measured (else calls back to back)") if loaded else None,
            "assumption": (f"one process per instance at the measured thread count on this host's CPU "
                           f"({host.get('cpu', 'unknown')}, {host.get('cores', '?')} cores), "
                           + ("serving at most its LoadGen Server capacity (random arrivals, p99 within the budget: "
                              "the queueing headroom is measured, not assumed), where a route has one; otherwise "
                              if loaded else "") +
                           f"running calls back to back at the measured batch (requests must be batched that way), "
                           f"100% busy, no queueing headroom; cost per million = price per hour / 3600 / inferences per second "
                           f"× 1e6; instances = ceil(traffic / inferences per second); a month = "
                           f"{HOURS_PER_MONTH:g} hours")}


def _lockin_summary(document: dict, cands: list[dict]) -> dict[str, Any]:
    meta = document.get("lockin") or {}
    scored = sum(1 for c in cands if c["lockin"])
    return {"scored": scored > 0, "scored_candidates": scored, "weights": meta.get("weights"),
            "data_snapshot": meta.get("data_snapshot"),
            "note": "" if scored else "not scored: this document has no lock-in (an older run); the lock-in "
                                      "criterion was skipped"}


def _notes(cands: list[dict], document: dict, primary_source: str | None) -> list[str]:
    notes = []
    sources = sorted({c["source"] for c in cands})
    if len(sources) > 1:
        notes.append(f"the candidates start from {len(sources)} source formats ({', '.join(sources)}): a route "
                     "is open to you only if your model is in its source format; the primary is chosen over all "
                     + (f"of them, the fallback and the what-ifs stay with the primary's ({primary_source})"
                        if primary_source else "of them"))
    if any(c["memory"] and c["memory"]["process_peak_mb"] is not None for c in cands):
        notes.append("memory: process_peak is the worker process's peak so far, an upper bound while cells share "
                     "a process; 'Δ load+run' is resident memory after the run minus before loading, the route's "
                     "own share")
    if any(c.get("served") and c["served"].get("server") for c in cands):
        notes.append("under load, LoadGen's Server run at the traffic decides eligibility; the what-if triggers "
                     "about the budget are worked out from each route's p99 per call (one caller, no queue), so "
                     "read them as lower bounds on the budget a route needs")
    if any(c["latency"] and c["latency"]["noisy"] for c in cands):
        notes.append("some latency figures are noisy (cv over 10%): the rule treats p50 gaps under max(10%, "
                     "cv) as ties, and so should a reader")
    untuned = [c["id"] for c in cands if c["passes"] and (c.get("tvm_build") or {}).get("state") == "untuned"]
    if untuned:
        notes.append(f"TVM latency is an untuned build ({', '.join(untuned)}): convcheck's tuning-free schedules, "
                     "compared here with runtimes that ship hand-tuned kernels (ONNX Runtime, OpenVINO). A "
                     "MetaSchedule-tuned build (--tvm-tune TRIALS) may be faster: rerun with it before ruling TVM out "
                     "on latency")
    sizes = {c["size"] for c in cands if c["size"]}
    if len(sizes) > 1:
        notes.append(f"candidates mix model sizes ({', '.join(sorted(map(str, sizes)))})")
    if (document.get("run") or {}).get("finished") is None and document.get("run"):
        notes.append("the run had not finished when this document was written: cells may be missing")
    return notes
