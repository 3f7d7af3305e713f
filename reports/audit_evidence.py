"""The audit's evidence: deployment profiles, and one candidate per cell — its measured parity,
latency, throughput, cost, memory, artifact size and lock-in, and whether it may be recommended.

Pure data in, data out: a cell dict (anything a results document may hold) becomes a candidate dict of
finite numbers and plain strings; nothing here formats a page.
"""

from __future__ import annotations

import fnmatch
import json
import math
from importlib import resources
from typing import Any

from convcheck.errors import ConvcheckError
from convcheck.reports.cell_view import lockin_of, tvm_build, verified_by
from convcheck.reports.escaping import first_line
from convcheck.reports.load_view import curve_points
from convcheck.reports.numbers import finite, readable, rows_text
from convcheck.reports.status_groups import NOT_HERE

#: Could not run on this host: listed, never recommended (status_groups.NOT_HERE).
UNVERIFIED = NOT_HERE


HOURS_PER_MONTH = 730.0  # 365.25 * 24 / 12, rounded as cloud price sheets do


def load_profiles() -> dict[str, dict[str, Any]]:
    """Every deployment profile, by name (each dict also carries its own `name`). A registered runtime
    that names a profile in `Runtime.deploy_profiles` (a plugin's) is a candidate there too: its routes'
    pattern `*/<runtime>` is added to the profile's, so the shipped file needs no edit."""
    text = resources.files("convcheck.reports").joinpath("data/deploy_profiles.json").read_text("utf-8")
    profiles = {name: {"name": name, **body} for name, body in json.loads(text)["profiles"].items()}
    for name, pattern in _declared_candidates():
        if name in profiles and pattern not in profiles[name].setdefault("routes", []):
            profiles[name]["routes"] = [*profiles[name]["routes"], pattern]
    return profiles


def _declared_candidates() -> list[tuple[str, str]]:
    """(profile, route pattern) for each registered runtime's `deploy_profiles` (class metadata: loading
    the classes imports no framework)."""
    from convcheck.registry import runtimes

    return [(name, f"*/{cls.name}") for _, cls in runtimes.loadable_items()  # type: ignore[attr-defined]
            for name in getattr(cls, "deploy_profiles", ())]


def profile(name: str) -> dict[str, Any]:
    """One profile; an unknown name is a usage error that lists the valid ones."""
    profiles = load_profiles()
    if name not in profiles:
        raise ConvcheckError(f"unknown deployment profile {name!r}: choose one of {', '.join(sorted(profiles))}")
    return profiles[name]


def matches(cell: dict[str, Any], prof: dict[str, Any]) -> bool:
    route = str(cell.get("route", ""))
    return (any(fnmatch.fnmatchcase(route, p) for p in prof.get("routes", []))
            and cell.get("device", "cpu") in prof.get("devices", ["cpu"])
            and cell.get("precision", "fp32") in prof.get("precisions", ["fp32"]))


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
        "max_abs": finite(par.get("max_abs")), "max_rel": finite(par.get("max_rel")),
        "snr_db": finite(par.get("snr_db")), "exact": bool(par.get("exact")) or (
            par.get("max_abs") == 0 and par.get("snr_db") is None and bool(par)),
        "cosine": finite(par.get("cosine")), "top1_agreement": finite(par.get("top1_agreement")),
        "samples": par.get("samples"),
        "tolerance": {"profile": tol.get("profile") or cell.get("precision"), "check": tol.get("check"),
                      "atol": finite(tol.get("atol")), "rtol": finite(tol.get("rtol")),
                      "min_snr_db": finite(tol.get("min_snr_db"))},
        "localization": first_line(loc.get("summary")) if isinstance(loc, dict) else "",
    }


def _latency(cell: dict[str, Any], budget: float | None) -> dict[str, Any] | None:
    lat = cell.get("latency_ms") or {}
    p50 = finite(lat.get("p50"))
    if p50 is None:
        return None
    p99 = finite(lat.get("p99"))
    batch = lat.get("batch") if isinstance(lat.get("batch"), int) and lat.get("batch") > 0 else None
    tail = p99 if p99 is not None else p50  # a budget is a tail figure; p50 only when p99 is missing
    return {
        "p50": p50, "p99": p99, "mean": finite(lat.get("mean")), "cv": finite(lat.get("cv")),
        "noisy": bool(lat.get("noisy")), "n": lat.get("n"), "threads": lat.get("threads"),
        "batch": batch, "batch_recorded": batch is not None,
        "p50_per_row": p50 / (batch or 1),
        "budget_figure": "p99" if p99 is not None else "p50",
        "within_budget": None if budget is None else tail <= budget,
        "budget_fraction": None if budget is None or budget <= 0 else tail / budget,
    }


def _throughput(cell: dict[str, Any], lat: dict[str, Any] | None, budget: float | None,
                served: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Inferences (rows) per second from one process: the LoadGen capacity at the budget where it was
    measured (queries arriving at random, p99 held to the budget), else the best `--batch` sweep entry that
    keeps its call within the budget, else batch / p50 of the latency run (calls back to back)."""
    cap = (served or {}).get("capacity")
    if cap and cap["rows_per_s"]:
        return {"per_s": cap["rows_per_s"], "batch": served["rows_per_query"],  # type: ignore[index]
                "basis": f"LoadGen Server capacity: {readable(cap['qps'])} queries/s of "
                         f"{rows_text(served['rows_per_query'])} with p99 ≤ {readable(served['budget_ms'])} ms",  # type: ignore[index]
                "measured_under_load": True}
    best: dict[str, Any] | None = None
    for entry in ((cell.get("batches") or {}).get("per_batch") or []):
        if not isinstance(entry, dict) or entry.get("error"):
            continue
        per_s = finite(entry.get("throughput_per_s"))
        elat = entry.get("latency_ms") or {}
        tail = finite(elat.get("p99")) if finite(elat.get("p99")) is not None else finite(elat.get("p50"))
        fits = budget is None or (tail is not None and tail <= budget)
        if per_s and per_s > 0 and fits and (best is None or per_s > best["per_s"]):
            best = {"per_s": per_s, "batch": entry.get("batch"),
                    "basis": f"--batch sweep: batch {entry.get('batch')}, p50 {readable(finite(elat.get('p50')))} ms"}
    if best:
        return best
    if lat and lat["p50"] > 0:
        batch = lat["batch"] or 1
        return {"per_s": batch * 1000.0 / lat["p50"], "batch": batch,
                "basis": f"batch {batch} / p50 {readable(lat['p50'])} ms" + ("" if lat["batch_recorded"]
                                                                       else " (batch not recorded: 1 assumed)")}
    return None


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)


def _served(cell: dict[str, Any], budget: float | None, traffic: float | None) -> dict[str, Any] | None:
    """The cell's LoadGen evidence measured under this audit's own settings (a Server run at this traffic,
    a capacity searched with this budget as its p99 bound), or None. A load run under another traffic or
    bound is not this audit's evidence and is left out."""
    load = cell.get("load") if isinstance(cell.get("load"), dict) else None
    if not load or budget is None:
        return None
    rows = (load.get("sut") or {}).get("rows_per_sample")
    rows = rows if isinstance(rows, int) and rows > 0 else 1
    server = None
    for run in load.get("runs") or []:
        if isinstance(run, dict) and run.get("scenario") == "server" and traffic is not None \
                and _close(finite(run.get("target_rows_per_s")), traffic) \
                and _close(finite(run.get("latency_bound_ms")), budget):
            server = {"target_qps": finite(run.get("target_qps")), "achieved_qps": finite(run.get("achieved_qps")),
                      "p50": finite(run.get("p50")), "p99": finite(run.get("p99")), "valid": bool(run.get("valid")),
                      "why": first_line(run.get("error") or run.get("invalid_reason") or "")}
    cap = load.get("capacity") if isinstance(load.get("capacity"), dict) else None
    capacity = None
    if cap is not None and _close(finite(cap.get("latency_bound_ms")), budget):
        qps = finite(cap.get("qps"))
        capacity = {"qps": qps, "rows_per_s": None if qps is None else qps * rows, "trials": len(cap.get("trials") or []),
                    "lowest_invalid_qps": finite(cap.get("lowest_invalid_qps")),
                    "why_none": first_line(cap.get("why_none") or "")}
    if server is not None and server["valid"] and server["target_qps"] and capacity is not None and \
            (capacity["qps"] is None or capacity["qps"] < server["target_qps"]):
        # The search's answer is a lower bound; a VALID run at the traffic proves at least that much.
        capacity.update(qps=server["target_qps"], rows_per_s=server["target_qps"] * rows,
                        from_server_run=True)
    if server is None and capacity is None:
        return None
    points = curve_points(cell) if _close(finite((load.get("settings") or {}).get("latency_bound_ms")),
                                                       budget) else []
    return {"server": server, "capacity": capacity, "rows_per_query": rows, "budget_ms": budget, "curve": points,
            "mlperf_duration": bool(load.get("mlperf_duration")),
            "min_duration_s": finite((load.get("settings") or {}).get("duration_s"))}


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
    before, after = finite(mem.get("rss_before_load")), finite(mem.get("rss_after_run"))
    if not mem:
        return None
    return {"process_peak_mb": finite(mem.get("process_peak_rss")), "gpu_peak_mb": finite(mem.get("gpu_peak")),
            "load_and_run_delta_mb": None if before is None or after is None else after - before}


def _lockin(cell: dict[str, Any], document: dict[str, Any]) -> dict[str, Any] | None:
    raw = lockin_of(document, cell)
    if raw is None or finite(raw.get("score")) is None:
        return None
    factors = {}
    for name, f in (raw.get("factors") or {}).items():
        if isinstance(f, dict):
            factors[str(name)] = {"weight": finite(f.get("weight")), "value": finite(f.get("value")),
                                  "evidence": str(f.get("evidence", ""))}
    return {"score": finite(raw.get("score")), "factors": factors}


def _message(cell: dict[str, Any]) -> str:
    """The cell's error line without the static-check verdict the pipeline appends (shown on its own)."""
    return first_line((cell.get("error") or {}).get("message")).split(" Static check:")[0].strip()


def _needs(cell: dict[str, Any]) -> str:
    """What would let an unverified cell run: the missing device and/or the install hint in its message."""
    msg = _message(cell)
    needs = []
    if cell.get("device") == "cuda" or "no cuda" in msg.lower():
        needs.append("an NVIDIA GPU (CUDA)")
    elif "macos" in msg.lower():  # the runtime's own host_unsupported() reason, carried in the message
        needs.append("macOS (the runtime executes only there)")
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


def build_candidate(cell: dict[str, Any], document: dict[str, Any], budget: float | None,
               price: float | None, traffic: float | None) -> dict[str, Any]:
    status = str(cell.get("status"))
    lat = _latency(cell, budget)
    served = _served(cell, budget, traffic)
    tput = _throughput(cell, lat, budget, served)
    error = cell.get("error")
    cand = {
        "id": _cid(cell), "route": str(cell.get("route")), "source": str(cell.get("source") or
                                                                        str(cell.get("route")).split("/")[0]),
        "first_hop": _first_hop(cell),
        "runtime": str(cell.get("runtime", "")), "device": str(cell.get("device", "cpu")),
        "precision": str(cell.get("precision", "fp32")), "size": cell.get("size"), "status": status,
        "verified": status not in UNVERIFIED, "passes": status == "pass",
        "parity": _parity(cell), "latency": lat, "served": served, "throughput": tput,
        "cost": _cost(tput, price, traffic),
        "memory": _memory(cell), "artifact_bytes": finite(cell.get("artifact_bytes")),
        "lockin": _lockin(cell, document),
        "warnings": [str(w) for w in (cell.get("warnings") or [])],
        "error": {"stage": str(error.get("stage") or ""), "op": str(error.get("op") or ""),
                  "message": _message(cell)} if isinstance(error, dict) and error else None,
        "precheck_verdict": first_line((cell.get("precheck") or {}).get("verdict")),
        "verified_by": verified_by(cell),
        # How a TVM library was scheduled (untuned / tuned / reused): an untuned figure is not TVM's best.
        "tvm_build": tvm_build(cell),
    }
    cand["eligible"], cand["ineligible_reason"] = _eligibility(cand, budget, traffic)
    cand["eligibility_basis"] = _basis(cand, budget, traffic)
    if not cand["verified"]:
        cand["needs"] = _needs(cell)
    return cand


def _basis(c: dict[str, Any], budget: float | None, traffic: float | None) -> str:
    """What the budget was checked against for this candidate, in words."""
    if budget is None:
        return "no latency budget"
    served = c["served"] or {}
    server, cap = served.get("server"), served.get("capacity")
    if server:
        text = (f"LoadGen Server scenario at {readable(traffic)} inferences/s ({readable(server['target_qps'])} "
                f"queries/s of {rows_text(served['rows_per_query'])}): p99 {readable(server['p99'])} ms, "
                f"{'VALID' if server['valid'] else 'INVALID'}")
        if not server["valid"] and cap and cap["qps"]:
            text += (f"; capacity {readable(cap['qps'])} queries/s per instance with p99 ≤ {readable(budget)} ms, so "
                     f"{c['cost']['instances'] if c['cost'] and c['cost'].get('instances') else '?'} instances")
        return text
    if traffic is not None and c["passes"] and c["verified"]:
        why = "the load test did not run for this cell" if not c["served"] else "no Server run at this traffic"
        return f"p99 per call (single caller; {why})"
    return "p99 per call (single caller)"


def _eligibility(c: dict[str, Any], budget: float | None, traffic: float | None = None) -> tuple[bool, str]:
    if not c["verified"]:
        return False, f"not run on this host ({c['status']})"
    if not c["passes"]:
        what = c["error"]["message"] if c["error"] else ""
        return False, f"{c['status']}" + (f": {what}" if what else "")
    server = (c["served"] or {}).get("server")
    if budget is not None and server is not None:
        # Under load: the Server scenario at the traffic decides; an instance that cannot carry it all
        # is still eligible when the measured capacity says how many instances can.
        if server["valid"]:
            return True, ""
        cap = c["served"]["capacity"]
        if cap and cap["qps"]:
            return True, ""
        return False, (f"over budget under load: LoadGen Server at {readable(traffic)} inferences/s has p99 "
                       f"{readable(server['p99'])} ms (budget {readable(budget)} ms; {server['why'] or 'INVALID'})"
                       + (f"; capacity search: {cap['why_none']}" if cap and cap["why_none"] else ""))
    if budget is not None:
        lat = c["latency"]
        if lat is None:
            return False, "latency not measured: cannot be held to the budget"
        if not lat["within_budget"]:
            figure = lat["p99"] if lat["p99"] is not None else lat["p50"]
            return False, f"over budget: {lat['budget_figure']} {readable(figure)} ms > {readable(budget)} ms"
    return True, ""
