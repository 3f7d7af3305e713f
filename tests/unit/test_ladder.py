"""The stage ladder: one rule, drawn as states (HTML) and marks (Markdown); the two used to disagree
on a vacuous cell (HTML: compared failed; Markdown: compared ✔)."""

from __future__ import annotations

from convcheck.reports.ladder import ladder, ladder_states


def _cell(stages, error_stage=None, steps=("onnx",), status="pass"):
    return {"steps": list(steps), "status": status, "stages": stages,
            "error": {"stage": error_stage, "message": "x"} if error_stage else None}


def _both(cell):
    states = {r["step"]: r["state"] for r in ladder(cell)}
    marks = {rung: mark for rung, mark, _ in ladder_states(cell)}
    return states, marks


def test_a_vacuous_cell_compared_in_both_views():
    stages = [{"stage": s, "ok": True, "seconds": 0.1} for s in ("reference", "convert:onnx", "load", "run",
                                                                   "compare", "benchmark")]
    states, marks = _both(_cell(stages, "compare", status="vacuous"))
    assert states["compared"] == "ok" and marks["compared"] == "✔"
    assert states["converted"] == "same" and marks["converted"] == marks["exported"] == "✔"


def test_a_mismatch_fails_compare_in_both_views():
    stages = [{"stage": "convert:onnx", "ok": True, "seconds": 1.0}, {"stage": "load", "ok": True, "seconds": 0.1},
              {"stage": "run", "ok": True, "seconds": 0.1}, {"stage": "compare", "ok": False, "seconds": 0.0}]
    states, marks = _both(_cell(stages, "compare", status="mismatch"))
    assert states["compared"] == "failed" and marks["compared"] == "✘"
    assert states["benchmarked"] == "not reached" and marks["benchmarked"] == "·"


def test_a_crash_in_a_later_hop_with_no_stage_entry_fails_that_rung():
    stages = [{"stage": "convert:onnx", "ok": True, "seconds": 1.0}]
    states, marks = _both(_cell(stages, "convert:tvm", steps=("onnx", "tvm"), status="crashed"))
    assert states["exported"] == "ok" and states["converted"] == "failed"
    assert marks["exported"] == "✔" and marks["converted"] == "✘" and marks["loaded"] == "·"


def test_an_eager_route_has_no_conversion_rungs():
    states, marks = _both(_cell([{"stage": "load", "ok": True, "seconds": 0.1}], steps=()))
    assert states["exported"] == states["converted"] == "n/a" and marks["exported"] == "–"
