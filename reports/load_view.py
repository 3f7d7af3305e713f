"""A cell's `load` record (MLPerf LoadGen, convcheck.validate.loadgen) as the reports show it: one row per
scenario, the capacity in words, and the latency-vs-QPS points the charts draw. Pure functions."""

from __future__ import annotations

from typing import Any

from convcheck.reports.numbers import finite, fmt_ms, readable

#: How each scenario's throughput reads.
_QPS_WORD = {"single-stream": "queries/s", "multi-stream": "samples/s", "server": "queries/s", "offline": "samples/s"}


def load_of(cell: dict[str, Any]) -> dict[str, Any]:
    load = cell.get("load")
    return load if isinstance(load, dict) else {}


def scenario_rows(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per LoadGen run the cell asked for: verdict, throughput and latency percentiles as text."""
    rows = []
    for run in load_of(cell).get("runs") or []:
        if not isinstance(run, dict):
            continue
        valid = bool(run.get("valid"))
        verdict = "VALID" if valid else "INVALID"
        why = run.get("error") or run.get("invalid_reason")
        if not valid and why:
            verdict += f": {why}"
        qps = finite(run.get("achieved_qps"))
        target = finite(run.get("target_qps"))
        qps_text = "—" if qps is None else f"{readable(qps)} {_QPS_WORD.get(str(run.get('scenario')), '/s')}"
        if target is not None:
            qps_text += f" (target {readable(target)})"
        rows.append({"scenario": str(run.get("scenario")), "valid": valid, "verdict": verdict, "qps": qps_text,
                     "p50": fmt_ms(run.get("p50")), "p90": fmt_ms(run.get("p90")), "p99": fmt_ms(run.get("p99")),
                     "latency_of": run.get("latency_of"), "log": run.get("log")})
    return rows


def capacity_text(cell: dict[str, Any]) -> str:
    """"1,234 samples/s at p99 ≤ 50 ms (6 Server runs)", the reason when none was found, or ""."""
    cap = load_of(cell).get("capacity")
    if not isinstance(cap, dict):
        return ""
    trials = len(cap.get("trials") or [])
    bound = readable(finite(cap.get("latency_bound_ms")))
    if finite(cap.get("qps")) is None:
        return f"none: {cap.get('why_none') or 'no valid Server run'} ({trials} Server runs)"
    upper = finite(cap.get("lowest_invalid_qps"))
    above = f"; invalid at {readable(upper)}" if upper is not None else "; no invalid QPS found above it"
    return f"{readable(cap['qps'])} queries/s with p99 ≤ {bound} ms ({trials} Server runs{above})"


def load_note(cell: dict[str, Any]) -> str:
    """Why a cell has no load figures (skipped, LoadGen missing, the test failing), or ""."""
    load = load_of(cell)
    if not load:
        return ""
    return str(load.get("skipped") or load.get("error") or "")


def curve_points(cell: dict[str, Any]) -> list[dict[str, float | bool]]:
    """The cell's Server runs as (achieved QPS, p50, p99, valid), by QPS: what the latency-vs-QPS chart draws."""
    points = []
    for p in load_of(cell).get("curve") or []:
        if not isinstance(p, dict):
            continue
        qps, p99 = finite(p.get("achieved_qps")) or finite(p.get("target_qps")), finite(p.get("p99"))
        if qps is None or p99 is None or qps <= 0 or p99 <= 0:
            continue
        points.append({"qps": qps, "p99": p99, "p50": finite(p.get("p50")) or p99, "valid": bool(p.get("valid"))})
    return sorted(points, key=lambda p: p["qps"])


def sut_text(cell: dict[str, Any]) -> str:
    """How the system under test was built, in one line."""
    load = load_of(cell)
    sut = load.get("sut") or {}
    if not sut:
        return ""
    parts = [str(sut.get("mode") or f"{sut.get('workers')} worker(s)"), f"runtime threads {sut.get('threads')}",
             f"{sut.get('rows_per_sample')} row(s) per sample", f"{sut.get('qsl_samples')} samples in the QSL"]
    batching = sut.get("batching") or {}
    if batching:
        parts.append(f"batching up to {sut.get('max_batch')} within {readable(finite(sut.get('batch_window_ms')))} ms"
                     if batching.get("enabled") else f"batching off: {batching.get('why')}")
    settings = load.get("settings") or {}
    parts.append(f"min duration {readable(finite(settings.get('duration_s')))} s, seed {settings.get('seed')}")
    return "; ".join(parts)
