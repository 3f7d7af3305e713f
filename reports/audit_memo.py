"""The decision memo at the top of audit.md/html: a primary, a contingency on another runtime, the triggers for
migrating (measured thresholds), and what was not verified here, written to be pasted into a decision
document. Everything it says is taken from the audit's own evidence (the candidates, the weighted matrix,
the cost curves); it never names an unverified or ineligible route as the primary or the contingency.

With weighted criteria the primary is the matrix's leader and the contingency the best-scored eligible route
on another runtime; without them, the ranking rule's primary and fallback. Pure data in, data out.
"""

from __future__ import annotations

from typing import Any

from convcheck.reports.numbers import money, readable, score_text


def _by_id(cands: list[dict]) -> dict[str, dict]:
    return {c["id"]: c for c in cands}


def weighted_choice(matrix: dict[str, Any], eligible: list[dict]) -> tuple[dict | None, dict | None, str]:
    """(primary, contingency, why the contingency) from the scored matrix: the contingency is the best-scored
    eligible route on another runtime, from the same source model (a route from another source needs another
    model file); else the best other route, with the reason it is a weaker contingency."""
    ids = _by_id(eligible)
    ranked = [ids[r["id"]] for r in matrix["rows"] if r["id"] in ids]
    if not ranked:
        return None, None, ""
    primary = ranked[0]
    same = [c for c in ranked[1:] if c["source"] == primary["source"]]
    other_runtime = [c for c in same if c["runtime"] != primary["runtime"]]
    if other_runtime:
        return primary, other_runtime[0], ""
    if same:
        return primary, same[0], (f"same runtime as the primary ({primary['runtime']}): it covers an exporter or "
                                  "converter problem, not a bug, regression or licence change in the runtime")
    return primary, None, f"no other eligible route from the {primary['source']} model"


def build_memo(audit: dict[str, Any], cands: list[dict], matrix: dict[str, Any] | None,
               sensitivity: dict[str, Any] | None, tco: dict[str, Any] | None) -> dict[str, Any]:
    """The memo's content (pure data; audit_render writes it)."""
    rec = audit["recommendation"]
    ids = _by_id(cands)
    primary = ids.get((rec.get("primary") or {}).get("id") or "")
    contingency = ids.get((rec.get("fallback") or {}).get("id") or "")
    memo: dict[str, Any] = {"primary": None, "contingency": None, "triggers": [], "not_verified": [],
                            "basis": "weighted criteria" if matrix is not None else "the ranking rule",
                            "none_reason": rec.get("none_reason")}
    if primary is not None:
        memo["primary"] = _summary(primary, matrix, tco)
    if contingency is not None:
        memo["contingency"] = dict(_summary(contingency, matrix, tco),
                                   caveat=(rec.get("fallback") or {}).get("caveat") or "")
    elif primary is not None:
        memo["contingency_none"] = rec.get("fallback_none_reason") or "no other eligible route"
    if matrix is not None and audit.get("rule_choice") and primary is not None \
            and audit["rule_choice"] != primary["id"]:
        memo["rule_differs"] = (f"the ranking rule alone ({', '.join(audit['rule']['criteria'])}) would pick "
                                f"{audit['rule_choice']}: the weights decide here")
    memo["triggers"] = _triggers(audit, primary, contingency, sensitivity, tco)
    memo["not_verified"] = _not_verified(audit)
    return memo


def _summary(c: dict, matrix: dict | None, tco: dict | None) -> dict[str, Any]:
    lat = c.get("latency") or {}
    parity = c.get("parity") or {}
    out = {"id": c["id"], "route": c["route"], "runtime": c["runtime"], "precision": c["precision"],
           "facts": [f"parity: max_abs {readable(parity.get('max_abs'))}, "
                     + ("identical outputs" if parity.get("exact") else f"SNR {readable(parity.get('snr_db'))} dB"),
                     f"latency: p50 {readable(lat.get('p50'))} ms, p99 {readable(lat.get('p99'))} ms per call"]}
    server = (c.get("served") or {}).get("server")
    if server and server.get("p99") is not None:
        out["facts"].append(f"under load: p99 {readable(server['p99'])} ms at the traffic (LoadGen Server, "
                            f"{'VALID' if server.get('valid') else 'INVALID'})")
    if c.get("lockin"):
        out["facts"].append(f"lock-in {score_text(c['lockin']['score'])}/100")
    curve = (tco or {}).get("curves", {}).get(c["id"])
    if curve:
        out["facts"].append(f"cost of ownership over {tco['assumptions']['horizon_years']:g} years: "  # type: ignore[index]
                            f"{money(curve['total_usd'])} ({curve['instances_first']} instance(s) at the start, "
                            f"{curve['instances_last']} at the end)")
    if matrix is not None:
        row = next((r for r in matrix["rows"] if r["id"] == c["id"]), None)
        if row is not None:
            out["facts"].append(f"weighted score {row['total']:.1f}/100")
    return out


def _triggers(audit: dict, primary: dict | None, contingency: dict | None, sens: dict | None,
              tco: dict | None) -> list[dict[str, str]]:
    """Measured thresholds at which to migrate, each with what to do then."""
    if primary is None:
        return []
    out: list[dict[str, str]] = []
    fallback = f"move to the contingency, {contingency['id']}" if contingency else "re-run the audit"
    budget = audit["budget"]["latency_ms"]
    lat = primary.get("latency") or {}
    server = (primary.get("served") or {}).get("server") or {}
    p99 = server.get("p99") if server.get("p99") is not None else lat.get("p99")
    if budget is not None and p99 is not None:
        out.append({"kind": "budget", "condition": f"the primary's p99 passes {readable(budget)} ms in production "
                    f"(measured here: {readable(p99)} ms, {p99 / budget * 100:.0f}% of the budget)",
                    "action": fallback + (f" (its p99 here: {readable(_p99(contingency))} ms)" if contingency else "")})
    curve = (tco or {}).get("curves", {}).get(primary["id"])
    if curve:
        out.append({"kind": "traffic", "condition": f"traffic passes {readable(curve['next_instance_at_per_s'])} "
                    f"inferences/s (what {curve['instances_first']} instance(s) of the primary carry, by its "
                    f"measured capacity of {readable(curve['capacity_per_s'])}/s each)",
                    "action": "add an instance; re-run the audit at the new traffic, since another route's "
                              "capacity may then cost less"})
    parity = primary.get("parity") or {}
    out.append({"kind": "parity", "condition": "a toolchain upgrade (`convcheck matrix --toolchain PKG==NEW`, then "
                f"`convcheck diff`) shows a parity regression beyond noise on {primary['route']} (now: max_abs "
                f"{readable(parity.get('max_abs'))}"
                + ("" if parity.get("exact") else f", SNR {readable(parity.get('snr_db'))} dB") + ")",
                "action": f"hold the upgrade; {fallback}"})
    smallest = (sens or {}).get("smallest")
    if smallest:
        out.append({"kind": "priorities", "condition": f"your weight on {smallest['criterion']} moves from "
                    f"{smallest['weight_from']:g} past {smallest['weight_to']:.3g}",
                    "action": f"{smallest['candidate']} becomes the primary (the smallest single-weight change "
                              "that flips the choice)"})
    return out


def _p99(c: dict) -> float | None:
    server = (c.get("served") or {}).get("server") or {}
    lat = c.get("latency") or {}
    return server.get("p99") if server.get("p99") is not None else lat.get("p99")


def _not_verified(audit: dict) -> list[str]:
    out = []
    for c in audit.get("unverified") or []:
        out.append(f"{c['id']}: not run here ({c['status']}); needs {c.get('needs') or 'another host'}")
    if not audit["host"]["matches_target"]:
        out.append(audit["host"]["note"])
    for note in audit.get("notes") or []:
        if note.startswith("TVM latency is an untuned build"):
            out.append(note)
    return out
