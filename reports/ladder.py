"""The stage ladder: the six user-facing rungs a cell climbs, read from its `stages` and `error.stage`.

    exported → converted → loaded → ran → compared → benchmarked

"exported" is the route's first convert hop, "converted" its later hops (the same hop as exported on a
one-hop route, nothing at all on an eager route), the other rungs are pipeline stages one to one
(`RUNG_OF_STAGE`). A crash the stage list never recorded still shows where it stopped, from error.stage.

One rule, two drawings: `ladder(cell)` gives a state per rung (`ok`, `failed`, `not reached`, `n/a`,
`same`), which the HTML pages draw; `ladder_states(cell)` draws the same states as marks (✔ ✘ · –) for
the Markdown pages. A rung is failed when one of its entries says `ok: false`, or when error.stage
names a stage of the rung that has no ok entry (a crash the stage list never recorded); it is ok when
every stage it expects has an ok entry. A `vacuous` cell's compare ran and matched (its entry is ok):
the rung is ok, and the cell's status says that the match proves nothing.
"""

from __future__ import annotations

from typing import Any

from convcheck.reports.numbers import finite

LADDER = ("exported", "converted", "loaded", "ran", "compared", "benchmarked")
#: Pipeline stage -> its rung (the convert:<hop> stages make the first two rungs).
RUNG_OF_STAGE = {"load": "loaded", "run": "ran", "compare": "compared", "benchmark": "benchmarked"}


def _facts(cell: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], str]:
    """(stage entries, convert:<hop> entries, the route's hops, error.stage) of a cell."""
    stages = [s for s in cell.get("stages") or [] if isinstance(s, dict)]
    converts = [s for s in stages if str(s.get("stage", "")).startswith("convert:")]
    return stages, converts, list(cell.get("steps") or []), str((cell.get("error") or {}).get("stage") or "")


def ladder(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """The six user-facing steps, each `ok` / `failed` / `not reached` / `n/a` / `same`, with seconds."""
    stages, converts, hops, err_stage = _facts(cell)
    first_hop = f"convert:{hops[0]}" if hops else (str(converts[0].get("stage")) if converts else None)

    def state(entries: list[dict[str, Any]], expected: int, names: set[str] | None) -> dict[str, Any]:
        """`names`: the stages of this rung (None: every convert:<hop> after the first)."""
        secs = sum(finite(e.get("seconds")) or 0.0 for e in entries) if entries else None
        ok_names = {str(e.get("stage")) for e in entries if e.get("ok")}
        named_here = (err_stage in names) if names is not None else \
            (err_stage.startswith("convert:") and err_stage != first_hop)
        if any(e.get("ok") is False for e in entries) or (named_here and err_stage not in ok_names):
            return {"state": "failed", "seconds": secs}
        if entries and len(entries) >= expected:
            return {"state": "ok", "seconds": secs}
        return {"state": "not reached", "seconds": secs}

    steps: dict[str, dict[str, Any]] = {}
    if not hops and not converts:
        steps["exported"] = steps["converted"] = {"state": "n/a", "seconds": None}
    else:
        first = [s for s in converts if s.get("stage") == first_hop]
        later = [s for s in converts if s.get("stage") != first_hop]
        if len(hops) <= 1 and not later:
            # One hop: exported and converted are the same step (a crash in it names it either way).
            steps["exported"] = state(first, 1, {first_hop or ""} | ({err_stage} if err_stage.startswith("convert:")
                                                                   else set()))
            steps["converted"] = {"state": "same", "seconds": None}
        else:
            steps["exported"] = state(first, 1, {first_hop or ""})
            steps["converted"] = state(later, max(len(hops) - 1, 1), None)
    for stage, step in RUNG_OF_STAGE.items():
        steps[step] = state([s for s in stages if s.get("stage") == stage], 1, {stage})
    return [{"step": name, **steps[name]} for name in LADDER]


#: How the Markdown pages draw each state.
MARKS = {"ok": "✔", "failed": "✘", "not reached": "·", "n/a": "–"}


def ladder_states(cell: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """(rung, mark, seconds) for the six rungs of `ladder(cell)`: ✔ done, ✘ failed there, · not
    reached, – does not apply (no conversion on an eager route); on a one-hop route "converted" repeats
    exported's mark (seconds None: counted once)."""
    rungs: list[tuple[str, str, float | None]] = []
    for rung in ladder(cell):
        if rung["state"] == "same":
            rungs.append((rung["step"], rungs[-1][1], None))
        else:
            seconds = rung["seconds"] if rung["state"] in ("ok", "failed") else None
            rungs.append((rung["step"], MARKS[rung["state"]], seconds))
    return rungs
