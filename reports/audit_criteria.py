"""The decision memo's weighted criteria: each eligible candidate scored on the figures a platform team
weighs (latency at the traffic, fidelity, cost over the horizon, lock-in, toolchain health, memory), every
score traceable to the figure behind it, and the sensitivity of the choice to the weights.

Criteria are data (`--criteria FILE`, YAML or JSON; `default`: reports/data/criteria.yaml, which documents the
format). Pure functions: no framework, no I/O beyond reading the criteria file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from convcheck.errors import ConvcheckError

DIRECTIONS = ("lower", "higher")
NORMALISATIONS = ("ratio", "minmax", "target", "range")


def _served_p99(c: dict) -> float | None:
    """The p99 the budget was judged on: LoadGen's Server p99 at the traffic where it ran, else per call."""
    server = (c.get("served") or {}).get("server") or {}
    if server.get("p99") is not None:
        return server["p99"]
    lat = c.get("latency") or {}
    return lat.get("p99") if lat.get("p99") is not None else lat.get("p50")


def _snr(c: dict) -> float | None:
    parity = c.get("parity") or {}
    return math.inf if parity.get("exact") else parity.get("snr_db")


def _factor(name: str) -> Callable[[dict], float | None]:
    return lambda c: (((c.get("lockin") or {}).get("factors") or {}).get(name) or {}).get("value")


def _cost_per_million(c: dict) -> float | None:
    cost = c.get("cost") or {}
    return cost.get("effective_per_million_usd", cost.get("per_million_usd"))


#: figure -> (how it is read from a candidate, unit, what it is).
FIGURES: dict[str, tuple[Callable[[dict], float | None], str, str]] = {
    "p99_ms": (_served_p99, "ms", "p99 latency: LoadGen's Server p99 at the traffic where it ran, else p99 per call"),
    "p50_ms": (lambda c: (c.get("latency") or {}).get("p50"), "ms", "median latency per call"),
    "max_abs": (lambda c: (c.get("parity") or {}).get("max_abs"), "", "largest absolute output error"),
    "snr_db": (_snr, "dB", "signal-to-noise ratio of the outputs against the source (identical: infinite)"),
    "lockin_score": (lambda c: (c.get("lockin") or {}).get("score"), "/100", "lock-in score (0 portable, 100 locked)"),
    "cost_per_million_usd": (_cost_per_million, "USD", "serving cost per million inferences at the traffic"),
    "tco_usd": (lambda c: (c.get("tco") or {}).get("total_usd"), "USD",
                "cost of ownership over the horizon (serving, plus migration exposure when a migration cost is given)"),
    "peak_memory_mb": (lambda c: (c.get("memory") or {}).get("process_peak_mb"), "MiB", "worker's peak resident memory"),
    "artifact_mb": (lambda c: None if c.get("artifact_bytes") is None else c["artifact_bytes"] / 2**20, "MiB",
                    "size of the deployed artifact"),
    "toolchain_health": (_factor("toolchain_health"), "", "lock-in factor: staleness or deprecation of the "
                         "route's weakest tool (0 fresh .. 1 stale or deprecated)"),
    "hardware_lockin": (_factor("hardware_diversity"), "", "lock-in factor: how few hardware vendors run the "
                        "artifact (0 five or more .. 1 one)"),
}


@dataclass(frozen=True)
class Criterion:
    name: str
    figure: str
    direction: str
    normalise: str
    weight: float
    target: float | None = None
    best: float | None = None
    worst: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def describe(self) -> str:
        how = {"ratio": "best candidate's value over this one's" if self.direction == "lower" else
               "this value over the best candidate's",
               "minmax": "min-max over the candidates (best 1, worst 0)",
               "target": f"against the target {self.target:g} (1 at or {'below' if self.direction == 'lower' else 'above'})"
               if self.target is not None else "against a target",
               "range": f"linear from {self.best:g} (1) to {self.worst:g} (0)" if self.best is not None else "a range"}
        return f"{self.figure}, {self.direction} is better, {how[self.normalise]}, weight {self.weight:g}"


def load_criteria(given: str | Path | None) -> list[Criterion]:
    """The criteria from `given` (a YAML or JSON file; "default": the shipped file). One-line errors."""
    if given is None or str(given) == "default":
        text, where = resources.files("convcheck.reports").joinpath("data/criteria.yaml").read_text("utf-8"), \
            "the default criteria"
    else:
        path = Path(given)
        if not path.is_file():
            raise ConvcheckError(f"--criteria {given}: no such file (give a YAML file like reports/data/criteria.yaml, "
                                 "or `default`)")
        text, where = path.read_text(encoding="utf-8"), f"--criteria {given}"
    import yaml  # JSON is YAML too

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConvcheckError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    items = data.get("criteria") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ConvcheckError(f"{where}: expected `criteria:` with a list of criteria (name, figure, direction, "
                             "normalise, weight)")
    out = [_criterion(item, where, i) for i, item in enumerate(items)]
    if len({c.name for c in out}) != len(out):
        raise ConvcheckError(f"{where}: two criteria share a name; give each its own")
    if sum(c.weight for c in out) <= 0:
        raise ConvcheckError(f"{where}: the weights add up to 0; give at least one a positive weight")
    return out


def _criterion(item: Any, where: str, i: int) -> Criterion:
    if not isinstance(item, dict):
        raise ConvcheckError(f"{where}: criterion {i + 1} is not a mapping of name, figure, direction, normalise, weight")
    known = {"name", "figure", "direction", "normalise", "weight", "target", "best", "worst"}
    unknown = sorted(set(item) - known)
    name = str(item.get("name") or item.get("figure") or f"criterion {i + 1}")
    if unknown:
        raise ConvcheckError(f"{where}: criterion {name!r} has unknown key {unknown[0]!r}; use {', '.join(sorted(known))}")
    figure = item.get("figure")
    if figure not in FIGURES:
        raise ConvcheckError(f"{where}: criterion {name!r} reads figure {figure!r}; use one of {', '.join(FIGURES)}")
    direction = item.get("direction", "lower")
    if direction not in DIRECTIONS:
        raise ConvcheckError(f"{where}: criterion {name!r}: direction {direction!r}; use lower or higher")
    normalise = item.get("normalise", "ratio")
    if normalise not in NORMALISATIONS:
        raise ConvcheckError(f"{where}: criterion {name!r}: normalise {normalise!r}; use {', '.join(NORMALISATIONS)}")
    numbers = {}
    for key in ("weight", "target", "best", "worst"):
        value = item.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConvcheckError(f"{where}: criterion {name!r}: {key} {value!r} is not a number")
        numbers[key] = float(value)
    if numbers.get("weight") is None or numbers["weight"] < 0:
        raise ConvcheckError(f"{where}: criterion {name!r} needs a weight >= 0")
    if normalise == "target" and (numbers.get("target") is None or numbers["target"] <= 0):
        raise ConvcheckError(f"{where}: criterion {name!r} normalises against a target: give `target` (> 0)")
    if normalise == "range" and (numbers.get("best") is None or numbers.get("worst") is None
                                 or numbers["best"] == numbers["worst"]):
        raise ConvcheckError(f"{where}: criterion {name!r} normalises over a range: give `best` and `worst` (different)")
    return Criterion(name, figure, direction, normalise, numbers["weight"], numbers.get("target"), numbers.get("best"),
                     numbers.get("worst"))


def _normalised(crit: Criterion, value: float, values: list[float]) -> float:
    lower = crit.direction == "lower"
    if crit.normalise == "range":
        best, worst = crit.best, crit.worst  # type: ignore[assignment]
        return max(0.0, min(1.0, (worst - value) / (worst - best)))  # type: ignore[operator]
    if crit.normalise == "target":
        target = crit.target  # type: ignore[assignment]
        if lower:
            return 1.0 if value <= target else (target / value if value > 0 else 0.0)  # type: ignore[operator]
        return 1.0 if value >= target else max(0.0, value / target)  # type: ignore[operator]
    best = min(values) if lower else max(values)
    worst = max(values) if lower else min(values)
    if crit.normalise == "minmax":
        if best == worst:
            return 1.0
        return (worst - value) / (worst - best) if lower else (value - worst) / (best - worst)
    # ratio
    if math.isinf(best):
        return 1.0 if value == best else 0.0
    if lower:
        return 1.0 if value == best else (best / value if value > 0 else 0.0)
    return value / best if best > 0 else (1.0 if value == best else 0.0)


def score(candidates: list[dict], criteria: list[Criterion]) -> dict[str, Any]:
    """The scored matrix: per candidate, per criterion the figure, its 0..1 score and its weighted points;
    the totals (0..100) ranked; criteria no candidate has a figure for dropped with a note."""
    rows: dict[str, dict[str, Any]] = {c["id"]: {"id": c["id"], "route": c["route"], "runtime": c["runtime"],
                                                 "device": c.get("device", "cpu"), "precision": c["precision"],
                                                 "cells": {}} for c in candidates}
    used, dropped = [], []
    for crit in criteria:
        read = FIGURES[crit.figure][0]
        figures = {c["id"]: read(c) for c in candidates}
        present = [v for v in figures.values() if v is not None]
        if not present:
            dropped.append({"criterion": crit.name, "why": f"no candidate has a {crit.figure} figure"
                            + (" (needs --price-per-hour and --traffic)" if crit.figure in ("tco_usd",
                                                                                           "cost_per_million_usd")
                               else "")})
            continue
        if crit.normalise == "ratio" and any(v < 0 for v in present):
            raise ConvcheckError(f"criterion {crit.name!r}: ratio normalisation needs positive {crit.figure} figures; "
                                 "use minmax or range")
        used.append(crit)
        for cid, value in figures.items():
            if value is None:
                rows[cid]["cells"][crit.name] = {"figure": None, "score": 0.0, "points": 0.0,
                                                 "note": "not measured: scores 0"}
                continue
            s = _normalised(crit, value, present)
            rows[cid]["cells"][crit.name] = {"figure": value, "score": s, "points": 0.0}
    total_weight = sum(c.weight for c in used)
    for row in rows.values():
        points = 0.0
        for crit in used:
            cell = row["cells"][crit.name]
            cell["points"] = 100.0 * crit.weight * cell["score"] / total_weight if total_weight else 0.0
            points += cell["points"]
        row["total"] = points
    ranked = sorted(rows.values(), key=lambda r: (-r["total"], r["id"]))
    return {"criteria": [dict(c.to_dict(), describe=c.describe(), unit=FIGURES[c.figure][1],
                              meaning=FIGURES[c.figure][2]) for c in used],
            "dropped": dropped, "rows": ranked, "total_weight": total_weight}


def sensitivity(matrix: dict[str, Any]) -> dict[str, Any]:
    """The smallest single-weight change that makes another candidate the primary.

    With every other weight fixed, candidate X overtakes the leader L exactly when Σ_j w_j (s_Xj − s_Lj) > 0
    (the totals share their denominator, Σ w). So changing weight i by δ flips the choice once
    δ · (s_Xi − s_Li) > −Σ_j w_j (s_Xj − s_Lj): δ = −D / d_i, where D ≤ 0 is the current weighted gap and d_i
    the gap on criterion i. A positive δ (raise the weight) works where X scores better on i; a negative one
    (lower it) where X scores worse, and only down to 0. Each (X, i) gives the weight at which they tie."""
    rows = matrix["rows"]
    crits = matrix["criteria"]
    if len(rows) < 2 or not crits:
        return {"leader": rows[0]["id"] if rows else None, "flips": [], "smallest": None,
                "note": "one candidate or no criterion: nothing to flip"}
    leader = rows[0]
    flips = []
    for other in rows[1:]:
        gaps = {c["name"]: other["cells"][c["name"]]["score"] - leader["cells"][c["name"]]["score"] for c in crits}
        weighted = sum(c["weight"] * gaps[c["name"]] for c in crits)  # <= 0: the leader leads
        for c in crits:
            d = gaps[c["name"]]
            if d == 0:
                continue
            delta = -weighted / d
            new = c["weight"] + delta
            if new < 0:
                continue  # would need a negative weight
            flips.append({"candidate": other["id"], "criterion": c["name"], "weight_from": c["weight"],
                          "weight_to": new, "change": delta,
                          "relative_change": delta / c["weight"] if c["weight"] else math.inf,
                          "tie": weighted == 0})
    flips.sort(key=lambda f: (abs(f["change"]), f["candidate"], f["criterion"]))
    smallest = flips[0] if flips else None
    return {"leader": leader["id"], "flips": flips, "smallest": smallest,
            "note": ("no change of one weight makes another candidate the primary (it is at least as good on every "
                     "criterion)") if not flips else ""}
