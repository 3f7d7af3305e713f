"""`diff_runs`: a planted regression between two real results.json documents, and the noise bands."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from convcheck.diff import diff_runs, latency_move, parity_move, render_diff
from convcheck.results import summarize
from tests.unit.test_store import make_cell, make_run, validate


def document(cells: list[dict[str, Any]], run_id: str = "20261125-100000-aaaa") -> dict[str, Any]:
    doc = {"schema_version": 1, "run": make_run(run_id), "summary": summarize(cells), "cells": cells}
    validate(doc)
    return doc


def cell_of(doc: dict[str, Any], model: str) -> dict[str, Any]:
    return next(c for c in doc["cells"] if c["model"] == model)


def planted() -> tuple[dict[str, Any], dict[str, Any]]:
    """Before: six passing cells. After: one fails parity, one's max_abs x100, one is 1.5x slower with a
    quiet figure; one moved 3% (noise) and one 15% with cv 20% (noise); one is untouched."""
    before = document([
        make_cell("slow", p50=20.0, cv=0.02),  # listed first: the sort, not the order, puts it third
        make_cell("jitter", p50=10.0, cv=0.03),
        make_cell("broken", max_abs=2e-6),
        make_cell("drift", max_abs=1e-6),
        make_cell("wide", p50=8.0, cv=0.20, noisy=True),
        make_cell("steady"),
    ])
    after = copy.deepcopy(before)
    after["run"]["id"] = "20261125-110000-bbbb"
    broken = cell_of(after, "broken")
    broken.update(status="mismatch", error={
        "kind": "mismatch", "stage": "compare", "op": None,
        "message": "logits: sample 2: max_abs 0.03 exceeds atol 0.0001 + rtol 0.001 x |ref|"})
    broken["parity"].update(ok=False, max_abs=3e-2)
    cell_of(after, "drift")["parity"]["max_abs"] = 1e-4
    cell_of(after, "slow")["latency_ms"]["p50"] = 30.0
    cell_of(after, "jitter")["latency_ms"]["p50"] = 10.3
    cell_of(after, "wide")["latency_ms"]["p50"] = 8.0 * 1.15
    after["summary"] = summarize(after["cells"])
    validate(after)
    return before, after


def test_planted_regression_reports_exactly_the_three_changes_in_order():
    before, after = planted()
    entries = diff_runs(before, after)
    assert [(e["model"], e["kind"]) for e in entries] == [("broken", "status"), ("drift", "parity"),
                                                         ("slow", "latency")]
    status, parity, latency = entries
    assert {k: status[k] for k in ("route", "device", "precision")} == {
        "route": "torch/onnx/ort", "device": "cpu", "precision": "fp32"}
    assert (status["before"], status["after"]) == ("pass", "mismatch")
    assert status["detail"].startswith("pass -> mismatch (logits: sample 2: max_abs 0.03 exceeds")
    assert (parity["before"], parity["after"]) == (1e-6, 1e-4)
    assert parity["detail"].startswith("worse: max_abs 1e-06 -> 0.0001 (x100")
    assert (latency["before"], latency["after"]) == (20.0, 30.0)
    assert latency["detail"].startswith("slower: p50 20 ms -> 30 ms (+50%, beyond noise: cv 2%/2%")
    assert all("\n" not in e["detail"] for e in entries)

    table = render_diff(entries).splitlines()
    assert table[0].split() == ["model", "route", "device", "precision", "kind", "detail"]
    assert [line.split()[0] for line in table[2:]] == ["broken", "drift", "slow"]
    assert "no changes" in render_diff(diff_runs(before, before))
    assert diff_runs(before, before) == []


def test_the_reverse_diff_says_better_and_faster():
    before, after = planted()
    entries = diff_runs(after, before)
    assert [(e["model"], e["kind"]) for e in entries] == [("broken", "status"), ("drift", "parity"),
                                                         ("slow", "latency")]
    assert entries[0]["detail"].startswith("mismatch -> pass (was: logits:")
    assert entries[1]["detail"].startswith("better: max_abs 0.0001 -> 1e-06")
    assert entries[2]["detail"].startswith("faster: p50 30 ms -> 20 ms (-33%")


@pytest.mark.parametrize("moved, cv_before, cv_after, reported", [
    (1.15, 0.20, 0.20, False),  # 15% inside 3 x cv 20% = 60%
    (1.15, 0.02, 0.20, False),  # the larger cv of the two counts
    (1.15, 0.02, 0.02, True),   # 15% beyond max(10%, 6%)
    (1.08, 0.00, 0.00, False),  # under the 10% floor
    (1.25, 0.05, 0.05, True),   # 25% beyond 15%
    (0.80, 0.05, 0.05, True),   # faster counts too
])
def test_latency_band(moved, cv_before, cv_after, reported):
    a = make_cell(p50=10.0, cv=cv_before)["latency_ms"]
    b = make_cell(p50=10.0 * moved, cv=cv_after)["latency_ms"]
    assert (latency_move(a, b) is not None) == reported


def test_latency_noisy_flags_batch_and_threads():
    a = make_cell(p50=10.0, cv=0.12, noisy=True)["latency_ms"]
    b = make_cell(p50=20.0, cv=0.11, noisy=True)["latency_ms"]
    _, _, detail = latency_move(a, b)
    assert "cv 12%/11%, band 36%" in detail and detail.endswith("both figures flagged noisy")
    b.update(noisy=False, threads=4)
    assert latency_move(a, b)[2].endswith("the before figure is flagged noisy; threads 2 -> 4")
    b["batch"] = 1  # a different batch size is a different quantity: not compared
    assert latency_move(a, b) is None


def test_parity_band():
    p = make_cell(max_abs=1e-7)["parity"]
    # x5, but a change of 4e-7: rounding (below atol/10 = 1e-5)
    assert parity_move(p, dict(p, max_abs=5e-7)) is None
    # x1.8 of a large error: below the factor 2
    assert parity_move(dict(p, max_abs=1e-3), dict(p, max_abs=1.8e-3)) is None
    # x3 and 4e-5 > atol/10 ...
    assert parity_move(dict(p, max_abs=2e-5), dict(p, max_abs=6e-5)) is not None
    # ... unless the source's own noise floor is larger than the change
    floor = dict(p, noise_floor={"reference": "float64", "max_abs": 5e-5})
    assert parity_move(dict(floor, max_abs=2e-5), dict(floor, max_abs=6e-5)) is None
    # from bit-exact to an error beyond the band
    assert parity_move(dict(p, max_abs=0.0), dict(p, max_abs=1e-4))[2].startswith("worse: max_abs 0 -> 0.0001 (from 0")


def test_snr_judged_cells_compare_snr():
    def fp16(snr: float | None) -> dict[str, Any]:
        parity = make_cell(precision="fp16", max_abs=1e-3)["parity"]
        parity["tolerance"].update(check="snr", min_snr_db=40.0, atol=None)
        parity.update(snr_db=snr, **({"exact": True} if snr is None else {}))
        return parity

    before, after, detail = parity_move(fp16(55.0), fp16(31.0))
    assert (before, after) == (55.0, 31.0)
    assert detail == "worse: SNR 55.0 dB -> 31.0 dB (-24.0 dB, bound 40 dB)"
    assert parity_move(fp16(75.0), fp16(62.0)) is None  # both 20 dB clear of the bound: rounding
    assert parity_move(fp16(50.0), fp16(46.0)) is None  # within 6 dB
    assert parity_move(fp16(None), fp16(50.0))[2] == "worse: SNR exact -> 50.0 dB (exact match lost, bound 40 dB)"


def test_added_and_removed_come_last():
    before, after = planted()
    after["cells"] = [c for c in after["cells"] if c["model"] != "steady"]
    after["cells"].append(make_cell("newcomer", route="torch/onnx/openvino", status="convert_error",
                                     message="OnnxFromTorch: aten::foo not supported"))
    entries = diff_runs(before, after)
    assert [(e["model"], e["kind"]) for e in entries] == [
        ("broken", "status"), ("drift", "parity"), ("slow", "latency"),
        ("steady", "removed"), ("newcomer", "added")]
    assert entries[3]["before"] == "pass" and entries[3]["after"] is None
    assert entries[4]["detail"] == "new cell: convert_error (OnnxFromTorch: aten::foo not supported)"


def test_parity_and_latency_both_moved_is_one_entry():
    before, after = planted()
    cell_of(after, "drift")["latency_ms"]["p50"] = 25.0
    [drift] = [e for e in diff_runs(before, after) if e["model"] == "drift"]
    assert drift["kind"] == "parity" and "latency also moved: slower: p50 10 ms -> 25 ms" in drift["detail"]
