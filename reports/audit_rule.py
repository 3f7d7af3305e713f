"""The audit's decision rule: the profile's criteria applied in order to the eligible candidates,
each keeping the best of what the previous one left, a deterministic tie-break, the rule in words,
and the fallback (another runtime first). Pure data in, data out.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any

from convcheck.reports.numbers import readable, rows_text, score_text, share, si_bytes

DEFAULT_TIE_POINTS = 5.0


NOISE_FRACTION = 0.10  # p50 gaps under 10% are treated as within run-to-run noise on a shared host


CRITERIA_TEXT = {
    "lockin": "lowest lock-in score; scores within {tie:g} points of the lowest count as tied "
              "(the factors are coarse, a few points are not a real difference)",
    "preferred": "the profile's preferred routes ({patterns}) first: {reasons}",
    "precision": "highest-fidelity precision first, in the profile's order ({order}): lower precision "
                 "only when the budget rules out the higher one",
    "artifact_bytes": "smallest artifact",
    "latency": "lowest p50 per row (p50 per call / rows per call); routes within noise of the fastest "
               "(a gap under max(10%, the figures' cv)) count as tied",
}


def _crit_lockin(pool: list[dict], prof: dict, tie: float) -> tuple[list[dict], str]:
    scored = [c for c in pool if c["lockin"]]
    if not scored:
        return pool, "no candidate has a lock-in score: criterion skipped"
    best = min(c["lockin"]["score"] for c in scored)
    kept = [c for c in scored if c["lockin"]["score"] <= best + tie]
    note = f"lowest lock-in {score_text(best)}; kept those ≤ {score_text(best + tie)}"
    if len(scored) < len(pool):
        note += "; candidates without a score dropped (unknown lock-in is not low lock-in)"
    return kept, note


def _crit_preferred(pool: list[dict], prof: dict, tie: float) -> tuple[list[dict], str]:
    rules = prof.get("prefer") or []
    patterns = [p for r in rules for p in r.get("routes", [])]
    kept = [c for c in pool if any(fnmatch.fnmatchcase(c["route"], p) for p in patterns)]
    if not patterns:
        return pool, "the profile prefers no route: criterion skipped"
    if not kept:
        return pool, f"none of the preferred routes ({', '.join(patterns)}) is among these: all kept"
    return kept, "preferred: " + "; ".join(str(r.get("reason", "")) for r in rules)


def _crit_precision(pool: list[dict], prof: dict, tie: float) -> tuple[list[dict], str]:
    order = list(prof.get("precisions") or ["fp32"])
    rank = {p: i for i, p in enumerate(order)}
    best = min(rank.get(c["precision"], len(order)) for c in pool)
    kept = [c for c in pool if rank.get(c["precision"], len(order)) == best]
    return kept, f"highest-fidelity precision available: {kept[0]['precision']}"


def _crit_artifact(pool: list[dict], prof: dict, tie: float) -> tuple[list[dict], str]:
    sized = [c for c in pool if c["artifact_bytes"] is not None]
    if not sized:
        return pool, "no artifact size recorded: criterion skipped"
    best = min(c["artifact_bytes"] for c in sized)
    return [c for c in sized if c["artifact_bytes"] == best], f"smallest artifact {si_bytes(best)}"


def _crit_latency(pool: list[dict], prof: dict, tie: float) -> tuple[list[dict], str]:
    """The fastest p50 per row and everything within noise of it: a 1% gap on a shared host is no ranking."""
    timed = sorted((c for c in pool if c["latency"]), key=lambda c: c["latency"]["p50_per_row"])
    if not timed:
        return pool, "no latency recorded: criterion skipped"
    fastest = timed[0]
    kept = [fastest] + [c for c in timed[1:] if within_noise(fastest, c)]
    note = f"fastest p50 per row {readable(fastest['latency']['p50_per_row'] * 1000)} µs ({fastest['id']})"
    if len(kept) > 1:
        note += "; within noise of it (gap under max(10%, cv)), so tied: " + ", ".join(c["id"] for c in kept[1:])
    if len(timed) > len(kept):
        runner = timed[len(kept)]
        gap = runner["latency"]["p50_per_row"] / fastest["latency"]["p50_per_row"] - 1
        note += f"; next {runner['id']} is {share(gap)} slower"
    return kept, note


CRITERIA = {"lockin": _crit_lockin, "preferred": _crit_preferred, "precision": _crit_precision,
            "artifact_bytes": _crit_artifact, "latency": _crit_latency}


def within_noise(a: dict, b: dict) -> bool:
    """Two p50s closer than 10% or than either figure's own spread (cv) are not a real ranking."""
    la, lb = a["latency"], b["latency"]
    if not la or not lb or la["p50_per_row"] <= 0:
        return False
    gap = abs(lb["p50_per_row"] / la["p50_per_row"] - 1)
    spread = max(la["cv"] or 0.0, lb["cv"] or 0.0)
    return gap < max(NOISE_FRACTION, spread)


def decide(pool: list[dict], prof: dict, rank_by: list[str], tie: float) -> tuple[dict | None, list[dict]]:
    """Apply the criteria in order, each keeping the best of what the previous one left."""
    pool = sorted(pool, key=lambda c: c["id"])
    trail: list[dict[str, Any]] = []
    for name in rank_by:
        if len(pool) <= 1:
            break
        kept, note = CRITERIA[name](pool, prof, tie)
        trail.append({"criterion": name, "kept": [c["id"] for c in kept],
                      "dropped": [c["id"] for c in pool if c not in kept], "note": note})
        pool = kept
    if len(pool) > 1:
        pool.sort(key=_tiebreak_key)
        trail.append({"criterion": "tie-break", "kept": [pool[0]["id"]], "dropped": [c["id"] for c in pool[1:]],
                      "note": _tiebreak_note(pool[0], pool[1])})
        pool = pool[:1]
    return (pool[0] if pool else None), trail


def _tiebreak_key(c: dict) -> tuple[float, float, str]:
    """Still tied after the profile's criteria: exact lock-in score, then the tail (p99), then the id."""
    score = c["lockin"]["score"] if c["lockin"] else math.inf
    tail = tail_ms(c)
    return (score, math.inf if tail is None else tail, c["id"])


def _tiebreak_note(winner: dict, runner: dict) -> str:
    (ws, wt, _), (rs, rt, _) = _tiebreak_key(winner), _tiebreak_key(runner)
    if ws < rs:
        return f"still tied: exact lock-in score {score_text(ws)} vs {score_text(rs)} ({runner['id']})"
    if wt < rt:
        return f"still tied: lower p99 per call {readable(wt)} ms vs {readable(rt)} ms ({runner['id']})"
    return "still tied on lock-in and p99: first by route id (deterministic, not a judgement)"


def tail_ms(c: dict) -> float | None:
    lat = c["latency"]
    return None if lat is None else (lat["p99"] if lat["p99"] is not None else lat["p50"])


def eligible_under(cands: list[dict], budget: float | None) -> list[dict]:
    out = []
    for c in cands:
        if not (c["verified"] and c["passes"]):
            continue
        if budget is not None:
            fig = tail_ms(c)
            if fig is None or fig > budget:
                continue
        out.append(c)
    return out


def rule_text(prof: dict, rank_by: list[str], tie: float, budget: float | None) -> list[str]:
    patterns = ", ".join(p for r in prof.get("prefer") or [] for p in r.get("routes", [])) or "none"
    reasons = "; ".join(str(r.get("reason", "")) for r in prof.get("prefer") or []) or "—"
    lines = ["Eligible: ran and was compared on this host, status pass (every output within its precision's "
             "tolerance)" + (f", and p99 per call ≤ the {readable(budget)} ms budget" if budget is not None else
                             " (no latency budget given)") + ". Failed and unverified routes are never eligible."]
    for name in rank_by:
        lines.append("Then " + CRITERIA_TEXT[name].format(tie=tie, patterns=patterns, reasons=reasons,
                                                          order=" > ".join(prof.get("precisions") or [])) + ".")
    lines.append("Still tied: the exact lock-in score, then the lower p99 per call, then the route id "
                 "(a deterministic last resort).")
    lines.append("Fallback: the same rule over the eligible routes from the same source model on a different "
                 "runtime than the primary's (a fallback on the same runtime shares its bugs, regressions and "
                 "vendor); failing that, a different runtime over the budget, then another route on the same "
                 "runtime, each with its caveat.")
    return lines


def pick_fallback(primary: dict, passing: list[dict], unverified: list[dict], prof: dict, rank_by: list[str],
              tie: float) -> tuple[dict | None, list[dict], str]:
    """(candidate, trail, caveat): another runtime first, because a same-runtime fallback is no fallback."""
    same_src = [c for c in passing if c["source"] == primary["source"] and c is not primary]
    tiers = [
        ([c for c in same_src if c["eligible"] and c["runtime"] != primary["runtime"]], ""),
        ([c for c in same_src if not c["eligible"] and c["runtime"] != primary["runtime"]],
         "over the latency budget: a degraded mode that keeps serving if the primary's runtime fails, not a "
         "drop-in replacement"),
        ([c for c in same_src if c["eligible"] and c["route"] != primary["route"]],
         f"same runtime as the primary ({primary['runtime']}): it covers a converter or exporter problem, not a "
         "bug, regression or licence change in the runtime itself"),
    ]
    for pool, caveat in tiers:
        if pool:
            chosen, trail = decide(pool, prof, rank_by, tie)
            if caveat and chosen["runtime"] == primary["runtime"]:
                caveat += _other_runtimes_note(primary, unverified)
            return chosen, trail, caveat
    return None, [], (f"no other verified, passing route from the {primary['source']} model: every other "
                      "candidate failed or could not run here (see below)")


def _other_runtimes_note(primary: dict, unverified: list[dict]) -> str:
    others = sorted({c["route"] for c in unverified
                     if c["source"] == primary["source"] and c["runtime"] != primary["runtime"]})
    if not others:
        return f"; no route from the {primary['source']} model on another runtime passed here"
    return (f"; the other runtimes' routes from the {primary['source']} model were not verified here: "
            f"{', '.join(others)}")


def no_recommendation(cands: list[dict], budget: float | None) -> str:
    verified = [c for c in cands if c["verified"]]
    if not cands:
        return "no cell of this model matches the profile's routes, devices and precisions"
    if not verified:
        return "no candidate could run on this host: every one is unverified (see 'Unverified here')"
    passing = [c for c in verified if c["passes"]]
    if not passing:
        failed = "; ".join(f"{c['id']}: {c['ineligible_reason']}" for c in verified)
        return f"no verified candidate passes parity — {failed}"
    fastest = min((c for c in passing if c["latency"]), key=lambda c: c["latency"]["p99"] or c["latency"]["p50"],
                  default=None)
    if fastest is None:
        return "no passing candidate has a latency figure to hold to the budget"
    fig = fastest["latency"]["p99"] or fastest["latency"]["p50"]
    return (f"every passing candidate is over the {readable(budget)} ms budget: the fastest, {fastest['id']}, "
            f"has p99 {readable(fig)} ms per call of {rows_text(fastest['latency']['batch'])}")
