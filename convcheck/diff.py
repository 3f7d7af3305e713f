"""What changed between two runs: `diff_runs(before, after)` over two results.json documents.

Cells are matched by (model, route, device, precision). A cell is reported — once, under the most
important kind that applies — when:

- **status**: its status differs (`pass -> mismatch`); the detail quotes the after cell's error (or
  the before cell's, when it got fixed). Figures are not compared then: the status says it.
- **parity**: it ran in both, with the same status, and its error moved beyond what noise explains.
  Cells judged elementwise (fp32) compare `max_abs`: reported when the larger of the two is more than
  **2x** the smaller **and** the absolute change exceeds the larger of the cell's noise floor
  (`parity.noise_floor.max_abs`, either run) and **atol / 10** (`parity.tolerance.atol`). Cells
  judged by SNR (fp16, int8) compare `snr_db`: reported when it moved by more than **6.02 dB** (the
  same factor 2 in error amplitude) **and** the worse of the two is within **20 dB** of the bound
  `min_snr_db` (an error at least a tenth of the tolerated one, as atol / 10 above). An exact match
  (`snr_db: null, exact: true`) counts as infinite SNR. Improvements are reported too: the detail
  starts with `better` or `worse`.
- **latency**: it ran in both and its `latency_ms.p50` changed by more than **max(10%, 3 x the larger
  cv of the two)**, relative to the before figure. Figures taken at different batch sizes are not
  compared. A figure flagged `noisy` is still compared (its cv widens the band), and the detail says so.
- **added** / **removed**: the cell is in one run only.

A cell whose parity and latency both moved is reported as `parity`, its detail naming the latency
move too. Entries come sorted: status changes, then parity, then latency, then added/removed; within
a kind, in the order the cells appear in the runs (the before run's order, then cells new in after).

Each entry: `{model, route, device, precision, kind, before, after, detail}`; `before`/`after` are
the statuses (status, added, removed: None on the missing side), the compared parity figure
(`max_abs` or `snr_db`, None for an exact match), or the p50 in ms.
"""

from __future__ import annotations

import math
from typing import Any

# Why these bounds (defended here, stated in the docstring above):
#
# PARITY_RATIO: parity samples are seeded (seeds 0..n-1), so the same build of a route gives the same
# max_abs run after run; what moves it harmlessly is a different reduction order (another thread count,
# another kernel picked by the runtime), which reshuffles rounding errors of the same size: max_abs
# wanders by tens of percent, not by 2x. A factor above 2 is a different computation.
PARITY_RATIO = 2.0
# ... but rounding-level errors are tiny, and 1e-7 -> 3e-7 is still rounding: the change must also be
# larger than the source framework's own rounding (its fp32-vs-fp64 noise floor: below it the
# reference itself cannot tell the two apart) and than a tenth of the atol the cell is judged by
# (a move an order of magnitude below what the verdict tolerates says nothing about the verdict).
ATOL_FRACTION = 0.1
# SNR-judged cells: 20 log10(2) dB is the same factor 2 on the error amplitude, and "within 20 dB of
# min_snr_db" is the same "at least a tenth of the tolerated error": fp16 at 75 dB vs 60 dB (bound 40)
# is rounding either way and not reported; 55 dB -> 35 dB is.
SNR_STEP_DB = 20 * math.log10(PARITY_RATIO)
SNR_RELEVANCE_DB = 20.0
# LATENCY: cv (stdev / mean of single calls) measures the spread inside one run; between two runs the
# machine itself moves (load from neighbours, frequency scaling, cache and allocator state), which a
# quiet run's cv underestimates, hence the 10% floor (the run-to-run spread of p50 on a shared 2-core
# VM). A wide distribution (cv 20%) can shift its median by a good fraction of its width from one run
# to the next without anything changing in the route, hence 3 x cv: a figure that spread out must
# move by more than three of its own spreads before it is called a change.
LATENCY_FLOOR = 0.10
LATENCY_CV_FACTOR = 3.0

KINDS = ("status", "parity", "latency", "added", "removed")
_RANK = {"status": 0, "parity": 1, "latency": 2, "added": 3, "removed": 3}
_KEY_FIELDS = ("model", "route", "device", "precision")

Key = tuple[str, str, str, str]


def diff_runs(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries for every cell that changed from run `a` (before) to run `b` (after); see the module doc."""
    before, after = _by_key(a), _by_key(b)
    order = list(dict.fromkeys([*before, *after]))
    entries: list[tuple[int, int, dict[str, Any]]] = []
    for i, key in enumerate(order):
        entry = _compare(before.get(key), after.get(key))
        if entry is not None:
            entries.append((_RANK[entry["kind"]], i, {**dict(zip(_KEY_FIELDS, key)), **entry}))
    return [e for _, _, e in sorted(entries, key=lambda t: (t[0], t[1]))]


def _by_key(doc: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    # A key twice in one document (a resumed run that re-ran a cell): the last record stands.
    return {tuple(c[f] for f in _KEY_FIELDS): c for c in doc.get("cells", [])}  # type: ignore[misc]


def _compare(x: dict[str, Any] | None, y: dict[str, Any] | None) -> dict[str, Any] | None:
    if x is None and y is not None:
        return _entry("added", None, y["status"], f"new cell: {_status_with_error(y)}")
    if y is None and x is not None:
        return _entry("removed", x["status"], None, f"not in the after run (was {_status_with_error(x)})")
    assert x is not None and y is not None
    if x["status"] != y["status"]:
        if y.get("error"):
            why = f" ({_clip(y['error'].get('message', ''))})"
        elif x.get("error"):
            why = f" (was: {_clip(x['error'].get('message', ''))})"
        else:
            why = ""
        return _entry("status", x["status"], y["status"], f"{x['status']} -> {y['status']}{why}")
    parity = parity_move(x.get("parity"), y.get("parity"))
    latency = latency_move(x.get("latency_ms"), y.get("latency_ms"))
    if parity is not None:
        before, after, detail = parity
        if latency is not None:
            detail += f"; latency also moved: {latency[2]}"
        return _entry("parity", before, after, detail)
    if latency is not None:
        return _entry("latency", *latency)
    return None


def _entry(kind: str, before: Any, after: Any, detail: str) -> dict[str, Any]:
    return {"kind": kind, "before": before, "after": after, "detail": detail}


# -- parity -----------------------------------------------------------------------------------------
def parity_move(p: dict[str, Any] | None, q: dict[str, Any] | None) -> tuple[Any, Any, str] | None:
    """(before, after, detail) if parity moved beyond noise between `p` and `q`, else None."""
    if not p or not q:
        return None
    if "snr" in (_tol(p).get("check"), _tol(q).get("check")):
        s, t = _snr(p), _snr(q)
        if s is not None and t is not None:
            return _snr_move(p, q, s, t)
    x, y = p.get("max_abs"), q.get("max_abs")
    if not _number(x) or not _number(y) or x == y:
        return None
    lo, hi = sorted((x, y))
    ratio = hi / lo if lo > 0 else math.inf
    floors = [f for c in (p, q) if _number(f := (c.get("noise_floor") or {}).get("max_abs"))]
    atols = [t for c in (p, q) if _number(t := _tol(c).get("atol"))]
    floor = max(floors, default=0.0)
    atol_part = ATOL_FRACTION * max(atols, default=0.0)
    if ratio <= PARITY_RATIO or abs(y - x) <= max(floor, atol_part):
        return None
    word = "worse" if y > x else "better"
    factor = "from 0" if lo == 0 else f"x{ratio:.3g}" if y > x else f"/{ratio:.3g}"
    noise = [f"noise floor {_g(floor)}"] if floors else []
    noise += [f"atol/10 {_g(atol_part)}"] if atols else []
    beyond = f", beyond {' and '.join(noise)}" if noise else ""
    return x, y, f"{word}: max_abs {_g(x)} -> {_g(y)} ({factor}{beyond})"


def _snr_move(p: dict[str, Any], q: dict[str, Any], s: float, t: float) -> tuple[Any, Any, str] | None:
    if s == t:
        return None
    bounds = [b for c in (p, q) if _number(b := _tol(c).get("min_snr_db"))]
    if abs(t - s) <= SNR_STEP_DB:
        return None
    if bounds and min(s, t) >= max(bounds) + SNR_RELEVANCE_DB:
        return None  # both far above the bound: rounding either way
    word = "worse" if t < s else "better"
    change = f"{t - s:+.1f} dB" if math.isfinite(t - s) else "exact match " + ("lost" if t < s else "reached")
    bound = f", bound {max(bounds):g} dB" if bounds else ""
    return _finite(s), _finite(t), f"{word}: SNR {_db(s)} -> {_db(t)} ({change}{bound})"


def _tol(parity: dict[str, Any]) -> dict[str, Any]:
    return parity.get("tolerance") or {}


def _snr(parity: dict[str, Any]) -> float | None:
    """The worst output's SNR; an exact match (`snr_db: null, exact: true`) is infinite."""
    if _number(parity.get("snr_db")):
        return float(parity["snr_db"])
    if parity.get("exact"):
        return math.inf
    return None


# -- latency ----------------------------------------------------------------------------------------
def latency_move(m: dict[str, Any] | None, n: dict[str, Any] | None) -> tuple[Any, Any, str] | None:
    """(p50 before, p50 after, detail) if p50 moved beyond noise between `m` and `n`, else None."""
    if not m or not n:
        return None
    x, y = m.get("p50"), n.get("p50")
    if not _number(x) or not _number(y) or x <= 0:
        return None
    if m.get("batch") is not None and n.get("batch") is not None and m["batch"] != n["batch"]:
        return None  # per-call times of different batch sizes are different quantities
    cvs = [c if _number(c := fig.get("cv")) else 0.0 for fig in (m, n)]
    band = max(LATENCY_FLOOR, LATENCY_CV_FACTOR * max(cvs))
    rel = y / x - 1
    if abs(rel) <= band:
        return None
    word = "slower" if rel > 0 else "faster"
    detail = (f"{word}: p50 {_ms(x)} ms -> {_ms(y)} ms ({rel:+.0%}, beyond noise: "
              f"cv {_pct(cvs[0])}/{_pct(cvs[1])}, band {_pct(band)})")
    noisy = [side for side, fig in (("before", m), ("after", n)) if fig.get("noisy")]
    if len(noisy) == 2:
        detail += "; both figures flagged noisy"
    elif noisy:
        detail += f"; the {noisy[0]} figure is flagged noisy"
    if m.get("threads") != n.get("threads") and m.get("threads") is not None and n.get("threads") is not None:
        detail += f"; threads {m['threads']} -> {n['threads']}"
    return x, y, detail


# -- rendering --------------------------------------------------------------------------------------
_COLUMNS = ("model", "route", "device", "precision", "kind", "detail")


def version_changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool versions that differ between the two runs for the cells both have (an upgrade check's
    `--toolchain onnxruntime==1.31.0` against a plain run): `{package, before, after, cells}`, where the
    versions are those the cells ran with (a toolchain environment's, else the run's)."""
    from convcheck.reports.route_packages import relevant_packages

    before, after = _by_key(a), _by_key(b)
    found: dict[tuple[str, str | None, str | None], int] = {}
    for key in before.keys() & after.keys():
        x, y = relevant_packages(a, before[key]), relevant_packages(b, after[key])
        for name in sorted(set(x) | set(y)):
            if x.get(name) != y.get(name):
                change = (name, x.get(name), y.get(name))
                found[change] = found.get(change, 0) + 1
    return [{"package": n, "before": v, "after": w, "cells": c} for (n, v, w), c in sorted(found.items(), key=str)]


def render_versions(changes: list[dict[str, Any]]) -> str:
    """One line per package version that differs, for the head of `convcheck diff`."""
    return "\n".join(f"{c['package']} {c['before'] or '(not installed)'} -> {c['after'] or '(not installed)'} "
                     f"in {c['cells']} cell{'s' if c['cells'] != 1 else ''}" for c in changes)


def render_diff(entries: list[dict[str, Any]]) -> str:
    """A plain-text table of `entries` for a terminal (no colour, no wrapping: the detail goes last)."""
    if not entries:
        return "no changes: same cells, same statuses, parity and latency within noise"
    rows = [list(_COLUMNS)] + [[str(e.get(c, "")) for c in _COLUMNS] for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for j, row in enumerate(rows):
        cells = [v.ljust(w) for v, w in zip(row, widths)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in [*widths, len(row[-1])]))
    return "\n".join(lines)


# -- helpers ----------------------------------------------------------------------------------------
def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _status_with_error(cell: dict[str, Any]) -> str:
    err = cell.get("error")
    return f"{cell['status']} ({_clip(err.get('message', ''))})" if err else cell["status"]


def _clip(text: str, limit: int = 140) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _g(v: float) -> str:
    return f"{v:.2g}"


def _db(v: float) -> str:
    return f"{v:.1f} dB" if math.isfinite(v) else "exact"


def _ms(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def _pct(v: float) -> str:
    return f"{v:.1%}" if 0 < v < 0.01 else f"{v:.0%}"
