"""What would change the audit's choice: each trigger re-runs the rule on changed evidence (a lower
or higher budget, speed first, strict lock-in, the profile's preference, a parity failure, another
precision, source format or host) and says what would be recommended then. Pure data in, data out.
"""

from __future__ import annotations

from convcheck.reports.audit_rule import decide, eligible_under, tail_ms, within_noise
from convcheck.reports.numbers import money, readable, score_text, share

NEAR_BUDGET = 0.9  # a primary using 90% of its budget is one noisy neighbour away from missing it


def describe(c: dict) -> str:
    lat = c["latency"] or {}
    bits = [f"p50 {readable(lat.get('p50'))} ms", f"p99 {readable(lat.get('p99'))} ms"]
    bits.append(f"lock-in {score_text(c['lockin']['score'])}" if c["lockin"] else "lock-in not scored")
    if c["cost"] and c["cost"].get("per_million_usd") is not None:
        bits.append(f"{money(c['cost']['per_million_usd'])}/M")
    return f"{c['id']} ({', '.join(bits)})"


def triggers(ctx: dict) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for make in (_t_budget_down, _t_budget_up, _t_near_budget, _t_speed, _t_strict_lockin, _t_preferred,
                 _t_parity, _t_precision, _t_source, _t_unverified, _t_host):
        out.extend(make(ctx))
    return out


def _trig(kind: str, condition: str, effect: str) -> dict[str, str]:
    return {"kind": kind, "condition": condition, "effect": effect}


def _rerun(ctx: dict, pool: list[dict], rank_by: list[str] | None = None, tie: float | None = None) -> dict | None:
    return decide(pool, ctx["profile"], rank_by or ctx["rank_by"], ctx["tie"] if tie is None else tie)[0]


def _t_budget_down(ctx: dict) -> list[dict]:
    primary = ctx["primary"]
    if not primary or tail_ms(primary) is None:
        return []
    limit = tail_ms(primary)
    pool = [c for c in eligible_under(ctx["pool"], None) if (tail_ms(c) is not None and tail_ms(c) < limit)]
    nxt = _rerun(ctx, pool) if pool else None
    effect = (f"{describe(nxt)} becomes primary" if nxt else
              f"no verified route from the {primary['source']} model meets it (the primary has the lowest p99 of "
              "them): nothing would be recommended")
    return [_trig("budget", f"the latency budget drops below {readable(limit)} ms (the primary's "
                            f"{primary['latency']['budget_figure']} per call)", effect)]


def _t_budget_up(ctx: dict) -> list[dict]:
    if ctx["budget"] is None:
        return []
    over = sorted((c for c in ctx["pool"] if c["verified"] and c["passes"] and not c["eligible"]
                   and tail_ms(c) is not None), key=tail_ms)
    for c in over:
        new = _rerun(ctx, eligible_under(ctx["pool"], tail_ms(c)))
        if new is not None and new is not ctx["primary"]:
            return [_trig("budget", f"the latency budget rises to {readable(tail_ms(c))} ms",
                          f"{describe(new)} becomes primary")]
    return []


def _t_near_budget(ctx: dict) -> list[dict]:
    primary, budget = ctx["primary"], ctx["budget"]
    if not primary or budget is None or not primary["latency"]:
        return []
    frac = primary["latency"]["budget_fraction"]
    if frac is None or frac < NEAR_BUDGET:
        return []
    return [_trig("margin", f"the primary's p99 ({readable(tail_ms(primary))} ms) is {share(frac)} of the budget: "
                            "a slower production host or a noisy neighbour pushes it over",
                  "then " + (f"{ctx['fallback']['id']} (the fallback)" if ctx["fallback"] else "nothing verified")
                  + " is next; measure on the production host")]


def _t_speed(ctx: dict) -> list[dict]:
    primary = ctx["primary"]
    if not primary:
        return []
    fast = min((c for c in ctx["eligible"] if c["latency"]), key=lambda c: c["latency"]["p50_per_row"],
               default=None)
    if fast is None or fast is primary or not fast["latency"] or not primary["latency"] \
            or within_noise(fast, primary):
        return []  # nothing is faster beyond noise: speed would not change the choice
    ratio = primary["latency"]["p50_per_row"] / fast["latency"]["p50_per_row"]
    effect = f"{describe(fast)} becomes primary: {ratio:.2f}× the primary's speed per row"
    pc, fc = primary["cost"] or {}, fast["cost"] or {}
    if pc.get("per_million_usd") is not None and fc.get("per_million_usd") is not None:
        effect += (f"; cost per million {money(fc['per_million_usd'])} vs {money(pc['per_million_usd'])}"
                   f" (saves {money(pc['per_million_usd'] - fc['per_million_usd'])} per million)")
        if pc.get("monthly_usd") is not None and fc.get("monthly_usd") is not None:
            effect += (f"; at the given traffic {fc['instances']} vs {pc['instances']} instance(s), "
                       f"{money(fc['monthly_usd'])} vs {money(pc['monthly_usd'])} a month")
    return [_trig("speed", "speed matters more than lock-in and fidelity", effect)]


def _t_strict_lockin(ctx: dict) -> list[dict]:
    primary = ctx["primary"]
    if not primary or not primary["lockin"] or "lockin" not in ctx["rank_by"] or ctx["tie"] <= 0:
        return []
    strict = _rerun(ctx, ctx["eligible"], tie=0.0)
    if strict is None or strict is primary:
        return []
    return [_trig("lock-in", f"lock-in is ranked strictly (no {readable(ctx['tie'])}-point tie)",
                  f"{describe(strict)} becomes primary")]


def _t_preferred(ctx: dict) -> list[dict]:
    """When lock-in ranks before the profile's preference, show what the preference alone would pick."""
    order = ctx["rank_by"]
    if not ctx["primary"] or "preferred" not in order or order[0] == "preferred":
        return []
    pref = _rerun(ctx, ctx["eligible"], ["preferred"] + [r for r in order if r != "preferred"])
    if pref is None or pref is ctx["primary"]:
        return []
    reason = "; ".join(str(r.get("reason", "")) for r in ctx["profile"].get("prefer") or [])
    return [_trig("preference", f"the profile's preference outweighs lock-in ({reason})",
                  f"{describe(pref)} becomes primary")]


def _t_parity(ctx: dict) -> list[dict]:
    primary = ctx["primary"]
    if not primary:
        return []
    rest = [c for c in ctx["eligible"] if c["route"] != primary["route"] or c["precision"] != primary["precision"]]
    nxt = _rerun(ctx, rest) if rest else None
    out = [_trig("parity", f"the primary's parity fails (a runtime upgrade, or your real inputs instead of "
                           f"seeded ones; now max_abs {readable(primary['parity']['max_abs'])})",
                 f"{describe(nxt)} becomes primary" if nxt else "nothing verified is left to recommend")]
    if primary["precision"] != "fp32":
        out.append(_trig("precision", f"{primary['precision']} accuracy turns out too low on your data",
                         _back_to_fp32(ctx)))
    return out


def _back_to_fp32(ctx: dict) -> str:
    """Where an fp32 retreat lands: an eligible fp32 route, or the price of one (its p99 over the budget)."""
    fp32 = [c for c in ctx["pool"] if c["verified"] and c["passes"] and c["precision"] == "fp32"]
    eligible = [c for c in fp32 if c["eligible"]]
    if eligible:
        return f"stay on fp32: {describe(_rerun(ctx, eligible))}"
    timed = sorted((c for c in fp32 if tail_ms(c) is not None), key=tail_ms)
    if timed:
        return (f"stay on fp32 — no fp32 route meets the budget: the fastest, {timed[0]['id']}, needs a budget of "
                f"{readable(tail_ms(timed[0]))} ms (p99)")
    return "no fp32 route passes here: there is no higher-precision route to retreat to"


def _faster(a: dict, b: dict) -> bool:
    return bool(a["latency"] and b["latency"] and a["latency"]["p50_per_row"] < b["latency"]["p50_per_row"])


def _t_precision(ctx: dict) -> list[dict]:
    """Lower precisions: faster ones that pass are a budget lever; failing ones are off the table."""
    primary, out = ctx["primary"], []
    order = list(ctx["profile"].get("precisions") or ["fp32"])
    for c in ctx["pool"]:
        if not c["verified"] or c["precision"] == "fp32" or c["precision"] not in order:
            continue
        if not c["passes"]:
            snr = c["parity"]["snr_db"]
            out.append(_trig("precision", f"a tighter budget tempts {c['precision']} on {c['route']}",
                             f"it is off the table: {c['status']}"
                             + (f" (SNR {readable(snr)} dB, needs ≥ {readable(c['parity']['tolerance']['min_snr_db'])})"
                                if snr is not None else "") + " — stay on fp32"))
        elif primary and c["precision"] != primary["precision"] and _faster(c, primary):
            out.append(_trig("precision", f"the budget cannot be met at {primary['precision']}",
                             f"{describe(c)} passes its {c['precision']} profile (SNR {readable(c['parity']['snr_db'])} "
                             "dB) and is faster — check accuracy on real data first"))
    return out


def _t_source(ctx: dict) -> list[dict]:
    primary = ctx["primary"]
    sources = sorted({c["source"] for c in ctx["all_eligible"]})
    if len(sources) < 2:
        return []
    out = []
    for src in sources:
        if primary and src == primary["source"]:
            continue
        best = _rerun(ctx, [c for c in ctx["all_eligible"] if c["source"] == src])
        if best:
            out.append(_trig("source", f"your model is a {src} model (the candidates start from "
                                       f"{', '.join(sources)})", f"{describe(best)} is its primary"))
    return out


def _t_unverified(ctx: dict) -> list[dict]:
    groups: dict[str, list[str]] = {}
    for c in ctx["unverified"]:
        groups.setdefault(c["needs"], []).append(c["id"])
    return [_trig("unverified", f"the audit is re-run with {needs}",
                  f"{', '.join(ids)} would be verified and considered (not now: not run here)")
            for needs, ids in groups.items()]


def _t_host(ctx: dict) -> list[dict]:
    if ctx["host_matches"]:
        return []
    return [_trig("host", f"the audit is re-run on {ctx['profile'].get('target_host', {}).get('description')}",
                  "latency, throughput and cost are measured where the model will run; "
                  "the figures here come from this host and may rank the routes differently")]
