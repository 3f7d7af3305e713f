"""`convcheck audit`: which route to deploy a model on, decided from an already-run results document.

The audit is evidence first: every candidate route keeps its measured parity, latency, throughput,
memory, artifact size and lock-in; the recommendation is a documented rule applied to those numbers,
and the rule, each step of its application and the conditions that would flip it are part of the
output. A route that could not run on this host (missing_dep, no_device) is listed as unverified and
never recommended: a conversion that was not compared proves nothing.

Pure functions and the standard library only: the CLI runs the routes, this module reads the result.
The audit dict is itself the JSON output (finite numbers only, so `allow_nan=False` is safe).
"""

from __future__ import annotations

import fnmatch
import html
import json
import math
from importlib import resources
from typing import Any

from convcheck.errors import ConvcheckError

AUDIT_VERSION = 1
UNVERIFIED = ("missing_dep", "no_device")
HOURS_PER_MONTH = 730.0  # 365.25 * 24 / 12, rounded as cloud price sheets do
DEFAULT_TIE_POINTS = 5.0
NEAR_BUDGET = 0.9  # a primary using 90% of its budget is one noisy neighbour away from missing it
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


# ---------------------------------------------------------------------------------------------- profiles

def load_profiles() -> dict[str, dict[str, Any]]:
    """Every deployment profile, by name (each dict also carries its own `name`)."""
    text = resources.files("convcheck.reports").joinpath("data/deploy_profiles.json").read_text("utf-8")
    return {name: {"name": name, **body} for name, body in json.loads(text)["profiles"].items()}


def profile(name: str) -> dict[str, Any]:
    """One profile; an unknown name is a usage error that lists the valid ones."""
    profiles = load_profiles()
    if name not in profiles:
        raise ConvcheckError(f"unknown deployment profile {name!r}: choose one of {', '.join(sorted(profiles))}")
    return profiles[name]


def _matches(cell: dict[str, Any], prof: dict[str, Any]) -> bool:
    route = str(cell.get("route", ""))
    return (any(fnmatch.fnmatchcase(route, p) for p in prof.get("routes", []))
            and cell.get("device", "cpu") in prof.get("devices", ["cpu"])
            and cell.get("precision", "fp32") in prof.get("precisions", ["fp32"]))


# ------------------------------------------------------------------------------------------ small helpers

def _num(value: Any) -> float | None:
    """A finite float, or None: documents come from anywhere, NaN/inf must not reach the JSON."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""


def _g(x: float | None, digits: int = 3) -> str:
    """Numbers for people: 3 significant figures, no exponent for everyday magnitudes."""
    if x is None:
        return "—"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if 1e-4 <= abs(x) < 1000:
        return f"{x:.{max(0, digits - 1 - magnitude)}f}"
    if 1000 <= abs(x) < 1e15:  # 4,930,000 reads faster than 4.93e+06 in a cost table
        return f"{round(x, digits - 1 - magnitude):,.0f}"
    return f"{x:.{digits - 1}e}"


def _rows(batch: int | None) -> str:
    return "1 row" if (batch or 1) == 1 else f"{batch} rows"


def _sc(score: float | None) -> str:
    """A lock-in score as the contract rounds it: one decimal."""
    return "—" if score is None else f"{score:.1f}"


def _money(x: float | None) -> str:
    """Dollars: cents from a dollar up; below, two significant digits written out ($0.025, $0.000047)."""
    if x is None:
        return "—"
    if x >= 1 or x == 0:
        return f"${x:,.2f}"
    if x < 1e-9:
        return f"${x:.1e}"
    return f"${x:.{1 - math.floor(math.log10(x))}f}"


def _bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def _finite(obj: Any) -> Any:
    """The audit with every non-finite float replaced by None (json.dumps(allow_nan=False) must work)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# -------------------------------------------------------------------------------------------- candidates

def _cid(cell: dict[str, Any]) -> str:
    return f"{cell.get('route')} [{cell.get('device', 'cpu')} {cell.get('precision', 'fp32')}]"


def _parity(cell: dict[str, Any]) -> dict[str, Any]:
    par = cell.get("parity") or {}
    tol = par.get("tolerance") or {}
    loc = cell.get("localization") or {}
    status = cell.get("status")
    if not par:
        verdict = "not compared"
    elif status == "vacuous":  # the reference carries no signal: agreement with it proves nothing
        verdict = "vacuous"
    else:
        verdict = "pass" if par.get("ok") and status == "pass" else "fail"
    return {
        "verdict": verdict,
        "max_abs": _num(par.get("max_abs")), "max_rel": _num(par.get("max_rel")),
        "snr_db": _num(par.get("snr_db")), "exact": bool(par.get("exact")) or (
            par.get("max_abs") == 0 and par.get("snr_db") is None and bool(par)),
        "cosine": _num(par.get("cosine")), "top1_agreement": _num(par.get("top1_agreement")),
        "samples": par.get("samples"),
        "tolerance": {"profile": tol.get("profile") or cell.get("precision"), "check": tol.get("check"),
                      "atol": _num(tol.get("atol")), "rtol": _num(tol.get("rtol")),
                      "min_snr_db": _num(tol.get("min_snr_db"))},
        "localization": _first_line(loc.get("summary")) if isinstance(loc, dict) else "",
    }


def _latency(cell: dict[str, Any], budget: float | None) -> dict[str, Any] | None:
    lat = cell.get("latency_ms") or {}
    p50 = _num(lat.get("p50"))
    if p50 is None:
        return None
    p99 = _num(lat.get("p99"))
    batch = lat.get("batch") if isinstance(lat.get("batch"), int) and lat.get("batch") > 0 else None
    tail = p99 if p99 is not None else p50  # a budget is a tail figure; p50 only when p99 is missing
    return {
        "p50": p50, "p99": p99, "mean": _num(lat.get("mean")), "cv": _num(lat.get("cv")),
        "noisy": bool(lat.get("noisy")), "n": lat.get("n"), "threads": lat.get("threads"),
        "batch": batch, "batch_recorded": batch is not None,
        "p50_per_row": p50 / (batch or 1),
        "budget_figure": "p99" if p99 is not None else "p50",
        "within_budget": None if budget is None else tail <= budget,
        "budget_fraction": None if budget is None or budget <= 0 else tail / budget,
    }


def _throughput(cell: dict[str, Any], lat: dict[str, Any] | None, budget: float | None) -> dict[str, Any] | None:
    """Inferences (rows) per second from one process: the best `--batch` sweep entry that keeps its
    call within the budget where the sweep exists, else batch / p50 of the latency run."""
    best: dict[str, Any] | None = None
    for entry in ((cell.get("batches") or {}).get("per_batch") or []):
        if not isinstance(entry, dict) or entry.get("error"):
            continue
        per_s = _num(entry.get("throughput_per_s"))
        elat = entry.get("latency_ms") or {}
        tail = _num(elat.get("p99")) if _num(elat.get("p99")) is not None else _num(elat.get("p50"))
        fits = budget is None or (tail is not None and tail <= budget)
        if per_s and per_s > 0 and fits and (best is None or per_s > best["per_s"]):
            best = {"per_s": per_s, "batch": entry.get("batch"),
                    "basis": f"--batch sweep: batch {entry.get('batch')}, p50 {_g(_num(elat.get('p50')))} ms"}
    if best:
        return best
    if lat and lat["p50"] > 0:
        batch = lat["batch"] or 1
        return {"per_s": batch * 1000.0 / lat["p50"], "batch": batch,
                "basis": f"batch {batch} / p50 {_g(lat['p50'])} ms" + ("" if lat["batch_recorded"]
                                                                       else " (batch not recorded: 1 assumed)")}
    return None


def _cost(tput: dict[str, Any] | None, price: float | None, traffic: float | None) -> dict[str, Any] | None:
    if tput is None or (price is None and traffic is None):
        return None
    per_s = tput["per_s"]
    out: dict[str, Any] = {"per_million_usd": None if price is None else price / 3600.0 / per_s * 1e6}
    if traffic:
        instances = max(1, math.ceil(traffic / per_s))
        out["instances"] = instances
        out["utilisation"] = traffic / (instances * per_s)
        if price is not None:
            monthly = instances * price * HOURS_PER_MONTH
            out["monthly_usd"] = monthly
            out["effective_per_million_usd"] = monthly / (traffic * 3600.0 * HOURS_PER_MONTH) * 1e6
    return out


def _memory(cell: dict[str, Any]) -> dict[str, Any] | None:
    mem = cell.get("memory_mb") or {}
    before, after = _num(mem.get("rss_before_load")), _num(mem.get("rss_after_run"))
    if not mem:
        return None
    return {"process_peak_mb": _num(mem.get("process_peak_rss")), "gpu_peak_mb": _num(mem.get("gpu_peak")),
            "load_and_run_delta_mb": None if before is None or after is None else after - before}


def _lockin(cell: dict[str, Any], doc_routes: dict[str, Any]) -> dict[str, Any] | None:
    raw = cell.get("lockin") or doc_routes.get(str(cell.get("route"))) or None
    if not isinstance(raw, dict) or _num(raw.get("score")) is None:
        return None
    factors = {}
    for name, f in (raw.get("factors") or {}).items():
        if isinstance(f, dict):
            factors[str(name)] = {"weight": _num(f.get("weight")), "value": _num(f.get("value")),
                                  "evidence": str(f.get("evidence", ""))}
    return {"score": _num(raw.get("score")), "factors": factors}


def _message(cell: dict[str, Any]) -> str:
    """The cell's error line without the static-check verdict the pipeline appends (shown on its own)."""
    return _first_line((cell.get("error") or {}).get("message")).split(" Static check:")[0].strip()


def _needs(cell: dict[str, Any]) -> str:
    """What would let an unverified cell run: the missing device and/or the install hint in its message."""
    msg = _message(cell)
    needs = []
    if cell.get("device") == "cuda" or "no cuda" in msg.lower():
        needs.append("an NVIDIA GPU (CUDA)")
    elif cell.get("runtime") == "coreml" or "macos" in msg.lower():
        needs.append("macOS (Core ML executes only there)")
    if cell.get("status") == "missing_dep":
        hint = next((part.strip() for part in msg.split(";") if "pip install" in part), "")
        needs.append(hint or "the route's packages installed")
    return " and ".join(needs) or msg or f"a {cell.get('device')} device"


def _first_hop(cell: dict[str, Any]) -> str:
    """The route's first conversion (its exporter): `steps[0]`, else the id's second part."""
    steps = cell.get("steps")
    if isinstance(steps, list):
        return str(steps[0]) if steps else ""
    parts = str(cell.get("route", "")).split("/")
    return parts[1] if len(parts) > 2 else ""


def _candidate(cell: dict[str, Any], doc_routes: dict[str, Any], budget: float | None,
               price: float | None, traffic: float | None) -> dict[str, Any]:
    status = str(cell.get("status"))
    lat = _latency(cell, budget)
    tput = _throughput(cell, lat, budget)
    error = cell.get("error")
    cand = {
        "id": _cid(cell), "route": str(cell.get("route")), "source": str(cell.get("source") or
                                                                        str(cell.get("route")).split("/")[0]),
        "first_hop": _first_hop(cell),
        "runtime": str(cell.get("runtime", "")), "device": str(cell.get("device", "cpu")),
        "precision": str(cell.get("precision", "fp32")), "size": cell.get("size"), "status": status,
        "verified": status not in UNVERIFIED, "passes": status == "pass",
        "parity": _parity(cell), "latency": lat, "throughput": tput, "cost": _cost(tput, price, traffic),
        "memory": _memory(cell), "artifact_bytes": _num(cell.get("artifact_bytes")),
        "lockin": _lockin(cell, doc_routes),
        "warnings": [str(w) for w in (cell.get("warnings") or [])],
        "error": {"stage": str(error.get("stage") or ""), "op": str(error.get("op") or ""),
                  "message": _message(cell)} if isinstance(error, dict) and error else None,
        "precheck_verdict": _first_line((cell.get("precheck") or {}).get("verdict")),
    }
    cand["eligible"], cand["ineligible_reason"] = _eligibility(cand, budget)
    if not cand["verified"]:
        cand["needs"] = _needs(cell)
    return cand


def _eligibility(c: dict[str, Any], budget: float | None) -> tuple[bool, str]:
    if not c["verified"]:
        return False, f"not run on this host ({c['status']})"
    if not c["passes"]:
        what = c["error"]["message"] if c["error"] else ""
        return False, f"{c['status']}" + (f": {what}" if what else "")
    if budget is not None:
        lat = c["latency"]
        if lat is None:
            return False, "latency not measured: cannot be held to the budget"
        if not lat["within_budget"]:
            figure = lat["p99"] if lat["p99"] is not None else lat["p50"]
            return False, f"over budget: {lat['budget_figure']} {_g(figure)} ms > {_g(budget)} ms"
    return True, ""


# ------------------------------------------------------------------------------------------- the rule

def _crit_lockin(pool: list[dict], prof: dict, tie: float) -> tuple[list[dict], str]:
    scored = [c for c in pool if c["lockin"]]
    if not scored:
        return pool, "no candidate has a lock-in score: criterion skipped"
    best = min(c["lockin"]["score"] for c in scored)
    kept = [c for c in scored if c["lockin"]["score"] <= best + tie]
    note = f"lowest lock-in {_sc(best)}; kept those ≤ {_sc(best + tie)}"
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
    return [c for c in sized if c["artifact_bytes"] == best], f"smallest artifact {_bytes(best)}"


def _crit_latency(pool: list[dict], prof: dict, tie: float) -> tuple[list[dict], str]:
    """The fastest p50 per row and everything within noise of it: a 1% gap on a shared host is no ranking."""
    timed = sorted((c for c in pool if c["latency"]), key=lambda c: c["latency"]["p50_per_row"])
    if not timed:
        return pool, "no latency recorded: criterion skipped"
    fastest = timed[0]
    kept = [fastest] + [c for c in timed[1:] if _within_noise(fastest, c)]
    note = f"fastest p50 per row {_g(fastest['latency']['p50_per_row'] * 1000)} µs ({fastest['id']})"
    if len(kept) > 1:
        note += "; within noise of it (gap under max(10%, cv)), so tied: " + ", ".join(c["id"] for c in kept[1:])
    if len(timed) > len(kept):
        runner = timed[len(kept)]
        gap = runner["latency"]["p50_per_row"] / fastest["latency"]["p50_per_row"] - 1
        note += f"; next {runner['id']} is {_pct(gap)} slower"
    return kept, note


CRITERIA = {"lockin": _crit_lockin, "preferred": _crit_preferred, "precision": _crit_precision,
            "artifact_bytes": _crit_artifact, "latency": _crit_latency}


def _pct(x: float) -> str:
    return "∞" if not math.isfinite(x) else f"{x * 100:.3g}%"


def _within_noise(a: dict, b: dict) -> bool:
    """Two p50s closer than 10% or than either figure's own spread (cv) are not a real ranking."""
    la, lb = a["latency"], b["latency"]
    if not la or not lb or la["p50_per_row"] <= 0:
        return False
    gap = abs(lb["p50_per_row"] / la["p50_per_row"] - 1)
    spread = max(la["cv"] or 0.0, lb["cv"] or 0.0)
    return gap < max(NOISE_FRACTION, spread)


def _decide(pool: list[dict], prof: dict, rank_by: list[str], tie: float) -> tuple[dict | None, list[dict]]:
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
    tail = _tail(c)
    return (score, math.inf if tail is None else tail, c["id"])


def _tiebreak_note(winner: dict, runner: dict) -> str:
    (ws, wt, _), (rs, rt, _) = _tiebreak_key(winner), _tiebreak_key(runner)
    if ws < rs:
        return f"still tied: exact lock-in score {_sc(ws)} vs {_sc(rs)} ({runner['id']})"
    if wt < rt:
        return f"still tied: lower p99 per call {_g(wt)} ms vs {_g(rt)} ms ({runner['id']})"
    return f"still tied on lock-in and p99: first by route id (deterministic, not a judgement)"


def _rule_text(prof: dict, rank_by: list[str], tie: float, budget: float | None) -> list[str]:
    patterns = ", ".join(p for r in prof.get("prefer") or [] for p in r.get("routes", [])) or "none"
    reasons = "; ".join(str(r.get("reason", "")) for r in prof.get("prefer") or []) or "—"
    lines = ["Eligible: ran and was compared on this host, status pass (every output within its precision's "
             "tolerance)" + (f", and p99 per call ≤ the {_g(budget)} ms budget" if budget is not None else
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


# ---------------------------------------------------------------------------------------- recommendation

def _reasons(c: dict, audit_ctx: dict, role: str, trail: list[dict]) -> list[str]:
    """Why this candidate, in numbers taken from its own cell."""
    out = [_parity_sentence(c)]
    lat, budget = c["latency"], audit_ctx["budget"]
    if lat:
        text = f"p50 {_g(lat['p50'])} ms, p99 {_g(lat['p99'])} ms per call of {_rows(lat['batch'])}"
        if budget is not None and lat["budget_fraction"] is not None:
            text += f": {_pct(lat['budget_fraction'])} of the {_g(budget)} ms budget"
        out.append(text + (" (noisy figure: cv " + _pct(lat["cv"]) + ")" if lat["noisy"] and lat["cv"] else ""))
    if c["lockin"]:
        context = _lockin_context(c, audit_ctx["eligible"]) if role == "primary" else \
            (f" (primary: {_sc(audit_ctx['primary']['lockin']['score'])})" if audit_ctx["primary"]["lockin"] else "")
        out.append(f"lock-in {_sc(c['lockin']['score'])}/100" + context)
    else:
        out.append("lock-in not scored in this document")
    if c["cost"] and c["cost"].get("per_million_usd") is not None:
        out.append(f"{_money(c['cost']['per_million_usd'])} per million inferences "
                   f"({_g(c['throughput']['per_s'])} inferences/s, {c['throughput']['basis']})")
    if c["cost"] and c["cost"].get("instances"):
        cost = c["cost"]
        month = f", {_money(cost['monthly_usd'])} a month" if cost.get("monthly_usd") is not None else ""
        out.append(f"at {_g(audit_ctx['traffic'])} inferences/s: {cost['instances']} instance(s){month} "
                   f"({_pct(cost['utilisation'])} busy)")
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
    snr = "identical outputs" if p["exact"] else f"SNR {_g(p['snr_db'])} dB"
    return f"parity passes: max_abs {_g(p['max_abs'])}, {snr}, cosine {_g(p['cosine'], 6)} within {bound}"


def _lockin_context(c: dict, eligible: list[dict]) -> str:
    others = [o for o in eligible if o is not c and o["lockin"]]
    if not others:
        return ""
    score = c["lockin"]["score"]
    best_other = min(o["lockin"]["score"] for o in others)
    if score < best_other:
        return f", the lowest of the eligible routes (next {_sc(best_other)})"
    if score == best_other:
        same = sorted({o["route"] for o in others if o["lockin"]["score"] == score})
        return f", the lowest of the eligible routes (tied with {', '.join(same)})"
    return f" (lowest eligible: {_sc(best_other)})"


def _other_runtimes_note(primary: dict, unverified: list[dict]) -> str:
    others = sorted({c["route"] for c in unverified
                     if c["source"] == primary["source"] and c["runtime"] != primary["runtime"]})
    if not others:
        return f"; no route from the {primary['source']} model on another runtime passed here"
    return (f"; the other runtimes' routes from the {primary['source']} model were not verified here: "
            f"{', '.join(others)}")


def _fallback(primary: dict, passing: list[dict], unverified: list[dict], prof: dict, rank_by: list[str],
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
            chosen, trail = _decide(pool, prof, rank_by, tie)
            if caveat and chosen["runtime"] == primary["runtime"]:
                caveat += _other_runtimes_note(primary, unverified)
            return chosen, trail, caveat
    return None, [], (f"no other verified, passing route from the {primary['source']} model: every other "
                      "candidate failed or could not run here (see below)")


def _no_recommendation(cands: list[dict], budget: float | None) -> str:
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
    return (f"every passing candidate is over the {_g(budget)} ms budget: the fastest, {fastest['id']}, "
            f"has p99 {_g(fig)} ms per call of {_rows(fastest['latency']['batch'])}")


# ------------------------------------------------------------------------------------------- triggers

def _eligible_under(cands: list[dict], budget: float | None) -> list[dict]:
    out = []
    for c in cands:
        if not (c["verified"] and c["passes"]):
            continue
        if budget is not None:
            lat = c["latency"]
            fig = None if lat is None else (lat["p99"] if lat["p99"] is not None else lat["p50"])
            if fig is None or fig > budget:
                continue
        out.append(c)
    return out


def _tail(c: dict) -> float | None:
    lat = c["latency"]
    return None if lat is None else (lat["p99"] if lat["p99"] is not None else lat["p50"])


def _describe(c: dict) -> str:
    lat = c["latency"] or {}
    bits = [f"p50 {_g(lat.get('p50'))} ms", f"p99 {_g(lat.get('p99'))} ms"]
    bits.append(f"lock-in {_sc(c['lockin']['score'])}" if c["lockin"] else "lock-in not scored")
    if c["cost"] and c["cost"].get("per_million_usd") is not None:
        bits.append(f"{_money(c['cost']['per_million_usd'])}/M")
    return f"{c['id']} ({', '.join(bits)})"


def _triggers(ctx: dict) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for make in (_t_budget_down, _t_budget_up, _t_near_budget, _t_speed, _t_strict_lockin, _t_preferred,
                 _t_parity, _t_precision, _t_source, _t_unverified, _t_host):
        out.extend(make(ctx))
    return out


def _trig(kind: str, condition: str, effect: str) -> dict[str, str]:
    return {"kind": kind, "condition": condition, "effect": effect}


def _rerun(ctx: dict, pool: list[dict], rank_by: list[str] | None = None, tie: float | None = None) -> dict | None:
    return _decide(pool, ctx["profile"], rank_by or ctx["rank_by"], ctx["tie"] if tie is None else tie)[0]


def _t_budget_down(ctx: dict) -> list[dict]:
    primary = ctx["primary"]
    if not primary or _tail(primary) is None:
        return []
    limit = _tail(primary)
    pool = [c for c in _eligible_under(ctx["pool"], None) if (_tail(c) is not None and _tail(c) < limit)]
    nxt = _rerun(ctx, pool) if pool else None
    effect = (f"{_describe(nxt)} becomes primary" if nxt else
              f"no verified route from the {primary['source']} model meets it (the primary has the lowest p99 of "
              "them): nothing would be recommended")
    return [_trig("budget", f"the latency budget drops below {_g(limit)} ms (the primary's "
                            f"{primary['latency']['budget_figure']} per call)", effect)]


def _t_budget_up(ctx: dict) -> list[dict]:
    if ctx["budget"] is None:
        return []
    over = sorted((c for c in ctx["pool"] if c["verified"] and c["passes"] and not c["eligible"]
                   and _tail(c) is not None), key=_tail)
    for c in over:
        new = _rerun(ctx, _eligible_under(ctx["pool"], _tail(c)))
        if new is not None and new is not ctx["primary"]:
            return [_trig("budget", f"the latency budget rises to {_g(_tail(c))} ms",
                          f"{_describe(new)} becomes primary")]
    return []


def _t_near_budget(ctx: dict) -> list[dict]:
    primary, budget = ctx["primary"], ctx["budget"]
    if not primary or budget is None or not primary["latency"]:
        return []
    frac = primary["latency"]["budget_fraction"]
    if frac is None or frac < NEAR_BUDGET:
        return []
    return [_trig("margin", f"the primary's p99 ({_g(_tail(primary))} ms) is {_pct(frac)} of the budget: "
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
            or _within_noise(fast, primary):
        return []  # nothing is faster beyond noise: speed would not change the choice
    ratio = primary["latency"]["p50_per_row"] / fast["latency"]["p50_per_row"]
    effect = f"{_describe(fast)} becomes primary: {ratio:.2f}× the primary's speed per row"
    pc, fc = primary["cost"] or {}, fast["cost"] or {}
    if pc.get("per_million_usd") is not None and fc.get("per_million_usd") is not None:
        effect += (f"; cost per million {_money(fc['per_million_usd'])} vs {_money(pc['per_million_usd'])}"
                   f" (saves {_money(pc['per_million_usd'] - fc['per_million_usd'])} per million)")
        if pc.get("monthly_usd") is not None and fc.get("monthly_usd") is not None:
            effect += (f"; at the given traffic {fc['instances']} vs {pc['instances']} instance(s), "
                       f"{_money(fc['monthly_usd'])} vs {_money(pc['monthly_usd'])} a month")
    return [_trig("speed", "speed matters more than lock-in and fidelity", effect)]


def _t_strict_lockin(ctx: dict) -> list[dict]:
    primary = ctx["primary"]
    if not primary or not primary["lockin"] or "lockin" not in ctx["rank_by"] or ctx["tie"] <= 0:
        return []
    strict = _rerun(ctx, ctx["eligible"], tie=0.0)
    if strict is None or strict is primary:
        return []
    return [_trig("lock-in", f"lock-in is ranked strictly (no {_g(ctx['tie'])}-point tie)",
                  f"{_describe(strict)} becomes primary")]


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
                  f"{_describe(pref)} becomes primary")]


def _t_parity(ctx: dict) -> list[dict]:
    primary = ctx["primary"]
    if not primary:
        return []
    rest = [c for c in ctx["eligible"] if c["route"] != primary["route"] or c["precision"] != primary["precision"]]
    nxt = _rerun(ctx, rest) if rest else None
    out = [_trig("parity", f"the primary's parity fails (a runtime upgrade, or your real inputs instead of "
                           f"seeded ones; now max_abs {_g(primary['parity']['max_abs'])})",
                 f"{_describe(nxt)} becomes primary" if nxt else "nothing verified is left to recommend")]
    if primary["precision"] != "fp32":
        out.append(_trig("precision", f"{primary['precision']} accuracy turns out too low on your data",
                         _back_to_fp32(ctx)))
    return out


def _back_to_fp32(ctx: dict) -> str:
    """Where an fp32 retreat lands: an eligible fp32 route, or the price of one (its p99 over the budget)."""
    fp32 = [c for c in ctx["pool"] if c["verified"] and c["passes"] and c["precision"] == "fp32"]
    eligible = [c for c in fp32 if c["eligible"]]
    if eligible:
        return f"stay on fp32: {_describe(_rerun(ctx, eligible))}"
    timed = sorted((c for c in fp32 if _tail(c) is not None), key=_tail)
    if timed:
        return (f"stay on fp32 — no fp32 route meets the budget: the fastest, {timed[0]['id']}, needs a budget of "
                f"{_g(_tail(timed[0]))} ms (p99)")
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
                             + (f" (SNR {_g(snr)} dB, needs ≥ {_g(c['parity']['tolerance']['min_snr_db'])})"
                                if snr is not None else "") + " — stay on fp32"))
        elif primary and c["precision"] != primary["precision"] and _faster(c, primary):
            out.append(_trig("precision", f"the budget cannot be met at {primary['precision']}",
                             f"{_describe(c)} passes its {c['precision']} profile (SNR {_g(c['parity']['snr_db'])} "
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
                                       f"{', '.join(sources)})", f"{_describe(best)} is its primary"))
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


# ------------------------------------------------------------------------------------------- the audit

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
    chosen = [c for c in cells if _matches(c, prof)]
    if source is not None:
        chosen = [c for c in chosen if str(c.get("source") or str(c.get("route")).split("/")[0]) == source]
    return chosen


def build_audit(document: dict[str, Any], model: str, profile: dict[str, Any], latency_budget_ms: float | None,
                price_per_hour: float | None, traffic_per_s: float | None,
                source: str | None = None) -> dict[str, Any]:
    """The portability audit of `model` for one deployment profile, from an already-run results document.

    `source` restricts the candidates to routes from one source format (a zoo model has several builders;
    the user's own file has one)."""
    prof = profile
    budget = _num(latency_budget_ms)
    price, traffic = _num(price_per_hour), _num(traffic_per_s)
    rank_by = [r for r in prof.get("rank_by") or ["lockin", "precision", "latency"] if r in CRITERIA]
    tie = _num(prof.get("lockin_tie_points"))
    tie = DEFAULT_TIE_POINTS if tie is None else tie
    doc_routes = ((document.get("lockin") or {}).get("routes") or {})
    cands = [_candidate(c, doc_routes, budget, price, traffic) for c in _cells(document, model, prof, source)]
    cands.sort(key=lambda c: c["id"])
    verified = [c for c in cands if c["verified"]]
    unverified = [c for c in cands if not c["verified"]]
    eligible = [c for c in verified if c["eligible"]]
    primary, trail = _decide(eligible, prof, rank_by, tie)
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
    ctx["fallback"] = recommendation["fallback"]
    audit = {
        "kind": "convcheck-audit", "audit_version": AUDIT_VERSION, "model": model, "source": source,
        "profile": {k: prof.get(k) for k in ("name", "description", "why", "routes", "devices", "precisions",
                                             "rank_by", "lockin_tie_points", "prefer", "preferences",
                                             "target_host")},
        "run": _run_summary(document),
        "host": {"matches_target": host_ok, "note": host_note},
        "budget": {"latency_ms": budget,
                   "basis": "p99 per call (p50 where p99 is missing), at the batch each route was measured with "
                            "(rows per call shown per route); not per row, not end-to-end with network or "
                            "pre-processing"},
        "pricing": _pricing_summary(price, traffic, document),
        "lockin": _lockin_summary(document, cands),
        "rule": {"criteria": rank_by, "lockin_tie_points": tie, "text": _rule_text(prof, rank_by, tie, budget)},
        "recommendation": recommendation,
        "candidates": verified,
        "unverified": unverified,
        "triggers": _triggers(ctx),
        "notes": _notes(cands, document, src),
    }
    return _finite(audit)


def _recommend(primary: dict | None, trail: list[dict], ctx: dict, cands: list[dict]) -> dict[str, Any]:
    if primary is None:
        return {"primary": None, "fallback": None, "none_reason": _no_recommendation(cands, ctx["budget"]),
                "trail": trail, "fallback_trail": []}
    passing = [c for c in cands if c["verified"] and c["passes"]]
    fb, fb_trail, caveat = _fallback(primary, passing, ctx["unverified"], ctx["profile"], ctx["rank_by"],
                                     ctx["tie"])
    rec_primary = {"id": primary["id"], "route": primary["route"], "runtime": primary["runtime"],
                   "precision": primary["precision"], "reasons": _reasons(primary, ctx, "primary", trail)}
    rec_fb = None
    if fb is not None:
        why_other = ([f"runtime {fb['runtime']}, not {primary['runtime']}: survives a bug, regression or licence "
                      f"change in the primary's runtime"] if fb["runtime"] != primary["runtime"] else [])
        if fb["first_hop"] and fb["first_hop"] == primary["first_hop"]:
            why_other.append(f"shares its first conversion ({fb['first_hop']}) with the primary: a problem in that "
                             "exporter hits both")
        rec_fb = {"id": fb["id"], "route": fb["route"], "runtime": fb["runtime"], "precision": fb["precision"],
                  "caveat": caveat, "reasons": why_other + _reasons(fb, ctx, "fallback", [])}
    return {"primary": rec_primary, "fallback": rec_fb, "none_reason": None,
            "fallback_none_reason": caveat if fb is None else None, "trail": trail, "fallback_trail": fb_trail}


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
    return {"price_per_hour_usd": price, "traffic_per_s": traffic, "hours_per_month": HOURS_PER_MONTH,
            "assumption": (f"one process per instance at the measured thread count on this host's CPU "
                           f"({host.get('cpu', 'unknown')}, {host.get('cores', '?')} cores), running calls back to "
                           f"back at the measured batch (requests must be batched that way), 100% busy, no "
                           f"queueing headroom; cost per million = price per hour / 3600 / inferences per second "
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
    if any(c["latency"] and c["latency"]["noisy"] for c in cands):
        notes.append("some latency figures are noisy (cv over 10%): the rule treats p50 gaps under max(10%, "
                     "cv) as ties, and so should a reader")
    sizes = {c["size"] for c in cands if c["size"]}
    if len(sizes) > 1:
        notes.append(f"candidates mix model sizes ({', '.join(sorted(map(str, sizes)))})")
    if (document.get("run") or {}).get("finished") is None and document.get("run"):
        notes.append("the run had not finished when this document was written: cells may be missing")
    return notes


# -------------------------------------------------------------------------------------------- Markdown

def _md(text: Any) -> str:
    """Escape for Markdown: HTML specials, Markdown punctuation, and table pipes; one line."""
    s = html.escape(" ".join(str(text).split()), quote=False)
    for ch in "\\`*_[]|#":
        s = s.replace(ch, "\\" + ch)
    return s


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
        extra = [str(cost.get("instances") or "—"), _money(cost.get("monthly_usd"))] if traffic else []
        rows.append([_role(c, audit["recommendation"])] + _cand_row(c) + extra)
    return rows


def _cand_row(c: dict) -> list[str]:
    lat, par = c["latency"] or {}, c["parity"]
    budget = "—" if lat.get("within_budget") is None else ("✔ " if lat["within_budget"] else "✘ ") + \
        _pct(lat["budget_fraction"] or 0)
    tput = c["throughput"]["per_s"] if c["throughput"] else None
    cost = (c["cost"] or {}).get("per_million_usd")
    mem = c["memory"] or {}
    snr = "exact" if par["exact"] else _g(par["snr_db"])
    return [c["route"], f"{c['device']} {c['precision']}", c["status"], par["verdict"], _g(par["max_abs"]), snr,
            _g(lat.get("p50")), _g(lat.get("p99")), str(lat.get("batch") or "—"), budget, _g(tput),
            _money(cost), _g(mem.get("process_peak_mb")), _g(mem.get("load_and_run_delta_mb")),
            _bytes(c["artifact_bytes"]), _sc(c["lockin"]["score"]) if c["lockin"] else "—"]


def _detail(c: dict) -> str:
    """The unverified cell's own statement, without the install hint already shown under 'needs'."""
    return ((c["error"] or {}).get("message") or "").split("; pip install")[0]


CAND_HEAD = ["route", "target", "status", "parity", "max_abs", "SNR dB", "p50 ms", "p99 ms", "rows/call",
             "budget (p99)", "inferences/s", "$/M", "peak MB", "Δ load+run MB", "artifact", "lock-in"]


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md(v) for v in row) + " |" for row in rows]
    return lines


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
        rows.append([c["route"], _sc(c["lockin"]["score"])] +
                    [_factor_cell(f[n]) if n in f else "—" for n in names])
        evidence += [f"{c['route']} — {n}: {f[n]['evidence']}" for n in names if n in f and f[n]["evidence"]]
    return ["route", "score"] + names, rows, evidence


def _header_lines(audit: dict) -> list[str]:
    """The audit's context in plain text (each renderer escapes it): run, host, budget, pricing, lock-in."""
    run, budget, pricing = audit["run"], audit["budget"]["latency_ms"], audit["pricing"]
    lines = [f"run {run.get('id')}, convcheck {run.get('convcheck_version')}, size {run.get('size')}; "
             f"host: {audit['host']['note']}",
             f"latency budget: {_g(budget) + ' ms' if budget is not None else 'none given'} — "
             f"{audit['budget']['basis']}"]
    if pricing:
        traffic = f"{_g(pricing['traffic_per_s'])}/s" if pricing["traffic_per_s"] else "not given"
        lines.append(f"price {_money(pricing['price_per_hour_usd'])}/hour, traffic {traffic}; "
                     f"assumption: {pricing['assumption']}")
    if audit["lockin"]["note"]:
        lines.append(f"lock-in: {audit['lockin']['note']}")
    return lines


def render_audit_md(audit: dict[str, Any]) -> str:
    """The audit as Markdown: every string from the document escaped."""
    prof, rec = audit["profile"], audit["recommendation"]
    out = [f"# Portability audit: {_md(audit['model'])} → {_md(prof['name'])}", "",
           f"{_md(prof.get('description'))}. {_md(prof.get('why'))}", ""]
    out += [f"- {_md(line)}" for line in _header_lines(audit)]
    out += ["", "## Recommendation", ""] + _md_recommendation(rec)
    out += ["", "## Decision rule", ""] + [f"{i}. {_md(t)}" for i, t in enumerate(audit["rule"]["text"], 1)]
    if rec["trail"]:
        out += ["", "How the rule picked the primary:", ""]
        out += _md_table(["step", "kept", "dropped", "why"],
                         [[s["criterion"], ", ".join(s["kept"]), ", ".join(s["dropped"]) or "—", s["note"]]
                          for s in rec["trail"]])
    out += ["", "## What would change the choice", ""]
    out += [f"- If {_md(t['condition'])}: {_md(t['effect'])}" for t in audit["triggers"]] or ["- nothing found"]
    out += ["", "## Candidates verified on this host", ""]
    out += _md_table(_cand_head(audit), _cand_rows(audit)) if audit["candidates"] else ["none"]
    failed = [c for c in audit["candidates"] if not c["passes"]]
    if failed:
        out += ["", "Failed here (never recommended):", ""]
        out += [f"- {_md(c['id'])}: {_md(c['ineligible_reason'])}" +
                (f" — {_md(c['parity']['localization'])}" if c["parity"]["localization"] else "") for c in failed]
    out += _md_lockin(audit["candidates"])
    out += ["", "## Unverified here (not recommended)", ""]
    if audit["unverified"]:
        out += _md_table(["route", "target", "status", "needs", "detail", "static checks"],
                         [[c["route"], f"{c['device']} {c['precision']}", c["status"], c["needs"],
                           _detail(c), c["precheck_verdict"] or "—"] for c in audit["unverified"]])
    else:
        out.append("none: every candidate ran here")
    if audit["notes"]:
        out += ["", "## Notes", ""] + [f"- {_md(n)}" for n in audit["notes"]]
    return "\n".join(out) + "\n"


def _md_recommendation(rec: dict) -> list[str]:
    if rec["primary"] is None:
        return [f"**No recommendation.** {_md(rec['none_reason'])}"]
    p, fb = rec["primary"], rec["fallback"]
    out = [f"**Primary: {_md(p['id'])}**", ""] + [f"- {_md(r)}" for r in p["reasons"]] + [""]
    if fb:
        out += [f"**Fallback: {_md(fb['id'])}**" + (f" — caveat: {_md(fb['caveat'])}" if fb["caveat"] else ""), ""]
        out += [f"- {_md(r)}" for r in fb["reasons"]]
    else:
        out.append(f"**Fallback: none.** {_md(rec.get('fallback_none_reason') or '')}")
    return out


def _md_lockin(cands: list[dict]) -> list[str]:
    head, rows, evidence = _lockin_rows(cands)
    if not rows:
        return ["", "Lock-in: — (not scored in this document)"]
    out = ["", "## Lock-in breakdown (factor value 0..1, 1 = most locked; w = weight)", ""] + _md_table(head, rows)
    if evidence:
        out += ["", "<details><summary>evidence</summary>", ""] + [f"- {_md(e)}" for e in evidence] + \
               ["", "</details>"]
    return out


# ------------------------------------------------------------------------------------------------ HTML

CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.ok{color:#17702a}.bad{color:#b3261e}.muted{color:#777}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.6em 0}.primary{border-color:#17702a}
.fallback{border-color:#8a6d00}.none{border-color:#b3261e}code{background:#f6f6f6}"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{_e(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _html_list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _html_recommendation(rec: dict) -> str:
    if rec["primary"] is None:
        return f'<div class="card none"><b>No recommendation.</b> {_e(rec["none_reason"])}</div>'
    p, fb = rec["primary"], rec["fallback"]
    out = f'<div class="card primary"><b>Primary: {_e(p["id"])}</b>{_html_list(p["reasons"])}</div>'
    if fb:
        cav = f' <span class="bad">caveat: {_e(fb["caveat"])}</span>' if fb["caveat"] else ""
        out += f'<div class="card fallback"><b>Fallback: {_e(fb["id"])}</b>{cav}{_html_list(fb["reasons"])}</div>'
    else:
        out += f'<div class="card none"><b>Fallback: none.</b> {_e(rec.get("fallback_none_reason") or "")}</div>'
    return out


def render_audit_html(audit: dict[str, Any]) -> str:
    """A self-contained page: no scripts, no network (CSP), every value escaped."""
    prof, rec = audit["profile"], audit["recommendation"]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>convcheck audit: {_e(audit['model'])} on {_e(prof['name'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Portability audit: {_e(audit['model'])} → {_e(prof['name'])}</h1>",
        f"<p>{_e(prof.get('description'))}. {_e(prof.get('why'))}</p>",
        _html_list(_header_lines(audit)),
        "<h2>Recommendation</h2>", _html_recommendation(rec),
        "<h2>Decision rule</h2>",
        "<ol>" + "".join(f"<li>{_e(t)}</li>" for t in audit["rule"]["text"]) + "</ol>",
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
