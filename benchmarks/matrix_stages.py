"""Where a matrix run's time went: seconds per stage, per runtime family, and the slowest cells.

Reads one or more results.json files (e.g. a cold `make matrix` before and after a change) and prints,
side by side, the wall time of the run (started .. finished), the summed stage seconds per stage kind
(reference, convert:<hop>, load, run, compare, benchmark, variants, load test), the same per runtime,
and the ten slowest cells; with two runs, how far apart their latency figures are (each cell's p50 in
the second over the first: a run with more jobs must time the same as one with fewer). Work shared between cells (the model's reference, a converted prefix such as
the ONNX file under three runtimes) is recorded in every cell that used it, with the same seconds: it
is counted once here (by model, stage and exact seconds), so the stage sums are the work the run did.
With --jobs 2 they add up to about twice the wall time; with one job, wall minus the sum is the time no
stage measured (worker start, framework imports, writing results). A conversion served from the
artifact cache counts 0 s (it was paid once, by the first cell that needed it).

    python benchmarks/matrix_stages.py runs/<before>/results.json runs/<after>/results.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path


def wall_seconds(run: dict) -> float | None:
    try:
        return (datetime.fromisoformat(run["finished"]) - datetime.fromisoformat(run["started"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def breakdown(path: Path) -> dict:
    document = json.loads(path.read_text())
    per_stage: dict[str, float] = defaultdict(float)
    per_runtime: dict[str, float] = defaultdict(float)
    cells = []
    seen: set[tuple[str, str, float]] = set()
    for cell in document["cells"]:
        total = 0.0
        for stage in cell.get("stages") or []:
            seconds = stage.get("seconds") or 0.0
            shared = (cell["model"], stage["stage"], seconds)
            if seconds and shared in seen:
                continue  # a reference or converted prefix another cell already paid for
            seen.add(shared)
            name = stage["stage"].split(":")[0] + (":" + stage["stage"].split(":")[1] if ":" in stage["stage"] else "")
            per_stage[name] += seconds
            total += seconds
        per_runtime[cell.get("runtime", "?")] += total
        cells.append((total, f"{cell['model']} × {cell['route']} [{cell.get('device')} {cell.get('precision')}]"))
    jobs = ((document["run"].get("settings") or {}).get("invocation") or {}).get("options", {}).get("jobs")
    return {"path": path, "wall": wall_seconds(document["run"]), "cells": len(document["cells"]), "jobs": jobs,
            "stages": per_stage, "runtimes": per_runtime, "slowest": sorted(cells, reverse=True)[:10]}


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    runs = [breakdown(p) for p in args.results]
    width = 14
    head = "".join(f"{('run ' + str(i + 1)):>{width}}" for i in range(len(runs)))
    for i, r in enumerate(runs):
        print(f"run {i + 1}: {r['path']} ({r['cells']} cells, wall {fmt(r['wall'])})")
    for title, key in (("stage", "stages"), ("runtime", "runtimes")):
        names = sorted({n for r in runs for n in r[key]}, key=lambda n: -max(r[key].get(n, 0.0) for r in runs))
        print(f"\n{title:30}{head}")
        for name in names:
            print(f"{name:30}" + "".join(f"{fmt(r[key].get(name)):>{width}}" for r in runs))
        print(f"{'(sum of stage seconds)':30}" + "".join(f"{fmt(sum(r[key].values())):>{width}}" for r in runs))
    # Only meaningful when cells ran one at a time: with parallel jobs the stage sum exceeds the wall.
    print(f"{'(wall - stage sum)':30}" + "".join(
        f"{fmt(r['wall'] - sum(r['stages'].values()) if r['wall'] and (r['jobs'] or 1) == 1 else None):>{width}}"
        for r in runs))
    for i, r in enumerate(runs):
        print(f"\nslowest cells, run {i + 1}:")
        for seconds, name in r["slowest"]:
            print(f"  {fmt(seconds):>9}  {name}")
    for i in range(1, len(runs)):
        latency_agreement(args.results[0], args.results[i], i + 1)


def latency_agreement(first: Path, other: Path, number: int) -> None:
    """Each cell's p50 in `other` over `first` (cells timed in both): the median ratio and its spread."""
    import numpy as np

    def p50s(path: Path) -> dict[tuple, float]:
        return {(c["model"], c["route"], c.get("device"), c.get("precision")): c["latency_ms"]["p50"]
                for c in json.loads(path.read_text())["cells"] if (c.get("latency_ms") or {}).get("p50")}

    a, b = p50s(first), p50s(other)
    common = sorted(set(a) & set(b))
    if not common:
        return
    ratios = np.array([b[k] / a[k] for k in common])
    worst = max(common, key=lambda k: abs(np.log(b[k] / a[k])))
    def noisy(path: Path) -> str:
        timed = [c["latency_ms"] for c in json.loads(path.read_text())["cells"] if (c.get("latency_ms") or {}).get("p50")]
        return (f"{sum(bool(t.get('noisy')) for t in timed)} of {len(timed)} noisy, median cv "
                f"{np.median([t.get('cv') or 0.0 for t in timed]):.1%}")

    print(f"\nlatency figures: run 1 {noisy(first)}; run {number} {noisy(other)}")
    print(f"latency, run {number} over run 1 ({len(common)} cells timed in both): median p50 ratio "
          f"{np.median(ratios):.3f}, middle 80% {np.percentile(ratios, 10):.2f}-{np.percentile(ratios, 90):.2f}, "
          f"within 10%: {np.mean(np.abs(ratios - 1) <= 0.10):.0%}; furthest: {worst[0]} × {worst[1]} "
          f"{a[worst]:.3g} -> {b[worst]:.3g} ms")


if __name__ == "__main__":
    main()
